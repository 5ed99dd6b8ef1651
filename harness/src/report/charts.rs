//! The report's charts, drawn once per backend with plotters: SVG for report.html, PNG
//! copies for embedding elsewhere. Text uses the bundled DejaVu Sans (no system fonts).

mod counts;

use std::error::Error;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::data::ReportInput;
use crate::error::HarnessError;

pub(crate) type Drawn = Result<(), Box<dyn Error>>;
/// Legend entries: a label and the style of its swatch.
pub(crate) type Legend = Vec<(String, ShapeStyle)>;
pub(crate) type Drawing = Result<Legend, Box<dyn Error>>;
pub(crate) type TimeChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 420;
/// The legend's column at the right, so it never hides data.
const LEGEND_WIDTH: u32 = 270;
pub(crate) const FONT: &str = "sans-serif";

/// One rendered chart: `name` is its file stem (`{name}.png` in the report folder).
pub struct Chart {
    pub name: &'static str,
    pub title: &'static str,
    pub svg: String,
    pub png: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Kind {
    Latency,
    Distribution,
    Throughput,
    Errors,
    Lambda,
}

const KINDS: [(Kind, &str, &str); 5] = [
    (
        Kind::Latency,
        "latency-over-time",
        "Broadcast latency percentiles per interval",
    ),
    (
        Kind::Distribution,
        "latency-distribution",
        "Broadcast latency by percentile, whole run",
    ),
    (
        Kind::Throughput,
        "throughput",
        "Connections, messages sent and frames received",
    ),
    (
        Kind::Errors,
        "errors",
        "Errors and refusals per second, by cause",
    ),
    (
        Kind::Lambda,
        "lambda",
        "Lambda-side telemetry from the target",
    ),
];

impl Kind {
    fn draw<DB: DrawingBackend>(
        self,
        input: &ReportInput,
        title: &str,
        area: &DrawingArea<DB, Shift>,
    ) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        area.fill(&WHITE)?;
        let (plot, side) = area.split_horizontally(WIDTH - LEGEND_WIDTH);
        let entries = match self {
            Kind::Latency => latency_over_time(input, title, &plot),
            Kind::Distribution => distribution(input, title, &plot),
            Kind::Throughput => counts::throughput(input, title, &plot),
            Kind::Errors => counts::errors(input, title, &plot),
            Kind::Lambda => counts::lambda(input, title, &plot),
        }?;
        draw_legend(&side, &entries)
    }
}

pub(crate) fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is compiled in and known to parse; a failure would show as missing text.
            let _ = plotters::style::register_font(FONT, style, bytes);
        }
    });
}

/// A chart drawn the same way on any plotters backend, so it is rendered once per backend.
pub(crate) trait Drawable {
    fn draw_on<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static;
}

/// The chart as SVG text and PNG bytes, both WIDTH × HEIGHT, in the bundled font.
pub(crate) fn render_both(chart: &impl Drawable) -> Result<(String, Vec<u8>), Box<dyn Error>> {
    ensure_font();
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        chart.draw_on(&area)?;
        area.present()?;
    }
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        chart.draw_on(&area)?;
        area.present()?;
    }
    Ok((svg, encode_png(&rgb, WIDTH, HEIGHT)))
}

struct ReportChart<'a> {
    kind: Kind,
    input: &'a ReportInput,
    title: &'a str,
}

impl Drawable for ReportChart<'_> {
    fn draw_on<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Drawn
    where
        DB::ErrorType: 'static,
    {
        self.kind.draw(self.input, self.title, area)
    }
}

/// Every chart of the report, as SVG and PNG.
pub fn render_all(input: &ReportInput) -> Result<Vec<Chart>, HarnessError> {
    KINDS
        .iter()
        .map(|&(kind, name, title)| {
            let (svg, png) = render_both(&ReportChart { kind, input, title }).map_err(|e| {
                HarnessError::Input {
                    file: format!("{name}.svg").into(),
                    message: format!("drawing the chart failed: {e}"),
                }
            })?;
            Ok(Chart {
                name,
                title,
                svg,
                png,
            })
        })
        .collect()
}

pub(crate) fn encode_png(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("writing to memory");
    writer
        .write_image_data(rgb)
        .expect("the buffer matches the size");
    writer.finish().expect("writing to memory");
    out
}

