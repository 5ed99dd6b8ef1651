//! template.yaml -> `StackModel`: parameters, conditions and intrinsics resolved the way
//! CloudFormation (with the SAM transform) would, for the resources the local stack runs.
//!
//! Every resource that is created has its Properties evaluated, modelled or not, so an
//! intrinsic the local stack cannot resolve fails loading, as it would fail a deployment.

mod apis;
mod conditions;
mod data;
mod functions;
mod intrinsics;
mod params;
mod physical;
mod props;
mod sub;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use yaml_serde::{Mapping, Value};

use self::intrinsics::{Declared, Eval, err};
use self::physical::{
    API, FUNCTION, INTEGRATION, LAMBDA, QUEUE, ROUTE, ROUTE_RESPONSE, STAGE, TABLE,
};
use self::props::{Props, text};
use crate::error::{LocalError, Result};
use crate::model::{Naming, StackModel};

const SECTIONS: &[&str] = &[
    "AWSTemplateFormatVersion",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Transform",
    "Globals",
    "Resources",
    "Outputs",
];
const RESOURCE_KEYS: &[&str] = &[
    "Type",
    "Properties",
    "Condition",
    "DependsOn",
    "Metadata",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UpdatePolicy",
    "CreationPolicy",
];
const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";

/// Reads and resolves the template at `path`; `overrides` set parameter values.
pub fn load(
    path: &Path,
    naming: &Naming,
    overrides: &BTreeMap<String, String>,
) -> Result<StackModel> {
    let read_error = |message: String| LocalError::TemplateRead {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
    let doc = read_yaml(&text).map_err(read_error)?;
    build(&doc, naming, overrides)
}

/// Resolves a template given as text; `overrides` set parameter values.
pub fn parse(
    text: &str,
    naming: &Naming,
    overrides: &BTreeMap<String, String>,
) -> Result<StackModel> {
    let doc = read_yaml(text).map_err(|message| LocalError::template("(document)", message))?;
    build(&doc, naming, overrides)
}

fn read_yaml(text: &str) -> std::result::Result<Value, String> {
    yaml_serde::from_str(text).map_err(|e| format!("not a valid YAML template: {e}"))
}

fn build(doc: &Value, naming: &Naming, overrides: &BTreeMap<String, String>) -> Result<StackModel> {
    let Value::Mapping(top) = doc else {
        return Err(err("(document)", "a template is a mapping of sections"));
    };
    let sam = check_sections(top)?;
    let params = params::resolve(top.get("Parameters"), overrides)?;
    let conditions = Props::new(top.get("Conditions"), "Conditions")?
        .entries()?
        .into_iter()
        .collect();
    let (order, resources) = declared(top.get("Resources"), sam)?;
    if let Some(clash) = order.iter().find(|id| params.contains_key(*id)) {
        return Err(err(
            &format!("Resources.{clash}"),
            format!("{clash} is both a parameter and a resource; logical ids must be unique"),
        ));
    }
    let eval = Eval::new(naming, params, conditions, top.get("Mappings"), resources);
    let mut model = StackModel {
        naming: naming.clone(),
        parameters: eval
            .params
            .iter()
            .map(|(name, value)| (name.clone(), value.text.clone()))
            .collect(),
        ..StackModel::default()
    };
    let graph = resources_into(&eval, top, &order, &mut model)?;
    check_cycles(&graph)?;
    model.outputs = outputs(top.get("Outputs"), &eval)?;
    Ok(model)
}

/// Checks the top-level sections; true if the SAM transform is declared.
fn check_sections(top: &Mapping) -> Result<bool> {
    for key in top.keys() {
        let key = key.as_str().unwrap_or_default();
        if !SECTIONS.contains(&key) {
            return Err(err(key, format!("unknown top-level section {key:?}")));
        }
    }
    if top.contains_key("Rules") {
        return Err(err("Rules", "Rules are not supported by the local stack"));
    }
    let transforms = match top.get("Transform") {
        None => Vec::new(),
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(one) => vec![one],
    };
    let sam = !transforms.is_empty();
    for transform in transforms {
        if transform.as_str() != Some(SAM_TRANSFORM) {
            return Err(err(
                "Transform",
                format!(
                    "only {SAM_TRANSFORM} is supported by the local stack (macros are not run), found {}",
                    props::describe(transform)
                ),
            ));
        }
    }
    Ok(sam)
}

/// The declared resources, in template order and by logical id.
type Declarations<'t> = (Vec<String>, BTreeMap<String, Declared<'t>>);

