//! The metric store: every datapoint the stack produces, kept per second so that any
//! period CloudWatch accepts (1, 5, 10, 20, 30 or a multiple of 60 s) can be answered
//! exactly. AWS keeps sub-minute data for 3 hours and 1-minute data for 15 days; locally
//! per-second data is kept for `retention` (a deviation listed in ARCHITECTURE.md).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One metric's identity: namespace, name and its dimensions (sorted by name, as
/// CloudWatch treats dimension order as insignificant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    pub fn new(namespace: &str, name: &str, dimensions: &[(&str, &str)]) -> Self {
        let mut dimensions: Vec<(String, String)> = dimensions
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        dimensions.sort();
        MetricId {
            namespace: namespace.to_string(),
            name: name.to_string(),
            dimensions,
        }
    }
}

/// The datapoints of one second (or of a whole period, once merged). `values` keeps each
/// distinct value with its weight so percentiles are exact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub sample_count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// (value, weight), sorted by value.
    pub values: Vec<(f64, f64)>,
}

impl Bucket {
    fn add(&mut self, value: f64, weight: f64) {
        if self.sample_count == 0.0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.sample_count += weight;
        self.sum += value * weight;
        add_weighted(&mut self.values, value, weight);
    }

    /// A pre-aggregated set (PutMetricData's StatisticValues): no individual values, so
    /// percentiles see its min and max only (AWS cannot compute them exactly either).
    fn add_statistics(&mut self, s: &Statistics) {
        let first = self.sample_count == 0.0;
        self.min = if first { s.min } else { self.min.min(s.min) };
        self.max = if first { s.max } else { self.max.max(s.max) };
        self.sample_count += s.sample_count;
        self.sum += s.sum;
        let half = s.sample_count / 2.0;
        add_weighted(&mut self.values, s.min, half);
        add_weighted(&mut self.values, s.max, s.sample_count - half);
    }

    pub fn merge(&mut self, other: &Bucket) {
        if other.sample_count == 0.0 {
            return;
        }
        let first = self.sample_count == 0.0;
        self.min = if first {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = if first {
            other.max
        } else {
            self.max.max(other.max)
        };
        self.sample_count += other.sample_count;
        self.sum += other.sum;
        for &(v, w) in &other.values {
            add_weighted(&mut self.values, v, w);
        }
    }
}

fn add_weighted(values: &mut Vec<(f64, f64)>, value: f64, weight: f64) {
    match values.binary_search_by(|(v, _)| v.total_cmp(&value)) {
        Ok(i) => values[i].1 += weight,
        Err(i) => values.insert(i, (value, weight)),
    }
}

/// PutMetricData's StatisticValues.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Statistics {
    pub sample_count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Default)]
struct Series {
    unit: Option<String>,
    seconds: BTreeMap<i64, Bucket>,
}

