use std::time::Instant;

use serde_json::json;

use crate::sched::{Scheduler, Stopper};
use crate::search::{Algorithm, Observation, Searcher};
use crate::space::{Point, Space};

fn space(v: serde_json::Value) -> Space {
    serde_json::from_value(v).expect("space parses")
}

fn mixed() -> Space {
    space(
        json!({"variant": {"choice": ["rand", "static", "nonstatic"]}, "lr": {"loguniform": [0.01, 1.0]}, "maps": {"int": [50, 150]}, "dropout": {"uniform": [0.0, 0.9]}}),
    )
}

/// Runs a study sequentially (`lag` 0) or with the `lag` latest trials still pending at each proposal.
fn study(searcher: &Searcher, budget: usize, lag: usize, f: impl Fn(&Point) -> Option<f64>) -> Vec<Observation> {
    let mut trials: Vec<Observation> = Vec::new();
    for i in 0..budget {
        let n_done = i.saturating_sub(lag);
        let pending: Vec<Point> = trials[n_done..].iter().map(|o| o.point.clone()).collect();
        let point = searcher.propose(i, &trials[..n_done], &pending).expect("a point");
        let value = f(&point);
        trials.push(Observation { point, value });
    }
    trials
}

#[test]
fn proposals_are_deterministic_and_differ_by_index() {
    for algorithm in [Algorithm::Random, Algorithm::Tpe] {
        let s = Searcher::new(algorithm, mixed(), 7, false);
        let done = study(&s, 15, 0, |p| p["dropout"].as_f64());
        for index in [0, 3, 15] {
            let a = s.propose(index, &done, &[]).unwrap();
            assert_eq!(a, s.propose(index, &done, &[]).unwrap());
            assert_ne!(a, s.propose(index + 1, &done, &[]).unwrap(), "{algorithm:?} index {index}");
            assert_ne!(a, Searcher { seed: 8, ..s.clone() }.propose(index, &done, &[]).unwrap());
        }
        // A whole study replays identically.
        assert_eq!(done, study(&s, 15, 0, |p| p["dropout"].as_f64()));
    }
}

#[test]
fn grid_enumerates_then_ends() {
    let sp = space(json!({"a": {"choice": [true, false]}, "b": {"int": [-1, 1]}}));
    let s = Searcher::new(Algorithm::Grid, sp.clone(), 99, true);
    s.check().unwrap();
    let got: Vec<Point> = (0..6).map(|i| s.propose(i, &[], &[]).unwrap()).collect();
    assert_eq!(got, sp.grid().unwrap());
    assert_eq!(got[1], [("a".into(), json!(true)), ("b".into(), json!(0))].into());
    assert_eq!(s.propose(6, &[], &[]), None);
    assert_eq!(s.propose(1000, &[], &[]), None);
    // The seed does not shuffle.
    assert_eq!(Searcher { seed: 1, ..s.clone() }.propose(4, &[], &[]), s.propose(4, &[], &[]));
    // Not griddable: check says why and propose gives nothing.
    let bad = Searcher::new(Algorithm::Grid, mixed(), 0, false);
    assert_eq!(bad.check().unwrap_err(), "param `space.dropout`: grid search needs choice or int values, got uniform; use random or tpe");
    assert_eq!(bad.propose(0, &[], &[]), None);
    // A bad space gives no point with any algorithm.
    let empty = Searcher::new(Algorithm::Random, space(json!({"x": {"choice": []}})), 0, false);
    assert!(empty.check().is_err());
    assert_eq!(empty.propose(0, &[], &[]), None);
}

#[test]
fn random_draws_stay_in_range() {
    for algorithm in [Algorithm::Random, Algorithm::Tpe] {
        let s = Searcher::new(algorithm, mixed(), 3, false);
        let trials = study(&s, if algorithm == Algorithm::Tpe { 60 } else { 500 }, 2, |p| {
            Some((p["lr"].as_f64()?.ln() + 2.0).powi(2) + p["dropout"].as_f64()?)
        });
        let mut variants = std::collections::BTreeSet::new();
        for o in &trials {
            let p = &o.point;
            assert_eq!(p.len(), 4);
            let maps = p["maps"].as_i64().expect("maps is an integer");
            assert!((50..=150).contains(&maps));
            let lr = p["lr"].as_f64().unwrap();
            assert!(p["lr"].is_f64() && (0.01..=1.0).contains(&lr), "lr {lr}");
            let d = p["dropout"].as_f64().unwrap();
            assert!(p["dropout"].is_f64() && (0.0..=0.9).contains(&d), "dropout {d}");
            variants.insert(p["variant"].as_str().unwrap().to_string());
        }
        assert_eq!(variants.len(), 3, "{algorithm:?}");
    }
    // Loguniform draws spread over the decades: about half below 0.1.
    let s = Searcher::new(Algorithm::Random, mixed(), 11, false);
    let below = (0..1000).filter(|&i| s.propose(i, &[], &[]).unwrap()["lr"].as_f64().unwrap() < 0.1).count();
    assert!((400..600).contains(&below), "{below} of 1000 below 0.1");
}

