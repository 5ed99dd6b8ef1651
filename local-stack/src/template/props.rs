//! Typed reads of resolved (intrinsic-free) template values. Every failure is an error at
//! the template path of the value, so a bad property is easy to find.

use std::ops::RangeInclusive;

use yaml_serde::{Mapping, Value};

use crate::error::{LocalError, Result};

/// A resolved mapping (or an absent one) and where it sits in the template.
pub(super) struct Props<'a> {
    map: Option<&'a Mapping>,
    pub at: String,
}

impl<'a> Props<'a> {
    /// `None` and `null` read as an empty mapping: every property is then absent.
    pub fn new(value: Option<&'a Value>, at: impl Into<String>) -> Result<Self> {
        let at = at.into();
        match value {
            None | Some(Value::Null) => Ok(Props { map: None, at }),
            Some(Value::Mapping(map)) => Ok(Props { map: Some(map), at }),
            Some(other) => Err(LocalError::template(
                at,
                format!("expected a mapping, found {}", kind(other)),
            )),
        }
    }

    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.at)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map?.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>> {
        self.get(key).map(|v| text(v, &self.path(key))).transpose()
    }

    pub fn required(&self, key: &str) -> Result<String> {
        self.string(key)?
            .ok_or_else(|| LocalError::template(&self.at, format!("{key} is required")))
    }

    pub fn uint(&self, key: &str, range: RangeInclusive<u64>) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| uint_in(v, range, &self.path(key)))
            .transpose()
    }

    pub fn float(&self, key: &str) -> Result<Option<f64>> {
        self.get(key).map(|v| float(v, &self.path(key))).transpose()
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| boolean(v, &self.path(key)))
            .transpose()
    }

    pub fn child(&self, key: &str) -> Result<Props<'a>> {
        Props::new(self.get(key), self.path(key))
    }

    /// Items of a list property with their paths (`Key[0]`, `Key[1]`, ...).
    pub fn list(&self, key: &str) -> Result<Vec<(String, &'a Value)>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{}[{i}]", self.path(key)), v))
                .collect()),
            Some(other) => Err(LocalError::template(
                self.path(key),
                format!("expected a list, found {}", kind(other)),
            )),
        }
    }

    /// Entries of the mapping, keys as text.
    pub fn entries(&self) -> Result<Vec<(String, &'a Value)>> {
        let Some(map) = self.map else {
            return Ok(Vec::new());
        };
        map.iter()
            .map(|(k, v)| Ok((text(k, &self.at)?, v)))
            .collect()
    }
}

/// A scalar's text: strings as they are, numbers and booleans as CloudFormation prints them.
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn text(value: &Value, at: &str) -> Result<String> {
    scalar_text(value).ok_or_else(|| {
        LocalError::template(at, format!("expected a string, found {}", kind(value)))
    })
}

/// CloudFormation passes numbers as strings too (`Ref` to a Number parameter is a string).
pub(super) fn uint_in(value: &Value, range: RangeInclusive<u64>, at: &str) -> Result<u64> {
    let raw = text(value, at)?;
    let n: u64 = raw.trim().parse().map_err(|_| {
        LocalError::template(at, format!("expected a whole number, found \"{raw}\""))
    })?;
    if !range.contains(&n) {
        return Err(LocalError::template(
            at,
            format!("{n} is out of range ({}..={})", range.start(), range.end()),
        ));
    }
    Ok(n)
}

pub(super) fn float(value: &Value, at: &str) -> Result<f64> {
    let raw = text(value, at)?;
    match raw.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(LocalError::template(
            at,
            format!("expected a non-negative number, found \"{raw}\""),
        )),
    }
}

/// Booleans, or the strings "true"/"false" (any case), as CloudFormation accepts them.
pub(super) fn boolean(value: &Value, at: &str) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(LocalError::template(
            at,
            format!("expected true or false, found {}", describe(other)),
        )),
    }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A short one-line rendering of a value for error messages.
pub(super) fn describe(value: &Value) -> String {
    if let Value::String(s) = value {
        return format!("\"{s}\"");
    }
    let rendered = yaml_serde::to_string(value).unwrap_or_else(|_| kind(value).to_string());
    let line = rendered.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 80 {
        format!("{}...", line.chars().take(80).collect::<String>())
    } else {
        line
    }
}
