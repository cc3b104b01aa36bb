use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use kimcnn_stage::{Registry, Resources};

use crate::spec::{RawPipeline, RawStage};
use crate::{PipelineError, Result};

/// One concrete stage of the expanded pipeline.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// The pipeline.yaml entry it was expanded from (`train` for
    /// `train.mr.static.fold3`).
    pub group: String,
    pub kind: String,
    /// The kind's version (part of the cache key).
    pub version: u32,
    pub desc: Option<String>,
    /// Resolved (all `${...}` substituted) and normalised by the kind:
    /// defaults applied, canonical JSON. What the cache key hashes.
    pub params: Value,
    /// Where the kind computes, for kinds with a device (not in the key).
    pub device: Option<String>,
    /// What a run needs (`threads:` sets the cpus).
    pub resources: Resources,
    /// Input name -> (index of the producing stage, its output name).
    pub inputs: BTreeMap<String, (usize, String)>,
    pub outputs: Vec<String>,
    /// Producing stages, deduplicated, ascending (with the stages its
    /// `later` params come from).
    pub deps: Vec<usize>,
    /// Params taken from other stages' outputs, known once they have run
    /// (`params` holds their defaults until then).
    pub later: Option<Box<Later>>,
}

/// A stage's params that come from other stages' JSON outputs, as
/// `variant: ${study.mr.fold0.best:config.variant}` writes it: the runner
/// fills them in when those stages are done, and the kind normalises the
/// result as it does any params (so the key is the key of the values, and a
/// stage trained from a study's best config is the stage written out by hand).
#[derive(Debug, Clone, PartialEq)]
pub struct Later {
    /// `with:` resolved, the references still in place.
    pub raw: Value,
    /// `outputs:` as declared.
    pub declared: Vec<String>,
    pub input_names: Vec<String>,
    pub refs: Vec<OutputRef>,
}

/// One param whose value is a field of another stage's JSON output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRef {
    /// Where in `with:` (object keys from the top).
    pub param: Vec<String>,
    /// The producing stage and its output.
    pub stage: usize,
    pub output: String,
    /// A dot path into the output's JSON (`config.variant`; numbers index lists).
    pub field: String,
    /// As written, for messages.
    pub text: String,
}

/// Why a stage's `later` params cannot be filled in.
#[derive(Debug, Clone, PartialEq)]
pub enum NotYet {
    /// This stage has not produced its output yet.
    Waiting(usize),
    /// The output or field is not there, or the kind refuses the value.
    Refused(String),
}

/// The checked, expanded pipeline, stages in topological order (a stage
/// always comes after everything it reads).
#[derive(Debug, Clone)]
pub struct Plan {
    pub file: PathBuf,
    pub stages: Vec<Stage>,
    index: HashMap<String, usize>,
}

impl Plan {
    /// Reads and checks `file`, applying `--set key=value` overrides and, on
    /// every stage whose kind has a device, `device`.
    pub fn load(file: &Path, overrides: &[String], device: Option<&str>, registry: &Registry) -> Result<Plan> {
        let text = std::fs::read_to_string(file).map_err(|source| PipelineError::Read { file: file.into(), source })?;
        Plan::parse(&text, file, overrides, device, registry)
    }

