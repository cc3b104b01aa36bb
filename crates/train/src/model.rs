use tch::{Device, Kind, Tensor};

use crate::{Config, PackedBatch, Variant};

/// Kim's network. Plain tensors (leaves that require grad where trained), so
/// the hand-written optimizers and the safetensors writer see them directly.
#[derive(Debug)]
pub struct KimCnn {
    /// The (fine-tuned, unless `static`) embedding, [V, D].
    pub emb: Tensor,
    /// Multichannel only: the frozen copy.
    pub emb_static: Option<Tensor>,
    pub widths: Vec<i64>,
    /// Per width: [maps, channels, width] and [maps].
    pub conv_w: Vec<Tensor>,
    pub conv_b: Vec<Tensor>,
    /// [classes, maps * widths].
    pub out_w: Tensor,
    pub out_b: Tensor,
    pub dropout: f64,
    pub variant: Variant,
}

impl KimCnn {
    /// A fresh network around an initial embedding matrix [V, D]. Call
    /// `tch::manual_seed` first: conv weights are drawn from U[-0.01, 0.01];
    /// the output layer starts at zero (as Kim's code and the reference).
    pub fn new(init: &Tensor, classes: i64, cfg: &Config, device: Device) -> KimCnn {
        // The pad row is zero whatever the init (and its gradient is zero: padding_idx 0).
        let init = init.to_device(device).to_kind(Kind::Float).copy();
        let _ = init.get(0).fill_(0.0);
        let d = init.size()[1];
        let channels = if cfg.variant == Variant::Multichannel { 2 * d } else { d };
        let emb = init.copy().set_requires_grad(cfg.variant != Variant::Static);
        let emb_static = (cfg.variant == Variant::Multichannel).then(|| init.copy());
        let opts = (Kind::Float, device);
        let mut conv_w = Vec::new();
        let mut conv_b = Vec::new();
        for &w in &cfg.widths {
            let mut t = Tensor::empty([cfg.maps, channels, w], opts);
            let _ = t.uniform_(-0.01, 0.01);
            conv_w.push(t.set_requires_grad(true));
            conv_b.push(Tensor::zeros([cfg.maps], opts).set_requires_grad(true));
        }
        let feats = cfg.maps * cfg.widths.len() as i64;
        KimCnn {
            emb,
            emb_static,
            widths: cfg.widths.clone(),
            conv_w,
            conv_b,
            out_w: Tensor::zeros([classes, feats], opts).set_requires_grad(true),
            out_b: Tensor::zeros([classes], opts).set_requires_grad(true),
            dropout: cfg.dropout,
            variant: cfg.variant,
        }
    }

    /// Logits [B, classes] for a packed batch. Dropout is Kim's: a
    /// Bernoulli mask on the pooled features when training (no rescaling),
    /// output weights scaled by 1-p at test time.
    pub fn forward(&self, x: &PackedBatch, train: bool) -> Tensor {
        self.forward_tuned(x, &self.emb, &x.tokens, train)
    }

    /// As [`forward`](Self::forward), with the fine-tuned channel looked up
    /// as `tuned[tuned_ids]`: the whole embedding and `x.tokens`, or only
    /// the rows a batch uses and its tokens renumbered into them (row 0 the
    /// pad row in both).
    pub(crate) fn forward_tuned(&self, x: &PackedBatch, tuned: &Tensor, tuned_ids: &Tensor, train: bool) -> Tensor {
        let mut e = Tensor::embedding(tuned, tuned_ids, 0, false, false);
        if let Some(s) = &self.emb_static {
            e = Tensor::cat(&[Tensor::embedding(s, &x.tokens, 0, false, false), e], 1);
        }
        // [1, channels, T]: one long row, which each width's filters slide over once.
        let e = e.transpose(0, 1).unsqueeze(0);
        let pooled: Vec<Tensor> = self
            .conv_w
            .iter()
            .zip(&self.conv_b)
            .zip(&x.windows)
            .map(|((w, b), cols)| {
                // [T - width + 1, maps], then each sentence's columns: [B, n, maps].
                let maps = e.conv1d(w, Some(b), [1], [0], [1], 1).squeeze_dim(0).transpose(0, 1);
                let (rows, n) = (cols.size()[0], cols.size()[1]);
                // relu(max) = max(relu), with the same gradients: relu on B x maps values only.
                maps.index_select(0, &cols.view([-1])).view([rows, n, -1]).amax([1].as_slice(), false).relu()
            })
            .collect();
        let h = Tensor::cat(&pooled, 1);
        if train {
            let mut keep = h.empty_like();
            let _ = keep.bernoulli_float_(1.0 - self.dropout);
            (h * keep).linear(&self.out_w, Some(&self.out_b))
        } else {
            h.linear(&(&self.out_w * (1.0 - self.dropout)), Some(&self.out_b))
        }
    }

    /// Whether the (first) embedding is trained.
    pub fn tunes_embedding(&self) -> bool {
        self.variant != Variant::Static
    }

    /// The parameters the optimizer updates, the embedding first if
    /// `with_embedding` and it is trained.
    pub fn trainable(&self, with_embedding: bool) -> Vec<Tensor> {
        let mut p = Vec::new();
        if with_embedding && self.tunes_embedding() {
            p.push(self.emb.shallow_clone());
        }
        for (w, b) in self.conv_w.iter().zip(&self.conv_b) {
            p.push(w.shallow_clone());
            p.push(b.shallow_clone());
        }
        p.push(self.out_w.shallow_clone());
        p.push(self.out_b.shallow_clone());
        p
    }

    /// Rescales each output-weight row to l2 norm <= `limit` (Kim's max-norm).
    pub fn apply_max_norm(&self, limit: f64) {
        tch::no_grad(|| {
            let norms = self.out_w.norm_scalaropt_dim(2, [1].as_slice(), true);
            let scale = norms.clamp_max(limit) / (norms + 1e-7);
            let mut w = self.out_w.shallow_clone();
            let _ = w.g_mul_(&scale);
        });
    }

    /// Named tensors, for saving; names are stable.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut v = vec![("embedding".to_string(), self.emb.shallow_clone())];
        if let Some(s) = &self.emb_static {
            v.push(("embedding_static".to_string(), s.shallow_clone()));
        }
        for (i, w) in self.widths.iter().enumerate() {
            v.push((format!("conv{w}.weight"), self.conv_w[i].shallow_clone()));
            v.push((format!("conv{w}.bias"), self.conv_b[i].shallow_clone()));
        }
        v.push(("out.weight".to_string(), self.out_w.shallow_clone()));
        v.push(("out.bias".to_string(), self.out_b.shallow_clone()));
        v
    }

    /// A detached copy (the best epoch's weights).
    pub fn snapshot(&self) -> KimCnn {
        let c = |t: &Tensor| t.detach().copy();
        KimCnn {
            emb: c(&self.emb),
            emb_static: self.emb_static.as_ref().map(c),
            widths: self.widths.clone(),
            conv_w: self.conv_w.iter().map(c).collect(),
            conv_b: self.conv_b.iter().map(c).collect(),
            out_w: c(&self.out_w),
            out_b: c(&self.out_b),
            dropout: self.dropout,
            variant: self.variant,
        }
    }
}
