//! GetMetricData over the store: validation as AWS words it, per-period statistics,
//! ScanBy order, MaxDatapoints paging with NextToken, and `PartialData` while the window
//! reaches into time whose datapoints are not yet published.

use serde_json::Value;

use super::shape::{
    Out, bool_at, dimensions_at, invalid, list_at, missing, num_at, str_at, time_at,
};
use super::store::{Bucket, MetricId, MetricStore, percentile};
use crate::edge::AwsError;

const MAX_QUERIES: usize = 500;
const DEFAULT_MAX_DATAPOINTS: f64 = 100_800.0;

/// CloudWatch's statistics the local stack computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Sum,
    Average,
    Minimum,
    Maximum,
    SampleCount,
    Percentile(f64),
}

impl Stat {
    /// `Sum`, `p99`, `p99.9`, …; trimmed means and the other extended statistics are
    /// refused (not emulated).
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "Sum" => Stat::Sum,
            "Average" => Stat::Average,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            "SampleCount" => Stat::SampleCount,
            _ => {
                let p: f64 = s.strip_prefix('p')?.parse().ok()?;
                if !(0.0..=100.0).contains(&p) || s.contains(['e', 'E', '+', '-']) {
                    return None;
                }
                Stat::Percentile(p)
            }
        })
    }

    pub fn of(self, b: &Bucket) -> Option<f64> {
        if b.sample_count <= 0.0 {
            return None;
        }
        Some(match self {
            Stat::Sum => b.sum,
            Stat::Average => b.sum / b.sample_count,
            Stat::Minimum => b.min,
            Stat::Maximum => b.max,
            Stat::SampleCount => b.sample_count,
            Stat::Percentile(p) => percentile(&b.values, p)?,
        })
    }
}

/// A period CloudWatch accepts: 1, 5, 10, 20, 30 (high resolution) or a multiple of 60.
pub fn valid_period(p: f64) -> bool {
    p.fract() == 0.0 && p > 0.0 && ([1.0, 5.0, 10.0, 20.0, 30.0].contains(&p) || p % 60.0 == 0.0)
}

struct Query {
    id: String,
    label: String,
    metric: MetricId,
    period: i64,
    stat: Stat,
}

/// Where the previous page stopped: query index and the last timestamp it returned.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Token {
    query: usize,
    after: Option<i64>,
    fingerprint: u64,
}

