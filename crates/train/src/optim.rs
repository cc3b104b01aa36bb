use tch::Tensor;

use crate::{Config, OptimizerKind};

/// Adadelta (Zeiler 2012, as Kim used it: rho 0.95, eps 1e-6, lr 1), Adam
/// and plain SGD, on a fixed list of parameters.
pub(crate) struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    rho: f64,
    eps: f64,
    /// Per parameter: Adadelta E[g^2], E[dx^2]; Adam m, v.
    state: Vec<(Tensor, Tensor)>,
    step: i32,
}

impl Optimizer {
    pub fn new(params: &[Tensor], cfg: &Config) -> Optimizer {
        let state = params.iter().map(|p| (p.zeros_like().detach(), p.zeros_like().detach())).collect();
        Optimizer { kind: cfg.optimizer, lr: cfg.lr(), rho: cfg.rho, eps: cfg.eps, state, step: 0 }
    }

    /// One update of `params` with their gradients `grads` (undefined: no gradient, skipped).
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        self.step += 1;
        let (lr, rho, eps) = (self.lr, self.rho, self.eps);
        let kind = self.kind;
        let t = self.step;
        tch::no_grad(|| {
            for ((p, g), (a, b)) in params.iter().zip(grads).zip(self.state.iter_mut()) {
                if !g.defined() {
                    continue;
                }
                let mut p = p.shallow_clone();
                match kind {
                    OptimizerKind::Adadelta => adadelta(&mut p, g, a, b, rho, eps, lr),
                    OptimizerKind::Adam => {
                        let (b1, b2) = (0.9f64, 0.999f64);
                        let _ = a.g_mul_scalar_(b1);
                        let _ = a.g_add_(&(g * (1.0 - b1)));
                        let _ = b.g_mul_scalar_(b2);
                        let _ = b.g_add_(&(g.square() * (1.0 - b2)));
                        let mhat = &*a / (1.0 - b1.powi(t));
                        let vhat = &*b / (1.0 - b2.powi(t));
                        let _ = p.g_sub_(&(mhat / (vhat.sqrt() + 1e-8) * lr));
                    }
                    OptimizerKind::Sgd => {
                        let _ = p.g_sub_(&(g * lr));
                    }
                }
            }
        });
    }
}

/// One Adadelta update of `p` in place, with as few temporaries as the maths allows.
fn adadelta(p: &mut Tensor, g: &Tensor, a: &mut Tensor, b: &mut Tensor, rho: f64, eps: f64, lr: f64) {
    // E[g²] = rho E[g²] + (1-rho) g²
    let _ = a.g_mul_scalar_(rho);
    let gs = g * (1.0 - rho).sqrt();
    let _ = a.addcmul_(&gs, &gs);
    // update = sqrt(E[dx²] + eps) / sqrt(E[g²] + eps) * g
    let mut update = (&*b + eps).sqrt_();
    let _ = update.g_div_(&(&*a + eps).sqrt_());
    let _ = update.g_mul_(g);
    // E[dx²] = rho E[dx²] + (1-rho) update²
    let _ = b.g_mul_scalar_(rho);
    let us = &update * (1.0 - rho).sqrt();
    let _ = b.addcmul_(&us, &us);
    if lr != 1.0 {
        let _ = update.g_mul_scalar_(lr);
    }
    let _ = p.g_sub_(&update);
}

/// The rows of an embedding matrix one batch uses, as a leaf of their own.
pub(crate) struct BatchRows {
    /// Row ids into the matrix, sorted; the pad row 0 always first.
    pub ids: Tensor,
    /// `matrix[ids]`, requires grad: what the batch's forward pass looks up.
    pub rows: Tensor,
    /// The batch's token ids renumbered into `rows` (pad stays 0).
    pub local: Tensor,
}

impl BatchRows {
    pub fn gather(matrix: &Tensor, x: &Tensor) -> BatchRows {
        let all = Tensor::cat(&[Tensor::zeros([1], (x.kind(), x.device())), x.flatten(0, -1)], 0);
        let (ids, inverse, _) = all.internal_unique2(true, true, false);
        let local = inverse.narrow(0, 1, x.numel() as i64).view(x.size().as_slice());
        let rows = tch::no_grad(|| matrix.index_select(0, &ids)).set_requires_grad(true);
        BatchRows { ids, rows, local }
    }
}

/// Adadelta on a fine-tuned embedding matrix that touches only the rows a
/// batch uses. A row the batch does not use has a zero gradient, so a dense
/// Adadelta step leaves it unchanged and only multiplies its two
/// accumulators by rho. Here those decays wait until the row is next used
/// (rho^k for k skipped steps), which gives the dense result (up to float
/// rounding) at the cost of the batch's rows instead of the whole vocabulary
/// each step: what makes CNN-non-static on NSMC's 91k-word vocabulary cheap.
/// Exact for Adadelta only (Adam's moments would keep moving unused rows).
pub(crate) struct LazyAdadelta {
    /// E[g²], E[dx²], [V, D].
    acc_g: Tensor,
    acc_dx: Tensor,
    /// The step each row was last updated at (0: never), [V].
    last: Tensor,
    step: i64,
    rho: f64,
    eps: f64,
    lr: f64,
}

