//! `compare --history DIR`: broadcast p99 and the delivery ratio over many runs, by each
//! run's start time, as trend.svg and trend.png.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::HarnessError;
use crate::report::charts::{self, Drawn, FONT, colour};
use crate::report::data::{SummaryView, load_summary};

/// One run: (start, epoch seconds), p99 ms, delivery ratio.
type Point = (f64, Option<f64>, Option<f64>);

/// Reads every run in `dir` (report folders or summary.json files) plus `new`, draws the
/// trend into `out`; returns the SVG's path. Unreadable entries are skipped with a warning:
/// one broken night must not hide the others.
pub fn write(dir: &Path, new: &SummaryView, out: &Path) -> Result<PathBuf, HarnessError> {
    let entries = std::fs::read_dir(dir).map_err(|e| HarnessError::Input {
        file: dir.to_path_buf(),
        message: format!("cannot read the history folder: {e}"),
    })?;
    let mut runs: Vec<SummaryView> = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let candidate = path.is_dir() && path.join("summary.json").is_file()
            || path.extension().is_some_and(|e| e == "json");
        if !candidate {
            continue;
        }
        match load_summary(&path) {
            Ok(s) => runs.push(s),
            Err(e) => eprintln!("warning: history: {e}"),
        }
    }
    if !runs.iter().any(|r| r.run.id == new.run.id) {
        runs.push(new.clone());
    }
    let mut points: Vec<Point> = runs
        .iter()
        .filter_map(|r| {
            let t = chrono::DateTime::parse_from_rfc3339(&r.run.started_at).ok()?;
            Some((
                t.timestamp_millis() as f64 / 1000.0,
                r.latency.broadcast.as_ref().map(|b| b.p99_ms),
                r.accounting.delivery_ratio(),
            ))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));

    let (svg, png) = charts::render_both(&Trend(&points)).map_err(|e| HarnessError::Input {
        file: out.join("trend.svg"),
        message: format!("drawing the trend failed: {e}"),
    })?;
    std::fs::create_dir_all(out).map_err(|e| HarnessError::Io {
        context: format!("creating {}", out.display()),
        source: e,
    })?;
    let svg_path = out.join("trend.svg");
    crate::report::write_atomically(&svg_path, svg.as_bytes())?;
    crate::report::write_atomically(&out.join("trend.png"), &png)?;
    Ok(svg_path)
}

struct Trend<'a>(&'a [Point]);

impl charts::Drawable for Trend<'_> {
    fn draw_on<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        draw(area, self.0)
    }
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, points: &[Point]) -> Drawn
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let (mut x0, mut x1) = (
        points.first().map_or(0.0, |p| p.0),
        points.last().map_or(1.0, |p| p.0),
    );
    if x1 - x0 < 3600.0 {
        // One run (or runs close together): an hour either side keeps the axis readable.
        x0 -= 3600.0;
        x1 += 3600.0;
    }
    let p99_max = points.iter().filter_map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let ratio_min = points
        .iter()
        .filter_map(|p| p.2)
        .fold(1.0, f64::min)
        .min(0.99);
    let mut chart = ChartBuilder::on(area)
        .caption("Broadcast p99 and delivery ratio over runs", (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .right_y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0f64..p99_max)?
        .set_secondary_coord(x0..x1, ratio_min..1.0005);
    chart
        .configure_mesh()
        .x_desc("run start (UTC)")
        .y_desc("broadcast latency p99 (ms)")
        .x_labels(6)
        .x_label_formatter(&|x| {
            chrono::DateTime::from_timestamp(*x as i64, 0)
                .map(|t| t.format("%m-%d %H:%M").to_string())
                .unwrap_or_default()
        })
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("delivery ratio")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let p99: Vec<(f64, f64)> = points.iter().filter_map(|p| Some((p.0, p.1?))).collect();
    let ratio: Vec<(f64, f64)> = points.iter().filter_map(|p| Some((p.0, p.2?))).collect();
    let (a, b) = (colour(0), colour(2));
    chart.draw_series(p99.iter().map(|&p| Circle::new(p, 3, a.filled())))?;
    chart
        .draw_series(LineSeries::new(p99, a.stroke_width(2)))?
        .label("broadcast p99 (ms, left)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], a.stroke_width(2)));
    chart.draw_secondary_series(ratio.iter().map(|&p| Circle::new(p, 3, b.filled())))?;
    chart
        .draw_secondary_series(LineSeries::new(ratio, b.stroke_width(2)))?
        .label("delivery ratio (right)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], b.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
