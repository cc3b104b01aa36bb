use std::path::Path;

use super::*;

fn meta() -> ModelMeta {
    ModelMeta {
        config: Config { dataset: "mr".into(), variant: Variant::Static, fold: Some(3), ..Config::default() },
        classes: vec!["neg".into(), "pos".into()],
        vocab_blake3: "ab".repeat(32),
        tokenizer: Some(TokenizerSpec { cleaner: Cleaner::Kim, lower: true, kim_quirk: false, subword: None }),
        init: "uniform a=0.250".into(),
        best_epoch: 4,
        best_dev_accuracy: 0.75,
        device: Some("cpu".into()),
        threads: Some(2),
        numerics: Some(NumericsRecord { mode: Numerics::Reproducible, isa: "avx2".into(), torch: "2.11.0".into(), mkl: "MKL".into() }),
    }
}

#[test]
fn kims_defaults_and_refusals() {
    let mut c: Config = serde_json::from_value(serde_json::json!({"dataset": "mr", "variant": "multichannel", "pad": "bucket"})).unwrap();
    c.check().unwrap();
    assert_eq!(c.numerics, Numerics::Reproducible);
    assert_eq!((c.widths.clone(), c.maps, c.batch, c.epochs), (vec![3, 4, 5], 100, 50, 25));
    assert_eq!((c.lr(), c.rho, c.eps, c.max_norm, c.rand_a), (1.0, 0.95, 1e-6, 3.0, RandA::Fixed(0.25)));
    let e = serde_json::from_value::<Config>(serde_json::json!({"epoch": 3})).unwrap_err().to_string();
    assert!(e.contains("unknown field `epoch`"), "{e}");
    let mut c: Config = serde_json::from_value(serde_json::json!({"dataset": "mr", "dropout": 1.5})).unwrap();
    assert_eq!(c.check().unwrap_err(), "`dropout` must be in [0, 1)");
    let e = serde_json::from_value::<Config>(serde_json::json!({"variant": "cnn"})).unwrap_err().to_string();
    assert_eq!(e, "must be one of rand, static, non-static, multichannel, found `cnn`");
    assert_eq!(Config::default().check().unwrap_err(), "param `dataset` is required (a name for reports: mr, trec, ...)");
    let mut c: Config = serde_json::from_value(serde_json::json!({"dataset": "mr", "device": "gpu"})).unwrap();
    assert_eq!(c.check().unwrap_err(), "param `device` must be auto, cpu, cuda or cuda:N, found `gpu`");
}

#[test]
fn a_gpu_device_makes_the_numerics_fast() {
    for (device, numerics) in
        [("auto", Numerics::Reproducible), ("cpu", Numerics::Reproducible), ("cuda", Numerics::Fast), ("cuda:1", Numerics::Fast)]
    {
        let mut c: Config = serde_json::from_value(serde_json::json!({"dataset": "mr", "device": device})).unwrap();
        c.check().unwrap();
        assert_eq!(c.numerics, numerics, "{device}");
        let mut e = EvaluateParams { device: device.into(), ..Default::default() };
        e.check().unwrap();
        assert_eq!(e.numerics, numerics, "{device}");
    }
    let e = serde_json::from_value::<Config>(serde_json::json!({"numerics": "exact"})).unwrap_err().to_string();
    assert_eq!(e, "must be one of reproducible, fast, found `exact`");
}

#[test]
fn rand_a_is_a_bound_or_matched_and_the_device_is_never_written() {
    let c: Config = serde_json::from_value(serde_json::json!({"dataset": "x", "rand_a": "matched", "device": "cuda:1"})).unwrap();
    assert_eq!((c.rand_a, c.device.as_str()), (RandA::Matched, "cuda:1"));
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["rand_a"], "matched");
    assert!(v.get("device").is_none(), "{v}");
    let c: Config = serde_json::from_value(serde_json::json!({"dataset": "x", "rand_a": 1})).unwrap();
    assert_eq!(c.rand_a, RandA::Fixed(1.0));
    assert_eq!(serde_json::to_value(c.rand_a).unwrap(), serde_json::json!(1.0));
    let e = serde_json::from_value::<Config>(serde_json::json!({"rand_a": "kim"})).unwrap_err().to_string();
    assert!(e.contains("must be a number or `matched`, found `kim`"), "{e}");
}

#[test]
fn a_renamed_or_retyped_field_is_an_error_naming_the_file_and_the_field() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("metrics.json");
    let m = Metrics::from_confusion(&meta(), vec![vec![3, 1], vec![2, 2]]);
    assert_eq!((m.n, m.accuracy, m.fold, m.dataset.as_str()), (8, 5.0 / 8.0, Some(3), "mr"));
    write_json(&p, &m).unwrap();
    assert_eq!(read_json::<Metrics>(&p).unwrap(), m);
    // `accuracy` renamed: no silent default.
    let text = std::fs::read_to_string(&p).unwrap().replace("\"accuracy\"", "\"acc\"");
    std::fs::write(&p, text).unwrap();
    let e = read_json::<Metrics>(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: missing field `accuracy`", p.display())), "{e}");
    // A nested field of the wrong type: named with its path.
    let mut v = serde_json::to_value(&m).unwrap();
    v["per_class"][1]["support"] = serde_json::json!("many");
    std::fs::write(&p, v.to_string()).unwrap();
    let e = read_json::<Metrics>(&p).unwrap_err().to_string();
    assert!(e.contains("field `per_class[1].support`: invalid type: string \"many\""), "{e}");
}

