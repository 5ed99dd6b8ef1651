//! ListMetrics and PutMetricData.

use serde_json::Value;

use super::shape::{
    Out, combination, dimensions_at, invalid, list_at, missing, num_at, str_at, time_at,
};
use super::store::{MetricId, MetricStore, Sample, Statistics};
use crate::edge::AwsError;

const LIST_PAGE: usize = 500;
const MAX_METRIC_DATA: usize = 1_000;
const MAX_VALUES: usize = 150;

/// Metrics with a published datapoint, filtered by namespace, name and dimensions (a
/// filter without a value matches any value), 500 a page.
pub fn list_metrics(store: &MetricStore, input: &Value, now_ms: i64) -> Result<Out, AwsError> {
    let namespace = str_at(input, "Namespace");
    let name = str_at(input, "MetricName");
    let filters = dimensions_at(input, "ListMetrics", 10)?;
    let recent = match str_at(input, "RecentlyActive") {
        None => None,
        Some("PT3H") => Some(now_ms / 1000 - 3 * 3600),
        Some(other) => {
            return Err(invalid(format!(
                "The value {other} for parameter RecentlyActive is invalid (PT3H)."
            )));
        }
    };
    let after = match str_at(input, "NextToken") {
        Some(t) => Some(
            decode_token(t)
                .ok_or_else(|| super::shape::bad_token(format!("The NextToken {t} is invalid.")))?,
        ),
        None => None,
    };
    let mut matching = store.metrics(now_ms).into_iter().filter(|m| {
        namespace.is_none_or(|n| n == m.namespace)
            && name.is_none_or(|n| n == m.name)
            && filters.iter().all(|(k, v)| {
                m.dimensions
                    .iter()
                    .any(|(mk, mv)| mk == k && v.as_ref().is_none_or(|v| v == mv))
            })
            && recent.is_none_or(|since| !store.range(m, since, i64::MAX, now_ms).is_empty())
            && after.as_ref().is_none_or(|a| m > a)
    });
    let page: Vec<MetricId> = matching.by_ref().take(LIST_PAGE).collect();
    let more = matching.next().is_some();
    let metrics = page.iter().map(metric_out).collect();
    let mut out = vec![("Metrics".to_string(), Out::List(metrics))];
    if more && let Some(last) = page.last() {
        out.push(("NextToken".into(), Out::str(encode_token(last))));
    }
    Ok(Out::Map(out))
}

fn metric_out(m: &MetricId) -> Out {
    Out::map([
        ("Namespace", Out::str(&m.namespace)),
        ("MetricName", Out::str(&m.name)),
        (
            "Dimensions",
            Out::List(
                m.dimensions
                    .iter()
                    .map(|(k, v)| Out::map([("Name", Out::str(k)), ("Value", Out::str(v))]))
                    .collect(),
            ),
        ),
    ])
}

/// The last metric of a page, as JSON in hex: opaque to callers, exact for us.
fn encode_token(m: &MetricId) -> String {
    let v = serde_json::json!([m.namespace, m.name, m.dimensions]);
    format!("lm1{}", hex::encode(v.to_string()))
}

fn decode_token(t: &str) -> Option<MetricId> {
    let bytes = hex::decode(t.strip_prefix("lm1")?).ok()?;
    let (namespace, name, dimensions): (String, String, Vec<(String, String)>) =
        serde_json::from_slice(&bytes).ok()?;
    Some(MetricId {
        namespace,
        name,
        dimensions,
    })
}

/// Custom metrics. Namespaces starting with `AWS/` are AWS's own and refused, as AWS does.
pub fn put_metric_data(store: &MetricStore, input: &Value, now_ms: i64) -> Result<Out, AwsError> {
    let namespace = str_at(input, "Namespace").ok_or_else(|| missing("Namespace"))?;
    if namespace.starts_with("AWS/") || namespace.is_empty() || namespace.len() > 255 {
        return Err(invalid(format!(
            "The value {namespace} for parameter Namespace is invalid."
        )));
    }
    let data = list_at(input, "MetricData");
    if data.is_empty() {
        return Err(missing("MetricData"));
    }
    if data.len() > MAX_METRIC_DATA {
        return Err(invalid(format!(
            "The collection MetricData must not have a size greater than {MAX_METRIC_DATA}."
        )));
    }
    // Validate everything before storing anything: a refused request stores nothing.
    let mut parsed = Vec::with_capacity(data.len());
    for (i, d) in data.iter().enumerate() {
        parsed.push(parse_datum(
            namespace,
            d,
            &format!("MetricData.member.{}", i + 1),
            now_ms,
        )?);
    }
    for (id, second, samples, unit) in parsed {
        for s in samples {
            store.put_at(id.clone(), second, s, unit.as_deref());
        }
    }
    Ok(Out::Map(Vec::new()))
}

type Datum = (MetricId, i64, Vec<Sample>, Option<String>);

