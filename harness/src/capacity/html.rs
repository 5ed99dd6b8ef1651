//! capacity.html: the rows, bends, charts, points, cost breakdown and price model on one
//! self-contained page (inline CSS and SVG; no scripts or fonts), well-formed XML.

use std::fmt::Write as _;

use super::CapacityReport;
use super::chart::Rendered;
use super::report::{bend_text, rate, room, usd};
use crate::report::html::esc;

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:2em;color:#222;max-width:1100px}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.pass{color:#1a7f37;font-weight:bold}.fail,.error{color:#c62828;font-weight:bold}\
figure{margin:1em 0 2em}figcaption{font-size:0.9em;color:#555}svg{max-width:100%;height:auto}";

fn row(h: &mut String, cells: &[String], numeric_from: usize) {
    h.push_str("<tr>");
    for (i, c) in cells.iter().enumerate() {
        let class = if i >= numeric_from {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(h, "<td{class}>{}</td>", esc(c));
    }
    h.push_str("</tr>\n");
}

fn head(h: &mut String, cols: &[&str]) {
    h.push_str("<table><tr>");
    for c in cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
}

/// capacity.html: self-contained (inline CSS and SVG; no scripts, fonts or URLs), well-formed.
pub fn render(r: &CapacityReport, charts: &[Rendered]) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"/>\
         <title>DynamoWave capacity — {}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>Capacity: {}</h1>\n<p>Scenario <code>{}</code>, SLO <code>{}</code>, {} s per \
         point (clients join at {}/s first), {} byte messages, on the local stack. {} to {}.</p>\n",
        esc(&r.plan.name),
        esc(&r.plan.name),
        esc(&r.plan.scenario),
        esc(r.plan.slo.as_deref().unwrap_or("-")),
        r.plan.point_duration_s,
        r.plan.join_rate,
        r.plan.message_size,
        esc(&r.plan.started_at),
        esc(&r.plan.finished_at),
    );
    h.push_str("<h2>The curve</h2>\n");
    head(
        &mut h,
        &[
            "connections",
            "room size",
            "max sustainable msg/s",
            "deliveries/s",
            "first failing msg/s",
            "limited by",
            "not run",
        ],
    );
    for x in &r.rows {
        let max = match (x.max_sustainable_rate, x.all_rates_passed) {
            (Some(v), true) => format!("≥ {v}"),
            (v, _) => rate(v),
        };
        let skipped: Vec<String> = x.skipped_rates.iter().map(|v| v.to_string()).collect();
        row(
            &mut h,
            &[
                x.connections.to_string(),
                room(x),
                max,
                rate(x.deliveries_per_second),
                rate(x.first_failing_rate),
                x.limiters.join(", "),
                skipped.join(", "),
            ],
            2,
        );
    }
    h.push_str("</table>\n");
    if r.bends.is_empty() {
        h.push_str("<p>The curve does not bend within the swept range.</p>\n");
    }
    for b in &r.bends {
        let _ = writeln!(
            h,
            "<p><strong>The curve {}.</strong></p>",
            esc(&bend_text(b))
        );
    }
    for (name, title, (svg, _)) in charts {
        let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
        let _ = writeln!(
            h,
            "<figure id=\"{name}\">{svg}<figcaption>{} (also {name}.png)</figcaption></figure>",
            esc(title)
        );
    }
    h.push_str("<h2>Points</h2>\n");
    head(
        &mut h,
        &[
            "point",
            "verdict",
            "limited by",
            "failed thresholds",
            "p99 ms",
            "delivery ratio",
            "throttles (edge / Lambda)",
            "Lambda errors",
            "peak concurrency",
            "cost",
            "cost/hour",
            "per 10⁶ messages",
        ],
    );
    for p in &r.points {
        let e = &p.evidence;
        let c = p.cost.as_ref();
        let mut failed: Vec<String> = p
            .failed_thresholds
            .iter()
            .map(|t| {
                format!(
                    "{} {} (observed {})",
                    t.name,
                    t.expression,
                    t.observed
                        .map(|v| format!("{v:.3}"))
                        .unwrap_or_else(|| "none".into())
                )
            })
            .collect();
        failed.extend(p.error.clone());
        let peak: Vec<String> = e
            .peak_concurrency
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} {n}"))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{v}\">{v}</td>",
            esc(&p.report),
            v = format!("{:?}", p.verdict).to_lowercase()
        );
        let cells = [
            p.limiters.join(", "),
            failed.join("; "),
            e.p99_ms
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "—".into()),
            e.delivery_ratio
                .map(|v| format!("{v:.4}"))
                .unwrap_or_else(|| "—".into()),
            format!("{} / {}", e.edge_throttled, e.function_throttles),
            e.function_errors.to_string(),
            peak.join(", "),
            c.map(|c| usd(c.total)).unwrap_or_else(|| "—".into()),
            c.map(|c| usd(c.per_hour)).unwrap_or_else(|| "—".into()),
            c.and_then(|c| c.per_million_messages)
                .map(usd)
                .unwrap_or_else(|| "—".into()),
        ];
        for (i, cell) in cells.iter().enumerate() {
            let class = if i >= 2 { " class=\"num\"" } else { "" };
            let _ = write!(h, "<td{class}>{}</td>", esc(cell));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<h2>Cost breakdown per point</h2>\n");
    head(
        &mut h,
        &[
            "point",
            "API messages",
            "connection minutes",
            "Lambda requests",
            "Lambda GB-s",
            "DynamoDB reads",
            "DynamoDB writes",
            "API units",
            "GB-s",
            "RRU",
            "WRU",
        ],
    );
    for p in &r.points {
        let (Some(c), Some(u)) = (&p.cost, &p.usage) else {
            continue;
        };
        row(
            &mut h,
            &[
                p.report.clone(),
                usd(c.api_gateway_messages),
                usd(c.api_gateway_connection_minutes),
                usd(c.lambda_requests),
                usd(c.lambda_duration),
                usd(c.dynamodb_reads),
                usd(c.dynamodb_writes),
                u.api_message_units.to_string(),
                format!("{:.3}", u.lambda_gb_seconds),
                format!("{}", u.read_request_units),
                u.write_request_units.to_string(),
            ],
            1,
        );
    }
    let p = &r.prices;
    let _ = write!(
        h,
        "</table>\n<h2>Price model (plan inputs — check them)</h2>\n<p>{} {}, taken {} from {}.</p>\n",
        esc(&p.region),
        esc(&p.currency),
        esc(&p.taken),
        esc(&p.source)
    );
    head(&mut h, &["price", "value"]);
    for (k, v) in [
        (
            "API Gateway WebSocket messages, per million units",
            p.api_gateway.messages_per_million,
        ),
        (
            "API Gateway connection minutes, per million",
            p.api_gateway.connection_minutes_per_million,
        ),
        (
            "Lambda requests, per million",
            p.lambda.requests_per_million,
        ),
        ("Lambda GB-second", p.lambda.gb_second),
        (
            "DynamoDB read request units, per million",
            p.dynamodb.read_request_units_per_million,
        ),
        (
            "DynamoDB write request units, per million",
            p.dynamodb.write_request_units_per_million,
        ),
    ] {
        row(&mut h, &[k.into(), format!("{v}")], 1);
    }
    h.push_str("</table>\n<h3>Formulas</h3>\n<ul>\n");
    for (k, v) in &r.formulas {
        let _ = writeln!(h, "<li><strong>{}</strong>: {}</li>", esc(k), esc(v));
    }
    h.push_str("</ul>\n<h3>Functions</h3>\n");
    head(
        &mut h,
        &["function", "MemorySize (MB)", "reserved concurrency"],
    );
    for (name, f) in &r.functions {
        row(
            &mut h,
            &[
                name.clone(),
                f.memory_mb.to_string(),
                f.reserved_concurrency
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "—".into()),
            ],
            1,
        );
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}