    pub fn parse(text: &str, file: &Path, overrides: &[String], device: Option<&str>, registry: &Registry) -> Result<Plan> {
        let mut raw: RawPipeline = serde_yaml::from_str(text).map_err(|e| syntax(file, e))?;
        let mut stage_sets = Vec::new();
        for o in overrides {
            if let Some(set) = Override::parse(&mut raw, o)? {
                stage_sets.push(set);
            }
        }
        let invalid = |message: String| PipelineError::Invalid { file: file.into(), message };
        let params = yaml_to_json(&serde_yaml::Value::Mapping(raw.params.clone())).map_err(|e| invalid(format!("params: {e}")))?;

        // Expand matrices: every stage's name, before anything is resolved,
        // so `--set` can address expanded stages.
        let mut expanded: Vec<(&String, &RawStage, BTreeMap<String, Value>, String)> = Vec::new();
        for (group, rs) in &raw.stages {
            if !valid_name(group) {
                return Err(invalid(format!(
                    "stage `{group}`: a stage name may hold only letters, digits, `_`, `-` and `.` (no path characters)"
                )));
            }
            if registry.get(&rs.uses).is_none() {
                let known: Vec<&str> = registry.names().collect();
                return Err(invalid(format!("stage `{group}`: unknown stage kind `{}` (known: {})", rs.uses, known.join(", "))));
            }
            for (vars, suffix) in expand_matrix(group, rs, &params).map_err(&invalid)? {
                let name = format!("{group}{suffix}");
                if !valid_name(&name) {
                    return Err(invalid(format!(
                        "stage `{name}`: matrix values may hold only letters, digits, `_`, `-` and `.` (no path characters)"
                    )));
                }
                expanded.push((group, rs, vars, name));
            }
        }
        for o in &stage_sets {
            let key = format!("{}.{}", o.target, o.path.join("."));
            if expanded.iter().any(|e| selects(&key, &e.3)) {
                return Err(o.error(&format!("`{key}` is a stage: name a param of it, e.g. {key}.epochs=10")));
            }
            if !o.declared && !expanded.iter().any(|e| o.selects(&e.3)) {
                return Err(o.error(&format!("no stage `{}` in the pipeline (see `kimcnn dag`)", o.target)));
            }
        }

        // Resolve ${...}, apply the stage overrides, let each kind check and normalise its params.
        struct Pending {
            stage: Stage,
            refs: Vec<(String, String)>,
        }
        let mut pending: Vec<Pending> = Vec::new();
        let mut laters: Vec<Vec<(Vec<String>, String)>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (group, rs, vars, name) in expanded {
            let kind = registry.get(&rs.uses).expect("checked above");
            let ctx = Ctx { vars: &vars, params: &params };
            let mut with = rs.with.clone();
            for o in stage_sets.iter().filter(|o| o.selects(&name)) {
                let path: Vec<&str> = o.path.iter().map(String::as_str).collect();
                set_path(&mut with, &path, o.value.clone()).map_err(|m| o.error(&m))?;
            }
            let with = yaml_to_json(&serde_yaml::Value::Mapping(with)).map_err(|e| invalid(format!("stage `{name}`: {e}")))?;
            let resolved = ctx.resolve(&with).map_err(|e| invalid(format!("stage `{name}`: {e}")))?;
            let mut refs = Vec::new();
            for (input, r) in &rs.inputs {
                let r = ctx.resolve_str(r).map_err(|e| invalid(format!("stage `{name}`: input `{input}`: {e}")))?;
                let r = match r {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                refs.push((input.clone(), r));
            }
            let input_names: Vec<&str> = rs.inputs.keys().map(String::as_str).collect();
            // Params from other stages' outputs: planned now with their defaults, filled in by the runner.
            let mut found = Vec::new();
            output_refs(&resolved, &mut Vec::new(), &mut found);
            let mut now = resolved.clone();
            for (path, _) in &found {
                remove_path(&mut now, path);
            }
            let planned = kind.plan(&now, &rs.outputs, &input_names, device).map_err(|e| invalid(format!("stage `{name}`: {e}")))?;
            let later = (!found.is_empty()).then(|| {
                Box::new(Later {
                    raw: resolved.clone(),
                    declared: rs.outputs.clone(),
                    input_names: input_names.iter().map(|s| s.to_string()).collect(),
                    refs: Vec::new(),
                })
            });
            laters.push(found);
            for o in &planned.outputs {
                if o.is_empty() || !o.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Err(invalid(format!("stage `{name}`: output name `{o}` may hold only letters, digits, `_` and `-`")));
                }
            }
            let mut resources = planned.resources;
            if let Some(t) = rs.threads {
                resources.cpus = t;
            }
            if resources.cpus == 0 {
                return Err(invalid(format!("stage `{name}`: threads must be at least 1")));
            }
            if let Some(prev) = index.get(&name) {
                let other = &pending[*prev].stage.group;
                return Err(invalid(format!("stage name `{name}` occurs twice after matrix expansion (from `{other}` and `{group}`)")));
            }
            index.insert(name.clone(), pending.len());
            pending.push(Pending {
                stage: Stage {
                    name,
                    group: group.clone(),
                    kind: rs.uses.clone(),
                    version: kind.version(),
                    desc: rs.desc.clone(),
                    params: planned.params,
                    device: planned.device,
                    resources,
                    inputs: BTreeMap::new(),
                    outputs: planned.outputs,
                    deps: Vec::new(),
                    later,
                },
                refs,
            });
        }

        // Resolve references.
        for i in 0..pending.len() {
            let refs = std::mem::take(&mut pending[i].refs);
            let name = pending[i].stage.name.clone();
            for (input, r) in refs {
                // `study.*.trials?`: a glob that may match no stage.
                let (r, optional) = match r.strip_suffix('?') {
                    Some(g) if g.contains('*') => (g.to_string(), true),
                    Some(_) => {
                        return Err(invalid(format!(
                            "stage `{name}`: input `{input}` = `{r}`: a `?` marks a glob that may match no stage, and this is no glob"
                        )))
                    }
                    None => (r, false),
                };
                let (src, out) = r
                    .rsplit_once('.')
                    .ok_or_else(|| invalid(format!("stage `{name}`: input `{input}` = `{r}` is not of the form <stage>.<output>")))?;
                if src.contains('*') {
                    // A glob: one input `<input>.<stage>` per matching stage.
                    let mut hits: Vec<usize> = index.iter().filter(|(n, _)| glob(src, n)).map(|(_, &j)| j).collect();
                    hits.sort_unstable();
                    hits.retain(|&j| j != i && pending[j].stage.outputs.iter().any(|o| o == out));
                    if hits.is_empty() && !optional {
                        return Err(invalid(format!("stage `{name}`: input `{input}` = `{r}` matches no stage with output `{out}`")));
                    }
                    for j in hits {
                        let key = format!("{input}.{}", pending[j].stage.name);
                        pending[i].stage.inputs.insert(key, (j, out.to_string()));
                    }
                    continue;
                }
                let &j = index
                    .get(src)
                    .ok_or_else(|| invalid(format!("stage `{name}`: input `{input}` refers to stage `{src}`, which does not exist")))?;
                if !pending[j].stage.outputs.iter().any(|o| o == out) {
                    return Err(invalid(format!(
                        "stage `{name}`: input `{input}` refers to output `{out}` of stage `{src}`, which has only: {}",
                        pending[j].stage.outputs.join(", ")
                    )));
                }
                pending[i].stage.inputs.insert(input, (j, out.to_string()));
            }
            for (param, text) in std::mem::take(&mut laters[i]) {
                let inner = &text[2..text.len() - 1];
                let (src, field) = inner.split_once(':').expect("found by its colon");
                let bad = |m: String| invalid(format!("stage `{name}`: param `{}` = `{text}`: {m}", param.join(".")));
                let (src, out) = src.trim().rsplit_once('.').ok_or_else(|| bad("write `${<stage>.<output>:<field>}`".into()))?;
                let &j = index.get(src).ok_or_else(|| bad(format!("no stage `{src}` (see `kimcnn dag`)")))?;
                if !pending[j].stage.outputs.iter().any(|o| o == out) {
                    return Err(bad(format!("stage `{src}` has no output `{out}` (it has: {})", pending[j].stage.outputs.join(", "))));
                }
                let later = pending[i].stage.later.as_mut().expect("a stage with refs has a Later");
                later.refs.push(OutputRef { param, stage: j, output: out.to_string(), field: field.trim().to_string(), text });
            }
            let mut deps: Vec<usize> = pending[i].stage.inputs.values().map(|(j, _)| *j).collect();
            deps.extend(pending[i].stage.later.iter().flat_map(|l| l.refs.iter().map(|r| r.stage)));
            deps.sort_unstable();
            deps.dedup();
            pending[i].stage.deps = deps;
        }

        let stages: Vec<Stage> = pending.into_iter().map(|p| p.stage).collect();
        let order = topo_order(&stages).map_err(|cycle| PipelineError::Cycle { file: file.into(), cycle })?;
        // Renumber in topological order.
        let mut new_pos = vec![0; stages.len()];
        for (pos, &old) in order.iter().enumerate() {
            new_pos[old] = pos;
        }
        let mut sorted: Vec<Option<Stage>> = stages.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(sorted.len());
        for &old in &order {
            let mut s = sorted[old].take().expect("each stage once");
            for (j, _) in s.inputs.values_mut() {
                *j = new_pos[*j];
            }
            for d in &mut s.deps {
                *d = new_pos[*d];
            }
            for r in s.later.iter_mut().flat_map(|l| l.refs.iter_mut()) {
                r.stage = new_pos[r.stage];
            }
            s.deps.sort_unstable();
            out.push(s);
        }
        let index = out.iter().enumerate().map(|(i, s)| (s.name.clone(), i)).collect();
        Ok(Plan { file: file.into(), stages: out, index })
    }

