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
        "  messages  {} scheduled, {} written ({} failed to send, {} unconfirmed)\n",
        s.messages.scheduled, s.messages.written, s.messages.send_failed, a.send_unconfirmed
    ));
    t.push_str(&format!(
        "  delivery  expected {} = delivered {} + late {} + dead-lettered {} + lost {}   (duplicated {}, unexpected {}, departed {}, unconfirmed {})\n",
        a.expected, a.delivered, a.late, a.dead_lettered, a.lost, a.duplicated, a.unexpected, a.departed, a.unconfirmed
    ));
    if !a.unconfirmed_by_cause.is_empty() {
        t.push_str(&format!(
            "            unconfirmed by how the sender's connection ended: {:?}\n",
            a.unconfirmed_by_cause
        ));
    }
    let line = |name: &str, l: &super::summary::Trend| {
        format!(
            "  {name:<9} p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  ({} samples)\n",
            l.p50_ms, l.p99_ms, l.p999_ms, l.max_ms, l.count
        )
    };
    if let Some(l) = &s.latency.broadcast {
        t.push_str(&line("latency", l));
    }
    if let Some(l) = &s.latency.broadcast_from_send {
        t.push_str(&line("from send", l));
    }
    if let Some(l) = &s.latency.schedule_lag {
        t.push_str(&line("send lag", l));
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
        let note = v
            .note
            .as_ref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        t.push_str(&format!(
            "  {} {} {}  observed {}{window}{note}\n",
            if v.passed { "✓" } else { "✗" },
            v.name,
            v.expression,
            observed
        ));
    }
    t.push_str(&format!("  report    {out_dir}\n"));
    t
}