fn declared(section: Option<&Value>, sam: bool) -> Result<Declarations<'_>> {
    let entries = Props::new(section, "Resources")?.entries()?;
    if entries.is_empty() {
        return Err(err("Resources", "a template needs at least one resource"));
    }
    let mut order = Vec::new();
    let mut resources = BTreeMap::new();
    for (id, raw) in &entries {
        let r = Props::new(Some(*raw), format!("Resources.{id}"))?;
        if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(err(
                &r.at,
                format!("logical id {id:?} must be alphanumeric"),
            ));
        }
        if let Some((key, _)) = r
            .entries()?
            .into_iter()
            .find(|(k, _)| !RESOURCE_KEYS.contains(&k.as_str()))
        {
            return Err(err(&r.at, format!("unknown resource attribute {key:?}")));
        }
        let depends_on = match r.get("DependsOn") {
            None => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|d| text(d, &r.path("DependsOn")))
                .collect::<Result<_>>()?,
            Some(one) => vec![text(one, &r.path("DependsOn"))?],
        };
        if let Some(unknown) = depends_on
            .iter()
            .find(|d| !entries.iter().any(|(e, _)| e == *d))
        {
            return Err(err(
                &r.path("DependsOn"),
                format!("DependsOn names no resource: {unknown}"),
            ));
        }
        let ty = r.required("Type")?;
        if !sam && ty.starts_with("AWS::Serverless::") {
            return Err(err(
                &r.path("Type"),
                format!("{ty} needs Transform: {SAM_TRANSFORM}"),
            ));
        }
        let decl = Declared {
            ty,
            condition: r.string("Condition")?,
            properties: r.get("Properties"),
            metadata: r.get("Metadata"),
            depends_on,
        };
        order.push(id.clone());
        resources.insert(id.clone(), decl);
    }
    Ok((order, resources))
}

/// Evaluates every created resource and models the ones the local stack runs; returns the
/// dependency graph (references and DependsOn) by logical id.
fn resources_into(
    eval: &Eval,
    top: &Mapping,
    order: &[String],
    model: &mut StackModel,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut graph = BTreeMap::new();
    let mut pending = apis::Pending::default();
    let mut globals = None;
    for (id, decl) in order
        .iter()
        .filter_map(|id| Some((id, eval.resources.get(id)?)))
    {
        if !eval.is_created(id, &format!("Resources.{id}.Condition"))? {
            tracing::debug!(resource = %id, "condition is false; not created");
            continue;
        }
        eval.take_deps();
        let mut props = match decl.properties {
            Some(p) => eval.eval(p, &format!("Resources.{id}.Properties"))?,
            None => None,
        };
        let mut deps = eval.take_deps();
        deps.extend(decl.depends_on.iter().cloned());
        if decl.ty == FUNCTION {
            if globals.is_none() {
                globals = Some(function_globals(eval, top)?);
            }
            if let Some((global, global_deps)) = &globals {
                deps.extend(global_deps.iter().cloned());
                let own = props.unwrap_or_else(|| Value::Mapping(Mapping::new()));
                props = Some(functions::merge_globals(global, own));
            }
        }
        model_resource(eval, id, decl, props, model, &mut pending)?;
        graph.insert(id.clone(), deps);
    }
    apis::attach(eval, &mut model.websocket_apis, &pending)?;
    Ok(graph)
}

