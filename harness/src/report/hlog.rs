//! latency.hlog: HdrHistogram's interval log (one compressed histogram per interval, in
//! µs), readable by HdrHistogram's own tools (HistogramLogProcessor, HdrHistogramVisualizer).

use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use crate::engine::record::Interval;

pub fn render(intervals: &[Interval], started_at: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let start =
        SystemTime::UNIX_EPOCH + Duration::from_millis(started_at.timestamp_millis().max(0) as u64);
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    {
        let mut log = IntervalLogWriterBuilder::new()
            .add_comment("DynamoWave broadcast latency, microseconds")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)
            .expect("writing to memory");
        let mut de = Deserializer::new();
        for i in intervals {
            let Ok(h) = de.deserialize::<u64, _>(&mut i.hdr_v2.as_slice()) else {
                continue;
            };
            let _ = log.write_histogram(
                &h,
                Duration::from_secs_f64(i.start_s),
                Duration::from_secs_f64(i.length_s),
                None,
            );
        }
    }
    out
}
