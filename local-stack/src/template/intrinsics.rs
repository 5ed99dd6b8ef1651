//! The intrinsic-function evaluator: turns template values (short `!Tag` or long
//! `Fn::X:` form) into plain values, as CloudFormation does when it creates the stack.
//! `None` is `AWS::NoValue`: the enclosing key or list item disappears.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use yaml_serde::{Mapping, Value};

use super::params::ParamValue;
use super::physical::uuid_like;
use super::props::{describe, kind, scalar_text};
use crate::error::{LocalError, Result};
use crate::model::Naming;

/// A resource as the template declares it (nothing evaluated yet).
pub(super) struct Declared<'t> {
    pub ty: String,
    pub condition: Option<String>,
    pub properties: Option<&'t Value>,
    pub metadata: Option<&'t Value>,
    pub depends_on: Vec<String>,
}

pub(super) enum Memo<T> {
    Busy,
    Done(T),
}

pub(super) struct Eval<'t> {
    pub naming: &'t Naming,
    pub params: BTreeMap<String, ParamValue>,
    pub conditions: BTreeMap<String, &'t Value>,
    pub mappings: Option<&'t Value>,
    pub resources: BTreeMap<String, Declared<'t>>,
    pub(super) cond_memo: RefCell<BTreeMap<String, Memo<bool>>>,
    pub(super) name_memo: RefCell<BTreeMap<String, Memo<String>>>,
    /// > 0 while a condition body is evaluated: only parameters may be referenced there.
    pub(super) in_conditions: Cell<u32>,
    /// Resources referenced since the last `take_deps`, for the dependency graph.
    deps: RefCell<BTreeSet<String>>,
}

/// The intrinsic a value is, if any: `!Tag x` or a one-key `{Ref | Fn::X: x}` mapping.
/// `Condition` counts only where a condition is expected (it is a plain key elsewhere).
pub(super) fn intrinsic_of(value: &Value, conditions: bool) -> Option<(String, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = match tag {
                "Ref" | "Condition" => tag.to_string(),
                other => format!("Fn::{other}"),
            };
            Some((name, &tagged.value))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, arg) = map.iter().next()?;
            let key = key.as_str()?;
            let is = key == "Ref" || key.starts_with("Fn::") || (conditions && key == "Condition");
            is.then(|| (key.to_string(), arg))
        }
        _ => None,
    }
}

pub(super) fn err(at: &str, message: impl Into<String>) -> LocalError {
    LocalError::template(at, message)
}

/// The exact-length argument list of an intrinsic.
pub(super) fn args<'v, const N: usize>(
    name: &str,
    arg: &'v Value,
    at: &str,
) -> Result<&'v [Value; N]> {
    match arg {
        Value::Sequence(items) => <&[Value; N]>::try_from(items.as_slice()).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        err(
            at,
            format!("{name} takes a list of {N} items, found {}", describe(arg)),
        )
    })
}

impl<'t> Eval<'t> {
    pub fn new(
        naming: &'t Naming,
        params: BTreeMap<String, ParamValue>,
        conditions: BTreeMap<String, &'t Value>,
        mappings: Option<&'t Value>,
        resources: BTreeMap<String, Declared<'t>>,
    ) -> Self {
        Eval {
            naming,
            params,
            conditions,
            mappings,
            resources,
            cond_memo: RefCell::default(),
            name_memo: RefCell::default(),
            in_conditions: Cell::new(0),
            deps: RefCell::default(),
        }
    }

