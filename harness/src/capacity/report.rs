//! The capacity report: rows and bends from the points, then capacity.json (schema
//! `dynamowave.capacity/1`), capacity.md, and capacity.html with its charts inline (SVG)
//! and as PNGs beside it, drawn with the run report's plotters setup and bundled font.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::plan::CapacityPlan;
use super::{Bend, CapacityReport, FunctionConfig, PlanInfo, Point, Row, SCHEMA, Verdict};
use crate::error::HarnessError;
use crate::report::charts::{self, Drawn, FONT, HEIGHT, WIDTH, colour};
use crate::report::html::esc;
use crate::report::write_atomically;

pub fn assemble(
    cp: &CapacityPlan,
    points: Vec<Point>,
    functions: BTreeMap<String, FunctionConfig>,
    started_at: chrono::DateTime<chrono::Utc>,
) -> CapacityReport {
    let mut rows = Vec::new();
    for &room_size in &cp.room_sizes {
        for &connections in &cp.connections {
            let run: Vec<&Point> = points
                .iter()
                .filter(|p| p.connections == connections && p.room_size == room_size)
                .collect();
            if run.is_empty() {
                continue;
            }
            let best = run.iter().rfind(|p| p.verdict == Verdict::Pass);
            let failing = run.iter().find(|p| p.verdict != Verdict::Pass);
            let recipients = f64::from(match (room_size, cp.base.rooms) {
                (Some(s), _) => s.min(connections),
                (None, Some(r)) => connections.div_ceil(r),
                (None, None) => connections,
            });
            rows.push(Row {
                connections,
                room_size,
                rooms: run[0].rooms,
                max_sustainable_rate: best.map(|p| p.rate),
                deliveries_per_second: best.map(|p| p.rate * recipients),
                all_rates_passed: failing.is_none() && run.len() == cp.message_rates.len(),
                first_failing_rate: failing.map(|p| p.rate),
                limiters: failing.map(|p| p.limiters.clone()).unwrap_or_default(),
                skipped_rates: cp
                    .message_rates
                    .iter()
                    .copied()
                    .filter(|r| !run.iter().any(|p| p.rate == *r))
                    .collect(),
            });
        }
    }
    let mut bends = Vec::new();
    for &room_size in &cp.room_sizes {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.room_size == room_size).collect();
        let bend = mine.windows(2).find_map(|w| {
            let from = w[0].max_sustainable_rate?;
            let to = w[1].max_sustainable_rate;
            let dropped = to.is_none_or(|t| t < from * (1.0 - cp.bend_drop));
            dropped.then(|| Bend {
                room_size,
                from_connections: w[0].connections,
                to_connections: w[1].connections,
                from_rate: from,
                to_rate: to,
            })
        });
        bends.extend(bend);
    }
    CapacityReport {
        schema: SCHEMA,
        plan: PlanInfo {
            name: cp.name.clone(),
            description: cp.description.clone(),
            file: cp.source.display().to_string(),
            scenario: cp.base.source.display().to_string(),
            slo: cp.slo.as_ref().map(|p| p.display().to_string()),
            target: "local".into(),
            point_duration_s: cp.duration.as_secs_f64(),
            join_rate: cp.join_rate,
            message_size: cp.base.message_size,
            bend_drop: cp.bend_drop,
            started_at: started_at.to_rfc3339(),
            finished_at: chrono::Utc::now().to_rfc3339(),
        },
        prices: cp.prices.clone(),
        formulas: super::cost::FORMULAS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        functions,
        rows,
        bends,
        points,
    }
}

/// Writes capacity.json, capacity.md, capacity.html and the PNGs into `dir`, each atomically.
pub fn write(dir: &Path, r: &CapacityReport) -> Result<(), HarnessError> {
    let charts = render_charts(r, dir)?;
    for (name, _, svg_png) in &charts {
        write_atomically(&dir.join(format!("{name}.png")), &svg_png.1)?;
    }
    let json = serde_json::to_vec_pretty(r).expect("the capacity report serialises");
    write_atomically(&dir.join("capacity.json"), &json)?;
    write_atomically(&dir.join("capacity.md"), markdown(r).as_bytes())?;
    write_atomically(&dir.join("capacity.html"), html(r, &charts).as_bytes())
}

fn rate(v: Option<f64>) -> String {
    v.map(|r| format!("{r}")).unwrap_or_else(|| "—".into())
}