    /// Stage `i` with its `later` params filled in from its sources'
    /// outputs (`output(j, name)`: the file of stage j's output, once it has
    /// run) and normalised by its kind; the stage itself when it has none.
    pub fn complete(
        &self,
        i: usize,
        registry: &Registry,
        output: &dyn Fn(usize, &str) -> Option<PathBuf>,
    ) -> std::result::Result<Stage, NotYet> {
        let s = &self.stages[i];
        let Some(later) = &s.later else { return Ok(s.clone()) };
        let mut raw = later.raw.clone();
        for r in &later.refs {
            let refused = |m: String| NotYet::Refused(format!("param `{}` = `{}`: {m}", r.param.join("."), r.text));
            let path = output(r.stage, &r.output).ok_or(NotYet::Waiting(r.stage))?;
            let text = std::fs::read_to_string(&path).map_err(|e| refused(format!("{}: {e}", path.display())))?;
            let json: Value = serde_json::from_str(&text).map_err(|e| refused(format!("`{}` is not JSON ({e})", r.output)))?;
            let mut cur = &json;
            for seg in r.field.split('.') {
                cur = match cur {
                    Value::Array(a) => seg.parse::<usize>().ok().and_then(|k| a.get(k)),
                    other => other.get(seg),
                }
                .ok_or_else(|| refused(format!("stage `{}`'s `{}` has no field `{}`", self.stages[r.stage].name, r.output, r.field)))?;
            }
            set_json_path(&mut raw, &r.param, cur.clone());
        }
        let kind = registry.get(&s.kind).expect("the plan checked its kinds");
        let names: Vec<&str> = later.input_names.iter().map(String::as_str).collect();
        let planned = kind.plan(&raw, &later.declared, &names, s.device.as_deref()).map_err(NotYet::Refused)?;
        let mut done = s.clone();
        done.params = planned.params;
        done.later = None;
        Ok(done)
    }

