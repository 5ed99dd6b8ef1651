//! report.html: one self-contained page (inline CSS and SVG, no scripts, no network) with
//! the verdict, the SLO and accounting tables and the charts; PNG copies of the charts go
//! beside it. The page is well-formed XML (XHTML syntax) so tools and tests can parse it.

use std::fmt::Write as _;
use std::path::Path;

use super::charts::{self, Chart};
use super::data::{ReportInput, SummaryView, TrendView};
use crate::error::HarnessError;

pub const FILE: &str = "report.html";

/// Renders the charts and the page and writes them into `dir`, each file atomically.
pub fn write(dir: &Path, input: &ReportInput) -> Result<(), HarnessError> {
    let charts = charts::render_all(input)?;
    for c in &charts {
        super::write_atomically(&dir.join(format!("{}.png", c.name)), &c.png)?;
    }
    super::write_atomically(&dir.join(FILE), render(input, &charts).as_bytes())
}

/// Escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as summary.json has it (shortest exact form), for tables people compare.
fn num(v: f64) -> String {
    format!("{v}")
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em;color:#222;max-width:1000px}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}\
figure{margin:1em 0 2em}figcaption{font-size:0.9em;color:#555}\
svg{max-width:100%;height:auto}";

pub fn render(input: &ReportInput, charts: &[Chart]) -> String {
    let s = &input.summary;
    let mut h = String::new();
    let verdict = if s.passed { "PASSED" } else { "FAILED" };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\
         <meta charset=\"utf-8\"/><title>DynamoWave run {id} — {scenario} — {verdict}</title>\
         <style>{STYLE}</style></head>\n<body>\n",
        id = esc(&s.run.id),
        scenario = esc(&s.run.scenario),
    );
    let class = if s.passed { "pass" } else { "fail" };
    let _ = writeln!(
        h,
        "<h1>Run {} — {} — <span class=\"{class}\" id=\"verdict\">{verdict}</span></h1>",
        esc(&s.run.id),
        esc(&s.run.scenario)
    );
    run_table(&mut h, s);
    slo_table(&mut h, s);
    accounting_table(&mut h, s);
    latency_table(&mut h, s);
    clients_table(&mut h, s);
    chaos_table(&mut h, s);
    telemetry_table(&mut h, s);
    h.push_str("<h2>Charts</h2>\n");
    for c in charts {
        let _ = writeln!(
            h,
            "<figure id=\"chart-{name}\">{svg}<figcaption>{title} (PNG: <a href=\"{name}.png\">{name}.png</a>)</figcaption></figure>",
            name = c.name,
            svg = strip_xml_declaration(&c.svg),
            title = esc(c.title),
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.trim_start().strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map_or(svg, |(_, body)| body.trim_start()),
        None => svg.trim_start(),
    }
}

fn row(h: &mut String, cells: &[String]) {
    h.push_str("<tr>");
    for c in cells {
        h.push_str(c);
    }
    h.push_str("</tr>\n");
}

fn td(s: &str) -> String {
    format!("<td>{}</td>", esc(s))
}

fn td_num(v: f64) -> String {
    format!("<td class=\"num\">{}</td>", num(v))
}

fn head(h: &mut String, id: &str, title: &str, cols: &[&str]) {
    let _ = write!(h, "<h2>{}</h2>\n<table id=\"{id}\"><thead><tr>", esc(title));
    for c in cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>\n");
}

fn end(h: &mut String) {
    h.push_str("</tbody></table>\n");
}

fn run_table(h: &mut String, s: &SummaryView) {
    head(h, "run", "Run", &["", ""]);
    let r = &s.run;
    for (k, v) in [
        ("scenario", r.scenario.clone()),
        ("target", r.target.clone()),
        ("started at", r.started_at.clone()),
        ("duration (s)", format!("{:.1}", r.duration_s)),
        (
            "aborted",
            r.aborted.clone().unwrap_or_else(|| "no".to_string()),
        ),
        (
            "dead letters read",
            if r.dead_letters_read { "yes" } else { "no" }.to_string(),
        ),
    ] {
        row(h, &[td(k), td(&v)]);
    }
    end(h);
}

fn slo_table(h: &mut String, s: &SummaryView) {
    head(
        h,
        "slo",
        "SLO thresholds",
        &["metric", "threshold", "observed", "result"],
    );
    for t in &s.thresholds {
        let observed = t
            .observed
            .map(td_num)
            .unwrap_or_else(|| "<td class=\"num\">no data</td>".into());
        let result = if t.passed {
            "<td class=\"pass\">pass</td>"
        } else {
            "<td class=\"fail\">FAIL</td>"
        };
        let expr = if t.abort_on_fail {
            format!("{} (abortOnFail)", t.expression)
        } else {
            t.expression.clone()
        };
        let expr = match &t.note {
            Some(n) => format!("{expr} — {n}"),
            None => expr,
        };
        row(h, &[td(&t.name), td(&expr), observed, result.into()]);
    }
    if s.thresholds.is_empty() {
        h.push_str("<tr><td colspan=\"4\">no thresholds</td></tr>\n");
    }
    end(h);
}

fn accounting_table(h: &mut String, s: &SummaryView) {
    head(h, "accounting", "Accounting", &["", "pairs"]);
    let a = &s.accounting;
    for (k, v) in [
        ("expected", a.expected),
        ("delivered", a.delivered),
        ("late", a.late),
        ("duplicated", a.duplicated),
        ("dead-lettered", a.dead_lettered),
        ("lost", a.lost),
        ("unexpected", a.unexpected),
        ("departed", a.departed),
        ("unconfirmed", a.unconfirmed),
    ] {
        row(h, &[td(k), td_num(v as f64)]);
    }
    for (cause, v) in &a.unconfirmed_by_cause {
        row(
            h,
            &[td(&format!("unconfirmed: {cause}")), td_num(*v as f64)],
        );
    }
    if let Some(r) = a.delivery_ratio() {
        row(h, &[td("delivery ratio"), td_num(r)]);
    }
    end(h);
    h.push_str(
        "<p>expected = delivered + late + dead-lettered + lost; duplicated, unexpected, \
         departed and unconfirmed are counted beside them. Unconfirmed pairs belong to \
         messages nobody received whose sender's connection then ended without a clean \
         close (a reset, no answer to its Close, an abnormal end, or a client made to \
         vanish): the target may never have read them, so they are not counted as lost.</p>\n",
    );
    uncertain_table(h, a);
}

fn uncertain_table(h: &mut String, a: &super::data::AccountingView) {
    if a.uncertain.is_empty() {
        return;
    }
    let title = format!(
        "Uncertain messages ({} of {} listed)",
        a.uncertain.len(),
        a.send_unconfirmed
    );
    head(h, "uncertain", &title, &["sender", "seq", "cause", "pairs"]);
    for u in &a.uncertain {
        row(
            h,
            &[
                td_num(f64::from(u.sender)),
                td_num(f64::from(u.seq)),
                td(&u.cause),
                td_num(u.pairs as f64),
            ],
        );
    }
    end(h);
}

fn latency_table(h: &mut String, s: &SummaryView) {
    head(
        h,
        "latency",
        "Latency (ms)",
        &[
            "", "count", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max",
        ],
    );
    let mut trend = |name: &str, t: &TrendView| {
        let mut cells = vec![td(name), td_num(t.count as f64)];
        for v in [
            t.min_ms, t.mean_ms, t.p50_ms, t.p90_ms, t.p95_ms, t.p99_ms, t.p999_ms, t.max_ms,
        ] {
            cells.push(format!("<td class=\"num\">{v:.2}</td>"));
        }
        row(h, &cells);
    };
    if let Some(t) = &s.latency.broadcast {
        trend("broadcast (from intended send)", t);
    }
    if let Some(t) = &s.latency.broadcast_from_send {
        trend("broadcast (from actual send)", t);
    }
    for (phase, t) in &s.latency.broadcast_by_phase {
        trend(&format!("broadcast, phase {phase}"), t);
    }
    if let Some(t) = &s.latency.schedule_lag {
        trend("schedule lag (send after intended)", t);
    }
    if let Some(t) = &s.latency.connect {
        trend("connect", t);
    }
    end(h);
    h.push_str(
        "<p>Broadcast latency is measured at every recipient from the message's intended send \
         time (no coordinated omission) and from its actual send; the difference is the \
         generator's own lateness, shown as schedule lag.</p>\n",
    );
}

fn clients_table(h: &mut String, s: &SummaryView) {
    head(h, "clients", "Clients and messages", &["", "count"]);
    let c = &s.clients;
    let mut rows: Vec<(String, u64)> = vec![
        ("clients attempted".into(), c.attempted),
        ("clients connected".into(), c.connected),
        ("connects failed".into(), c.failed),
    ];
    rows.extend(
        c.failures_by_cause
            .iter()
            .map(|(k, v)| (format!("connect failed: {k}"), *v)),
    );
    rows.extend(
        c.closes_by_code
            .iter()
            .map(|(k, v)| (format!("closed by the server: {k}"), *v)),
    );
    rows.push(("messages scheduled".into(), s.messages.scheduled));
    if let Some(w) = s.messages.written {
        rows.push(("messages written".into(), w));
    }
    rows.push(("messages failed to send".into(), s.messages.send_failed));
    rows.extend(
        s.other_frames
            .iter()
            .map(|(k, v)| (format!("unstamped frame: {k}"), *v)),
    );
    for (k, v) in rows {
        row(h, &[td(&k), td_num(v as f64)]);
    }
    end(h);
}

fn chaos_table(h: &mut String, s: &SummaryView) {
    let Some(actions) = &s.chaos else { return };
    head(
        h,
        "chaos",
        "Chaos timeline",
        &[
            "action",
            "target",
            "at (s)",
            "for (s)",
            "applied at (s)",
            "reverted at (s)",
            "parameters",
            "error",
        ],
    );
    let opt = |v: Option<f64>| v.map(td_num).unwrap_or_else(|| td("—"));
    for a in actions {
        row(
            h,
            &[
                td(&a.action),
                td(&a.target),
                td_num(a.at_s),
                opt(a.for_s),
                opt(a.applied_at_s),
                opt(a.reverted_at_s),
                td(&if a.params.is_null() {
                    String::new()
                } else {
                    a.params.to_string()
                }),
                td(a.error.as_deref().unwrap_or("")),
            ],
        );
    }
    end(h);
}

fn telemetry_table(h: &mut String, s: &SummaryView) {
    let Some(t) = &s.telemetry else { return };
    if !t.source.is_empty() {
        h.push_str(&format!(
            "<p>The target's figures, from {} at a {} s period{}.</p>\n",
            esc(&t.source),
            t.period_s.max(1),
            if t.incomplete.is_empty() {
                String::new()
            } else {
                format!(
                    "; <strong>incomplete when judged</strong>: {}",
                    esc(&t.incomplete.join("; "))
                )
            }
        ));
    }
    head(
        h,
        "telemetry",
        "Lambda functions (CloudWatch metrics; cold starts from the REPORT lines)",
        &[
            "function",
            "invocations",
            "errors",
            "throttles",
            "cold starts",
            "max concurrency",
            "dead-lettered",
            "mean duration (ms)",
        ],
    );
    for (name, f) in &t.functions {
        let mean = if f.invocations > 0 {
            format!("{:.1}", f.duration_ms_total / f.invocations as f64)
        } else {
            "—".into()
        };
        row(
            h,
            &[
                td(name),
                td_num(f.invocations as f64),
                td_num(f.errors as f64),
                td_num(f.throttles as f64),
                td_num(f.cold_starts as f64),
                td_num(f.max_concurrency as f64),
                td_num(f.dead_lettered as f64),
                format!("<td class=\"num\">{mean}</td>"),
            ],
        );
    }
    end(h);
}
