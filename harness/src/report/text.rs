//! The short text summary printed on stdout after a run.

use super::Summary;

pub fn render(s: &Summary, out_dir: &str) -> String {
    let mut t = String::new();
    let a = &s.accounting;
    t.push_str(&format!(
        "dynamowave run {} — scenario {} — {:.1} s — {}\n",
        s.run.id,
        s.run.scenario,
        s.run.duration_s,
        if s.passed { "PASSED" } else { "FAILED" }
    ));
    t.push_str(&format!(
        "  clients   {} attempted, {} connected, {} failed {:?}\n",
        s.clients.attempted, s.clients.connected, s.clients.failed, s.clients.failures_by_cause
    ));
    t.push_str(&format!(
        "  messages  {} sent ({} failed to send)\n",
        s.messages.scheduled, s.messages.send_failed
    ));
    t.push_str(&format!(
        "  delivery  expected {} = delivered {} + late {} + dead-lettered {} + lost {}   (duplicated {}, unexpected {}, departed {})\n",
        a.expected, a.delivered, a.late, a.dead_lettered, a.lost, a.duplicated, a.unexpected, a.departed
    ));
    if let Some(l) = &s.latency.broadcast {
        t.push_str(&format!(
            "  latency   p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  ({} samples)\n",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
        ));
    }
    for v in &s.thresholds {
        let observed = v
            .observed
            .map(|o| format!("{o:.4}"))
            .unwrap_or_else(|| "no data".into());
        let window = v
            .window
            .map(|w| format!(" (worst window {:.0}–{:.0} s)", w.start_s, w.end_s))
            .unwrap_or_default();
        t.push_str(&format!(
            "  {} {} {}  observed {}{window}\n",
            if v.passed { "✓" } else { "✗" },
            v.name,
            v.expression,
            observed
        ));
    }
    t.push_str(&format!("  report    {out_dir}\n"));
    t
}
