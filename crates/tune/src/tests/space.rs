use serde_json::json;

use crate::space::{Dist, Space};

fn space(v: serde_json::Value) -> Space {
    serde_json::from_value(v).expect("space parses")
}

fn err(v: serde_json::Value) -> String {
    space(v).check().expect_err("check refuses")
}

#[test]
fn check_refuses_each_bad_case_naming_the_param() {
    assert_eq!(err(json!({})), "param `space`: empty; name at least one param to search");
    assert_eq!(err(json!({"variant": {"choice": []}})), "param `space.variant`: choice needs at least one value, got []");
    assert_eq!(err(json!({"variant": {"choice": ["rand", "static", "rand"]}})), "param `space.variant`: choice lists \"rand\" twice");
    assert_eq!(err(json!({"dropout": {"uniform": [0.5, 0.1]}})), "param `space.dropout`: uniform needs low < high, got [0.5, 0.1]");
    assert_eq!(err(json!({"dropout": {"uniform": [0.5, 0.5]}})), "param `space.dropout`: uniform needs low < high, got [0.5, 0.5]");
    assert_eq!(err(json!({"lr": {"loguniform": [0, 1]}})), "param `space.lr`: loguniform needs 0 < low < high, got [0, 1]");
    assert_eq!(err(json!({"lr": {"loguniform": [-1, 1]}})), "param `space.lr`: loguniform needs 0 < low < high, got [-1, 1]");
    assert_eq!(err(json!({"maps": {"int": [150, 50]}})), "param `space.maps`: int needs low <= high, got [150, 50]");
    let inf = Space([("x".to_string(), Dist::Uniform([0.0, f64::INFINITY]))].into());
    assert_eq!(inf.check().unwrap_err(), "param `space.x`: uniform needs finite bounds, got [0, inf]");
    // The first bad param in name order is the one named.
    assert!(err(json!({"b": {"int": [2, 1]}, "a": {"choice": []}})).starts_with("param `space.a`"));
    // A single-value int range and a single choice are fine.
    space(json!({"maps": {"int": [3, 3]}, "v": {"choice": [1]}})).check().unwrap();
}

#[test]
fn serde_round_trip_and_strictness() {
    let text = r#"{"variant": {"choice": ["rand","static"]}, "lr": {"loguniform": [0.01, 1.0]}, "maps": {"int": [50, 150]}}"#;
    let s: Space = serde_json::from_str(text).unwrap();
    assert_eq!(s.0["variant"], Dist::Choice(vec![json!("rand"), json!("static")]));
    assert_eq!(s.0["lr"], Dist::LogUniform([0.01, 1.0]));
    assert_eq!(s.0["maps"], Dist::Int([50, 150]));
    s.check().unwrap();
    let back = serde_json::to_value(&s).unwrap();
    assert_eq!(back, json!({"variant": {"choice": ["rand","static"]}, "lr": {"loguniform": [0.01, 1.0]}, "maps": {"int": [50, 150]}}));
    assert_eq!(serde_json::from_value::<Space>(back).unwrap(), s);
    // Integers are fine as float bounds; floats are not int bounds; unknown kinds and two kinds at once fail.
    assert_eq!(space(json!({"d": {"uniform": [0, 1]}})).0["d"], Dist::Uniform([0.0, 1.0]));
    assert!(serde_json::from_value::<Space>(json!({"m": {"int": [1.5, 3]}})).is_err());
    assert!(serde_json::from_value::<Space>(json!({"m": {"normal": [0, 1]}})).is_err());
    assert!(serde_json::from_value::<Space>(json!({"m": {"log_uniform": [0.1, 1]}})).is_err());
    assert!(serde_json::from_value::<Space>(json!({"m": {"int": [1, 3], "uniform": [0, 1]}})).is_err());
    assert!(serde_json::from_value::<Space>(json!({"m": {"int": [1, 2, 3]}})).is_err());
}

#[test]
fn grid_order_and_size() {
    let s = space(json!({"b": {"int": [1, 3]}, "a": {"choice": ["x", "y"]}}));
    assert_eq!(s.grid_size(), Some(6));
    let grid = s.grid().unwrap();
    let pairs: Vec<(String, i64)> = grid.iter().map(|p| (p["a"].as_str().unwrap().to_string(), p["b"].as_i64().unwrap())).collect();
    let expected: Vec<(String, i64)> =
        [("x", 1), ("x", 2), ("x", 3), ("y", 1), ("y", 2), ("y", 3)].iter().map(|(a, b)| (a.to_string(), *b)).collect();
    assert_eq!(pairs, expected);
    assert!(grid.iter().all(|p| p.len() == 2 && p["b"].is_i64()));

    let e = space(json!({"lr": {"loguniform": [0.01, 1]}, "b": {"int": [1, 3]}})).grid().unwrap_err();
    assert_eq!(e, "param `space.lr`: grid search needs choice or int values, got loguniform; use random or tpe");
    assert_eq!(space(json!({"lr": {"uniform": [0, 1]}})).grid_size(), None);
    let big = space(json!({"a": {"int": [1, 1000]}, "b": {"int": [1, 101]}}));
    assert_eq!(big.grid_size(), Some(101_000));
    assert_eq!(big.grid().unwrap_err(), "param `space`: the grid has 101000 points, more than the 100000 a grid search may have");
    let huge = space(json!({"a": {"int": [i64::MIN, i64::MAX]}, "b": {"int": [i64::MIN, i64::MAX]}}));
    assert_eq!(huge.grid_size(), Some(u64::MAX));
    assert!(huge.grid().is_err());
    // Bad spaces fail grid with the check's message.
    assert_eq!(space(json!({"a": {"choice": []}})).grid().unwrap_err(), "param `space.a`: choice needs at least one value, got []");
}

#[test]
fn probes_cover_every_choice_value_and_both_bounds() {
    let s = space(
        json!({"variant": {"choice": ["rand", "static", "nonstatic"]}, "lr": {"loguniform": [0.01, 1.0]}, "maps": {"int": [50, 150]}}),
    );
    let probes = s.probes();
    // Base + 2 more choices + lr high + maps high (the low bounds and the first choice are the base).
    assert_eq!(probes.len(), 5, "{probes:?}");
    assert_eq!(probes[0], [("lr".into(), json!(0.01)), ("maps".into(), json!(50)), ("variant".into(), json!("rand"))].into());
    for v in ["rand", "static", "nonstatic"] {
        assert!(probes.iter().any(|p| p["variant"] == json!(v)), "{v} not probed");
    }
    assert!(probes.iter().any(|p| p["lr"] == json!(1.0) && p["lr"].is_f64()));
    assert!(probes.iter().any(|p| p["maps"] == json!(150) && p["maps"].is_i64()));
    assert!(probes.iter().all(|p| p.len() == 3));
    // Floats stay floats even when integral.
    let f = space(json!({"d": {"uniform": [0, 1]}})).probes();
    assert!(f.iter().all(|p| p["d"].is_f64()), "{f:?}");
}
