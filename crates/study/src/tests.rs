use std::collections::BTreeMap;
use std::sync::Mutex;

use kimcnn_schema::TrialStatus;
use kimcnn_stage::{DynKind, StageError};
use serde_json::json;

use crate::journal::{Journal, JournalEvent};
use crate::run::at_budget;
use crate::StudyKind;

fn plan(with: serde_json::Value) -> Result<serde_json::Value, String> {
    DynKind::plan(&StudyKind, &with, &[], &["tokens", "vocab", "embeddings"], None).map(|p| p.params)
}

fn study(extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({"base": {"dataset": "mr", "fold": 0}, "space": {"variant": {"choice": ["rand", "static"]}}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn the_space_is_checked_against_the_train_params_before_anything_runs() {
    let p = plan(study(json!({}))).unwrap();
    assert_eq!(p["trials"], 2, "a grid's budget is its size");
    assert_eq!(p["base"]["epochs"], 25, "the base is a train stage's params, defaults filled in");
    let err = |extra: serde_json::Value| plan(study(extra)).unwrap_err();
    let e = err(json!({"space": {"variant": {"choice": ["rand", "banana"]}}}));
    assert!(e.contains("variant = \"banana\"") && e.contains("variant"), "{e}");
    let e = err(json!({"space": {"dropout": {"uniform": [0.2, 1.5]}}, "search": "random", "trials": 4}));
    assert!(e.contains("dropout = 1.5") && e.contains("`dropout` must be in [0, 1)"), "{e}");
    let e = err(json!({"space": {"maps": {"choice": ["many"]}}}));
    assert!(e.contains("maps"), "{e}");
    let e = err(json!({"space": {"colour": {"choice": [1, 2]}}}));
    assert!(e.contains("unknown param `colour`"), "{e}");
    let e = err(json!({"space": {"lr": {"uniform": [1.0, 0.1]}}, "search": "random", "trials": 3}));
    assert!(e.contains("lr"), "inverted range: {e}");
    let e = err(json!({"space": {"variant": {"choice": []}}}));
    assert!(e.contains("variant"), "empty choice: {e}");
    let e = err(json!({"search": "random", "trials": 0}));
    assert!(e.contains("`trials`"), "a zero budget: {e}");
    let e = err(json!({"metric": "test_accuracy"}));
    assert!(e.contains("dev"), "never select on test: {e}");
    let e = err(json!({"metric": "f1"}));
    assert!(e.contains("never reports `f1`"), "{e}");
    let e = err(json!({"space": {"epochs": {"int": [5, 30]}}}));
    assert!(e.contains("space.epochs"), "{e}");
    let e = err(json!({"space": {}}));
    assert!(e.contains("space"), "{e}");
    let e = err(json!({"parallel": 0}));
    assert!(e.contains("parallel"), "{e}");
    let e = err(json!({"search": "tpe", "trials": 4, "tpe_startup": 0}));
    assert!(e.contains("`tpe_startup` must be at least 1"), "{e}");
    let p = plan(study(json!({"search": "tpe", "trials": 4, "tpe_startup": 2}))).unwrap();
    let p: crate::StudyParams = serde_json::from_value(p).unwrap();
    assert_eq!(p.searcher().n_startup, 2);
    let e = err(json!({"base": {"dataset": "mr", "widths": []}}));
    assert!(e.starts_with("base: "), "{e}");
    let e = err(json!({"stopper": {"asha": {"reduction": 1}}}));
    assert!(e.contains("reduction"), "{e}");
    // ASHA's budget defaults to the largest epoch budget.
    let p =
        plan(study(json!({"space": {"epochs": {"choice": [10, 30, 20]}, "pad": {"choice": ["kim", "bucket"]}}, "stopper": {"asha": {}}})))
            .unwrap();
    assert_eq!(p["stopper"]["asha"]["max"], 30);
    assert_eq!(p["trials"], 2, "epochs are budgets of one run, not points");
}

#[test]
fn a_budget_is_the_prefix_of_a_longer_run_selected_on_dev() {
    let m = |dev: f64, test: f64| BTreeMap::from([("accuracy".to_string(), dev), ("test_accuracy".to_string(), test)]);
    let epochs = BTreeMap::from([(1, m(0.5, 0.4)), (2, m(0.7, 0.6)), (3, m(0.7, 0.65)), (4, m(0.9, 0.8))]);
    let at = at_budget(&epochs, TrialStatus::Completed, 3, "accuracy", true);
    assert_eq!(at.rows.len(), 3);
    assert_eq!(at.selected, Some((3, 0.7)), "ties go to the later epoch; epoch 4 is past the budget");
    let at = at_budget(&epochs, TrialStatus::Stopped, 2, "accuracy", true);
    assert_eq!(at.status, TrialStatus::Completed, "stopped after the budget: that budget's run was whole");
    let at = at_budget(&epochs, TrialStatus::Stopped, 10, "accuracy", true);
    assert_eq!((at.status, at.selected), (TrialStatus::Stopped, Some((4, 0.9))));
    let at = at_budget(&epochs, TrialStatus::Completed, 4, "accuracy", false);
    assert_eq!(at.selected, Some((1, 0.5)), "mode min");
}

#[test]
fn a_journal_survives_a_cut_last_line_and_refuses_a_damaged_one() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("journal.jsonl");
    let notes = Mutex::new(Vec::new());
    let note = |m: String| notes.lock().unwrap().push(m);
    let events = vec![
        JournalEvent::Start { trial: 0, point: BTreeMap::from([("variant".to_string(), json!("rand"))]) },
        JournalEvent::Epoch { trial: 0, epoch: 1, metrics: BTreeMap::from([("accuracy".to_string(), 0.1 + 0.2)]) },
        JournalEvent::End {
            trial: 0,
            status: TrialStatus::Completed,
            error: None,
            key: None,
            cached: false,
            peak_rss_bytes: Some(1 << 30),
        },
    ];
    {
        let (mut j, seen) = Journal::open(&path, &note).unwrap();
        assert!(seen.is_empty());
        for e in &events {
            j.append(e).unwrap();
        }
    }
    assert_eq!(Journal::open(&path, &note).unwrap().1, events, "every event back, floats to the bit");
    let good = std::fs::read(&path).unwrap();

    // Killed mid-line: the cut line is dropped with a note, and later appends follow the good lines.
    let mut cut = good.clone();
    cut.extend_from_slice(br#"{"blake3":"0123","event":{"event":"st"#);
    std::fs::write(&path, &cut).unwrap();
    let (mut j, seen) = Journal::open(&path, &note).unwrap();
    assert_eq!(seen, events);
    assert!(notes.lock().unwrap()[0].contains("line 4: cut short"), "{:?}", notes.lock().unwrap());
    j.append(&events[0]).unwrap();
    drop(j);
    assert_eq!(Journal::open(&path, &note).unwrap().1.len(), 4);

    // A flipped digit in a middle line: refused, naming the line.
    let text = String::from_utf8(good).unwrap().replacen("0.30000000000000004", "0.40000000000000004", 1);
    std::fs::write(&path, format!("{text}{text}")).unwrap();
    let Err(StageError::BadInput(e)) = Journal::open(&path, &note) else { panic!("a damaged line was used") };
    assert!(e.contains("journal.jsonl line 2: its hash does not match"), "{e}");
    std::fs::write(&path, "not json\n{}\n").unwrap();
    let Err(StageError::BadInput(e)) = Journal::open(&path, &note) else { panic!("garbage was used") };
    assert!(e.contains("line 1: not a journal line"), "{e}");
}
