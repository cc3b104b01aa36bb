//! Tiny deterministic problems: the network must learn them, reproduce
//! itself bit for bit, and refuse what it cannot train on.
use kimcnn_tokenize::TokensTable;
use kimcnn_vocab::Vocab;
use tch::{Device, Kind, Tensor};

use super::*;

/// libtorch's RNG is global to the process and the test harness runs tests
/// on threads: one torch test at a time.
static TORCH: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(crate) fn torch_lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sentences whose class is whether they hold `good` or `bad`, amid filler.
fn table(n: usize) -> TokensTable {
    let filler = ["the", "film", "was", "a", "plot", "of", "and", "it"];
    let mut t = TokensTable::default();
    for i in 0..n {
        let pos = i % 2 == 0;
        let mut toks: Vec<String> = (0..(3 + i % 7)).map(|j| filler[(i * 3 + j) % filler.len()].to_string()).collect();
        toks.insert(i % toks.len(), if pos { "good" } else { "bad" }.to_string());
        t.id.push(i as u32);
        t.label.push(if pos { "pos" } else { "neg" }.to_string());
        t.tokens.push(toks);
        t.split.push(
            if i % 10 == 9 {
                "test"
            } else if i % 10 == 8 {
                "dev"
            } else {
                "train"
            }
            .to_string(),
        );
        t.fold.push(-1);
        t.origin.push(format!("x:{i}"));
    }
    t
}

fn vocab(t: &TokensTable) -> Vocab {
    let p = kimcnn_vocab::Params {
        from: kimcnn_vocab::Source::All,
        exclude_fold: None,
        min_count: 1,
        max_size: None,
        order: kimcnn_vocab::Order::FirstSeen,
    };
    Vocab::build(t, &p).unwrap().0
}

fn init(v: &Vocab) -> Tensor {
    tch::manual_seed(0);
    Tensor::randn([v.len() as i64, 8], (Kind::Float, Device::Cpu)) * 0.5
}

fn cfg(variant: Variant) -> Config {
    Config { dataset: "toy".into(), variant, maps: 8, epochs: 6, batch: 10, seed: 1, ..Config::default() }
}

#[test]
fn every_variant_learns_a_toy_problem_and_selects_on_dev() {
    let _g = torch_lock();
    tch::set_num_threads(1);
    let t = table(400);
    let v = vocab(&t);
    let data = Dataset::new(&t, &v, &cfg(Variant::Rand)).unwrap();
    assert_eq!((data.train.len(), data.dev.len(), data.test.len()), (320, 40, 40));
    for variant in [Variant::Rand, Variant::Static, Variant::NonStatic, Variant::Multichannel] {
        for pad in [Pad::Kim, Pad::Bucket] {
            let mut c = cfg(variant);
            c.pad = pad;
            let (mut seen, mut batches) = (0, Vec::new());
            let out = train(&data, &init(&v), 0.5, &c, Device::Cpu, None, &mut |e| match e {
                TrainEvent::Epoch(..) => seen += 1,
                TrainEvent::Batch { epoch, batch, batches: n } => batches.push((epoch, batch, n)),
                _ => {}
            })
            .unwrap();
            assert_eq!(seen, 6);
            // Every batch of every epoch, in order, each knowing how many there are.
            let n = batches[0].2;
            assert!(n > 1 && batches.iter().all(|b| b.2 == n), "{batches:?}");
            assert_eq!(batches.len(), 6 * n);
            assert!(batches.iter().enumerate().all(|(i, b)| (b.0, b.1) == (i / n + 1, i % n + 1)), "{batches:?}");
            let best = out.history.iter().map(|e| e.dev_accuracy).fold(0.0, f64::max);
            assert_eq!(out.best_dev_accuracy, best);
            assert!(out.history[out.best_epoch - 1].dev_accuracy == best);
            let (_, confusion) = evaluate(&out.model, &data, &data.test, &c, Device::Cpu);
            let correct: u64 = (0..2).map(|k| confusion[k][k]).sum();
            let accuracy = correct as f64 / data.test.len() as f64;
            assert!(accuracy >= 0.9, "{variant:?} {pad:?}: test accuracy {accuracy}");
            assert!(out.model.emb.get(0).abs().sum(Kind::Float).double_value(&[]) == 0.0, "pad row stays zero");
        }
    }
}

