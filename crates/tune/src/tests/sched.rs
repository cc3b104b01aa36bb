use serde_json::json;

use crate::sched::{Decision, Scheduler, Stopper};

use Decision::{Continue, Stop};

fn asha(grace: usize, reduction: usize, max: usize) -> Stopper {
    Stopper::Asha { grace, reduction, max }
}

#[test]
fn stopper_serde_defaults_and_check() {
    assert_eq!(serde_json::from_value::<Stopper>(json!("none")).unwrap(), Stopper::None);
    assert_eq!(Stopper::default(), Stopper::None);
    assert_eq!(serde_json::from_value::<Stopper>(json!({"asha": {"grace": 2, "reduction": 3, "max": 30}})).unwrap(), asha(2, 3, 30));
    assert_eq!(serde_json::from_value::<Stopper>(json!({"asha": {}})).unwrap(), asha(1, 3, 0));
    assert_eq!(serde_json::from_value::<Stopper>(json!({"median": {"grace": 2}})).unwrap(), Stopper::Median { grace: 2, min_trials: 3 });
    assert!(serde_json::from_value::<Stopper>(json!({"asha": {"grace": 2, "eta": 3}})).is_err());
    assert!(serde_json::from_value::<Stopper>(json!({"hyperband": {}})).is_err());
    assert_eq!(serde_json::to_value(asha(1, 3, 30)).unwrap(), json!({"asha": {"grace": 1, "reduction": 3, "max": 30}}));

    assert_eq!(asha(0, 3, 0).check().unwrap_err(), "param `stopper.asha.grace`: needs at least 1 epoch, got 0");
    assert_eq!(asha(1, 1, 0).check().unwrap_err(), "param `stopper.asha.reduction`: needs at least 2, got 1");
    assert_eq!(
        asha(2, 3, 2).check().unwrap_err(),
        "param `stopper.asha.max`: needs more epochs than grace (2), or 0 for the trials' epochs; got 2"
    );
    assert_eq!(
        Stopper::Median { grace: 1, min_trials: 0 }.check().unwrap_err(),
        "param `stopper.median.min_trials`: needs at least 1, got 0"
    );
    asha(1, 3, 0).check().unwrap();
    asha(2, 2, 3).check().unwrap();
    Stopper::None.check().unwrap();
}

#[test]
fn asha_rung_epochs() {
    assert_eq!(Scheduler::new(asha(1, 3, 30), true).rungs(), vec![1, 3, 9, 27]);
    assert_eq!(Scheduler::new(asha(2, 3, 30), true).rungs(), vec![2, 6, 18]);
    // A rung at max itself would never decide anything: every trial stops there.
    assert_eq!(Scheduler::new(asha(1, 3, 27), true).rungs(), vec![1, 3, 9]);
    assert_eq!(Scheduler::new(asha(1, 2, 10), true).rungs(), vec![1, 2, 4, 8]);
    let open = Scheduler::new(asha(1, 3, 0), true).rungs();
    assert_eq!(open[..4], [1, 3, 9, 27]);
    assert_eq!(open.len(), 41); // 3^40 < 2^64 <= 3^41
    assert!(Scheduler::new(Stopper::None, true).rungs().is_empty());
}

#[test]
fn asha_stops_the_worse_half_at_the_first_rung_and_keeps_the_best() {
    // reduction 2: cutoff = median of the values other trials recorded at the rung before this one.
    let values = [0.6, 0.8, 0.2, 0.9, 0.3, 0.1];
    // t0: no one recorded -> continue. t1: 0.8 vs [0.6] -> 0.6, continue. t2: 0.2 vs median [0.6 0.8] = 0.7, stop.
    // t3: 0.9 vs median [0.6 0.8 0.2] = 0.6, continue. t4: 0.3 vs median [.6 .8 .2 .9] = 0.7, stop.
    // t5: 0.1 vs median [.6 .8 .2 .9 .3] = 0.6, stop.
    let expected = [Continue, Continue, Stop, Continue, Stop, Stop];
    for maximize in [true, false] {
        let sign = if maximize { 1.0 } else { -1.0 };
        let mut s = Scheduler::new(asha(1, 2, 10), maximize);
        let got: Vec<Decision> = values.iter().enumerate().map(|(t, v)| s.report(t, 1, sign * v)).collect();
        assert_eq!(got, expected, "maximize {maximize}");
        // The best (t3) passes rung 2 alone, then t1 comes in worse at rung 2 and is cut; t3 goes on to rung 4.
        assert_eq!(s.report(3, 2, sign * 0.92), Continue);
        assert_eq!(s.report(1, 2, sign * 0.85), Stop);
        assert_eq!(s.report(3, 3, sign * 0.93), Continue); // not a rung: already recorded at 2
        assert_eq!(s.report(3, 4, sign * 0.94), Continue);
        assert_eq!(s.report(3, 9, sign * 0.95), Continue);
        // Ray's stop_last_trials: at max every trial stops.
        assert_eq!(s.report(3, 10, sign * 0.96), Stop);
    }
}

