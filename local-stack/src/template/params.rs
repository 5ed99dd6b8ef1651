//! Parameters: `Default`, overrides, and the constraints CloudFormation checks before it
//! creates anything (AllowedValues, AllowedPattern, lengths, number bounds).

use std::collections::BTreeMap;

use yaml_serde::Value;

use super::props::{Props, text};
use crate::error::{LocalError, Result};

/// A resolved parameter: its text, and whether `Ref` yields a list.
#[derive(Debug, Clone)]
pub(super) struct ParamValue {
    pub text: String,
    pub list: bool,
}

impl ParamValue {
    pub fn items(&self) -> Vec<String> {
        self.text.split(',').map(str::to_string).collect()
    }
}

#[derive(Clone, Copy)]
struct Kind {
    list: bool,
    number: bool,
}

pub(super) fn resolve(
    section: Option<&Value>,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, ParamValue>> {
    let declared = Props::new(section, "Parameters")?.entries()?;
    if let Some(unknown) = overrides
        .keys()
        .find(|name| !declared.iter().any(|(d, _)| d == *name))
    {
        let names: Vec<&str> = declared.iter().map(|(d, _)| d.as_str()).collect();
        return Err(LocalError::template(
            "Parameters",
            format!(
                "override \"{unknown}\" names no parameter of the template (it has: {})",
                names.join(", ")
            ),
        ));
    }
    declared
        .into_iter()
        .map(|(name, decl)| {
            let value = parameter(&name, decl, overrides.get(&name))?;
            Ok((name, value))
        })
        .collect()
}

fn parameter(name: &str, decl: &Value, given: Option<&String>) -> Result<ParamValue> {
    let at = format!("Parameters.{name}");
    let d = Props::new(Some(decl), &at)?;
    let ty = d.required("Type")?;
    let kind = kind_of(&ty).map_err(|why| {
        LocalError::template(d.path("Type"), format!("parameter \"{name}\": {why}"))
    })?;
    let value = match (given, d.get("Default")) {
        (Some(v), _) => v.clone(),
        (None, Some(default)) => text(default, &d.path("Default"))?,
        (None, None) => {
            return Err(LocalError::template(
                at,
                format!("parameter \"{name}\" has no Default and no override gives it a value"),
            ));
        }
    };
    // CloudFormation checks constraints per element for list types.
    let items: Vec<&str> = if kind.list {
        value.split(',').collect()
    } else {
        vec![value.as_str()]
    };
    for item in items {
        check(&d, kind, item).map_err(|why| {
            let hint = d
                .string("ConstraintDescription")
                .ok()
                .flatten()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            LocalError::template(
                &at,
                format!("parameter \"{name}\" value \"{item}\" {why}{hint}"),
            )
        })?;
    }
    Ok(ParamValue {
        text: value,
        list: kind.list,
    })
}

fn kind_of(ty: &str) -> Result<Kind, String> {
    let plain = |list, number| Ok(Kind { list, number });
    match ty {
        "String" => plain(false, false),
        "Number" => plain(false, true),
        "List<Number>" => plain(true, true),
        "CommaDelimitedList" => plain(true, false),
        t if t.starts_with("AWS::SSM::Parameter::") => Err(format!(
            "type {t} reads Systems Manager, which the local stack does not have"
        )),
        // AWS-specific types (AWS::EC2::VPC::Id, ...) are strings; nothing checks them offline.
        t if t.starts_with("List<AWS::") && t.ends_with('>') => plain(true, false),
        t if t.starts_with("AWS::") => plain(false, false),
        t => Err(format!("unknown parameter type {t}")),
    }
}

/// One value against the declared constraints; the error completes "value \"v\" ...".
fn check(d: &Props, kind: Kind, value: &str) -> Result<(), String> {
    if kind.number {
        let n = number(value).ok_or("is not a number")?;
        if let Some(min) = bound(d, "MinValue")?
            && n < min
        {
            return Err(format!("is less than MinValue {min}"));
        }
        if let Some(max) = bound(d, "MaxValue")?
            && n > max
        {
            return Err(format!("is greater than MaxValue {max}"));
        }
    } else {
        let len = value.chars().count() as f64;
        if let Some(min) = bound(d, "MinLength")?
            && len < min
        {
            return Err(format!("is shorter than MinLength {min}"));
        }
        if let Some(max) = bound(d, "MaxLength")?
            && len > max
        {
            return Err(format!("is longer than MaxLength {max}"));
        }
    }
    if let Some(Value::Sequence(allowed)) = d.get("AllowedValues") {
        let allowed: Vec<String> = allowed
            .iter()
            .filter_map(super::props::scalar_text)
            .collect();
        if !allowed.iter().any(|a| a == value) {
            return Err(format!(
                "is not one of the AllowedValues: {}",
                allowed.join(", ")
            ));
        }
    }
    if let Some(pattern) = d.string("AllowedPattern").map_err(|e| e.to_string())? {
        // CloudFormation (Java `matches`) requires the whole value to match.
        let re = regex_lite::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            format!("cannot be checked: AllowedPattern {pattern:?} is invalid: {e}")
        })?;
        if !re.is_match(value) {
            return Err(format!("does not match AllowedPattern {pattern}"));
        }
    }
    Ok(())
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn bound(d: &Props, key: &str) -> Result<Option<f64>, String> {
    match d.string(key).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(raw) => number(&raw)
            .map(Some)
            .ok_or_else(|| format!("cannot be checked: {key} \"{raw}\" is not a number")),
    }
}
