use super::*;

kimcnn_schema::named_enum! {
    /// A test enum.
    pub enum Shape { Round = "round", Square = "square" }
}

/// A small kind: `text` repeated `times` (default 2), in a `shape`.
struct Repeat;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RepeatParams {
    text: String,
    times: u32,
    shape: Shape,
    /// Defaults to `text` upper-cased: a default that depends on another param.
    title: Option<String>,
    #[serde(skip_serializing)]
    device: String,
}

impl Default for RepeatParams {
    fn default() -> RepeatParams {
        RepeatParams { text: String::new(), times: 2, shape: Shape::Round, title: None, device: "auto".into() }
    }
}

impl Kind for Repeat {
    const NAME: &'static str = "repeat";
    const VERSION: u32 = 1;
    const OUTPUTS: &'static [&'static str] = &["out"];
    type Params = RepeatParams;

    fn check(&self, p: &mut RepeatParams) -> Result<(), String> {
        if p.times == 0 {
            return Err("param `times` must be at least 1".into());
        }
        p.title.get_or_insert_with(|| p.text.to_uppercase());
        Ok(())
    }

    fn device<'p>(&self, p: &'p mut RepeatParams) -> Option<&'p mut String> {
        Some(&mut p.device)
    }

    fn resources(&self, p: &RepeatParams) -> Resources {
        Resources { cpus: 1, gpus: usize::from(p.device.starts_with("cuda")) }
    }

    fn run(&self, p: &RepeatParams, job: &Job) -> Result<RunInfo, StageError> {
        std::fs::write(&job.outputs["out"], p.text.repeat(p.times as usize))?;
        Ok(RunInfo::default())
    }
}

fn plan(raw: Value, device: Option<&str>) -> Result<Planned, String> {
    DynKind::plan(&Repeat, &raw, &[], &[], device)
}

#[test]
fn defaults_are_applied_once_and_the_device_is_left_out() {
    let a = plan(serde_json::json!({"text": "ab"}), None).unwrap();
    let b = plan(serde_json::json!({"text": "ab", "times": 2, "shape": "round", "title": "AB", "device": "cpu"}), None).unwrap();
    assert_eq!(a.params, b.params);
    assert_eq!(a.params, serde_json::json!({"text": "ab", "times": 2, "shape": "round", "title": "AB"}));
    assert_eq!((a.device.as_deref(), b.device.as_deref()), (Some("auto"), Some("cpu")));
    let c = plan(serde_json::json!({"text": "ab", "device": "cpu"}), Some("cuda:1")).unwrap();
    assert_eq!((c.device.as_deref(), c.resources.gpus), (Some("cuda:1"), 1));
    assert_eq!(a.outputs, ["out"]);
}

#[test]
fn errors_name_the_param() {
    let e = plan(serde_json::json!({"txt": "ab"}), None).unwrap_err();
    assert!(e.starts_with("unknown param `txt`, expected one of `text`, `times`"), "{e}");
    let e = plan(serde_json::json!({"shape": "oval"}), None).unwrap_err();
    assert_eq!(e, "param `shape` must be one of round, square, found `oval`");
    let e = plan(serde_json::json!({"times": "x"}), None).unwrap_err();
    assert_eq!(e, "param `times`: invalid type: string \"x\", expected u32");
    let e = plan(serde_json::json!({"times": 0}), None).unwrap_err();
    assert_eq!(e, "param `times` must be at least 1");
    let e = DynKind::plan(&Repeat, &serde_json::json!({}), &["x".into()], &[], None).unwrap_err();
    assert_eq!(e, "a `repeat` stage's outputs are fixed (out); remove `outputs:`");
}

#[test]
fn registry_by_name() {
    let mut r = Registry::new();
    r.register(Repeat);
    assert_eq!(r.names().collect::<Vec<_>>(), ["repeat"]);
    assert_eq!(r.get("repeat").map(|k| k.version()), Some(1));
}