/// Adds one resolved resource to the model (routes, integrations and stages wait in
/// `pending` until every API is known); other types only needed evaluating.
fn model_resource(
    eval: &Eval,
    id: &str,
    decl: &Declared,
    props: Option<Value>,
    model: &mut StackModel,
    pending: &mut apis::Pending,
) -> Result<()> {
    let key = id.to_string();
    match decl.ty.as_str() {
        FUNCTION | LAMBDA => {
            let kind = if decl.ty == FUNCTION {
                functions::Kind::Sam
            } else {
                functions::Kind::Lambda
            };
            let spec = functions::function(eval, id, kind, props.as_ref(), decl.metadata)?;
            model.functions.insert(key, spec);
        }
        TABLE => {
            model
                .tables
                .insert(key, data::table(eval, id, props.as_ref())?);
        }
        QUEUE => {
            model
                .queues
                .insert(key, data::queue(eval, id, props.as_ref())?);
        }
        API => {
            if let Some(api) = apis::api(eval, id, props.as_ref())? {
                model.websocket_apis.insert(key, api);
            }
        }
        ROUTE => pending.routes.push((key, props)),
        INTEGRATION => {
            pending.integrations.insert(key, props);
        }
        STAGE => pending.stages.push((key, props)),
        ROUTE_RESPONSE => pending.route_responses.push((key, props)),
        ty if ty.starts_with("AWS::Serverless::") => {
            tracing::warn!(
                resource = id,
                r#type = ty,
                "SAM resource type not modelled; ignored"
            );
        }
        _ => {}
    }
    Ok(())
}

/// `Globals.Function`, evaluated once, and the resources it references.
fn function_globals(eval: &Eval, top: &Mapping) -> Result<(Value, BTreeSet<String>)> {
    eval.take_deps();
    let globals = Props::new(top.get("Globals"), "Globals")?;
    let resolved = match globals.get("Function") {
        Some(raw) => eval.eval(raw, "Globals.Function")?,
        None => None,
    };
    let resolved = resolved.unwrap_or_else(|| Value::Mapping(Mapping::new()));
    Ok((resolved, eval.take_deps()))
}

/// CloudFormation rejects templates whose resources depend on each other in a circle.
fn check_cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Result<()> {
    let mut done = BTreeSet::new();
    for start in graph.keys() {
        visit(graph, start, &mut done, &mut Vec::new())?;
    }
    Ok(())
}

fn visit<'g>(
    graph: &'g BTreeMap<String, BTreeSet<String>>,
    id: &'g str,
    done: &mut BTreeSet<&'g str>,
    path: &mut Vec<&'g str>,
) -> Result<()> {
    if done.contains(id) {
        return Ok(());
    }
    if let Some(start) = path.iter().position(|p| *p == id) {
        let cycle = [&path[start..], &[id]].concat().join(" -> ");
        return Err(err(
            &format!("Resources.{id}"),
            format!("circular dependency between resources: {cycle}"),
        ));
    }
    path.push(id);
    for dep in graph.get(id).into_iter().flatten() {
        if graph.contains_key(dep) {
            visit(graph, dep, done, path)?;
        }
    }
    path.pop();
    done.insert(id);
    Ok(())
}

/// Every output whose condition holds, resolved to a string.
fn outputs(section: Option<&Value>, eval: &Eval) -> Result<BTreeMap<String, String>> {
    let outputs = Props::new(section, "Outputs")?;
    let mut resolved = BTreeMap::new();
    for (name, raw) in outputs.entries()? {
        let o = Props::new(Some(raw), outputs.path(&name))?;
        if let Some(cond) = o.string("Condition")?
            && !eval.condition(&cond, &o.path("Condition"))?
        {
            continue;
        }
        let value = o
            .get("Value")
            .ok_or_else(|| err(&o.at, "an output needs a Value"))?;
        let value = eval.eval_text(value, "an output's Value", &o.path("Value"))?;
        if let Some(export) = o.get("Export") {
            eval.eval(export, &o.path("Export"))?;
        }
        resolved.insert(name, value);
    }
    Ok(resolved)
}
