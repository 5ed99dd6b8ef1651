//! Windowed thresholds: one threshold judged in every window of whole intervals (the
//! engine closes one interval per second), reporting the worst window.

use std::ops::Range;

use hdrhistogram::Histogram as Hdr;
use hdrhistogram::serialization::Deserializer;

use super::{Aggregation, Op, Span, Threshold, Window};
use crate::engine::record::{Interval, histogram};

/// The worst window's value and where it lies; None when no window has data (or an
/// interval's histogram does not decode, which leaves the threshold without data).
pub(super) fn worst(
    t: &Threshold,
    w: Window,
    intervals: &[Interval],
    finished: bool,
) -> Option<(f64, Span)> {
    let mut found: Option<(f64, Span)> = None;
    for run in runs(intervals, t.tags.get("phase").map(String::as_str)) {
        let slice = &intervals[run];
        let mut values = Values::new(&t.metric, slice);
        for r in windows(slice.len(), w, finished) {
            let Some(v) = values.over(r.clone(), t.aggregation).ok()? else {
                continue;
            };
            let last = &slice[r.end - 1];
            let span = Span {
                start_s: slice[r.start].start_s,
                end_s: last.start_s + last.length_s,
            };
            if worse(t.op, t.limit, v, found.map(|(v, _)| v)) {
                found = Some((v, span));
            }
        }
    }
    found
}

/// Whether `candidate` is a worse window than the current worst: the highest value for
/// `<`/`<=`, the lowest for `>`/`>=`, the first failing one for `==`/`!=`.
fn worse(op: Op, limit: f64, candidate: f64, current: Option<f64>) -> bool {
    let Some(current) = current else { return true };
    match op {
        Op::Lt | Op::Le => candidate > current,
        Op::Gt | Op::Ge => candidate < current,
        Op::Eq | Op::Ne => op.holds(current, limit) && !op.holds(candidate, limit),
    }
}

/// Contiguous runs of intervals (of the phase, if one is named): windows never span a gap.
fn runs(intervals: &[Interval], phase: Option<&str>) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, interval) in intervals.iter().enumerate() {
        if phase.is_some_and(|p| interval.phase.as_deref() != Some(p)) {
            continue;
        }
        match out.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// The windows over `n` intervals. After the run: from the start, every `step`, the last
/// ending at `n` (shorter when `n` is; a trailing tumbling window may be short). Mid-run:
/// only the whole window ending at the latest interval, if one ends there — earlier ones
/// were judged when they ended.
#[allow(clippy::single_range_in_vec_init)] // one window, not the indices in it
fn windows(n: usize, w: Window, finished: bool) -> Vec<Range<usize>> {
    let (k, step) = (w.length_s as usize, w.step_s as usize);
    if n == 0 {
        return Vec::new();
    }
    if !finished {
        return if n >= k && (n - k).is_multiple_of(step) {
            vec![n - k..n]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + k).min(n);
        out.push(start..end);
        if end == n {
            return out;
        }
        start += step;
    }
}

/// A metric's value over ranges of intervals taken in increasing order: counts from
/// prefix sums; latency from one running histogram that adds the intervals entering and
/// subtracts those leaving, so sliding windows cost one decode per interval and move.
enum Values<'a> {
    Count(Vec<u64>),
    Latency {
        intervals: &'a [Interval],
        merged: Hdr<u64>,
        holds: Range<usize>,
    },
}

impl<'a> Values<'a> {
    fn new(metric: &str, intervals: &'a [Interval]) -> Self {
        let count = |f: fn(&Interval) -> u64| {
            let mut sums = vec![0];
            for i in intervals {
                sums.push(sums.last().copied().unwrap_or(0) + f(i));
            }
            Values::Count(sums)
        };
        match metric {
            "messages_sent" => count(|i| i.sent),
            "error_frames" => count(|i| i.other_frames),
            _ => {
                let mut merged = histogram();
                merged.auto(true);
                Values::Latency {
                    intervals,
                    merged,
                    holds: 0..0,
                }
            }
        }
    }

