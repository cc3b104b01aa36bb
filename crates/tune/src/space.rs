//! Search spaces: the params a study searches and the distribution of each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most points [`Space::grid`] enumerates.
pub const MAX_GRID: u64 = 100_000;

/// One searched param's distribution, as pipeline.yaml writes it:
/// `{choice: [a, b]}`, `{uniform: [low, high]}`, `{loguniform: [low, high]}`, `{int: [low, high]}` (inclusive).
///
/// Values drawn from `uniform`/`loguniform` are JSON floats, from `int` JSON integers, from `choice` the values
/// as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// One of the listed values, each equally likely a priori.
    Choice(Vec<Value>),
    /// A float in `[low, high]`, uniform.
    Uniform([f64; 2]),
    /// A float in `[low, high]`, uniform in log space (`0 < low`).
    #[serde(rename = "loguniform")]
    LogUniform([f64; 2]),
    /// An integer in `[low, high]`, both included.
    Int([i64; 2]),
}

/// Param name -> distribution, in name order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Space(pub BTreeMap<String, Dist>);

/// One config: param name -> value.
pub type Point = BTreeMap<String, Value>;

impl Dist {
    /// What is wrong with this distribution, without the param's name.
    fn problem(&self) -> Option<String> {
        match self {
            Dist::Choice(values) => {
                if values.is_empty() {
                    return Some("choice needs at least one value, got []".to_string());
                }
                for (i, v) in values.iter().enumerate() {
                    if values[..i].contains(v) {
                        return Some(format!("choice lists {v} twice"));
                    }
                }
                None
            }
            Dist::Uniform([low, high]) => {
                if !low.is_finite() || !high.is_finite() {
                    Some(format!("uniform needs finite bounds, got [{low}, {high}]"))
                } else if low >= high {
                    Some(format!("uniform needs low < high, got [{low}, {high}]"))
                } else {
                    None
                }
            }
            Dist::LogUniform([low, high]) => {
                if !low.is_finite() || !high.is_finite() {
                    Some(format!("loguniform needs finite bounds, got [{low}, {high}]"))
                } else if *low <= 0.0 || low >= high {
                    Some(format!("loguniform needs 0 < low < high, got [{low}, {high}]"))
                } else {
                    None
                }
            }
            Dist::Int([low, high]) => (low > high).then(|| format!("int needs low <= high, got [{low}, {high}]")),
        }
    }

    /// The name pipeline.yaml gives this kind of distribution.
    pub fn kind(&self) -> &'static str {
        match self {
            Dist::Choice(_) => "choice",
            Dist::Uniform(_) => "uniform",
            Dist::LogUniform(_) => "loguniform",
            Dist::Int(_) => "int",
        }
    }

    /// Number of values a grid takes from this param: `None` for `uniform`/`loguniform` (saturates at `u64::MAX`).
    fn grid_len(&self) -> Option<u64> {
        match self {
            Dist::Choice(values) => Some(values.len() as u64),
            Dist::Int([low, high]) => {
                let n = (i128::from(*high) - i128::from(*low) + 1).max(0);
                Some(u64::try_from(n).unwrap_or(u64::MAX))
            }
            Dist::Uniform(_) | Dist::LogUniform(_) => None,
        }
    }

    /// The `digit`-th grid value (`digit < grid_len`).
    fn grid_value(&self, digit: u64) -> Option<Value> {
        match self {
            Dist::Choice(values) => values.get(usize::try_from(digit).ok()?).cloned(),
            Dist::Int([low, _]) => i64::try_from(i128::from(*low) + i128::from(digit)).ok().map(Value::from),
            Dist::Uniform(_) | Dist::LogUniform(_) => None,
        }
    }

    /// The values a probe gives this param: every choice value, or both bounds of a range.
    fn extremes(&self) -> Vec<Value> {
        match self {
            Dist::Choice(values) => values.clone(),
            Dist::Uniform([low, high]) | Dist::LogUniform([low, high]) => vec![float(*low), float(*high)],
            Dist::Int([low, high]) => vec![Value::from(*low), Value::from(*high)],
        }
    }
}

/// A float as a JSON value (always a float, `1.0` not `1`; non-finite becomes `null`).
pub(crate) fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

impl Space {
    /// Empty space, empty choice, duplicate choice values, inverted or empty ranges (low >= high for
    /// uniform/loguniform, low > high for int), loguniform low <= 0, non-finite bounds: one error naming the param.
    pub fn check(&self) -> Result<(), String> {
        if self.0.is_empty() {
            return Err("param `space`: empty; name at least one param to search".to_string());
        }
        for (name, dist) in &self.0 {
            if let Some(problem) = dist.problem() {
                return Err(format!("param `space.{name}`: {problem}"));
            }
        }
        Ok(())
    }

    /// Number of grid points if griddable (every param `choice` or `int`), else `None`; saturates at `u64::MAX`.
    /// Does not check the space.
    pub fn grid_size(&self) -> Option<u64> {
        self.0.values().try_fold(1u64, |n, dist| Some(n.saturating_mul(dist.grid_len()?)))
    }

    /// Every point of a grid (choice values; every int in the range), in a fixed order (params in name order,
    /// the last param varying fastest). uniform/loguniform refused with a message saying grid needs choice or
    /// int. Error too if the grid has more than [`MAX_GRID`] (100_000) points.
    pub fn grid(&self) -> Result<Vec<Point>, String> {
        self.check()?;
        if let Some((name, dist)) = self.0.iter().find(|(_, d)| d.grid_len().is_none()) {
            return Err(format!("param `space.{name}`: grid search needs choice or int values, got {}; use random or tpe", dist.kind()));
        }
        let n = self.grid_size().unwrap_or(u64::MAX);
        if n > MAX_GRID {
            return Err(format!("param `space`: the grid has {n} points, more than the {MAX_GRID} a grid search may have"));
        }
        Ok((0..n).filter_map(|i| self.grid_point(i)).collect())
    }

    /// The `index`-th point of the grid in [`Space::grid`]'s order (no size limit), or `None` past its end or if
    /// the space is not griddable.
    pub(crate) fn grid_point(&self, index: u64) -> Option<Point> {
        if index >= self.grid_size()? {
            return None;
        }
        let mut rest = index;
        let mut point = Point::new();
        for (name, dist) in self.0.iter().rev() {
            let len = dist.grid_len()?;
            point.insert(name.clone(), dist.grid_value(rest % len)?);
            rest /= len;
        }
        Some(point)
    }

    /// Points that exercise every value a param can take at its extremes: for each param, each choice value /
    /// both bounds of a range, the other params at their first value/low bound. Used to type-check the space
    /// against the trained kind's params before anything runs. The first point has every param at its first
    /// value/low bound; no point is repeated. Params with an empty choice are left out (see [`Space::check`]).
    pub fn probes(&self) -> Vec<Point> {
        let base: Point = self.0.iter().filter_map(|(name, dist)| Some((name.clone(), dist.extremes().into_iter().next()?))).collect();
        let mut probes = vec![base.clone()];
        for (name, dist) in &self.0 {
            for value in dist.extremes() {
                let mut point = base.clone();
                point.insert(name.clone(), value);
                if !probes.contains(&point) {
                    probes.push(point);
                }
            }
        }
        probes
    }
}