fn usd(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.6}")
    }
}

fn room(r: &Row) -> String {
    match (r.room_size, r.rooms) {
        (Some(s), Some(n)) => format!("{s} ({n} rooms)"),
        (None, Some(n)) => format!("{n} rooms"),
        _ => "one room".into(),
    }
}

fn bend_text(b: &Bend) -> String {
    let to = match b.to_rate {
        Some(t) => format!("{t} msg/s"),
        None => "no swept rate".into(),
    };
    let size = b
        .room_size
        .map(|s| format!(" (room size {s})"))
        .unwrap_or_default();
    format!(
        "bends between {} and {} connections{size}: max sustainable {} msg/s → {to}",
        b.from_connections, b.to_connections, b.from_rate
    )
}

/// The rows, the bends and the points as Markdown (capacity.md).
pub fn markdown(r: &CapacityReport) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# Capacity: {}\n", r.plan.name);
    let _ = writeln!(
        m,
        "Scenario `{}`, SLO `{}`, {} s per point. Prices: {} {}, taken {} ({}) — plan inputs, check them.\n",
        r.plan.scenario,
        r.plan.slo.as_deref().unwrap_or("-"),
        r.plan.point_duration_s,
        r.prices.region,
        r.prices.currency,
        r.prices.taken,
        r.prices.source
    );
    m.push_str("| connections | room size | max sustainable msg/s | deliveries/s | first failing msg/s | limited by |\n|---:|---|---:|---:|---:|---|\n");
    for row in &r.rows {
        let max = match (row.max_sustainable_rate, row.all_rates_passed) {
            (Some(v), true) => format!("≥ {v}"),
            (v, _) => rate(v),
        };
        let _ = writeln!(
            m,
            "| {} | {} | {max} | {} | {} | {} |",
            row.connections,
            room(row),
            rate(row.deliveries_per_second),
            rate(row.first_failing_rate),
            row.limiters.join(", ")
        );
    }
    m.push('\n');
    if r.bends.is_empty() {
        m.push_str("The curve does not bend within the swept range.\n\n");
    }
    for b in &r.bends {
        let _ = writeln!(m, "The curve {}.\n", bend_text(b));
    }
    m.push_str("| point | verdict | p99 ms | limited by | failed thresholds | cost/hour | cost per 10⁶ messages |\n|---|---|---:|---|---|---:|---:|\n");
    for p in &r.points {
        let cost = p.cost.as_ref();
        let _ = writeln!(
            m,
            "| {} | {:?} | {} | {} | {} | {} | {} |",
            p.report.trim_start_matches("points/"),
            p.verdict,
            p.evidence
                .p99_ms
                .map(|v| format!("{v:.1}"))
                .unwrap_or_else(|| "—".into()),
            p.limiters.join(", "),
            p.failed_thresholds
                .iter()
                .map(|t| format!("{} {}", t.name, t.expression))
                .collect::<Vec<_>>()
                .join("; "),
            cost.map(|c| usd(c.per_hour)).unwrap_or_else(|| "—".into()),
            cost.and_then(|c| c.per_million_messages)
                .map(usd)
                .unwrap_or_else(|| "—".into()),
        );
    }
    m.push_str("\n## Price model\n\n");
    for (k, v) in &r.formulas {
        let _ = writeln!(m, "- **{k}**: {v}");
    }
    m
}

/// The short text `capacity` prints.
pub fn text(r: &CapacityReport, dir: &Path) -> String {
    let mut t = String::new();
    for row in &r.rows {
        let _ = writeln!(
            t,
            "{:>7} connections, {}: max sustainable {}{} msg/s{}",
            row.connections,
            room(row),
            if row.all_rates_passed { "≥ " } else { "" },
            rate(row.max_sustainable_rate),
            if row.limiters.is_empty() {
                String::new()
            } else {
                format!(" (limited by {})", row.limiters.join(", "))
            }
        );
    }
    for b in &r.bends {
        let _ = writeln!(t, "the curve {}", bend_text(b));
    }
    let _ = writeln!(
        t,
        "capacity report: {}",
        dir.join("capacity.html").display()
    );
    t
}

type Rendered = (&'static str, &'static str, (String, Vec<u8>));