impl LazyAdadelta {
    pub fn new(matrix: &Tensor, cfg: &Config) -> LazyAdadelta {
        let zeros = || matrix.zeros_like().detach();
        let last = Tensor::zeros([matrix.size()[0]], (tch::Kind::Int64, matrix.device()));
        LazyAdadelta { acc_g: zeros(), acc_dx: zeros(), last, step: 0, rho: cfg.rho, eps: cfg.eps, lr: cfg.lr() }
    }

    /// One step for the rows `batch` gathered, with their gradient `grad`.
    pub fn step(&mut self, matrix: &Tensor, batch: &BatchRows, grad: &Tensor) {
        self.step += 1;
        tch::no_grad(|| {
            let ids = &batch.ids;
            // Steps since a row's last update, before this one: rho^skipped is the decay it missed.
            let skipped = (self.last.index_select(0, ids).neg() + (self.step - 1)).to_kind(tch::Kind::Double);
            let decay = (skipped * self.rho.ln()).exp().to_kind(self.acc_g.kind()).unsqueeze(1);
            let mut a = self.acc_g.index_select(0, ids) * &decay;
            let mut b = self.acc_dx.index_select(0, ids) * &decay;
            let mut p = batch.rows.detach().copy();
            adadelta(&mut p, grad, &mut a, &mut b, self.rho, self.eps, self.lr);
            let _ = self.acc_g.index_copy_(0, ids, &a);
            let _ = self.acc_dx.index_copy_(0, ids, &b);
            let _ = matrix.shallow_clone().index_copy_(0, ids, &p);
            let _ = self.last.index_fill_(0, ids, self.step);
        });
    }
}

/// Scales all gradients so their joint l2 norm is at most `max`; returns the norm before.
pub(crate) fn clip_grad_norm(grads: &[Tensor], max: f64) -> f64 {
    tch::no_grad(|| {
        let grads: Vec<Tensor> = grads.iter().filter(|g| g.defined()).map(|g| g.shallow_clone()).collect();
        let total: f64 = grads.iter().map(|g| g.square().sum(tch::Kind::Double).double_value(&[])).sum::<f64>().sqrt();
        if total > max {
            let s = max / (total + 1e-6);
            for g in grads {
                let mut g = g;
                let _ = g.g_mul_scalar_(s);
            }
        }
        total
    })
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    use super::*;

    /// Lazy row updates match dense Adadelta on the whole matrix, including
    /// rows left out of many steps and the pad row (always zero).
    #[test]
    fn lazy_adadelta_matches_dense_adadelta() {
        let _g = crate::tests::torch_lock();
        tch::manual_seed(7);
        let opts = (Kind::Float, Device::Cpu);
        let start = Tensor::randn([30, 4], opts);
        let _ = start.get(0).fill_(0.0);
        let dense = start.copy();
        let lazy_m = start.copy();
        let cfg = Config::default();
        let mut opt = Optimizer::new(&[dense.shallow_clone()], &cfg);
        let mut lazy = LazyAdadelta::new(&lazy_m, &cfg);
        for step in 0..40i64 {
            // Batches over a few rows; rows 20.. only every 13th step; some pad.
            let hi = if step % 13 == 0 { 30 } else { 20 };
            let x = Tensor::randint_low(0, hi, [3, 5], (Kind::Int64, Device::Cpu));
            let batch = BatchRows::gather(&lazy_m, &x);
            assert!(batch.rows.allclose(&Tensor::embedding(&lazy_m, &batch.ids, -1, false, false), 0.0, 0.0, false));
            let target = Tensor::randn([3, 5, 4], opts);
            // The same loss through both lookups.
            let e = Tensor::embedding(&batch.rows, &batch.local, 0, false, false);
            let g_rows = Tensor::f_run_backward(&[&(&e * &target).sum(Kind::Float)], &[&batch.rows], false, false).unwrap();
            let d = dense.detach().set_requires_grad(true);
            let e = Tensor::embedding(&d, &x, 0, false, false);
            let g_dense = Tensor::f_run_backward(&[&(&e * &target).sum(Kind::Float)], &[&d], false, false).unwrap();
            lazy.step(&lazy_m, &batch, &g_rows[0]);
            opt.step(&[dense.shallow_clone()], &g_dense);
            // Rows not used since their last update hold the same values in both.
            assert!(lazy_m.allclose(&dense, 1e-5, 1e-6, false), "step {step}: {:?}", (&lazy_m - &dense).abs().max());
        }
        assert_eq!(lazy_m.get(0).abs().sum(Kind::Float).double_value(&[]), 0.0, "the pad row moved");
        assert!(!lazy_m.allclose(&start, 1e-3, 1e-3, false), "nothing was trained");
        // And the accumulators of every row, brought up to date, are dense's.
        let behind = (lazy.last.zeros_like() + lazy.step - &lazy.last).to_kind(Kind::Double);
        let decay = (behind * cfg.rho.ln()).exp().to_kind(Kind::Float).unsqueeze(1);
        assert!((&lazy.acc_g * &decay).allclose(&opt.state[0].0, 1e-5, 1e-7, false));
        assert!((&lazy.acc_dx * &decay).allclose(&opt.state[0].1, 1e-5, 1e-7, false));
    }
}
