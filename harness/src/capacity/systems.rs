//! A capacity plan over several systems (`systems:` in the plan, e.g. the reference chat and
//! the seed design): each system's sweep is a whole capacity report in its own folder, run
//! on its own embedded stack with the same local-stack settings; `comparison.{json,md,svg,png}`
//! put them side by side by connection count: the highest sustainable rate, p99 at it, what
//! was delivered, lost and dead-lettered there, and the cost per million deliveries.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::{CapacityReport, Point, Verdict};
use crate::error::HarnessError;
use crate::report::charts::{self, FONT, colour};
use crate::report::write_atomically;

pub const SCHEMA: &str = "dynamowave.capacity-comparison/1";

/// One system's figures at one connection count (its best passing point).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cell {
    pub system: String,
    pub connections: u32,
    pub max_sustainable_rate: Option<f64>,
    pub p99_ms: Option<f64>,
    pub delivery_ratio: Option<f64>,
    /// Over every point of the row: what the system lost and dead-lettered.
    pub lost: u64,
    pub dead_lettered: u64,
    pub cost_per_million_deliveries: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    pub schema: &'static str,
    pub plan: String,
    pub systems: Vec<String>,
    pub currency: String,
    pub cells: Vec<Cell>,
}

/// Deliveries of a point: the posts that reached a recipient (one per delivered pair).
fn cost_per_million_deliveries(p: &Point) -> Option<f64> {
    let cost = p.cost.as_ref()?.total;
    let delivered = (p.counts.as_ref()?.posts as f64) * p.evidence.delivery_ratio?;
    (delivered > 0.0).then(|| cost / delivered * 1e6)
}

pub fn compare(plan: &str, reports: &[(String, CapacityReport)]) -> Comparison {
    let mut cells = Vec::new();
    for (system, r) in reports {
        for row in r
            .rows
            .iter()
            .filter(|row| row.room_size.is_none() || r.rows.len() == 1)
        {
            let points: Vec<&Point> = r
                .points
                .iter()
                .filter(|p| p.connections == row.connections && p.room_size == row.room_size)
                .collect();
            let best = points.iter().rfind(|p| p.verdict == Verdict::Pass);
            cells.push(Cell {
                system: system.clone(),
                connections: row.connections,
                max_sustainable_rate: row.max_sustainable_rate,
                p99_ms: best.and_then(|p| p.evidence.p99_ms),
                delivery_ratio: best.and_then(|p| p.evidence.delivery_ratio),
                lost: points.iter().map(|p| p.evidence.lost).sum(),
                dead_lettered: points.iter().map(|p| p.evidence.dead_lettered).sum(),
                cost_per_million_deliveries: best.and_then(|p| cost_per_million_deliveries(p)),
            });
        }
    }
    Comparison {
        schema: SCHEMA,
        plan: plan.to_string(),
        systems: reports.iter().map(|(s, _)| s.clone()).collect(),
        currency: reports
            .first()
            .map(|(_, r)| r.prices.currency.clone())
            .unwrap_or_default(),
        cells,
    }
}

fn figure(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}"))
        .unwrap_or_else(|| "—".into())
}

pub fn markdown(c: &Comparison) -> String {
    let mut md = format!("# {}: systems side by side\n\n", c.plan);
    md.push_str(&format!(
        "| connections | system | max msg/s | p99 ms | delivered | lost (all rates) | dead-lettered (all rates) | {} per million deliveries |\n|---|---|---|---|---|---|---|---|\n",
        c.currency
    ));
    let mut rows: Vec<&Cell> = c.cells.iter().collect();
    rows.sort_by_key(|cell| {
        (
            cell.connections,
            c.systems.iter().position(|s| *s == cell.system),
        )
    });
    for cell in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            cell.connections,
            cell.system,
            figure(cell.max_sustainable_rate, 0),
            figure(cell.p99_ms, 1),
            cell.delivery_ratio
                .map(|r| format!("{:.2} %", r * 100.0))
                .unwrap_or_else(|| "—".into()),
            cell.lost,
            cell.dead_lettered,
            figure(cell.cost_per_million_deliveries, 4),
        );
    }
    md.push_str(
        "\np99, delivered and cost are at the highest rate that met the SLO; lost and \
         dead-lettered add up every rate swept for that connection count, the failing one \
         included. Each system ran on its own embedded local stack with the same settings; \
         its full capacity report (every point, limiters, costs) is in its folder.\n",
    );
    md
}

/// comparison.json, comparison.md and the chart (SVG and PNG) in `dir`.
pub fn write(dir: &Path, c: &Comparison) -> Result<(), HarnessError> {
    let json = serde_json::to_vec_pretty(c).expect("comparison serialises");
    write_atomically(&dir.join("comparison.json"), &json)?;
    write_atomically(&dir.join("comparison.md"), markdown(c).as_bytes())?;
    let (svg, png) = charts::render_both(c).map_err(|e| HarnessError::Input {
        file: dir.join("comparison.svg"),
        message: format!("drawing the chart failed: {e}"),
    })?;
    write_atomically(&dir.join("comparison.svg"), svg.as_bytes())?;
    write_atomically(&dir.join("comparison.png"), &png)
}

impl charts::Drawable for Comparison {
    fn draw_on<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
    ) -> charts::Drawn
    where
        DB::ErrorType: 'static,
    {
        draw(area, self)
    }
}

/// Max sustainable msg/s by connections, a line per system.
fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    c: &Comparison,
) -> charts::Drawn
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let x_max = c.cells.iter().map(|x| x.connections).max().unwrap_or(1) as f64 * 1.1;
    let y_max = c
        .cells
        .iter()
        .filter_map(|x| x.max_sustainable_rate)
        .fold(1.0, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Max sustainable message rate by connections, per system",
            (FONT, 20),
        )
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
    for (n, system) in c.systems.iter().enumerate() {
        let colour = colour(n);
        let line: Vec<(f64, f64)> = c
            .cells
            .iter()
            .filter(|x| &x.system == system)
            .filter_map(|x| Some((f64::from(x.connections), x.max_sustainable_rate?)))
            .collect();
        chart.draw_series(line.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
        chart
            .draw_series(LineSeries::new(line, colour.stroke_width(2)))?
            .label(system.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