    pub fn get(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The stages `targets` name (see [`selects`]); no targets: all. A
    /// target that names no stage is an error.
    pub fn named(&self, targets: &[String]) -> Result<Vec<bool>> {
        let names: Vec<&str> = self.stages.iter().map(|s| s.name.as_str()).collect();
        select_names(targets, &names)
    }

    /// The stages a run of `targets` touches: the stages they name and
    /// everything those read, plus, with `downstream`, everything that reads
    /// them. Returns (selected, named-as-target) masks.
    pub fn select(&self, targets: &[String], downstream: bool) -> Result<(Vec<bool>, Vec<bool>)> {
        let n = self.stages.len();
        let named = self.named(targets)?;
        let mut sel = named.clone();
        if downstream {
            for i in 0..n {
                if self.stages[i].deps.iter().any(|&d| sel[d]) {
                    sel[i] = true;
                }
            }
        }
        for i in (0..n).rev() {
            if sel[i] {
                for &d in &self.stages[i].deps {
                    sel[d] = true;
                }
            }
        }
        Ok((sel, named))
    }
}

fn syntax(file: &Path, e: serde_yaml::Error) -> PipelineError {
    let msg = e.to_string();
    match e.location() {
        Some(loc) => {
            let message = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            PipelineError::Syntax { file: file.into(), line: loc.line(), column: loc.column(), message }
        }
        None => PipelineError::Invalid { file: file.into(), message: msg },
    }
}

/// A stage name: letters, digits, `_`, `-`, and dots between parts; never a
/// path (no `/`, `\`, `..`, no leading dot).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !s.starts_with(['.', '-'])
        && !s.ends_with('.')
        && !s.contains("..")
}

/// The one rule by which `run`, `status`, `show`, `push`, `pull` and `--set`
/// pick stages: a target selects a stage name that is the target itself,
/// lies under it as a group prefix at a dot (`train`, `train.mr` and
/// `train.mr.static` all select `train.mr.static.fold3`), or matches it as
/// a `*` glob (`train.*.rand.fold0`).
pub fn selects(target: &str, name: &str) -> bool {
    target == name || name.strip_prefix(target).is_some_and(|r| r.starts_with('.')) || glob(target, name)
}