#[test]
fn static_embeddings_do_not_move_and_max_norm_holds() {
    let _g = torch_lock();
    tch::set_num_threads(1);
    let t = table(200);
    let v = vocab(&t);
    let data = Dataset::new(&t, &v, &cfg(Variant::Static)).unwrap();
    let i = init(&v);
    let _ = i.get(0).fill_(0.0); // the network zeroes the pad row of any init
    let out = train(&data, &i, 0.5, &cfg(Variant::Static), Device::Cpu, None, &mut |_| {}).unwrap();
    assert!(out.model.emb.equal(&i));
    let out = train(&data, &i, 0.5, &cfg(Variant::Multichannel), Device::Cpu, None, &mut |_| {}).unwrap();
    assert!(out.model.emb_static.as_ref().unwrap().equal(&i), "the static channel is frozen");
    assert!(!out.model.emb.equal(&i), "the other channel is fine-tuned");
    let norms = out.model.out_w.norm_scalaropt_dim(2, [1].as_slice(), false);
    assert!(norms.max().double_value(&[]) <= 3.0 + 1e-4);
}

#[test]
fn same_seed_same_bytes_and_a_round_trip() {
    let _g = torch_lock();
    tch::set_num_threads(1);
    let t = table(200);
    let v = vocab(&t);
    let c = cfg(Variant::NonStatic);
    let data = Dataset::new(&t, &v, &c).unwrap();
    let d = tempfile::tempdir().unwrap();
    let meta = kimcnn_schema::ModelMeta {
        config: c.clone(),
        classes: data.classes.clone(),
        vocab_blake3: "0".repeat(64),
        tokenizer: None,
        init: "test".into(),
        best_epoch: 1,
        best_dev_accuracy: 0.5,
        device: Some("cpu".into()),
        threads: Some(1),
        numerics: Some(kimcnn_schema::NumericsRecord {
            mode: kimcnn_schema::Numerics::Reproducible,
            isa: "avx2".into(),
            torch: "test".into(),
            mkl: "test".into(),
        }),
    };
    let mut files = Vec::new();
    for (k, seed) in [(0, 1), (1, 1), (2, 2)] {
        let mut c = c.clone();
        c.seed = seed;
        let out = train(&data, &init(&v), 0.5, &c, Device::Cpu, None, &mut |_| {}).unwrap();
        let p = d.path().join(format!("m{k}.safetensors"));
        save_model(&p, &out.model, &meta).unwrap();
        files.push(std::fs::read(&p).unwrap());
    }
    assert!(files[0] == files[1], "same seed, same threads, same device: same bytes");
    assert!(files[0] != files[2]);
    let back = load_model(&d.path().join("m0.safetensors"), Device::Cpu).unwrap();
    assert_eq!(back.meta, meta);
    let x = data.batch(&data.test, Pad::Kim, &c.widths, Device::Cpu);
    let out = train(&data, &init(&v), 0.5, &c, Device::Cpu, None, &mut |_| {}).unwrap();
    assert!(back.model.forward(&x, false).allclose(&out.model.forward(&x, false), 1e-6, 1e-6, false));
}

#[test]
fn nan_loss_stops_naming_epoch_and_batch() {
    let _g = torch_lock();
    let t = table(100);
    let v = vocab(&t);
    let data = Dataset::new(&t, &v, &cfg(Variant::Static)).unwrap();
    let bad = init(&v).fill_(f64::NAN);
    let e = train(&data, &bad, 0.5, &cfg(Variant::Static), Device::Cpu, None, &mut |_| {}).unwrap_err().to_string();
    assert!(e.starts_with("epoch 1 batch 1: the loss is NaN"), "{e}");
}