#[test]
fn asha_never_cuts_the_first_at_a_rung_nor_ties() {
    // Ray computes the cutoff from the values recorded before this one: the first trial to reach a rung is never
    // cut, whatever its value; from the second on, a value strictly below the cutoff is cut.
    let mut s = Scheduler::new(asha(1, 3, 30), true);
    assert_eq!(s.report(0, 1, -1e9), Continue);
    assert_eq!(s.report(1, 1, -1e9), Continue); // a tie with the cutoff is not cut
    assert_eq!(s.report(2, 1, -2e9), Stop);
    assert_eq!(s.report(0, 3, 5.0), Continue); // first at rung 3
                                               // Before the first rung nobody is judged.
    let mut s = Scheduler::new(asha(3, 3, 30), true);
    assert_eq!(s.report(0, 1, 0.9), Continue);
    assert_eq!(s.report(1, 1, 0.1), Continue);
    assert_eq!(s.report(1, 2, 0.1), Continue);
    // A NaN (diverged) report stops the trial and is not recorded.
    assert_eq!(s.report(2, 1, f64::NAN), Stop);
    assert_eq!(s.report(0, 3, 0.5), Continue);
}

#[test]
fn asha_replay_rebuilds_the_same_decisions() {
    let reports: Vec<(usize, usize, f64)> =
        (0..20).flat_map(|t| (1..=4).map(move |e| (t, e, ((t * 7919 + e * 104_729) % 101) as f64 / 100.0))).collect();
    let run = || {
        let mut s = Scheduler::new(asha(1, 2, 4), false);
        reports.iter().map(|&(t, e, v)| s.report(t, e, v)).collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.contains(&Stop) && first.contains(&Continue));
}

#[test]
fn median_stops_a_clearly_worse_trial_and_not_a_better_one() {
    let mut s = Scheduler::new(Stopper::Median { grace: 1, min_trials: 3 }, true);
    let curves = [[0.70, 0.75, 0.80], [0.60, 0.65, 0.70], [0.72, 0.74, 0.78]];
    for (t, curve) in curves.iter().enumerate() {
        for (e, v) in curve.iter().enumerate() {
            // Fewer than 3 other trials have reached any epoch while these run: nobody is judged.
            assert_eq!(s.report(t, e + 1, *v), Continue, "trial {t} epoch {}", e + 1);
        }
    }
    // Running means at epoch 1: 0.70, 0.60, 0.72 -> median 0.70.
    assert_eq!(s.report(3, 1, 0.30), Stop);
    assert_eq!(s.report(4, 1, 0.71), Continue);
    // At epoch 2, trials 0-2 (and not 3, 4) have got there: means 0.725, 0.625, 0.73 -> median 0.725. Trial 4's
    // best is 0.71 (< 0.725) even though epoch 2 itself is 0.70: stopped.
    assert_eq!(s.report(4, 2, 0.70), Stop);
    // Minimising a loss: the same with the sign flipped.
    let mut s = Scheduler::new(Stopper::Median { grace: 1, min_trials: 3 }, false);
    for (t, curve) in curves.iter().enumerate() {
        for (e, v) in curve.iter().enumerate() {
            s.report(t, e + 1, -v);
        }
    }
    assert_eq!(s.report(3, 1, -0.30), Stop);
    assert_eq!(s.report(4, 1, -0.71), Continue);
    // Grace: nothing is judged before it.
    let mut s = Scheduler::new(Stopper::Median { grace: 2, min_trials: 1 }, true);
    s.report(0, 1, 0.9);
    s.report(0, 2, 0.9);
    assert_eq!(s.report(1, 1, 0.1), Continue);
    assert_eq!(s.report(1, 2, 0.1), Stop);
}

#[test]
fn none_always_continues() {
    let mut s = Scheduler::new(Stopper::None, true);
    for t in 0..10 {
        for e in 1..5 {
            assert_eq!(s.report(t, e, if t % 2 == 0 { -1e9 } else { f64::NAN }), Continue);
        }
    }
}