/// Which of `names` the targets select ([`selects`]); no targets: all. A
/// target that selects none is an error.
pub fn select_names(targets: &[String], names: &[&str]) -> Result<Vec<bool>> {
    if targets.is_empty() {
        return Ok(vec![true; names.len()]);
    }
    let mut named = vec![false; names.len()];
    for t in targets {
        let mut hit = false;
        for (i, n) in names.iter().enumerate() {
            if selects(t, n) {
                named[i] = true;
                hit = true;
            }
        }
        if !hit {
            return Err(PipelineError::UnknownTarget(t.clone()));
        }
    }
    Ok(named)
}

fn glob(pat: &str, s: &str) -> bool {
    if !pat.contains('*') {
        return false;
    }
    let parts: Vec<&str> = pat.split('*').collect();
    let mut rest = s;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(k) => rest = &rest[k + p.len()..],
                None => return false,
            }
        }
    }
    rest.is_empty()
}

fn yaml_to_json(v: &serde_yaml::Value) -> std::result::Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot use this value as a param: {e}"))
}

/// A `--set` of a stage param: `STAGES.param=VALUE`, STAGES a stage, a
/// group prefix or a glob (see [`selects`]). A key inside a mapping param
/// is reached through the declared group that has that mapping
/// (`--set run.env.A=1` where `run` has `env:`).
struct Override {
    arg: String,
    target: String,
    /// The param, or a path into a mapping param.
    path: Vec<String>,
    value: serde_yaml::Value,
    /// The target names a declared group (or the groups under a prefix):
    /// expanding to no stage is then no error (`paper_variants: []`).
    declared: bool,
}

impl Override {
    /// Applies a global param override (`epochs=10`, `opt.lr=0.1`) to the
    /// raw params at once; returns a stage override, whose stages are known
    /// only after matrix expansion.
    fn parse(raw: &mut RawPipeline, arg: &str) -> Result<Option<Override>> {
        let err = |message: &str| PipelineError::Override { arg: arg.to_string(), message: message.to_string() };
        let (key, value) = arg.split_once('=').ok_or_else(|| err("expected KEY=VALUE, e.g. train.epochs=10"))?;
        let value: serde_yaml::Value = serde_yaml::from_str(value).map_err(|e| err(&format!("bad value: {e}")))?;
        let segs: Vec<&str> = key.split('.').collect();
        if segs.iter().any(|s| s.is_empty()) {
            return Err(err("empty key segment"));
        }
        let under = |name: &str, prefix: &str| name.strip_prefix(prefix).is_some_and(|r| r.starts_with('.'));
        // A declared group, or a prefix of declared groups (`train` for `train.mr`).
        let declared = |t: &str| raw.stages.keys().any(|g| g == t || under(g, t));
        // A stage inside a group's expansion (`train.mr.rand.fold0`), or a glob.
        let inside = |t: &str| t.contains('*') || raw.stages.keys().any(|g| under(t, g));
        if declared(key) {
            return Err(err("name a param of the stage, e.g. train.epochs=10"));
        }
        let new = |target: &str, path: &[&str]| Override {
            arg: arg.to_string(),
            target: target.to_string(),
            path: path.iter().map(|s| s.to_string()).collect(),
            value: value.clone(),
            declared: declared(target),
        };
        // A key in a mapping param the group declares.
        for k in (1..segs.len().saturating_sub(1)).rev() {
            let group = segs[..k].join(".");
            if raw.stages.get(&group).is_some_and(|g| g.with.get(segs[k]).is_some_and(serde_yaml::Value::is_mapping)) {
                return Ok(Some(new(&group, &segs[k..])));
            }
        }
        let (target, param) = key.rsplit_once('.').unwrap_or(("", key));
        let global = raw.params.contains_key(segs[0]);
        // A group (or a stage in one) before a global param of the same name;
        // a global param before a mere prefix of groups.
        if inside(target) || raw.stages.contains_key(target) || (declared(target) && !global) {
            return Ok(Some(new(target, &[param])));
        }
        if !global {
            return Err(err(&format!("no stage or param named `{}` in the pipeline", segs[0])));
        }
        set_path(&mut raw.params, &segs, value).map_err(|m| err(&m))?;
        Ok(None)
    }

