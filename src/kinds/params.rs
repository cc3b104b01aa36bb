//! Typed access to a stage's JSON params, with errors that name the param.

use serde_json::Value;

pub struct Params<'a> {
    v: &'a Value,
}

impl<'a> Params<'a> {
    /// Refuses params the kind does not know, naming the ones it does.
    pub fn new(v: &'a Value, allowed: &[&str]) -> Result<Params<'a>, String> {
        if let Some(map) = v.as_object() {
            for k in map.keys() {
                if !allowed.contains(&k.as_str()) {
                    return Err(format!("unknown param `{k}` (this kind takes: {})", allowed.join(", ")));
                }
            }
        }
        Ok(Params { v })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.v.get(key).filter(|x| !x.is_null())
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("param `{key}` must be a string, found {other}")),
        }
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String, String> {
        Ok(self.opt_str(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A string param that must be one of `choices`.
    pub fn choice(&self, key: &str, default: &str, choices: &[&str]) -> Result<String, String> {
        let s = self.str_or(key, default)?;
        if choices.contains(&s.as_str()) {
            Ok(s)
        } else {
            Err(format!("param `{key}` must be one of {}, found `{s}`", choices.join(", ")))
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(format!("param `{key}` must be true or false, found {other}")),
        }
    }

    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| format!("param `{key}` must be a whole number >= 0, found {v}")),
        }
    }

    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| format!("param `{key}` must be a whole number, found {v}")),
        }
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.as_f64().filter(|x| x.is_finite()).map(Some).ok_or_else(|| format!("param `{key}` must be a number, found {v}")),
        }
    }

    /// A list of strings (numbers are taken as their text: `classes: [0, 1]`).
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("param `{key}` must list strings, found {other}")),
                })
                .collect(),
            Some(other) => Err(format!("param `{key}` must be a list, found {other}")),
        }
    }
}
