//! The libtorch toolchain: `kimcnn doctor` runs the torch worker, which must
//! load libtorch through its rpath (no LD_LIBRARY_PATH) and train a tiny
//! conv net whose loss falls.
mod common;

use common::Project;

#[test]
fn doctor_trains_a_tiny_conv_net_without_ld_library_path() {
    let p = Project::new("stages: {}\n");
    let mut c = p.cmd(&["doctor"]);
    c.env_remove("LD_LIBRARY_PATH");
    let r = p.run_cmd(c).ok();
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("a JSON report");
    assert_eq!(report["ok"], true, "{report}");
    let (first, last) = (report["loss_first"].as_f64().unwrap(), report["loss_last"].as_f64().unwrap());
    assert!(last < 0.8 * first, "loss fell: {first} -> {last}");
}