    fn selects(&self, name: &str) -> bool {
        selects(&self.target, name)
    }

    fn error(&self, message: &str) -> PipelineError {
        PipelineError::Override { arg: self.arg.clone(), message: message.to_string() }
    }
}

fn set_path(map: &mut serde_yaml::Mapping, segs: &[&str], value: serde_yaml::Value) -> std::result::Result<(), String> {
    let key = serde_yaml::Value::String(segs[0].to_string());
    if segs.len() == 1 {
        map.insert(key, value);
        return Ok(());
    }
    let entry = map.entry(key).or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
    match entry {
        serde_yaml::Value::Mapping(m) => set_path(m, &segs[1..], value),
        _ => Err(format!("`{}` is not a mapping", segs[0])),
    }
}

/// One combination of matrix values: the variables and the name suffix.
type Combo = (BTreeMap<String, Value>, String);

/// Matrix expansion: the cartesian product of the variables in declared
/// order, each with the name suffix it gets (`.mr.static.fold3`).
///
/// A variable's values may come from a param (`variant: ${variants}`, a
/// list) or use one in a range (`fold: range(${folds_run})`); an empty list
/// expands to no stages (a way to switch a group off).
fn expand_matrix(group: &str, rs: &RawStage, params: &Value) -> std::result::Result<Vec<Combo>, String> {
    let mut combos: Vec<Combo> = vec![(BTreeMap::new(), String::new())];
    let empty = BTreeMap::new();
    let ctx = Ctx { vars: &empty, params };
    for (var, spec) in &rs.matrix {
        let err = |e: String| format!("stage `{group}`: matrix `{var}`: {e}");
        let spec = match spec {
            serde_yaml::Value::String(s) if s.contains("${") => match ctx.resolve_str(s).map_err(err)? {
                Value::String(s) => serde_yaml::Value::String(s),
                other => serde_yaml::to_value(&other).map_err(|e| err(e.to_string()))?,
            },
            other => other.clone(),
        };
        let values = matrix_values(&spec).map_err(err)?;
        let mut next = Vec::new();
        for (vars, suffix) in &combos {
            for v in &values {
                let label = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) if n.is_i64() || n.is_u64() => format!("{var}{n}"),
                    other => other.to_string(),
                };
                let mut vars = vars.clone();
                vars.insert(var.clone(), v.clone());
                next.push((vars, format!("{suffix}.{label}")));
            }
        }
        combos = next;
    }
    Ok(combos)
}

fn matrix_values(spec: &serde_yaml::Value) -> std::result::Result<Vec<Value>, String> {
    match spec {
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .map(|v| match v {
                serde_yaml::Value::String(_) | serde_yaml::Value::Number(_) | serde_yaml::Value::Bool(_) => yaml_to_json(v),
                _ => Err("values must be strings, numbers or booleans".into()),
            })
            .collect(),
        serde_yaml::Value::String(s) => {
            let inner = s
                .trim()
                .strip_prefix("range(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("expected a list or range(N), found `{s}`"))?;
            let nums: Vec<i64> = inner
                .split(',')
                .map(|p| p.trim().parse::<i64>().map_err(|_| format!("bad number in `{s}`")))
                .collect::<std::result::Result<_, _>>()?;
            let (a, b) = match nums[..] {
                [n] => (0, n),
                [a, b] => (a, b),
                _ => return Err(format!("expected range(N) or range(A, B), found `{s}`")),
            };
            Ok((a..b).map(Value::from).collect())
        }
        _ => Err("expected a list or range(N)".into()),
    }
}

struct Ctx<'a> {
    vars: &'a BTreeMap<String, Value>,
    params: &'a Value,
}