    pub fn take_deps(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.deps.borrow_mut())
    }

    /// Resolves every intrinsic in `value`; `at` is its template path.
    pub fn eval(&self, value: &Value, at: &str) -> Result<Option<Value>> {
        if let Some((name, arg)) = intrinsic_of(value, false) {
            return self.intrinsic(&name, arg, at);
        }
        match value {
            Value::Mapping(map) => {
                let mut out = Mapping::new();
                for (key, item) in map {
                    let path = format!("{at}.{}", scalar_text(key).unwrap_or_default());
                    if let Some(resolved) = self.eval(item, &path)? {
                        out.insert(key.clone(), resolved);
                    }
                }
                Ok(Some(Value::Mapping(out)))
            }
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.extend(self.eval(item, &format!("{at}[{i}]"))?);
                }
                Ok(Some(Value::Sequence(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    /// Evaluates to a string; numbers and booleans give their text.
    pub fn eval_text(&self, value: &Value, what: &str, at: &str) -> Result<String> {
        match self.eval(value, at)? {
            Some(v) => scalar_text(&v)
                .ok_or_else(|| err(at, format!("{what} must be a string, found {}", kind(&v)))),
            None => Err(err(at, format!("{what} cannot be AWS::NoValue"))),
        }
    }

    fn intrinsic(&self, name: &str, arg: &Value, at: &str) -> Result<Option<Value>> {
        let string = |s: String| Ok(Some(Value::String(s)));
        match name {
            "Ref" => match arg {
                Value::String(target) => self.reference(target, at),
                other => Err(err(
                    at,
                    format!("Ref takes a name, found {}", describe(other)),
                )),
            },
            "Fn::GetAtt" => self.get_att(arg, at).map(Some),
            "Fn::Sub" => string(self.sub(arg, at)?),
            "Fn::If" => self.if_(arg, at),
            "Fn::Join" => string(self.join(arg, at)?),
            "Fn::Select" => self.select(arg, at),
            "Fn::Split" => {
                let [delim, source] = args::<2>(name, arg, at)?;
                let delim = self.eval_text(delim, "the Fn::Split delimiter", at)?;
                let source = self.eval_text(source, "the Fn::Split source", at)?;
                let parts = source
                    .split(delim.as_str())
                    .map(|p| Value::String(p.into()));
                Ok(Some(Value::Sequence(parts.collect())))
            }
            "Fn::FindInMap" => self.find_in_map(arg, at).map(Some),
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" | "Condition" => Err(err(
                at,
                format!("{name} is only allowed in Conditions (use Fn::If here)"),
            )),
            other => Err(unsupported(other, arg, at)),
        }
    }

    /// `Ref`: a pseudo parameter, a parameter or a resource.
    pub fn reference(&self, target: &str, at: &str) -> Result<Option<Value>> {
        if let Some(value) = self.pseudo(target) {
            return Ok(value);
        }
        if target.starts_with("AWS::") {
            return Err(err(at, format!("Ref {target}: unknown pseudo parameter")));
        }
        if let Some(param) = self.params.get(target) {
            // A list parameter's Ref is a list, as in CloudFormation.
            return Ok(Some(if param.list {
                Value::Sequence(param.items().into_iter().map(Value::String).collect())
            } else {
                Value::String(param.text.clone())
            }));
        }
        if self.target("Ref", target, at)?.is_some() {
            return Ok(Some(Value::String(self.resource_ref(target, at)?)));
        }
        Err(err(
            at,
            format!(
                "Ref {target}: no parameter, resource or pseudo parameter is named \"{target}\""
            ),
        ))
    }

    fn pseudo(&self, name: &str) -> Option<Option<Value>> {
        let n = self.naming;
        let value = match name {
            "AWS::Region" => n.region.clone(),
            "AWS::AccountId" => n.account_id.clone(),
            "AWS::StackName" => n.stack_name.clone(),
            "AWS::StackId" => format!(
                "arn:aws:cloudformation:{}:{}:stack/{}/{}",
                n.region,
                n.account_id,
                n.stack_name,
                uuid_like(&[&n.stack_name])
            ),
            "AWS::Partition" => "aws".into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::NotificationARNs" => return Some(Some(Value::Sequence(Vec::new()))),
            "AWS::NoValue" => return Some(None),
            _ => return None,
        };
        Some(Some(Value::String(value)))
    }

    /// The declared resource `id` for Ref/GetAtt (None if there is none); it must be created,
    /// and Conditions may not reference resources at all.
    pub fn target(&self, intrinsic: &str, id: &str, at: &str) -> Result<Option<&Declared<'t>>> {
        let Some(decl) = self.resources.get(id) else {
            return Ok(None);
        };
        if self.in_conditions.get() > 0 {
            return Err(err(
                at,
                format!("{intrinsic} {id}: conditions can only use parameters, not resources"),
            ));
        }
        if let Some(cond) = &decl.condition
            && !self.condition(cond, at)?
        {
            return Err(err(
                at,
                format!(
                    "{intrinsic} {id}: the resource is not created (condition {cond} is false)"
                ),
            ));
        }
        self.deps.borrow_mut().insert(id.to_string());
        Ok(Some(decl))
    }

    /// Whether the resource is created: it has no Condition, or its condition holds.
    pub fn is_created(&self, id: &str, at: &str) -> Result<bool> {
        match self.resources.get(id).and_then(|d| d.condition.as_deref()) {
            Some(cond) => self.condition(cond, at),
            None => Ok(true),
        }
    }

    fn get_att(&self, arg: &Value, at: &str) -> Result<Value> {
        let (id, attr) = match arg {
            Value::String(s) => s
                .split_once('.')
                .map(|(a, b)| (a.to_string(), b.to_string())),
            Value::Sequence(items) => match items.as_slice() {
                [Value::String(id), attr] => Some((
                    id.clone(),
                    self.eval_text(attr, "the Fn::GetAtt attribute", at)?,
                )),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            err(
                at,
                format!(
                    "Fn::GetAtt takes \"Resource.Attribute\" or [Resource, Attribute], found {}",
                    describe(arg)
                ),
            )
        })?;
        self.attribute(&id, &attr, at)
    }

    fn if_(&self, arg: &Value, at: &str) -> Result<Option<Value>> {
        let [cond, yes, no] = args::<3>("Fn::If", arg, at)?;
        let Value::String(cond) = cond else {
            return Err(err(
                at,
                format!("Fn::If needs a condition name, found {}", describe(cond)),
            ));
        };
        if self.condition(cond, at)? {
            self.eval(yes, at)
        } else {
            self.eval(no, at)
        }
    }

    fn join(&self, arg: &Value, at: &str) -> Result<String> {
        let [delim, list] = args::<2>("Fn::Join", arg, at)?;
        let delim = self.eval_text(delim, "the Fn::Join delimiter", at)?;
        let items = match self.eval(list, at)? {
            Some(Value::Sequence(items)) => items,
            other => {
                let found = other.as_ref().map_or("AWS::NoValue", kind);
                return Err(err(
                    at,
                    format!("Fn::Join needs a list of strings, found {found}"),
                ));
            }
        };
        let texts: Option<Vec<String>> = items.iter().map(scalar_text).collect();
        let texts = texts.ok_or_else(|| err(at, "Fn::Join needs a list of strings"))?;
        Ok(texts.join(&delim))
    }

    fn select(&self, arg: &Value, at: &str) -> Result<Option<Value>> {
        let [index, list] = args::<2>("Fn::Select", arg, at)?;
        let raw = self.eval_text(index, "the Fn::Select index", at)?;
        let index: usize = raw.trim().parse().map_err(|_| {
            err(
                at,
                format!("Fn::Select index \"{raw}\" is not a whole number"),
            )
        })?;
        match self.eval(list, at)? {
            Some(Value::Sequence(items)) => items.get(index).cloned().map(Some).ok_or_else(|| {
                err(
                    at,
                    format!(
                        "Fn::Select index {index} is out of range ({} items)",
                        items.len()
                    ),
                )
            }),
            _ => Err(err(at, "Fn::Select needs a list")),
        }
    }

    fn find_in_map(&self, arg: &Value, at: &str) -> Result<Value> {
        let [map, top, second] = args::<3>("Fn::FindInMap", arg, at)?;
        let map = self.eval_text(map, "the Fn::FindInMap map name", at)?;
        let top = self.eval_text(top, "the Fn::FindInMap key", at)?;
        let second = self.eval_text(second, "the Fn::FindInMap key", at)?;
        let Some(mappings) = self.mappings else {
            return Err(err(
                at,
                format!("Fn::FindInMap {map}: the template has no Mappings"),
            ));
        };
        mappings
            .get(map.as_str())
            .and_then(|m| m.get(top.as_str()))
            .and_then(|m| m.get(second.as_str()))
            .cloned()
            .ok_or_else(|| {
                err(
                    at,
                    format!("Fn::FindInMap [{map}, {top}, {second}]: no such entry in Mappings"),
                )
            })
    }
}

/// The intrinsics the local stack cannot evaluate, each with the reason.
fn unsupported(name: &str, arg: &Value, at: &str) -> LocalError {
    let why = match name {
        "Fn::ImportValue" => "it reads another stack's exports",
        "Fn::GetAZs" => "there are no availability zones offline",
        "Fn::Transform" => "macros are not run",
        "Fn::Base64" | "Fn::Cidr" => "nothing the chat needs uses it",
        n if n.starts_with("Fn::") => "it is not part of what the local stack evaluates",
        _ => "it is not an intrinsic function",
    };
    err(
        at,
        format!(
            "{name} {} is not supported by the local stack: {why}",
            describe(arg)
        ),
    )
}