/// Distinct, print-safe series colours.
pub(crate) fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

/// Where the time axis ends: the run, or a later interval, sample or chaos window.
pub(crate) fn run_end_s(input: &ReportInput) -> f64 {
    let s = &input.summary;
    let mut end = s.run.duration_s;
    if let Some(i) = s.intervals.last() {
        end = end.max(i.start_s + i.length_s);
    }
    if let Some(p) = s.telemetry.as_ref().and_then(|t| t.series.last()) {
        end = end.max(p.t_s);
    }
    end.max(1.0)
}

/// Consecutive intervals of one phase: (start s, end s, name).
pub(crate) fn phase_bands(input: &ReportInput) -> Vec<(f64, f64, String)> {
    let mut bands: Vec<(f64, f64, String)> = Vec::new();
    for i in &input.summary.intervals {
        let Some(name) = &i.phase else { continue };
        let end = i.start_s + i.length_s;
        match bands.last_mut() {
            Some(b) if &b.2 == name => b.1 = end,
            _ => bands.push((i.start_s, end, name.clone())),
        }
    }
    bands
}

/// A chart over the run's time with its phases and chaos windows shaded and labelled.
pub(crate) fn time_chart<'a, DB: DrawingBackend>(
    input: &ReportInput,
    area: &'a DrawingArea<DB, Shift>,
    legend: &mut Legend,
    title: &str,
    y_desc: &str,
    y_max: f64,
) -> Result<TimeChart<'a, DB>, Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let end = run_end_s(input);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..end, 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time since the run started (s)")
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    let bands = phase_bands(input);
    if !bands.is_empty() {
        legend.push((
            "phases (grey bands)".into(),
            RGBColor(120, 120, 120).mix(0.2).filled(),
        ));
    }
    for (n, (start, stop, name)) in bands.into_iter().enumerate() {
        let shade = if n % 2 == 0 {
            RGBColor(120, 120, 120).mix(0.10)
        } else {
            RGBColor(120, 120, 120).mix(0.04)
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(start, y_max), (stop, 0.0)],
            shade.filled(),
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            format!("phase {name}"),
            (start + (stop - start) * 0.02, y_max * 0.99),
            (FONT, 12).into_font().color(&RGBColor(80, 80, 80)),
        )))?;
    }
    let red = RGBColor(214, 39, 40);
    let chaos = input.summary.chaos.as_deref().unwrap_or_default();
    if !chaos.is_empty() {
        legend.push(("chaos in force (red)".into(), red.mix(0.2).filled()));
    }
    if chaos.iter().any(|a| a.applied_at_s.is_none()) {
        legend.push(("chaos not applied (outline)".into(), red.stroke_width(1)));
    }
    for (n, a) in chaos.iter().enumerate() {
        let (start, stop) = a.window(end);
        // An action that never took effect is outlined, not shaded.
        let (style, label) = match a.applied_at_s {
            Some(_) => (
                red.mix(0.12).filled(),
                format!("chaos {} ({})", a.action, a.target),
            ),
            None => (
                red.stroke_width(1),
                format!("chaos {} ({}): not applied", a.action, a.target),
            ),
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(start, y_max), (stop, 0.0)],
            style,
        )))?;
        // Staggered, so overlapping windows keep readable labels.
        chart.draw_series(std::iter::once(Text::new(
            label,
            (start, y_max * (0.93 - 0.05 * (n % 3) as f64)),
            (FONT, 12).into_font().color(&red),
        )))?;
    }
    Ok(chart)
}

/// Draws `points` as lines broken where values are missing, with one legend entry.
pub(crate) fn line<'a, DB: DrawingBackend + 'a>(
    chart: &mut TimeChart<'a, DB>,
    legend: &mut Legend,
    label: &str,
    colour: RGBColor,
    points: impl IntoIterator<Item = (f64, Option<f64>)>,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) => runs.last_mut().expect("never empty").push((x, y)),
            None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    let style = colour.stroke_width(2);
    let samples: usize = runs.iter().map(Vec::len).sum();
    for run in runs.into_iter().filter(|r| !r.is_empty()) {
        // Lone points would vanish as zero-length lines: mark samples, unless there are so
        // many (a long soak) that markers would only bloat the SVG.
        if samples <= 300 || run.len() == 1 {
            chart.draw_series(run.iter().map(|&p| Circle::new(p, 2, colour.filled())))?;
        }
        chart.draw_series(LineSeries::new(run, style))?;
    }
    legend.push((label.to_string(), style));
    Ok(())
}