pub fn get_metric_data(store: &MetricStore, input: &Value, now_ms: i64) -> Result<Out, AwsError> {
    let queries = parse_queries(input)?;
    let start = time_at(input, "StartTime")?.ok_or_else(|| missing("StartTime"))?;
    let end = time_at(input, "EndTime")?.ok_or_else(|| missing("EndTime"))?;
    if start >= end {
        return Err(invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    let ascending = match str_at(input, "ScanBy").unwrap_or("TimestampDescending") {
        "TimestampDescending" => false,
        "TimestampAscending" => true,
        other => {
            return Err(invalid(format!(
                "The value {other} for parameter ScanBy is invalid (TimestampDescending or TimestampAscending)."
            )));
        }
    };
    let max = num_at(input, "MaxDatapoints", "MaxDatapoints")?.unwrap_or(DEFAULT_MAX_DATAPOINTS);
    if max < 1.0 || max.fract() != 0.0 {
        return Err(invalid(format!(
            "The value {max} for parameter MaxDatapoints is invalid."
        )));
    }
    // StartTime inclusive, EndTime exclusive, at one-second resolution.
    let (start, end) = (start.ceil() as i64, end.ceil() as i64);
    let fingerprint = fingerprint(input);
    let token = match str_at(input, "NextToken") {
        Some(t) => Some(parse_token(t, fingerprint, queries.len())?),
        None => None,
    };
    let unpublished = store.published_until(now_ms) + 1;
    let now = now_ms.div_euclid(1000) + 1;
    let partial_by_delay =
        !store.settings().publish_delay.is_zero() && start.max(unpublished) < end.min(now);

    let mut budget = max as usize;
    let mut results = Vec::new();
    let mut next = None;
    let first = token.map_or(0, |t| t.query);
    for (i, q) in queries.iter().enumerate().skip(first) {
        let mut points = datapoints(store, q, start, end, now_ms, ascending);
        if let Some(after) = token.filter(|t| t.query == i).and_then(|t| t.after) {
            points.retain(|(t, _)| if ascending { *t > after } else { *t < after });
        }
        let complete = next.is_none() && points.len() <= budget;
        let take = if next.is_none() {
            points.len().min(budget)
        } else {
            0
        };
        points.truncate(take);
        budget -= take;
        if !complete && next.is_none() {
            next = Some(Token {
                query: i,
                after: points.last().map(|(t, _)| *t),
                fingerprint,
            });
        }
        let status = if complete && !partial_by_delay {
            "Complete"
        } else {
            "PartialData"
        };
        results.push(result(
            q,
            points,
            status,
            partial_by_delay.then_some(unpublished),
        ));
    }
    let mut out = vec![("MetricDataResults".to_string(), Out::List(results))];
    if let Some(t) = next {
        out.push(("NextToken".into(), Out::str(encode_token(t))));
    }
    out.push(("Messages".into(), Out::List(Vec::new())));
    Ok(Out::Map(out))
}

fn result(q: &Query, points: Vec<(i64, f64)>, status: &str, unpublished: Option<i64>) -> Out {
    let messages = unpublished
        .map(|t| {
            vec![Out::map([
                ("Code", Out::str("PublishDelay")),
                (
                    "Value",
                    Out::str(format!(
                        "datapoints from {t} (epoch seconds) on are not yet published"
                    )),
                ),
            ])]
        })
        .unwrap_or_default();
    Out::map([
        ("Id", Out::str(&q.id)),
        ("Label", Out::str(&q.label)),
        (
            "Timestamps",
            Out::List(points.iter().map(|(t, _)| Out::Time(*t as f64)).collect()),
        ),
        (
            "Values",
            Out::List(points.iter().map(|(_, v)| Out::Num(*v)).collect()),
        ),
        ("StatusCode", Out::str(status)),
        ("Messages", Out::List(messages)),
    ])
}

/// One value per period that has data. Periods are aligned to epoch multiples of the
/// period, so a 60 s period starts on the minute [U: AWS aligns similarly for aligned
/// start times]; datapoints outside [start, end) are not counted.
fn datapoints(
    store: &MetricStore,
    q: &Query,
    start: i64,
    end: i64,
    now_ms: i64,
    ascending: bool,
) -> Vec<(i64, f64)> {
    let mut periods: Vec<(i64, Bucket)> = Vec::new();
    for (t, b) in store.range(&q.metric, start, end, now_ms) {
        let p = t.div_euclid(q.period) * q.period;
        match periods.last_mut() {
            Some((last, acc)) if *last == p => acc.merge(&b),
            _ => periods.push((p, b)),
        }
    }
    let mut points: Vec<(i64, f64)> = periods
        .iter()
        .filter_map(|(t, b)| Some((*t, q.stat.of(b)?)))
        .collect();
    if !ascending {
        points.reverse();
    }
    points
}

fn parse_queries(input: &Value) -> Result<Vec<Query>, AwsError> {
    let list = list_at(input, "MetricDataQueries");
    if list.is_empty() {
        return Err(missing("MetricDataQueries"));
    }
    if list.len() > MAX_QUERIES {
        return Err(invalid(format!(
            "The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
        )));
    }
    let mut queries: Vec<Query> = Vec::new();
    for (i, q) in list.iter().enumerate() {
        let path = format!("MetricDataQueries.member.{}", i + 1);
        let Some(query) = parse_query(q, &path)? else {
            continue;
        };
        if queries.iter().any(|other| other.id == query.id) {
            return Err(invalid(format!(
                "The value {} for parameter {path}.Id is not unique.",
                query.id
            )));
        }
        queries.push(query);
    }
    Ok(queries)
}

/// One query; `None` when ReturnData is false (AWS leaves those out of the answer).
fn parse_query(q: &Value, path: &str) -> Result<Option<Query>, AwsError> {
    let id = str_at(q, "Id").ok_or_else(|| missing(&format!("{path}.Id")))?;
    if !valid_id(id) {
        return Err(invalid(format!(
            "The value {id} for parameter {path}.Id is invalid: it must start with a lowercase letter and contain only letters, digits and underscores."
        )));
    }
    if q.get("Expression").is_some_and(|e| !e.is_null()) {
        return Err(invalid(format!(
            "{path}.Expression: the local stack does not evaluate metric math or Metrics Insights expressions; use MetricStat."
        )));
    }
    let stat = q
        .get("MetricStat")
        .ok_or_else(|| missing(&format!("{path}.MetricStat")))?;
    let metric = stat
        .get("Metric")
        .ok_or_else(|| missing(&format!("{path}.MetricStat.Metric")))?;
    let period = num_at(stat, "Period", &format!("{path}.MetricStat.Period"))?
        .ok_or_else(|| missing(&format!("{path}.MetricStat.Period")))?;
    if !valid_period(period) {
        return Err(invalid(format!(
            "The value {period} for parameter {path}.MetricStat.Period is invalid: use 1, 5, 10, 20, 30 or a multiple of 60."
        )));
    }
    let stat_name =
        str_at(stat, "Stat").ok_or_else(|| missing(&format!("{path}.MetricStat.Stat")))?;
    let stat_value = Stat::parse(stat_name).ok_or_else(|| {
        invalid(format!(
            "The value {stat_name} for parameter {path}.MetricStat.Stat is invalid (the local stack computes Sum, Average, Minimum, Maximum, SampleCount and pNN)."
        ))
    })?;
    let namespace = str_at(metric, "Namespace")
        .ok_or_else(|| missing(&format!("{path}.MetricStat.Metric.Namespace")))?;
    let name = str_at(metric, "MetricName")
        .ok_or_else(|| missing(&format!("{path}.MetricStat.Metric.MetricName")))?;
    let dims = dimensions_at(metric, &format!("{path}.MetricStat.Metric"), 30)?;
    let dims: Vec<(&str, &str)> = dims
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref().unwrap_or("")))
        .collect();
    if bool_at(q, "ReturnData") == Some(false) {
        return Ok(None);
    }
    Ok(Some(Query {
        id: id.to_string(),
        label: str_at(q, "Label").unwrap_or(name).to_string(),
        metric: MetricId::new(namespace, name, &dims),
        period: period as i64,
        stat: stat_value,
    }))
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    id.len() <= 255
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A hash of everything but the paging fields, so a token is refused on another query.
fn fingerprint(input: &Value) -> u64 {
    let mut v = input.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("NextToken");
        m.remove("MaxDatapoints");
    }
    // FNV-1a: stable across processes, unlike the std hasher's random keys.
    v.to_string().bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn encode_token(t: Token) -> String {
    let after = t.after.map_or("-".to_string(), |a| a.to_string());
    format!("gmd1.{}.{after}.{:016x}", t.query, t.fingerprint)
}

fn parse_token(s: &str, fingerprint: u64, queries: usize) -> Result<Token, AwsError> {
    let bad = || bad_token_error(s);
    let parts: Vec<&str> = s.split('.').collect();
    let [tag, query, after, fp] = parts[..] else {
        return Err(bad());
    };
    let token = Token {
        query: query.parse().map_err(|_| bad())?,
        after: match after {
            "-" => None,
            a => Some(a.parse().map_err(|_| bad())?),
        },
        fingerprint: u64::from_str_radix(fp, 16).map_err(|_| bad())?,
    };
    if tag != "gmd1" || token.fingerprint != fingerprint || token.query >= queries {
        return Err(bad());
    }
    Ok(token)
}

fn bad_token_error(s: &str) -> AwsError {
    super::shape::bad_token(format!(
        "The NextToken {s} is invalid or belongs to a different request."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudwatch::store::{MetricSettings, Sample};
    use serde_json::json;

    /// A minute boundary ten minutes ago: inside the store's retention.
    fn base() -> i64 {
        crate::cloudwatch::store::now_ms() / 1000 / 60 * 60 - 600
    }

    fn request(period: u32, stat: &str, max: Option<u32>) -> Value {
        let mut v = json!({
            "MetricDataQueries": [{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "M"}, "Period": period, "Stat": stat}}],
            "StartTime": base(), "EndTime": base() + 120, "ScanBy": "TimestampAscending"
        });
        if let Some(m) = max {
            v["MaxDatapoints"] = json!(m);
        }
        v
    }

    fn values(out: &Out) -> (Vec<Out>, String) {
        let Out::Map(m) = out else { panic!() };
        let Out::List(r) = &m[0].1 else { panic!() };
        let Out::Map(r) = &r[0] else { panic!() };
        let Out::List(v) = &r[3].1 else { panic!() };
        let Out::Str(s) = &r[4].1 else { panic!() };
        (v.clone(), s.clone())
    }

    #[test]
    fn periods_stats_and_paging() {
        let store = MetricStore::new(MetricSettings::default());
        let id = MetricId::new("N", "M", &[]);
        for t in [-1, 0, 1, 59, 60, 119, 120] {
            store.put_at(
                id.clone(),
                base() + t,
                Sample::Value(t as f64 + 10.0, 1.0),
                None,
            );
        }
        let now = crate::cloudwatch::store::now_ms();
        let out = get_metric_data(&store, &request(60, "SampleCount", None), now).unwrap();
        assert_eq!(values(&out).0, vec![Out::Num(3.0), Out::Num(2.0)]);
        let out = get_metric_data(&store, &request(60, "Maximum", None), now).unwrap();
        assert_eq!(values(&out).0, vec![Out::Num(69.0), Out::Num(129.0)]);
        let page = get_metric_data(&store, &request(1, "Sum", Some(3)), now).unwrap();
        assert_eq!(
            values(&page),
            (
                vec![Out::Num(10.0), Out::Num(11.0), Out::Num(69.0)],
                "PartialData".into()
            )
        );
        let Out::Map(m) = &page else { panic!() };
        let Out::Str(token) = &m[1].1 else { panic!() };
        let mut next = request(1, "Sum", Some(3));
        next["NextToken"] = json!(token);
        let rest = get_metric_data(&store, &next, now).unwrap();
        assert_eq!(
            values(&rest),
            (vec![Out::Num(70.0), Out::Num(129.0)], "Complete".into())
        );
        next["NextToken"] = json!("nope");
        assert_eq!(
            get_metric_data(&store, &next, now).unwrap_err().code,
            "InvalidNextToken"
        );
    }

    #[test]
    fn refuses_bad_periods_ids_stats_and_too_many_queries() {
        let store = MetricStore::default();
        for (period, stat) in [(7, "Sum"), (90, "Sum"), (60, "tm99"), (60, "p101")] {
            let e = get_metric_data(&store, &request(period, stat, None), 0).unwrap_err();
            assert_eq!(e.code, "InvalidParameterValueException", "{period} {stat}");
        }
        let mut r = request(60, "Sum", None);
        r["MetricDataQueries"][0]["Id"] = json!("M1");
        assert!(get_metric_data(&store, &r, 0).is_err());
        let q = r["MetricDataQueries"][0].clone();
        r["MetricDataQueries"] = Value::Array(vec![q; 501]);
        assert!(
            get_metric_data(&store, &r, 0)
                .unwrap_err()
                .message
                .contains("500")
        );
        assert_eq!(Stat::parse("p99.9"), Some(Stat::Percentile(99.9)));
    }
}
