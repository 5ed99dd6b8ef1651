//! template.yaml -> StackModel, against the repository's real template.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dynamowave_local::model::{Naming, Schedule, StackModel, Throttle};
use dynamowave_local::template;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");

fn naming() -> Naming {
    Naming {
        edge_url: "http://127.0.0.1:4566".into(),
        ..Naming::default()
    }
}

fn load_with(overrides: &[(&str, &str)]) -> StackModel {
    let overrides: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    template::load(Path::new(TEMPLATE), &naming(), &overrides).expect("template.yaml loads")
}

fn load() -> StackModel {
    load_with(&[])
}

#[test]
fn dbg() {
    println!("{:#?}", load());
}