/// Settings of the local CloudWatch.
#[derive(Debug, Clone)]
pub struct MetricSettings {
    /// A datapoint becomes visible this long after its timestamp, as AWS publishes
    /// Lambda's metrics a minute or more late. Default 0 locally, so tests and runs see
    /// their counts at once; set it to test a caller's waiting (GetMetricData answers
    /// `PartialData` while its window reaches into unpublished time).
    pub publish_delay: Duration,
    /// How long per-second data is kept (default 24 h; AWS: 3 h at 1 s, 15 d at 60 s).
    pub retention: Duration,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            publish_delay: Duration::ZERO,
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Default)]
pub struct MetricStore {
    settings: MetricSettings,
    series: Mutex<HashMap<MetricId, Series>>,
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl MetricStore {
    pub fn new(settings: MetricSettings) -> Self {
        MetricStore {
            settings,
            series: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &MetricSettings {
        &self.settings
    }

    /// One value now.
    pub fn put(&self, id: MetricId, value: f64, unit: &str) {
        self.put_at(id, now_ms() / 1000, Sample::Value(value, 1.0), Some(unit));
    }

    /// A sample at `second` (epoch seconds).
    pub fn put_at(&self, id: MetricId, second: i64, sample: Sample, unit: Option<&str>) {
        let oldest = now_ms() / 1000 - self.settings.retention.as_secs() as i64;
        let mut all = self.series.lock().expect("metric lock");
        let series = all.entry(id).or_default();
        if series.unit.is_none() {
            series.unit = unit.map(str::to_string);
        }
        let bucket = series.seconds.entry(second).or_default();
        match sample {
            Sample::Value(v, w) => bucket.add(v, w),
            Sample::Statistics(s) => bucket.add_statistics(&s),
        }
        while series
            .seconds
            .first_key_value()
            .is_some_and(|(t, _)| *t < oldest)
        {
            series.seconds.pop_first();
        }
    }

    /// The first second not yet published: datapoints at or after it are invisible.
    pub fn published_until(&self, now_ms: i64) -> i64 {
        (now_ms - self.settings.publish_delay.as_millis() as i64).div_euclid(1000)
    }

    /// Published per-second buckets of `id` in `[start, end)` (epoch seconds).
    pub fn range(&self, id: &MetricId, start: i64, end: i64, now_ms: i64) -> Vec<(i64, Bucket)> {
        let end = end.min(self.published_until(now_ms) + 1);
        if start >= end {
            return Vec::new();
        }
        let all = self.series.lock().expect("metric lock");
        all.get(id)
            .map(|s| {
                s.seconds
                    .range(start..end)
                    .map(|(t, b)| (*t, b.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every metric with at least one published datapoint, in a stable order.
    pub fn metrics(&self, now_ms: i64) -> Vec<MetricId> {
        let until = self.published_until(now_ms);
        let all = self.series.lock().expect("metric lock");
        let mut ids: Vec<MetricId> = all
            .iter()
            .filter(|(_, s)| {
                s.seconds
                    .first_key_value()
                    .is_some_and(|(t, _)| *t <= until)
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

/// What PutMetricData and the stack record.
#[derive(Debug, Clone, Copy)]
pub enum Sample {
    /// A value and how many times it occurred (PutMetricData's Values/Counts).
    Value(f64, f64),
    Statistics(Statistics),
}

/// Nearest-rank percentile over weighted values (`p` in 0..=100).
pub fn percentile(values: &[(f64, f64)], p: f64) -> Option<f64> {
    let total: f64 = values.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return None;
    }
    let rank = (p / 100.0 * total).ceil().max(1.0);
    let mut seen = 0.0;
    for &(v, w) in values {
        seen += w;
        if seen >= rank {
            return Some(v);
        }
    }
    values.last().map(|(v, _)| *v)
}

/// Compares two floats for sorting timestamps and values.
pub fn cmp(a: f64, b: f64) -> Ordering {
    a.total_cmp(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_merge_and_percentiles_are_exact() {
        let mut b = Bucket::default();
        for v in 1..=100 {
            b.add(v as f64, 1.0);
        }
        assert_eq!(
            (b.sample_count, b.sum, b.min, b.max),
            (100.0, 5050.0, 1.0, 100.0)
        );
        assert_eq!(percentile(&b.values, 99.0), Some(99.0));
        assert_eq!(percentile(&b.values, 50.0), Some(50.0));
        assert_eq!(percentile(&b.values, 99.9), Some(100.0));
        let mut c = Bucket::default();
        c.add(1.0, 3.0);
        c.merge(&b);
        assert_eq!(c.sample_count, 103.0);
        assert_eq!(c.values[0], (1.0, 4.0));
    }

    #[test]
    fn unpublished_seconds_are_invisible() {
        let store = MetricStore::new(MetricSettings {
            publish_delay: Duration::from_secs(60),
            ..MetricSettings::default()
        });
        let id = MetricId::new("N", "M", &[]);
        let now = now_ms();
        store.put_at(id.clone(), now / 1000 - 120, Sample::Value(1.0, 1.0), None);
        store.put_at(id.clone(), now / 1000 - 10, Sample::Value(1.0, 1.0), None);
        assert_eq!(store.range(&id, 0, i64::MAX, now).len(), 1);
        assert_eq!(store.metrics(now), vec![id]);
    }
}
