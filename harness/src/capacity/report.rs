//! The capacity report: rows and bends from the points, then capacity.json (schema
//! `dynamowave.capacity/1`), capacity.md, and capacity.html with its charts inline (SVG)
//! and as PNGs beside it, drawn with the run report's plotters setup and bundled font.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::plan::CapacityPlan;
use super::{Bend, CapacityReport, FunctionConfig, PlanInfo, Point, Row, SCHEMA, Verdict};
use crate::error::HarnessError;
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
    let charts = super::chart::render(r, dir)?;
    for (name, _, svg_png) in &charts {
        write_atomically(&dir.join(format!("{name}.png")), &svg_png.1)?;
    }
    let json = serde_json::to_vec_pretty(r).expect("the capacity report serialises");
    write_atomically(&dir.join("capacity.json"), &json)?;
    write_atomically(&dir.join("capacity.md"), markdown(r).as_bytes())?;
    write_atomically(
        &dir.join("capacity.html"),
        super::html::render(r, &charts).as_bytes(),
    )
}

pub(super) fn rate(v: Option<f64>) -> String {
    v.map(|r| format!("{r}")).unwrap_or_else(|| "—".into())
}

pub(super) fn usd(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.6}")
    }
}

pub(super) fn room(r: &Row) -> String {
    match (r.room_size, r.rooms) {
        (Some(s), Some(n)) => format!("{s} ({n} rooms)"),
        (None, Some(n)) => format!("{n} rooms"),
        _ => "one room".into(),
    }
}

pub(super) fn bend_text(b: &Bend) -> String {
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