impl Ctx<'_> {
    fn lookup(&self, name: &str) -> std::result::Result<&Value, String> {
        if let Some(v) = self.vars.get(name) {
            return Ok(v);
        }
        let mut cur = self.params;
        for seg in name.split('.') {
            cur = cur.get(seg).ok_or_else(|| {
                let mut known: Vec<String> = self.vars.keys().cloned().collect();
                if let Some(m) = self.params.as_object() {
                    known.extend(m.keys().cloned());
                }
                format!(
                    "`${{{name}}}` is not defined (defined here: {})",
                    if known.is_empty() { "nothing".into() } else { known.join(", ") }
                )
            })?;
        }
        Ok(cur)
    }

    fn resolve(&self, v: &Value) -> std::result::Result<Value, String> {
        Ok(match v {
            Value::String(s) => self.resolve_str(s)?,
            Value::Array(a) => Value::Array(a.iter().map(|x| self.resolve(x)).collect::<std::result::Result<_, _>>()?),
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, x) in m {
                    out.insert(k.clone(), self.resolve(x)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    /// `"${x}"` alone takes x's value and type; `${x}` inside a longer string
    /// is substituted as text.
    fn resolve_str(&self, s: &str) -> std::result::Result<Value, String> {
        // Another stage's output, filled in when it has run; its stage name
        // may use matrix variables (`${study.mr.fold${f}.best:config.pad}`).
        if is_output_ref(s) {
            return Ok(Value::String(s.to_string()));
        }
        if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')).filter(|i| i.contains(':') && i.contains("${")) {
            let named = match self.resolve_str(inner)? {
                Value::String(n) => n,
                other => other.to_string(),
            };
            let whole = format!("${{{named}}}");
            if is_output_ref(&whole) {
                return Ok(Value::String(whole));
            }
        }
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
            if !name.contains(['$', '{', '}']) {
                return Ok(self.lookup(name.trim())?.clone());
            }
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let j = after.find('}').ok_or_else(|| format!("unclosed `${{` in `{s}`"))?;
            if after[..j].contains(':') {
                return Err(format!("`${{{}}}` (another stage's output) must be a param's whole value, not part of `{s}`", &after[..j]));
            }
            match self.lookup(after[..j].trim())? {
                Value::String(x) => out.push_str(x),
                v @ (Value::Number(_) | Value::Bool(_)) => out.push_str(&v.to_string()),
                _ => return Err(format!("`${{{}}}` is not a scalar and cannot be part of a string", &after[..j])),
            }
            rest = &after[j + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

/// Strings that are a whole `${<stage>.<output>:<field>}`, with where they are.
fn output_refs(v: &Value, at: &mut Vec<String>, found: &mut Vec<(Vec<String>, String)>) {
    match v {
        Value::String(s) if is_output_ref(s) => found.push((at.clone(), s.clone())),
        Value::Object(m) => {
            for (k, x) in m {
                at.push(k.clone());
                output_refs(x, at, found);
                at.pop();
            }
        }
        _ => {}
    }
}

fn is_output_ref(s: &str) -> bool {
    s.strip_prefix("${").and_then(|r| r.strip_suffix('}')).is_some_and(|inner| inner.contains(':') && !inner.contains(['$', '{', '}']))
}

fn remove_path(v: &mut Value, path: &[String]) {
    if let [last] = path {
        if let Some(m) = v.as_object_mut() {
            m.remove(last);
        }
    } else if let Some((first, rest)) = path.split_first() {
        if let Some(x) = v.get_mut(first) {
            remove_path(x, rest);
        }
    }
}

fn set_json_path(v: &mut Value, path: &[String], value: Value) {
    match path.split_first() {
        None => *v = value,
        Some((first, rest)) => {
            if let Some(x) = v.get_mut(first) {
                set_json_path(x, rest, value);
            }
        }
    }
}

/// Kahn's algorithm, stable in declaration order; on a cycle, returns its
/// stages in order.
fn topo_order(stages: &[Stage]) -> std::result::Result<Vec<usize>, Vec<String>> {
    let n = stages.len();
    let mut indeg: Vec<usize> = stages.iter().map(|s| s.deps.len()).collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, s) in stages.iter().enumerate() {
        for &d in &s.deps {
            users[d].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            indeg[u] -= 1;
            if indeg[u] == 0 {
                ready.insert(u);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk back along deps among the remaining stages until one repeats.
    let mut cur = (0..n).find(|&i| indeg[i] > 0).expect("a stage in the cycle");
    let mut seen: Vec<usize> = Vec::new();
    while !seen.contains(&cur) {
        seen.push(cur);
        cur = *stages[cur].deps.iter().find(|&&d| indeg[d] > 0).expect("cycle continues");
    }
    let start = seen.iter().position(|&x| x == cur).expect("in path");
    let mut cycle: Vec<String> = seen[start..].iter().rev().map(|&i| stages[i].name.clone()).collect();
    cycle.push(cycle[0].clone());
    Err(cycle)
}

#[cfg(test)]
mod tests;
