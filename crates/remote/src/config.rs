//! Remote declarations: `remotes:` in pipeline.yaml (shared through git) and
//! in `.kimcnn/config` (git-ignored, per user; overrides by name). Neither
//! may hold credentials.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{RemoteError, Result};

/// One remote, as declared (serialised for a job on another machine: it holds no credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// `s3://bucket[/prefix]`, or a directory: `/path`, `file:///path` or a
    /// path relative to the project.
    pub url: String,
    /// S3-compatible servers (MinIO, Ceph, a loopback test server): their URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    /// Parallel transfers (default 16).
    #[serde(default)]
    pub jobs: Option<usize>,
}

/// The remotes of a project, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteConfigs {
    pub remotes: BTreeMap<String, RemoteConfig>,
    /// `default_remote:` from the user config, if set.
    pub default: Option<String>,
}

const SECRET_WORDS: [&str; 6] = ["secret", "access_key", "password", "token", "credential", "session"];

impl RemoteConfigs {
    /// Adds the `remotes:` of one YAML document (`what` names it in errors);
    /// later calls override earlier ones by name.
    pub fn merge_yaml(&mut self, what: &str, remotes: Option<&serde_yaml::Value>, default: Option<&serde_yaml::Value>) -> Result<()> {
        if let Some(v) = remotes {
            let map: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_value(v.clone())
                .map_err(|e| RemoteError::Config(format!("{what}: `remotes:` must map names to remotes: {e}")))?;
            for (name, v) in map {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(RemoteError::Config(format!("{what}: remote name `{name}`: use letters, digits, - and _")));
                }
                if let Some(m) = v.as_mapping() {
                    for k in m.keys().filter_map(|k| k.as_str()) {
                        if SECRET_WORDS.iter().any(|w| k.to_ascii_lowercase().contains(w)) {
                            return Err(RemoteError::Config(format!(
                                "{what}: remote `{name}`: `{k}` looks like a credential; credentials come from the environment only \
                                 (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, or the machine's role), never from a file"
                            )));
                        }
                    }
                }
                let cfg: RemoteConfig =
                    serde_yaml::from_value(v).map_err(|e| RemoteError::Config(format!("{what}: remote `{name}`: {e}")))?;
                self.remotes.insert(name, cfg);
            }
        }
        if let Some(d) = default {
            let d = d.as_str().ok_or_else(|| RemoteError::Config(format!("{what}: `default_remote` must be a name")))?;
            self.default = Some(d.to_string());
        }
        Ok(())
    }

    /// The remote to use: the one named, else `default_remote`, else the only one.
    pub fn pick(&self, name: Option<&str>) -> Result<(&str, &RemoteConfig)> {
        let names = || self.remotes.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        let name = match (name, &self.default) {
            (Some(n), _) => n,
            (None, Some(d)) => d.as_str(),
            (None, None) if self.remotes.len() == 1 => self.remotes.keys().next().map(String::as_str).unwrap_or_default(),
            (None, None) if self.remotes.is_empty() => {
                return Err(RemoteError::Config(
                    "no remote declared: add `remotes: {team: {url: s3://bucket/prefix}}` to pipeline.yaml or .kimcnn/config".into(),
                ))
            }
            (None, None) => return Err(RemoteError::Config(format!("several remotes ({}): choose one with --remote", names()))),
        };
        self.remotes
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| RemoteError::Config(format!("no remote named `{name}` (declared: {})", names())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> serde_yaml::Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn merge_override_and_pick() {
        let mut c = RemoteConfigs::default();
        assert!(c.pick(None).unwrap_err().to_string().starts_with("no remote declared"));
        c.merge_yaml("pipeline.yaml", Some(&yaml("team: {url: 's3://b/p', endpoint: 'http://127.0.0.1:9000'}")), None).unwrap();
        assert_eq!(c.pick(None).unwrap().0, "team");
        c.merge_yaml(".kimcnn/config", Some(&yaml("team: {url: /mnt/x}\nnfs: {url: /srv/k}")), None).unwrap();
        assert_eq!(c.remotes["team"].url, "/mnt/x");
        assert!(c.pick(None).unwrap_err().to_string().contains("several remotes (nfs, team)"));
        assert_eq!(c.pick(Some("nfs")).unwrap().1.url, "/srv/k");
        assert!(c.pick(Some("x")).unwrap_err().to_string().contains("no remote named `x`"));
        c.merge_yaml(".kimcnn/config", None, Some(&yaml("nfs"))).unwrap();
        assert_eq!(c.pick(None).unwrap().0, "nfs");
    }

    #[test]
    fn credentials_and_unknown_fields_are_refused() {
        let mut c = RemoteConfigs::default();
        let e = c.merge_yaml("f", Some(&yaml("t: {url: 's3://b', secret_access_key: abc}")), None).unwrap_err().to_string();
        assert!(e.contains("looks like a credential") && !e.contains("abc"), "{e}");
        let e = c.merge_yaml("f", Some(&yaml("t: {url: 's3://b', bucket: x}")), None).unwrap_err().to_string();
        assert!(e.contains("unknown field `bucket`"), "{e}");
        let e = c.merge_yaml("f", Some(&yaml("'../x': {url: 's3://b'}")), None).unwrap_err().to_string();
        assert!(e.contains("remote name `../x`"), "{e}");
    }
}