#[test]
fn refusals_and_truncation() {
    let mut t = table(100);
    t.label[9] = "meh".into(); // a test row with a class train never saw
    let v = vocab(&t);
    let e = Dataset::new(&t, &v, &cfg(Variant::Rand)).unwrap_err().to_string();
    assert_eq!(e, "class `meh` appears in test (x:9) but not in train (classes: neg, pos)");
    let t = table(100);
    let mut c = cfg(Variant::Rand);
    c.max_len = Some(4);
    let d = Dataset::new(&t, &v, &c).unwrap();
    assert_eq!(d.max_len, 4);
    assert!(d.truncated > 0);
    c.fold = Some(0);
    assert!(Dataset::new(&t, &v, &c).unwrap_err().to_string().contains("given splits, not folds"));
    let mut t2 = table(100);
    t2.tokens[3].clear();
    let d = Dataset::new(&t2, &v, &cfg(Variant::Rand)).unwrap();
    assert_eq!(d.empty, 1);
}

/// `table(n)` with a dev split that holds both classes (rows 7 and 8 of
/// each ten; `table`'s own dev is all `pos`) and about a third of the
/// train labels flipped (a quarter by tens, XOR every seventh row), so that
/// dev accuracy moves from epoch to epoch.
fn noisy_table(n: usize) -> TokensTable {
    let mut t = table(n);
    for i in 0..n {
        if i % 10 == 7 {
            t.split[i] = "dev".into();
        }
        if t.split[i] == "train" && (((i / 10) % 4 == 0) != (i % 7 == 0)) {
            t.label[i] = if t.label[i] == "pos" { "neg" } else { "pos" }.into();
        }
    }
    t
}

/// The model `train` returns is a snapshot of the best-dev epoch, and a tie
/// in dev accuracy goes to the later epoch (Kim's `>=`): re-scored on dev it
/// gives that epoch's history row to the bit, not the last epoch's. Every
/// run must select so; the runs must include one where the best accuracy is
/// tied (with a later tied epoch winning) and is not the last epoch's (with
/// these seeds: static and non-static, seed 4, dev 1.0 at epochs 6-9 and
/// 6-8, then lower).
#[test]
fn selection_returns_the_last_of_tied_best_dev_epochs() {
    let _g = torch_lock();
    tch::set_num_threads(1);
    let t = noisy_table(200);
    let v = vocab(&t);
    let mut exercised = Vec::new();
    for variant in [Variant::Static, Variant::NonStatic] {
        for seed in [4, 1, 2, 3] {
            let c = Config { epochs: 10, seed, ..cfg(variant) };
            let data = Dataset::new(&t, &v, &c).unwrap();
            assert_eq!(data.dev.len(), 40);
            let out = train(&data, &init(&v), 0.5, &c, Device::Cpu, None, &mut |_| {}).unwrap();
            let h = &out.history;
            let at = format!("{variant:?} seed {seed}: {:?}", h.iter().map(|e| e.dev_accuracy).collect::<Vec<_>>());
            assert_eq!(h.len(), 10, "{at}");
            assert!(h.iter().enumerate().all(|(k, e)| e.epoch == k + 1), "{at}");
            let best = h.iter().map(|e| e.dev_accuracy).fold(f64::NEG_INFINITY, f64::max);
            let tied: Vec<usize> = h.iter().filter(|e| e.dev_accuracy == best).map(|e| e.epoch).collect();
            let last_best = *tied.last().unwrap();
            assert_eq!(out.best_epoch, last_best, "{at}: ties go to the later epoch");
            assert_eq!(out.best_dev_accuracy, best, "{at}");
            // The same weights give the same numbers, to the bit.
            let row = &h[out.best_epoch - 1];
            let rescored = crate::train::loss_and_accuracy(&out.model, &data, &data.dev, &c, Device::Cpu);
            assert_eq!(rescored, (row.dev_loss, row.dev_accuracy), "{at}: not epoch {}'s model", out.best_epoch);
            let last = h.last().unwrap();
            if out.best_epoch < last.epoch {
                assert_ne!(rescored, (last.dev_loss, last.dev_accuracy), "{at}: the last epoch's model");
            }
            if tied.len() > 1 && out.best_epoch < last.epoch {
                exercised.push((variant, seed, tied));
            }
        }
    }
    // Both the tie rule and the snapshot (best before the last epoch) were put to the test.
    assert!(exercised.iter().any(|(v, s, _)| (*v, *s) == (Variant::Static, 4)), "{exercised:?}");
    assert!(exercised.iter().any(|(v, s, _)| (*v, *s) == (Variant::NonStatic, 4)), "{exercised:?}");
}

