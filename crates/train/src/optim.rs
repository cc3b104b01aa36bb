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
                    OptimizerKind::Adadelta => {
                        // In place, with as few temporaries as the maths allows:
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