    /// The value over `r`; Ok(None) when a latency window has no samples.
    fn over(&mut self, r: Range<usize>, a: Aggregation) -> Result<Option<f64>, ()> {
        match self {
            Values::Count(sums) => Ok(Some((sums[r.end] - sums[r.start]) as f64)),
            Values::Latency {
                intervals,
                merged,
                holds,
            } => {
                let follows = r.start >= holds.start && r.start <= holds.end && r.end >= holds.end;
                if follows {
                    for i in holds.start..r.start {
                        merged.subtract(&decode(&intervals[i])?).map_err(|_| ())?;
                    }
                    for i in holds.end..r.end {
                        merged.add(&decode(&intervals[i])?).map_err(|_| ())?;
                    }
                } else {
                    merged.reset();
                    for i in r.clone() {
                        merged.add(&decode(&intervals[i])?).map_err(|_| ())?;
                    }
                }
                *holds = r;
                Ok(crate::report::summary::trend_value(merged, a))
            }
        }
    }
}

fn decode(interval: &Interval) -> Result<Hdr<u64>, ()> {
    if interval.hdr_v2.is_empty() {
        return Ok(histogram());
    }
    Deserializer::new()
        .deserialize(&mut &interval.hdr_v2[..])
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interval `i` (1 s long) with the given latencies in ms, messages sent and errors.
    fn interval(i: usize, phase: &str, latencies_ms: &[u64], sent: u64, errors: u64) -> Interval {
        let mut h = histogram();
        for ms in latencies_ms {
            h.record(ms * 1000).unwrap();
        }
        let mut iv = Interval::from_histogram(i as f64, 1.0, Some(phase.into()), &h);
        iv.sent = sent;
        iv.other_frames = errors;
        iv
    }

    fn threshold(yaml_key: &str, expression: &str) -> Threshold {
        let text = format!("thresholds: {{\"{yaml_key}\": [\"{expression}\"]}}");
        super::super::parse(&text, std::path::Path::new("slo.yaml"))
            .unwrap()
            .remove(0)
    }

    fn judge(key: &str, expression: &str, intervals: &[Interval]) -> Option<(f64, Span)> {
        let t = threshold(key, expression);
        worst(&t, t.window.unwrap(), intervals, true)
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)] // lists of windows
    fn window_ranges_slide_tumble_and_cover_every_interval() {
        let w = |length_s, step_s| Window { length_s, step_s };
        assert_eq!(windows(5, w(3, 1), true), vec![0..3, 1..4, 2..5]);
        assert_eq!(windows(7, w(3, 3), true), vec![0..3, 3..6, 6..7]);
        assert_eq!(windows(6, w(3, 3), true), vec![0..3, 3..6]);
        assert_eq!(windows(2, w(3, 1), true), vec![0..2]);
        assert_eq!(windows(0, w(3, 1), true), Vec::<Range<usize>>::new());
        // Mid-run: only the whole window that ends now.
        assert_eq!(windows(2, w(3, 1), false), Vec::<Range<usize>>::new());
        assert_eq!(windows(5, w(3, 1), false), vec![2..5]);
        assert_eq!(windows(5, w(3, 3), false), Vec::<Range<usize>>::new());
        assert_eq!(windows(6, w(3, 3), false), vec![3..6]);
    }

    /// Data-driven: (threshold key, expression, expected worst value, expected window).
    #[test]
    fn the_worst_window_is_reported() {
        // 6 s of chat then 2 s of drain; a latency spike in seconds 3 and 4.
        let run: Vec<Interval> = vec![
            interval(0, "chat", &[10, 20], 5, 0),
            interval(1, "chat", &[10, 10], 5, 0),
            interval(2, "chat", &[20], 5, 1),
            interval(3, "chat", &[300, 400], 5, 0),
            interval(4, "chat", &[500], 5, 2),
            interval(5, "chat", &[10], 0, 0),
            interval(6, "drain", &[], 0, 0),
            interval(7, "drain", &[5], 0, 0),
        ];
        let cases: &[(&str, &str, f64, (f64, f64))] = &[
            ("broadcast_latency{window:2s}", "max<250", 500.0, (3.0, 5.0)),
            (
                "broadcast_latency{window:2s,step:2s}",
                "max<250",
                500.0,
                (4.0, 6.0),
            ),
            ("broadcast_latency{window:3s}", "min<1000", 20.0, (2.0, 5.0)),
            // For `>` the lowest window is the worst.
            ("broadcast_latency{window:2s}", "min>1", 5.0, (6.0, 8.0)),
            (
                "broadcast_latency{window:2s}",
                "p(50)<1000",
                400.0,
                (3.0, 5.0),
            ),
            (
                "broadcast_latency{window:100s}",
                "max<1000",
                500.0,
                (0.0, 8.0),
            ),
            // Ties keep the first window.
            ("messages_sent{window:2s}", "count>=10", 0.0, (5.0, 7.0)),
            (
                "messages_sent{window:2s,step:2s}",
                "count<100",
                10.0,
                (0.0, 2.0),
            ),
            ("error_frames{window:3s}", "count==0", 1.0, (0.0, 3.0)),
            ("error_frames{window:3s}", "count<=5", 3.0, (2.0, 5.0)),
            // Windows within the phase: the drain's 5 ms and 2 s of zeros are not in chat.
            (
                "broadcast_latency{phase:chat,window:2s}",
                "min>1",
                10.0,
                (0.0, 2.0),
            ),
            (
                "messages_sent{phase:chat,window:2s}",
                "count>=10",
                5.0,
                (4.0, 6.0),
            ),
            (
                "broadcast_latency{phase:drain,window:1s}",
                "max<1000",
                5.0,
                (7.0, 8.0),
            ),
        ];
        for (key, expression, value, (start, end)) in cases {
            let (v, span) = judge(key, expression, &run).unwrap_or_else(|| panic!("{key}"));
            let ctx = format!("{key} {expression}: {v} {span:?}");
            assert!((v - value).abs() < value * 0.01 + 1e-9, "{ctx}");
            assert_eq!((span.start_s, span.end_s), (*start, *end), "{ctx}");
        }
        // No samples in any window of the phase: no data.
        assert!(judge("broadcast_latency{phase:other,window:2s}", "max<1", &run).is_none());
    }

    struct Recorded(Vec<Interval>, bool);
    impl super::super::Observations for Recorded {
        fn observe(
            &self,
            _: &str,
            _: &std::collections::BTreeMap<String, String>,
            _: Aggregation,
        ) -> Option<f64> {
            None
        }
        fn intervals(&self) -> Option<(&[Interval], bool)> {
            Some((&self.0, self.1))
        }
    }

    #[test]
    fn verdicts_name_the_window_and_mid_run_only_whole_windows_count() {
        let run: Vec<Interval> = [10, 900, 10, 10]
            .iter()
            .enumerate()
            .map(|(i, ms)| interval(i, "p", &[*ms], 1, 0))
            .collect();
        let t = vec![threshold("broadcast_latency{window:3s}", "max<500")];
        let v = super::super::evaluate(&t, &Recorded(run.clone(), true));
        assert!(!v[0].passed);
        // HdrHistogram's 3 significant figures.
        assert!((v[0].observed.unwrap() - 900.0).abs() < 1.0, "{:?}", v[0]);
        assert_eq!(
            v[0].window,
            Some(Span {
                start_s: 0.0,
                end_s: 3.0
            })
        );
        // Mid-run after 2 s: no whole window yet, so nothing to judge (no abort).
        let v = super::super::evaluate(&t, &Recorded(run[..2].to_vec(), false));
        assert_eq!((v[0].observed, v[0].window), (None, None));
        // Mid-run after 4 s: only the window ending now (1–4 s).
        let v = super::super::evaluate(&t, &Recorded(run.clone(), false));
        assert_eq!(
            v[0].window,
            Some(Span {
                start_s: 1.0,
                end_s: 4.0
            })
        );
    }

    #[test]
    fn sliding_equals_merging_each_window_afresh() {
        let run: Vec<Interval> = (0..30)
            .map(|i| {
                let lat: Vec<u64> = (0..(i % 7) as u64)
                    .map(|j| 1 + (i as u64 * 37 + j * 11) % 900)
                    .collect();
                interval(i, "p", &lat, 0, 0)
            })
            .collect();
        for p in ["p(99)<1", "p(50)<1", "avg<1", "min<1", "max<1", "med<1"] {
            let t = threshold("broadcast_latency{window:5s}", p);
            let mut sliding = Values::new("broadcast_latency", &run);
            for r in windows(run.len(), t.window.unwrap(), true) {
                let mut fresh = Values::new("broadcast_latency", &run);
                assert_eq!(
                    sliding.over(r.clone(), t.aggregation),
                    fresh.over(r.clone(), t.aggregation),
                    "{p} over {r:?}"
                );
            }
        }
    }
}
