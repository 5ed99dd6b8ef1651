//! `Fn::Sub`: `${Param}`, `${Resource}`, `${Resource.Attr}`, `${AWS::X}`, `${!Literal}`,
//! and the `[string, {variables}]` form.

use std::collections::BTreeMap;

use yaml_serde::Value;

use super::intrinsics::{Eval, err};
use super::props::{describe, scalar_text};
use crate::error::Result;

impl Eval<'_> {
    /// `Fn::Sub`: `${Param}`, `${Resource}`, `${Resource.Attr}`, `${AWS::X}`, `${!Literal}`.
    pub(super) fn sub(&self, arg: &Value, at: &str) -> Result<String> {
        let (template, vars) = match arg {
            Value::String(s) => Some((s.as_str(), None)),
            Value::Sequence(items) => match items.as_slice() {
                [Value::String(s), Value::Mapping(vars)] => Some((s.as_str(), Some(vars))),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            let found = describe(arg);
            err(
                at,
                format!("Fn::Sub takes a string or [string, {{variables}}], found {found}"),
            )
        })?;
        let mut values = BTreeMap::new();
        for (name, value) in vars.into_iter().flatten() {
            let name = scalar_text(name).unwrap_or_default();
            let text = self.eval_text(value, &format!("Fn::Sub variable {name}"), at)?;
            values.insert(name, text);
        }
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                // An unterminated `${` is literal text.
                out.push_str(&rest[start..]);
                return Ok(out);
            };
            let inner = &after[..end];
            match inner.strip_prefix('!') {
                Some(literal) => out.extend(["${", literal, "}"]),
                None => out.push_str(&self.sub_var(inner, &values, at)?),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn sub_var(&self, name: &str, values: &BTreeMap<String, String>, at: &str) -> Result<String> {
        if let Some(value) = values.get(name) {
            return Ok(value.clone());
        }
        let value = match name.split_once('.') {
            Some((id, attr)) if !name.starts_with("AWS::") => Some(self.attribute(id, attr, at)?),
            _ => self.reference(name, at)?,
        };
        match value.as_ref().and_then(scalar_text) {
            Some(text) => Ok(text),
            None => Err(err(
                at,
                format!("Fn::Sub ${{{name}}}: the value is not a string"),
            )),
        }
    }
}
