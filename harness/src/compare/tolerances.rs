//! Regression tolerances: how much worse (in the metric's better direction) a metric may get
//! before `compare` calls it a regression. Built-in defaults, overridable from YAML:
//!
//! ```yaml
//! defaults: true                 # keep the built-in tolerances for metrics not listed
//! tolerances:
//!   broadcast_latency.p99: {max_worse_pct: 25, max_worse: 5}   # both exceeded: regression
//!   lost: {max_worse: 0}                                         # worse at all
//!   broadcast_latency.p50: {ignore: true}                        # drop a default
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::HarnessError;

/// A metric may get worse by up to `max_worse` (its unit) and `max_worse_pct` (% of the
/// baseline); a change beyond every limit given is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub max_worse: Option<f64>,
    #[serde(default)]
    pub max_worse_pct: Option<f64>,
    #[serde(default)]
    pub ignore: bool,
}

impl Rule {
    const fn pct(p: f64) -> Rule {
        Rule {
            max_worse: None,
            max_worse_pct: Some(p),
            ignore: false,
        }
    }
    const fn abs(a: f64) -> Rule {
        Rule {
            max_worse: Some(a),
            max_worse_pct: None,
            ignore: false,
        }
    }

    /// `worse` ≥ 0 is how far the metric moved in its worse direction; `base` the baseline.
    pub fn exceeded(&self, worse: f64, base: f64) -> bool {
        if self.ignore || worse <= 0.0 {
            return false;
        }
        let abs_ok = self.max_worse.is_some_and(|m| worse <= m);
        let pct_ok = self.max_worse_pct.is_some_and(|m| {
            // From a baseline of 0 any worsening is infinitely many percent.
            base != 0.0 && worse / base.abs() * 100.0 <= m
        });
        !(abs_ok || pct_ok)
    }
}

/// The built-in tolerances: the latency percentiles people watch, and the accounting that
/// must not get worse at all.
pub fn defaults() -> BTreeMap<String, Rule> {
    [
        ("broadcast_latency.p50", Rule::pct(10.0)),
        ("broadcast_latency.p99", Rule::pct(10.0)),
        ("connect_latency.p99", Rule::pct(20.0)),
        ("delivery_ratio", Rule::abs(0.0)),
        ("lost", Rule::abs(0.0)),
        ("dead_lettered", Rule::abs(0.0)),
        ("connect_failed", Rule::abs(0.0)),
        ("thresholds_failed", Rule::abs(0.0)),
    ]
    .into_iter()
    .map(|(k, r)| (k.to_string(), r))
    .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "yes")]
    defaults: bool,
    #[serde(default)]
    tolerances: BTreeMap<String, Rule>,
}

fn yes() -> bool {
    true
}

/// Reads a tolerances file; `known` are the metric names a rule may name.
pub fn load(path: &Path, known: &[String]) -> Result<BTreeMap<String, Rule>, HarnessError> {
    let text = crate::scenario::units::read_text(path).map_err(|e| HarnessError::Input {
        file: path.to_path_buf(),
        message: format!("cannot read the tolerances file: {e}"),
    })?;
    parse(&text, path, known)
}

pub fn parse(
    text: &str,
    path: &Path,
    known: &[String],
) -> Result<BTreeMap<String, Rule>, HarnessError> {
    let bad = |message: String| HarnessError::Input {
        file: path.to_path_buf(),
        message,
    };
    let file: File = yaml_serde::from_str(text)
        .map_err(|e| bad(crate::scenario::with_line(text, e.to_string())))?;
    let mut rules = if file.defaults {
        defaults()
    } else {
        BTreeMap::new()
    };
    for (metric, rule) in file.tolerances {
        let at = line_of(text, &metric)
            .map(|n| format!(" (line {n})"))
            .unwrap_or_default();
        if !known.contains(&metric) {
            return Err(bad(format!(
                "tolerances.{metric}{at}: unknown metric; known: {}",
                known.join(", ")
            )));
        }
        for (field, v) in [
            ("max_worse", rule.max_worse),
            ("max_worse_pct", rule.max_worse_pct),
        ] {
            if v.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                return Err(bad(format!(
                    "tolerances.{metric}.{field}{at}: must be a number, 0 or more"
                )));
            }
        }
        if !rule.ignore && rule.max_worse.is_none() && rule.max_worse_pct.is_none() {
            return Err(bad(format!(
                "tolerances.{metric}{at}: give max_worse, max_worse_pct or ignore: true"
            )));
        }
        rules.insert(metric, rule);
    }
    Ok(rules)
}

/// The 1-based line where `key` is a mapping key, quoted or not.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|k| {
                    l.strip_prefix(k.as_str())
                        .is_some_and(|r| r.trim_start().starts_with(':'))
                })
        })
        .map(|n| n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_allows_up_to_its_limits() {
        let r = Rule::pct(10.0);
        assert!(!r.exceeded(10.0, 100.0));
        assert!(r.exceeded(10.5, 100.0));
        assert!(r.exceeded(1.0, 0.0));
        let both = Rule {
            max_worse: Some(5.0),
            max_worse_pct: Some(10.0),
            ignore: false,
        };
        // 20 % but only 4 ms: within the absolute floor.
        assert!(!both.exceeded(4.0, 20.0));
        assert!(both.exceeded(6.0, 20.0));
        assert!(Rule::abs(0.0).exceeded(1e-9, 1.0));
        assert!(!Rule::abs(0.0).exceeded(0.0, 1.0));
    }
}