/// The same weights to the bit, history and selected epoch.
fn same(a: &TrainOutcome, b: &TrainOutcome) -> bool {
    let (x, y) = (a.model.named(), b.model.named());
    a.history == b.history
        && a.best_epoch == b.best_epoch
        && x.len() == y.len()
        && x.iter().zip(&y).all(|((n, s), (m, t))| n == m && s.equal(t))
}

/// A run killed after any epoch and started again from its checkpoint ends
/// with the bytes of a run never stopped: every variant, Adadelta's lazy
/// embedding update and Adam, early stopping by patience (resumed before,
/// at and after the epoch patience stops at, with the best epoch behind the
/// resume point). A checkpoint it cannot use (damaged, another config,
/// another context) is reported and training starts over.
#[test]
fn a_run_resumed_from_its_checkpoint_ends_as_one_never_stopped() {
    let _g = torch_lock();
    tch::set_num_threads(1);
    let d = tempfile::tempdir().unwrap();
    let t = noisy_table(200);
    let v = vocab(&t);
    let path = |name: &str| d.path().join(name);
    fn at(path: &std::path::Path) -> Checkpointing<'_> {
        Checkpointing { path, context: "cpu, 1 thread".to_string() }
    }
    // (variant, optimizer, patience, epochs, seed)
    let cases = [
        (Variant::Rand, OptimizerKind::Adadelta, None, 5, 3),
        (Variant::Static, OptimizerKind::Adadelta, None, 5, 3),
        (Variant::NonStatic, OptimizerKind::Adadelta, None, 5, 3),
        (Variant::Multichannel, OptimizerKind::Adadelta, None, 5, 3),
        (Variant::NonStatic, OptimizerKind::Adam, None, 5, 3),
        // Dev 1.0 at epochs 5-8, 0.975 at 9 and 10: the best (8) is behind a resume after 9.
        (Variant::NonStatic, OptimizerKind::Adadelta, None, 10, 2),
        // Dev 0.85 at epoch 5 (then the best), 0.525 at 6: patience 2 runs on past 6.
        (Variant::Static, OptimizerKind::Adadelta, Some(2), 8, 5),
        // Dev 0.85 at epoch 5, 0.525 at 6: patience 1 stops there.
        (Variant::Static, OptimizerKind::Adadelta, Some(1), 8, 5),
    ];
    let mut best_behind = false;
    for (variant, optimizer, patience, epochs, seed) in cases {
        let c = Config { epochs, seed, optimizer, patience, ..cfg(variant) };
        let at_what = format!("{variant:?} {optimizer:?} patience {patience:?}");
        let data = Dataset::new(&t, &v, &c).unwrap();
        let whole = train(&data, &init(&v), 0.5, &c, Device::Cpu, None, &mut |_| {}).unwrap();
        if patience == Some(1) {
            assert_eq!(whole.history.len(), 6, "{at_what}: stopped by patience");
        }
        // A copy of the checkpoint after every epoch, as a kill there would leave it.
        let ck_path = path("ck.safetensors");
        let ck = at(&ck_path);
        let _ = std::fs::remove_file(ck.path);
        let mut on = |e: TrainEvent| {
            if let TrainEvent::Epoch(row, _) = e {
                std::fs::copy(ck.path, d.path().join(format!("after{}.safetensors", row.epoch))).unwrap();
            }
        };
        let checkpointed = train(&data, &init(&v), 0.5, &c, Device::Cpu, Some(&ck), &mut on).unwrap();
        assert!(same(&checkpointed, &whole), "{at_what}: saving checkpoints changes nothing");
        for k in 1..=whole.history.len() {
            let kept_path = path(&format!("after{k}.safetensors"));
            let kept = at(&kept_path);
            let mut seen = Vec::new();
            let resumed = train(&data, &init(&v), 0.5, &c, Device::Cpu, Some(&kept), &mut |e| match e {
                TrainEvent::Resumed { epoch } => seen.push(format!("resumed {epoch}")),
                TrainEvent::Epoch(row, _) => seen.push(row.epoch.to_string()),
                TrainEvent::Unusable(m) => panic!("{at_what}: {m}"),
                TrainEvent::Batch { .. } => {}
            })
            .unwrap();
            let epochs: Vec<String> = whole.history.iter().map(|r| r.epoch.to_string()).collect();
            assert_eq!(seen, [vec![format!("resumed {k}")], epochs].concat(), "{at_what}");
            assert!(same(&resumed, &whole), "{at_what}: resumed after epoch {k}, not the same model or history");
            best_behind |= whole.best_epoch < k && k < whole.history.len();
        }
    }
    assert!(best_behind, "some run resumed with its best epoch behind it (the best weights came from the checkpoint)");

    // Unusable checkpoints: reported, and the run is a fresh one.
    let c = Config { epochs: 3, ..cfg(Variant::NonStatic) };
    let data = Dataset::new(&t, &v, &c).unwrap();
    let whole = train(&data, &init(&v), 0.5, &c, Device::Cpu, None, &mut |_| {}).unwrap();
    let (other_path, mine_path, half_path) = (path("other.safetensors"), path("mine.safetensors"), path("half.safetensors"));
    let other = at(&other_path);
    train(&data, &init(&v), 0.5, &Config { dropout: 0.4, ..c.clone() }, Device::Cpu, Some(&other), &mut |_| {}).unwrap();
    let mine = at(&mine_path);
    train(&data, &init(&v), 0.5, &c, Device::Cpu, Some(&mine), &mut |_| {}).unwrap();
    let mut b = std::fs::read(mine.path).unwrap();
    b.truncate(b.len() / 2);
    std::fs::write(&half_path, b).unwrap();
    let half = at(&half_path);
    let elsewhere = Checkpointing { path: mine.path, context: "cuda:0, 1 thread".into() };
    for (ck, why) in [
        (&other, "another training config"),
        (&half, "not a checkpoint (damaged or cut short?)"),
        (&elsewhere, "written under cpu, 1 thread"),
    ] {
        let mut unusable = Vec::new();
        let out = train(&data, &init(&v), 0.5, &c, Device::Cpu, Some(ck), &mut |e| {
            if let TrainEvent::Unusable(m) = e {
                unusable.push(m)
            }
        })
        .unwrap();
        assert!(unusable.len() == 1 && unusable[0].contains(why), "{why}: {unusable:?}");
        assert!(same(&out, &whole), "{why}: not a fresh run");
    }
}