#[test]
fn model_metadata_from_a_safetensors_header() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("model.safetensors");
    let data = [0u8; 8];
    let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    safetensors::tensor::serialize_to_file([("w", t)], Some(safetensors_meta(&meta())), &p).unwrap();
    assert_eq!(ModelMeta::read(&p).unwrap(), meta());
    // A file whose metadata lacks a field, and one that is no safetensors at all.
    let mut bad = serde_json::to_value(meta()).unwrap();
    bad.as_object_mut().unwrap().remove("classes");
    let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    safetensors::tensor::serialize_to_file([("w", t)], Some(safetensors_meta(&bad)), &p).unwrap();
    let e = ModelMeta::read(&p).unwrap_err().to_string();
    assert_eq!(e, format!("{}: `kimcnn` metadata: missing field `classes` at line 1 column {}", p.display(), bad.to_string().len()));
    std::fs::write(&p, b"not a model").unwrap();
    assert!(ModelMeta::read(&p).unwrap_err().to_string().contains("not a safetensors file"));
}

#[test]
fn a_model_written_before_the_typed_contracts_still_reads() {
    // The metadata of a TREC CNN-rand model that kimcnn wrote before this schema.
    let old = r#"{"best_dev_accuracy":0.8165137614678899,"best_epoch":25,"classes":["ABBR","DESC","ENTY","HUM","LOC","NUM"],"config":{"batch":50,"clip":0.0,"dev_fraction":0.1,"dropout":0.5,"epochs":25,"eps":1e-6,"fold":null,"lr":null,"maps":100,"max_len":null,"max_norm":3.0,"optimizer":"adadelta","pad":"kim","patience":null,"rand_a":null,"rho":0.95,"seed":3435,"variant":"rand","widths":[3,4,5]},"dataset":"trec","init":"uniform a=1.116","tokenizer":{"cleaner":"kim","kim_quirk":false,"lower":false},"vocab_blake3":"702ab4fba64dc973355deafab13803756dd6d0bc91e5467d7f508ff9d38480de"}"#;
    let mut m: ModelMeta = from_json_str(old, Path::new("model.safetensors")).unwrap();
    assert_eq!((m.config.dataset.as_str(), m.config.rand_a, m.device.clone(), m.threads), ("trec", RandA::Matched, None, None));
    assert_eq!((m.config.numerics, m.numerics.clone()), (Numerics::Fast, None), "written before reproducible numerics: fast");
    m.config.check().unwrap();
    assert_eq!(m.tokenizer, Some(TokenizerSpec { cleaner: Cleaner::Kim, lower: false, kim_quirk: false, subword: None }));
}

#[test]
fn history_predictions_and_results_round_trip_and_name_a_bad_column() {
    let d = tempfile::tempdir().unwrap();
    let h = vec![
        EpochRow { epoch: 1, train_loss: 0.7, train_accuracy: 0.5, dev_loss: 0.6, dev_accuracy: 0.55, test_accuracy: 0.5 },
        EpochRow { epoch: 2, train_loss: 0.5, train_accuracy: 0.7, dev_loss: 0.5, dev_accuracy: 0.65, test_accuracy: 0.6 },
    ];
    let p = d.path().join("history.parquet");
    write_history(&p, &h).unwrap();
    assert_eq!(read_history(&p).unwrap(), h);
    let preds = vec![Prediction { id: 7, gold: "pos".into(), predicted: "neg".into(), probabilities: vec![0.6, 0.4] }];
    let q = d.path().join("predictions.parquet");
    write_predictions(&q, &preds).unwrap();
    assert_eq!(read_predictions(&q).unwrap(), preds);
    let m = Metrics::from_confusion(&meta(), vec![vec![1, 0], vec![0, 1]]);
    let mut rows = vec![RunResult::from(&m)];
    rows.push(RunResult { fold: None, ..rows[0].clone() });
    let r = d.path().join("results.parquet");
    write_results(&r, &rows).unwrap();
    assert_eq!(read_results(&r).unwrap(), rows);
    // A history read as results: the first missing column is named.
    let e = read_results(&p).unwrap_err().to_string();
    assert_eq!(e, format!("{}: column `dataset`: missing", p.display()));
    let e = read_history(Path::new("/nonexistent/history.parquet")).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/history.parquet: "), "{e}");
}

#[test]
fn worker_results_are_tagged() {
    let r = serde_json::to_value(worker::WorkerResult::Diverged { epoch: 1, batch: 3, loss: "NaN".into() }).unwrap();
    assert_eq!(r, serde_json::json!({"outcome": "diverged", "epoch": 1, "batch": 3, "loss": "NaN"}));
    let back: worker::WorkerResult = serde_json::from_value(r).unwrap();
    assert_eq!(back, worker::WorkerResult::Diverged { epoch: 1, batch: 3, loss: "NaN".into() });
}
