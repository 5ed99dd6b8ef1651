//! The capacity report's charts (SVG for capacity.html, PNG beside it), drawn with the run
//! report's plotters setup and bundled font.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{CapacityReport, Point, Verdict};
use crate::error::HarnessError;
use crate::report::charts::{self, Drawn, FONT, colour};

pub type Rendered = (&'static str, &'static str, (String, Vec<u8>));

pub fn render(r: &CapacityReport, dir: &Path) -> Result<Vec<Rendered>, HarnessError> {
    let kinds: [(&'static str, &'static str); 2] = [
        ("capacity", "Max sustainable message rate by connections"),
        ("capacity-cost", "Cost per million messages by connections"),
    ];
    kinds
        .into_iter()
        .map(|(name, title)| {
            let drawn = charts::render_both(&CapacityChart { r, name, title }).map_err(|e| {
                HarnessError::Input {
                    file: dir.join(format!("{name}.svg")),
                    message: format!("drawing the chart failed: {e}"),
                }
            })?;
            Ok((name, title, drawn))
        })
        .collect()
}

struct CapacityChart<'a> {
    r: &'a CapacityReport,
    name: &'a str,
    title: &'a str,
}

impl charts::Drawable for CapacityChart<'_> {
    fn draw_on<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        draw_any(area, self.r, self.name, self.title)
    }
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
    legend(&mut chart, SeriesLabelPosition::UpperRight)
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
    // Costs rise to the right: the legend goes where the lines are low.
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    position: SeriesLabelPosition,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
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