/// Kim's network as the reference computes it, on his layout ([B, L] ids,
/// every row padded alike): convolution, relu, max over every window.
fn kim_forward(model: &KimCnn, x: &Tensor, tuned: &Tensor, tuned_ids: &Tensor, train: bool) -> Tensor {
    let mut e = Tensor::embedding(tuned, tuned_ids, 0, false, false);
    if let Some(s) = &model.emb_static {
        e = Tensor::cat(&[Tensor::embedding(s, x, 0, false, false), e], 2);
    }
    let e = e.transpose(1, 2);
    let pooled: Vec<Tensor> = model
        .conv_w
        .iter()
        .zip(&model.conv_b)
        .map(|(w, b)| e.conv1d(w, Some(b), [1], [0], [1], 1).relu().amax([2].as_slice(), false))
        .collect();
    let h = Tensor::cat(&pooled, 1);
    if train {
        let mut keep = h.empty_like();
        let _ = keep.bernoulli_float_(1.0 - model.dropout);
        (h * keep).linear(&model.out_w, Some(&model.out_b))
    } else {
        h.linear(&(&model.out_w * (1.0 - model.dropout)), Some(&model.out_b))
    }
}

/// A packed batch computes Kim's full layout: the same logits and the
/// same gradients, for every variant and both layouts (the data set's
/// longest, and the batch's own), through the whole embedding and through
/// the rows a batch gathers (what Adadelta trains).
#[test]
fn packed_batches_compute_what_kims_layout_computes() {
    let _g = torch_lock();
    let (vocab, dim) = (60i64, 6i64);
    // Lengths 0..=30, with repeats, in no order; ids past the pad and <unk>.
    let ids: Vec<Vec<i64>> =
        (0..41usize).map(|i| (0..(i * 17 % 31)).map(|j| 2 + ((i * 7 + j * 3) as i64 % (vocab - 2))).collect()).collect();
    let ids: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
    let longest = ids.iter().map(|r| r.len()).max().unwrap();
    for variant in [Variant::Rand, Variant::Static, Variant::NonStatic, Variant::Multichannel] {
        let c = Config { variant, maps: 5, widths: vec![2, 3, 5], dropout: 0.5, ..Config::default() };
        tch::manual_seed(3);
        // Positive embeddings, so the widest filter's first two maps (negative weights,
        // bias 0.5) peak on the windows of pads alone: relu(bias), which only a window
        // of pads gives. The other maps: weights and biases of both signs.
        let model = KimCnn::new(&Tensor::randn([vocab, dim], (Kind::Float, Device::Cpu)).abs(), 3, &c, Device::Cpu);
        tch::no_grad(|| {
            let opts = (Kind::Float, Device::Cpu);
            for (w, b) in model.conv_w.iter().zip(&model.conv_b) {
                w.shallow_clone().copy_(&(Tensor::randn(w.size(), opts) * 0.3));
                b.shallow_clone().copy_(&(Tensor::randn([c.maps], opts) * 0.3));
            }
            let (w, b) = (model.conv_w.last().unwrap(), model.conv_b.last().unwrap());
            w.narrow(0, 0, 2).copy_(&-Tensor::randn(w.narrow(0, 0, 2).size(), opts).abs());
            let _ = b.narrow(0, 0, 2).fill_(0.5);
            model.out_w.shallow_clone().copy_(&Tensor::randn(model.out_w.size(), opts));
        });
        let params = model.trainable(true);
        let y = Tensor::from_slice(&(0..ids.len() as i64).map(|i| i % 3).collect::<Vec<_>>());
        for layout in [longest + 9, longest] {
            let full = crate::data::full_layout(&ids, layout, &c.widths);
            let packed = PackedBatch::new(&ids, layout, &c.widths, Device::Cpu);
            let what = format!("{variant:?}, layout {layout}");
            let a = kim_forward(&model, &full, &model.emb, &full, false);
            let b = model.forward(&packed, false);
            assert!(a.allclose(&b, 1e-5, 1e-5, false), "{what}: logits differ");
            // Training mode: the same dropout mask (drawn in row order), the same gradients.
            let grads = |logits: &dyn Fn() -> Tensor| {
                tch::manual_seed(11);
                let loss = logits().cross_entropy_for_logits(&y);
                let wrt: Vec<&Tensor> = params.iter().collect();
                (loss.double_value(&[]), Tensor::run_backward(&[&loss], &wrt, false, false))
            };
            let (la, ga) = grads(&|| kim_forward(&model, &full, &model.emb, &full, true));
            let (lb, gb) = grads(&|| model.forward(&packed, true));
            assert!((la - lb).abs() < 1e-5, "{what}: loss {la} vs {lb}");
            for (i, (ga, gb)) in ga.iter().zip(&gb).enumerate() {
                assert!(ga.allclose(gb, 1e-5, 1e-5, false), "{what}: gradient {i} differs by {}", (ga - gb).abs().max().double_value(&[]));
            }
            if model.tunes_embedding() {
                let rows = |x: &Tensor, logits: &dyn Fn(&crate::optim::BatchRows) -> Tensor| {
                    let r = crate::optim::BatchRows::gather(&model.emb, x);
                    tch::manual_seed(11);
                    let loss = logits(&r).cross_entropy_for_logits(&y);
                    (r.ids.shallow_clone(), Tensor::run_backward(&[&loss], &[&r.rows], false, false).remove(0))
                };
                let (ia, ra) = rows(&full, &|r| kim_forward(&model, &full, &r.rows, &r.local, true));
                let (ib, rb) = rows(&packed.tokens, &|r| model.forward_tuned(&packed, &r.rows, &r.local, true));
                assert!(ia.equal(&ib), "{what}: gathered rows differ");
                assert!(ra.allclose(&rb, 1e-5, 1e-5, false), "{what}: gathered rows' gradient differs");
            }
        }
    }
}