fn parse_datum(namespace: &str, d: &Value, path: &str, now_ms: i64) -> Result<Datum, AwsError> {
    let name = str_at(d, "MetricName").ok_or_else(|| missing(&format!("{path}.MetricName")))?;
    let dims = dimensions_at(d, path, 30)?;
    let dims: Vec<(&str, &str)> = dims
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or("")))
        .collect();
    let second = match time_at(d, "Timestamp")? {
        Some(t) => t.floor() as i64,
        None => now_ms / 1000,
    };
    // AWS accepts timestamps up to two weeks back and two hours ahead.
    let now = now_ms / 1000;
    if second < now - 14 * 86_400 || second > now + 2 * 3600 {
        return Err(invalid(format!(
            "The parameter {path}.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future."
        )));
    }
    let samples = samples(d, path)?;
    Ok((
        MetricId::new(namespace, name, &dims),
        second,
        samples,
        str_at(d, "Unit").map(str::to_string),
    ))
}

fn samples(d: &Value, path: &str) -> Result<Vec<Sample>, AwsError> {
    let value = num_at(d, "Value", &format!("{path}.Value"))?;
    let values = list_at(d, "Values");
    let counts = list_at(d, "Counts");
    let stats = d.get("StatisticValues").filter(|s| !s.is_null());
    let given = [value.is_some(), !values.is_empty(), stats.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(combination(format!(
            "Exactly one of {path}.Value, {path}.Values and {path}.StatisticValues must be given."
        )));
    }
    let finite = |x: f64, p: &str| {
        if x.is_finite() {
            Ok(x)
        } else {
            Err(invalid(format!(
                "The value {x} for parameter {p} is invalid."
            )))
        }
    };
    if let Some(v) = value {
        return Ok(vec![Sample::Value(finite(v, path)?, 1.0)]);
    }
    if let Some(s) = stats {
        let field = |k: &str| {
            num_at(s, k, &format!("{path}.StatisticValues.{k}"))?
                .ok_or_else(|| missing(&format!("{path}.StatisticValues.{k}")))
        };
        let st = Statistics {
            sample_count: field("SampleCount")?,
            sum: field("Sum")?,
            min: field("Minimum")?,
            max: field("Maximum")?,
        };
        if st.sample_count <= 0.0 || st.min > st.max {
            return Err(invalid(format!("{path}.StatisticValues are inconsistent.")));
        }
        return Ok(vec![Sample::Statistics(st)]);
    }
    if values.len() > MAX_VALUES || (!counts.is_empty() && counts.len() != values.len()) {
        return Err(invalid(format!(
            "{path}.Values must have at most {MAX_VALUES} entries and {path}.Counts as many as Values."
        )));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let p = format!("{path}.Values.member.{}", i + 1);
            let v =
                super::shape::as_num(v).ok_or_else(|| invalid(format!("{p} is not a number.")))?;
            let w = counts.get(i).and_then(super::shape::as_num).unwrap_or(1.0);
            Ok(Sample::Value(finite(v, &p)?, w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::store::now_ms;
    use serde_json::json;

    #[test]
    fn put_then_list_with_filters_and_pages() {
        let store = MetricStore::default();
        let data: Vec<Value> = (0..501)
            .map(|i| json!({"MetricName": format!("m{i:03}"), "Dimensions": [{"Name": "D", "Value": "x"}], "Value": 1}))
            .collect();
        let now = now_ms();
        for chunk in data.chunks(250) {
            put_metric_data(
                &store,
                &json!({"Namespace": "App", "MetricData": chunk}),
                now,
            )
            .unwrap();
        }
        let first = list_metrics(&store, &json!({"Namespace": "App"}), now).unwrap();
        let Out::Map(m) = &first else { panic!() };
        let (Out::List(page), Out::Str(token)) = (&m[0].1, &m[1].1) else {
            panic!()
        };
        assert_eq!(page.len(), 500);
        let rest = list_metrics(
            &store,
            &json!({"Namespace": "App", "NextToken": token}),
            now,
        )
        .unwrap();
        let Out::Map(m) = &rest else { panic!() };
        assert_eq!(m.len(), 1);
        let filtered = list_metrics(
            &store,
            &json!({"Dimensions": [{"Name": "D", "Value": "y"}]}),
            now,
        )
        .unwrap();
        assert_eq!(
            filtered,
            Out::Map(vec![("Metrics".into(), Out::List(vec![]))])
        );
        let e = put_metric_data(
            &store,
            &json!({"Namespace": "AWS/Lambda", "MetricData": [{"MetricName": "x", "Value": 1}]}),
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValueException");
        let e = put_metric_data(
            &store,
            &json!({"Namespace": "A", "MetricData": [{"MetricName": "x"}]}),
            now,
        )
        .unwrap_err();
        assert_eq!(e.code, "InvalidParameterCombinationException");
    }
}