fn render_charts(r: &CapacityReport, dir: &Path) -> Result<Vec<Rendered>, HarnessError> {
    charts::ensure_font();
    let kinds: [(&'static str, &'static str); 2] = [
        ("capacity", "Max sustainable message rate by connections"),
        ("capacity-cost", "Cost per million messages by connections"),
    ];
    kinds
        .into_iter()
        .map(|(name, title)| {
            let failed = |e: Box<dyn std::error::Error>| HarnessError::Input {
                file: dir.join(format!("{name}.svg")),
                message: format!("drawing the chart failed: {e}"),
            };
            let mut svg = String::new();
            {
                let area = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
                draw_any(&area, r, name, title).map_err(failed)?;
                area.present().map_err(|e| failed(e.into()))?;
            }
            let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
            {
                let area =
                    BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
                draw_any(&area, r, name, title).map_err(failed)?;
                area.present().map_err(|e| failed(e.into()))?;
            }
            Ok((name, title, (svg, charts::encode_png(&rgb, WIDTH, HEIGHT))))
        })
        .collect()
}

fn draw_any<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &CapacityReport,
    name: &str,
    title: &str,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    match name {
        "capacity" => curve(area, r, title),
        _ => cost_chart(area, r, title),
    }
}

fn series_label(room_size: Option<u32>) -> String {
    room_size
        .map(|s| format!("room size {s}"))
        .unwrap_or_else(|| "scenario's rooms".into())
}

/// Max sustainable msg/s per connection count (a line per room size), every point run as a
/// green (passed) or red (failed) mark at its rate.
fn curve<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &CapacityReport,
    title: &str,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let x_max = r.points.iter().map(|p| p.connections).max().unwrap_or(1) as f64 * 1.1;
    let y_max = r.points.iter().map(|p| p.rate).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .y_desc("messages per second (all clients)")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let sizes: Vec<Option<u32>> = dedup(r.rows.iter().map(|row| row.room_size));
    for (n, size) in sizes.iter().enumerate() {
        let c = colour(n);
        let line: Vec<(f64, f64)> = r
            .rows
            .iter()
            .filter(|row| row.room_size == *size)
            .filter_map(|row| Some((f64::from(row.connections), row.max_sustainable_rate?)))
            .collect();
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(format!("max sustainable, {}", series_label(*size)))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    let (green, red) = (RGBColor(44, 160, 44), RGBColor(214, 39, 40));
    let mark = |p: &Point| (f64::from(p.connections), p.rate);
    chart
        .draw_series(
            r.points
                .iter()
                .filter(|p| p.verdict == Verdict::Pass)
                .map(|p| TriangleMarker::new(mark(p), 5, green.filled())),
        )?
        .label("point met the SLO")
        .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 5, green.filled()));
    chart
        .draw_series(
            r.points
                .iter()
                .filter(|p| p.verdict != Verdict::Pass)
                .map(|p| Cross::new(mark(p), 6, red.stroke_width(2))),
        )?
        .label("point failed (limiter in the table)")
        .legend(move |(x, y)| Cross::new((x + 9, y), 5, red.stroke_width(2)));
    legend(&mut chart)
}

/// Cost per million messages against connections, a line per swept rate: the fan-out
/// (rows read, posts, Lambda time per message) makes it grow with connections.
fn cost_chart<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &CapacityReport,
    title: &str,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let per_m = |p: &Point| p.cost.as_ref().and_then(|c| c.per_million_messages);
    let x_max = r.points.iter().map(|p| p.connections).max().unwrap_or(1) as f64 * 1.1;
    let y_max = r
        .points
        .iter()
        .filter_map(per_m)
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(72)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .y_desc(format!("{} per million messages", r.prices.currency))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let keys: Vec<(Option<u32>, u64)> =
        dedup(r.points.iter().map(|p| (p.room_size, p.rate.to_bits())));
    for (n, (size, bits)) in keys.iter().enumerate() {
        let c = colour(n);
        let line: Vec<(f64, f64)> = r
            .points
            .iter()
            .filter(|p| p.room_size == *size && p.rate.to_bits() == *bits)
            .filter_map(|p| Some((f64::from(p.connections), per_m(p)?)))
            .collect();
        let label = match size {
            Some(s) => format!("{} msg/s, room size {s}", f64::from_bits(*bits)),
            None => format!("{} msg/s", f64::from_bits(*bits)),
        };
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    legend(&mut chart)
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

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
pub fn html(r: &CapacityReport, charts: &[Rendered]) -> String {
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