#[test]
fn tpe_uses_pending_failed_and_maximize() {
    let s = Searcher::new(Algorithm::Tpe, mixed(), 5, false);
    let done = study(&s, 20, 0, |p| Some((p["dropout"].as_f64()? - 0.3).abs()));
    let pending: Vec<Point> = (20..24).map(|i| Searcher::new(Algorithm::Random, mixed(), 9, false).propose(i, &[], &[]).unwrap()).collect();
    let without = s.propose(20, &done, &[]).unwrap();
    let with = s.propose(20, &done, &pending).unwrap();
    assert_ne!(with, without);
    // Maximising -f proposes exactly what minimising f does.
    let negated: Vec<Observation> = done.iter().map(|o| Observation { point: o.point.clone(), value: o.value.map(|v| -v) }).collect();
    assert_eq!(Searcher { maximize: true, ..s.clone() }.propose(20, &negated, &pending).unwrap(), with);
    // Failed trials count as the worst: marking the best trials failed changes the proposal.
    let mut failed = done.clone();
    let best = (0..failed.len()).min_by(|&a, &b| failed[a].value.unwrap().total_cmp(&failed[b].value.unwrap())).unwrap();
    failed[best].value = None;
    assert_ne!(s.propose(20, &failed, &[]).unwrap(), without);
    // All failed: nothing to model, still a point (a random one).
    let all_failed: Vec<Observation> = done.iter().map(|o| Observation { point: o.point.clone(), value: None }).collect();
    assert_eq!(s.propose(20, &all_failed, &pending).unwrap().len(), 4);
    // Observations from another space (wrong types, missing params) are ignored, not fatal.
    let odd = vec![Observation { point: [("lr".into(), json!("high")), ("maps".into(), json!(1.5))].into(), value: Some(0.0) }];
    assert_eq!(s.propose(20, &[odd, done].concat(), &[]).unwrap().len(), 4);
}

/// A 4-d objective with a known optimum (0): two continuous dims, one loguniform and one choice.
fn objective(p: &Point) -> Option<f64> {
    let x = p["x"].as_f64()?;
    let y = p["y"].as_f64()?;
    let lr = p["lr"].as_f64()?;
    let act = match p["act"].as_str()? {
        "relu" => 0.3,
        "tanh" => 0.0,
        "sigmoid" => 0.6,
        "identity" => 1.0,
        _ => 0.4,
    };
    Some((x - 1.2).powi(2) / 25.0 + (y + 2.1).powi(2) / 25.0 + (lr.log10() + 2.7).powi(2) / 6.25 + act)
}

fn benchmark_space() -> Space {
    space(json!({
        "x": {"uniform": [-5, 5]},
        "y": {"uniform": [-5, 5]},
        "lr": {"loguniform": [1e-5, 1]},
        "act": {"choice": ["relu", "tanh", "sigmoid", "identity", "elu"]},
    }))
}

fn regret(trials: &[Observation]) -> f64 {
    trials.iter().filter_map(|o| o.value).fold(f64::INFINITY, f64::min)
}

#[test]
fn tpe_beats_random() {
    let (seeds, budget) = (30u64, 40);
    let mut rows = Vec::new();
    for seed in 0..seeds {
        let random = regret(&study(&Searcher::new(Algorithm::Random, benchmark_space(), seed, false), budget, 0, objective));
        let tpe = regret(&study(&Searcher::new(Algorithm::Tpe, benchmark_space(), seed, false), budget, 0, objective));
        let tpe_lag = regret(&study(&Searcher::new(Algorithm::Tpe, benchmark_space(), seed, false), budget, 4, objective));
        rows.push((random, tpe, tpe_lag));
    }
    let n = seeds as f64;
    let mean = |f: fn(&(f64, f64, f64)) -> f64| rows.iter().map(f).sum::<f64>() / n;
    let (m_random, m_tpe, m_lag) = (mean(|r| r.0), mean(|r| r.1), mean(|r| r.2));
    let wins = rows.iter().filter(|r| r.1 < r.0).count();
    let wins_lag = rows.iter().filter(|r| r.2 < r.0).count();
    println!("TPE vs random, {seeds} seeds, {budget} trials, minimise (optimum 0):");
    println!("  mean best regret: random {m_random:.4}, TPE {m_tpe:.4}, TPE with 4 pending (constant liar) {m_lag:.4}");
    println!("  TPE better than random on {wins}/{seeds} seeds; TPE with 4 pending on {wins_lag}/{seeds}");
    assert!(m_tpe < m_random, "TPE mean regret {m_tpe} not below random's {m_random}");
    assert!(wins as f64 >= 0.7 * n, "TPE won only {wins}/{seeds}");
    assert!(m_lag < m_random, "TPE (lag 4) mean regret {m_lag} not below random's {m_random}");
}

/// Tuner overhead: propose + report for 1000 trials of a trivial objective (3 epoch reports each to ASHA).
/// Run with `cargo test -p kimcnn-tune --release -- --ignored --nocapture overhead`.
#[test]
#[ignore]
fn overhead() {
    for algorithm in [Algorithm::Random, Algorithm::Tpe] {
        let s = Searcher::new(algorithm, benchmark_space(), 1, false);
        let mut sched = Scheduler::new(Stopper::Asha { grace: 1, reduction: 3, max: 10 }, false);
        let mut done: Vec<Observation> = Vec::new();
        let start = Instant::now();
        let mut last100 = start;
        for i in 0..1000 {
            if i == 900 {
                last100 = Instant::now();
            }
            let point = s.propose(i, &done, &[]).unwrap();
            let value = objective(&point).unwrap();
            for epoch in 1..=3 {
                sched.report(i, epoch, value + 1.0 / epoch as f64);
            }
            done.push(Observation { point, value: Some(value) });
        }
        let total = start.elapsed().as_secs_f64() * 1e6;
        let tail = last100.elapsed().as_secs_f64() * 1e6;
        println!(
            "{algorithm:?}: {:.1} us per trial over 1000 trials (ask + tell); trials 900-999: {:.1} us each; best {:.4}",
            total / 1000.0,
            tail / 100.0,
            regret(&done)
        );
    }
}
