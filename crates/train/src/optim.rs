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

    /// Per parameter, its two state tensors (shared: writing them writes the state).
    pub fn state(&self) -> &[(Tensor, Tensor)] {
        &self.state
    }

    pub fn step_count(&self) -> i64 {
        self.step.into()
    }

    pub fn set_step_count(&mut self, step: i64) {
        self.step = step as i32;
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

    /// Its state tensors by name (shared: writing them writes the state).
    pub fn state(&self) -> Vec<(&'static str, Tensor)> {
        vec![("acc_g", self.acc_g.shallow_clone()), ("acc_dx", self.acc_dx.shallow_clone()), ("last", self.last.shallow_clone())]
    }

    pub fn step_count(&self) -> i64 {
        self.step
    }

    pub fn set_step_count(&mut self, step: i64) {
        self.step = step;
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

    /// torch.optim.Adadelta's update of one element, in f64: the reference
    /// the tensor code is held to.
    fn adadelta_ref(p: &mut f64, g: f64, square_avg: &mut f64, acc_delta: &mut f64, rho: f64, eps: f64, lr: f64) {
        *square_avg = rho * *square_avg + (1.0 - rho) * g * g;
        let std = (*square_avg + eps).sqrt();
        let delta = (*acc_delta + eps).sqrt() / std * g;
        *acc_delta = rho * *acc_delta + (1.0 - rho) * delta * delta;
        *p -= lr * delta;
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
    }

    /// Every element of `actual` within 1e-6 relative (1e-9 absolute near 0) of `expected`.
    fn assert_close(actual: &Tensor, expected: &[f64], what: &str) {
        let got = values(actual);
        assert_eq!(got.len(), expected.len(), "{what}: size");
        for (i, (a, e)) in got.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= 1e-6 * e.abs() + 1e-9, "{what}[{i}]: got {a:.12e}, expected {e:.12e} (rel {:.2e})", (a - e) / e);
        }
    }

    /// Hand-chosen gradients for a 2x3 parameter: large, small (at and below
    /// sqrt(eps) = 1e-3, where eps weighs most), negative and zero entries.
    const GRADS: [[f32; 6]; 4] = [
        [0.5, -1.0, 2.0, 0.25, 0.0, -3.0],
        [0.5, 0.75, -2.0, 1e-3, 0.0, -3.0],
        [-0.25, 1.5, 0.125, -1e-4, 4.0, -3.0],
        [1.0, -0.5, 0.0, 2e-3, -1.0, 0.5],
    ];

    /// The dense optimizer's Adadelta against PyTorch's formulas in f64, step
    /// by step, at Kim's lr 1 and at lr 0.5 (the lr scales the step, not the
    /// E[dx²] it feeds); a parameter without a gradient (undefined, as
    /// PyTorch's grad None) is skipped: unchanged, its accumulators not decayed.
    #[test]
    fn adadelta_matches_pytorch_formulas() {
        let _g = crate::tests::torch_lock();
        for lr in [None, Some(0.5)] {
            let cfg = Config { lr, ..Config::default() };
            assert_eq!(cfg.optimizer, OptimizerKind::Adadelta);
            let (rho, eps, lr) = (cfg.rho, cfg.eps, cfg.lr());
            assert_eq!((rho, eps), (0.95, 1e-6), "Kim's rho and eps");
            // Small starting values: f32 rounding of the parameter stays far below
            // the step (~1e-3), so the tolerance holds the step itself to ~1e-6.
            let p = Tensor::from_slice(&[0.01f32, -0.02, 0.0, 0.005, 0.03, -0.01]).view([2, 3]);
            let q = Tensor::from_slice(&[0.02f32, -0.04]);
            let mut opt = Optimizer::new(&[p.shallow_clone(), q.shallow_clone()], &cfg);
            let (mut pe, mut qe) = (values(&p), values(&q));
            let (mut pa, mut pb) = (vec![0.0; 6], vec![0.0; 6]);
            let (mut qa, mut qb) = (vec![0.0; 2], vec![0.0; 2]);
            for (k, g) in GRADS.iter().enumerate() {
                let gp = Tensor::from_slice(g).view([2, 3]);
                let qg = [0.75f32, -2.0];
                // q has no gradient at the second step.
                let gq = if k == 1 { Tensor::new() } else { Tensor::from_slice(&qg) };
                opt.step(&[p.shallow_clone(), q.shallow_clone()], &[gp, gq]);
                for i in 0..6 {
                    adadelta_ref(&mut pe[i], g[i] as f64, &mut pa[i], &mut pb[i], rho, eps, lr);
                }
                if k != 1 {
                    for i in 0..2 {
                        adadelta_ref(&mut qe[i], qg[i] as f64, &mut qa[i], &mut qb[i], rho, eps, lr);
                    }
                }
                let at = format!("lr {lr} step {}", k + 1);
                assert_close(&p, &pe, &format!("{at}: p"));
                assert_close(&opt.state[0].0, &pa, &format!("{at}: p's E[g^2]"));
                assert_close(&opt.state[0].1, &pb, &format!("{at}: p's E[dx^2]"));
                assert_close(&q, &qe, &format!("{at}: q"));
                assert_close(&opt.state[1].0, &qa, &format!("{at}: q's E[g^2]"));
                assert_close(&opt.state[1].1, &qb, &format!("{at}: q's E[dx^2]"));
            }
            // The reference moved every element with a gradient by more than the tolerance.
            let moved = values(&p).iter().zip([0.01f32, -0.02, 0.0, 0.005, 0.03, -0.01]).all(|(a, b)| (a - b as f64).abs() > 1e-4);
            assert!(moved, "lr {lr}: {p:?}");
        }
    }

    /// LazyAdadelta against PyTorch's formulas in f64, step by step: a row a
    /// batch uses gets an Adadelta step with its accumulators first
    /// multiplied by rho^k for the k steps since its last update (the decay a
    /// dense step with a zero gradient would have applied); a row it does not
    /// use is left as it is. Rows: 0 pad (zero gradient), 1 used at steps
    /// 1-3, 2 at steps 1 and 4 (two skipped: rho^2), 3 first at step 3.
    #[test]
    fn lazy_adadelta_matches_pytorch_formulas() {
        let _g = crate::tests::torch_lock();
        let cfg = Config::default();
        let (rho, eps, lr) = (cfg.rho, cfg.eps, cfg.lr());
        let start = [0.0f32, 0.0, 0.0, 0.01, -0.02, 0.005, 0.03, -0.01, 0.02, -0.005, 0.015, 0.0];
        let m = Tensor::from_slice(&start).view([4, 3]);
        let mut lazy = LazyAdadelta::new(&m, &cfg);
        let mut pe = values(&m);
        let (mut acc_g, mut acc_dx) = (vec![0.0; 12], vec![0.0; 12]);
        let mut last = [0i32; 4];
        // (token ids, the rows gather gives, each row's gradient)
        type Step<'a> = (&'a [i64], &'a [i64], &'a [[f32; 3]]);
        let steps: [Step; 4] = [
            (&[1, 2, 1], &[0, 1, 2], &[[0.0; 3], [0.5, -1.0, 2.0], [0.25, 1e-3, -3.0]]),
            (&[1, 0], &[0, 1], &[[0.0; 3], [0.5, 0.75, -2.0]]),
            (&[3, 1], &[0, 1, 3], &[[0.0; 3], [-0.25, 0.0, 0.125], [4.0, -1e-4, 1.5]]),
            (&[2, 3, 3], &[0, 2, 3], &[[0.0; 3], [1.0, -0.5, 2e-3], [-1.0, 0.5, 0.0]]),
        ];
        for (k, (x, ids, grad)) in steps.iter().enumerate() {
            let step = k as i32 + 1;
            let batch = BatchRows::gather(&m, &Tensor::from_slice(x).view([1, x.len() as i64]));
            assert_eq!(Vec::<i64>::try_from(&batch.ids).unwrap(), ids.to_vec(), "step {step}: the rows used");
            let g: Vec<f32> = grad.iter().flatten().copied().collect();
            let before = m.copy();
            lazy.step(&m, &batch, &Tensor::from_slice(&g).view([ids.len() as i64, 3]));
            for (r, &row) in ids.iter().enumerate() {
                let row = row as usize;
                let skipped = step - 1 - last[row];
                for j in 0..3 {
                    let i = row * 3 + j;
                    acc_g[i] *= rho.powi(skipped);
                    acc_dx[i] *= rho.powi(skipped);
                    adadelta_ref(&mut pe[i], grad[r][j] as f64, &mut acc_g[i], &mut acc_dx[i], rho, eps, lr);
                }
                last[row] = step;
            }
            assert_close(&m, &pe, &format!("step {step}: matrix"));
            // The rows the batch did not use: untouched, bit for bit.
            for row in (0..4).filter(|r| !ids.contains(r)) {
                assert!(m.get(row).equal(&before.get(row)), "step {step}: row {row} moved");
            }
            // Accumulators of the rows just used are up to date.
            for &row in ids.iter() {
                let r = row as usize * 3..row as usize * 3 + 3;
                assert_close(&lazy.acc_g.get(row), &acc_g[r.clone()], &format!("step {step}: row {row} E[g^2]"));
                assert_close(&lazy.acc_dx.get(row), &acc_dx[r], &format!("step {step}: row {row} E[dx^2]"));
            }
        }
        assert_eq!(values(&m)[..3], [0.0; 3], "the pad row moved");
        // Row 2's step 4 used E[g^2] and E[dx^2] decayed by rho^2: without the
        // decay its update would differ by more than the tolerance.
        let mut p = start[7] as f64;
        let (mut a, mut b) = (0.0, 0.0);
        adadelta_ref(&mut p, 1e-3, &mut a, &mut b, rho, eps, lr);
        adadelta_ref(&mut p, -0.5, &mut a, &mut b, rho, eps, lr);
        assert!((p - pe[7]).abs() > 1e-6 * pe[7].abs() + 1e-9, "the rho^2 decay is not visible in row 2: {p} vs {}", pe[7]);
    }
}
