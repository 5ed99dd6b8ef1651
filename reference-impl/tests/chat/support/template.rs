//! Reads template.yaml (CloudFormation short-form tags and all) for the tests.

use yaml_serde::Value;

pub fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml is readable");
    yaml_serde::from_str(&text).expect("template.yaml is valid YAML")
}

pub fn resource<'a>(template: &'a Value, logical_id: &str) -> &'a Value {
    template
        .get("Resources")
        .and_then(|r| r.get(logical_id))
        .unwrap_or_else(|| panic!("template.yaml has no resource {logical_id}"))
}

/// A tagged value (`!Ref X`) seen through its tag.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}