/// The legend in its own column: a swatch and a label per entry.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &Legend) -> Drawn
where
    DB::ErrorType: 'static,
{
    let font = (FONT, 13).into_font();
    for (n, (label, style)) in entries.iter().enumerate() {
        let y = 50 + 22 * n as i32;
        if style.filled {
            area.draw(&Rectangle::new([(4, y - 6), (26, y + 6)], *style))?;
        } else {
            area.draw(&PathElement::new(vec![(4, y), (26, y)], *style))?;
        }
        // Long labels are cut rather than run off the image.
        let text: String = label.chars().take(33).collect();
        area.draw(&Text::new(text, (32, y - 7), font.clone()))?;
    }
    Ok(())
}

/// Says so on the chart when there is nothing to draw.
pub(crate) fn note<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> Drawn
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        text.to_string(),
        (w as i32 / 2 - 180, h as i32 / 2),
        (FONT, 16).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    Ok(())
}

fn latency_over_time<DB: DrawingBackend>(
    input: &ReportInput,
    title: &str,
    area: &DrawingArea<DB, Shift>,
) -> Drawing
where
    DB::ErrorType: 'static,
{
    let iv = &input.summary.intervals;
    let y_max = iv
        .iter()
        .filter_map(|i| i.p999_ms.or(i.p99_ms))
        .fold(0.0, f64::max);
    let mut legend = Legend::new();
    let mut chart = time_chart(input, area, &mut legend, title, "latency (ms)", y_max)?;
    let mid = |i: &crate::engine::record::Interval| i.start_s + i.length_s / 2.0;
    type Pick = fn(&crate::engine::record::Interval) -> Option<f64>;
    let series: [(&str, Pick); 3] = [
        ("p50", |i| i.p50_ms),
        ("p99", |i| i.p99_ms),
        ("p99.9", |i| i.p999_ms),
    ];
    for (n, (label, pick)) in series.into_iter().enumerate() {
        line(
            &mut chart,
            &mut legend,
            label,
            colour(n),
            iv.iter().map(|i| (mid(i), pick(i))),
        )?;
    }
    if iv.iter().all(|i| i.p50_ms.is_none()) {
        note(area, "no broadcast latency was recorded")?;
    }
    Ok(legend)
}

/// HdrHistogram's percentile plot: latency against 1/(1-p) on a log axis, so the tail
/// (99 %, 99.9 %, …) gets as much room as the median.
fn distribution<DB: DrawingBackend>(
    input: &ReportInput,
    title: &str,
    area: &DrawingArea<DB, Shift>,
) -> Drawing
where
    DB::ErrorType: 'static,
{
    let h = &input.latency;
    let count = h.len().max(1) as f64;
    let decades = count.log10().ceil().clamp(2.0, 6.0);
    let x_max = 10f64.powf(decades);
    let mut points: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .map(|v| {
            (
                v.quantile_iterated_to(),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, ms)| (1.0 / (1.0 - q), ms))
        .filter(|(x, _)| *x <= x_max)
        .collect();
    // The largest sample is the top 1/n of n: it sits at 1/(1-p) = n.
    if !h.is_empty() {
        points.push((count.min(x_max), h.max() as f64 / 1000.0));
    }
    let y_max = (h.max() as f64 / 1000.0).max(1.0) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d((1f64..x_max).log_scale(), 0f64..y_max)?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1/(1-p))")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()?;
    if h.is_empty() {
        note(area, "no broadcast latency was recorded")?;
        return Ok(Legend::new());
    }
    let style = colour(0).stroke_width(2);
    chart.draw_series(LineSeries::new(points, style))?;
    Ok(vec![
        ("broadcast latency".into(), style),
        (format!("{} samples", h.len()), WHITE.into()),
        (
            format!("max {:.1} ms", h.max() as f64 / 1000.0),
            WHITE.into(),
        ),
    ])
}

/// 1 → "0%", 10 → "90%", 1000 → "99.9%".
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

#[cfg(test)]
mod tests {
    use super::percentile_label;

    #[test]
    fn the_log_axis_reads_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(2.0), "50%");
    }
}
