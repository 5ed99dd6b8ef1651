//! Time series of counts: traffic, errors by cause, and the target's Lambda telemetry.

use std::collections::BTreeMap;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Drawing, Legend, colour, line, note, time_chart};
use crate::report::data::ReportInput;

/// (time s, value) points; None breaks the line.
type Points = Vec<(f64, Option<f64>)>;
type Series = BTreeMap<String, Points>;

fn draw_series<DB: DrawingBackend>(
    input: &ReportInput,
    title: &str,
    area: &DrawingArea<DB, Shift>,
    y_desc: &str,
    series: Vec<(String, Points)>,
    empty: &str,
) -> Drawing
where
    DB::ErrorType: 'static,
{
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v)
        .filter_map(|p| p.1)
        .fold(0.0, f64::max);
    let mut legend = Legend::new();
    let mut chart = time_chart(input, area, &mut legend, title, y_desc, y_max)?;
    if series.is_empty() {
        note(area, empty)?;
    }
    for (n, (label, points)) in series.into_iter().enumerate() {
        line(&mut chart, &mut legend, &label, colour(n), points)?;
    }
    Ok(legend)
}

pub(super) fn throughput<DB: DrawingBackend>(
    input: &ReportInput,
    title: &str,
    area: &DrawingArea<DB, Shift>,
) -> Drawing
where
    DB::ErrorType: 'static,
{
    let iv = &input.summary.intervals;
    let mid = |i: &crate::engine::record::Interval| i.start_s + i.length_s / 2.0;
    let rate = |n: u64, len: f64| Some(n as f64 / len.max(1e-3));
    let series: Vec<(String, Points)> = vec![
        (
            "connections open".into(),
            iv.iter()
                .map(|i| (i.start_s + i.length_s, Some(i.connected as f64)))
                .collect(),
        ),
        (
            "messages sent per s".into(),
            iv.iter()
                .map(|i| (mid(i), rate(i.sent, i.length_s)))
                .collect(),
        ),
        (
            "frames received per s".into(),
            iv.iter()
                .map(|i| (mid(i), rate(i.received, i.length_s)))
                .collect(),
        ),
    ];
    draw_series(
        input,
        title,
        area,
        "connections; per second",
        if iv.is_empty() { Vec::new() } else { series },
        "no intervals were recorded",
    )
}

/// The client's view (handshake failures by cause, closes by code, error frames, throttles)
/// and, with telemetry, the target's refusals.
pub(super) fn errors<DB: DrawingBackend>(
    input: &ReportInput,
    title: &str,
    area: &DrawingArea<DB, Shift>,
) -> Drawing
where
    DB::ErrorType: 'static,
{
    let s = &input.summary;
    let mut series = Series::new();
    let mut add = |label: String, t: f64, len: f64, n: u64| {
        series
            .entry(label)
            .or_default()
            .push((t, Some(n as f64 / len.max(1e-3))));
    };
    for i in &s.intervals {
        let t = i.start_s + i.length_s / 2.0;
        for (cause, n) in &i.connect_failures {
            add(format!("connect failed: {cause}"), t, i.length_s, *n);
        }
        for (code, n) in &i.closes {
            add(format!("closed by server: {code}"), t, i.length_s, *n);
        }
        add("error/other frames".into(), t, i.length_s, i.other_frames);
        add("throttled (client)".into(), t, i.length_s, i.throttled);
    }
    if let Some(tel) = &s.telemetry {
        // Rates over the source's period (a minute from AWS), plotted at its middle.
        let len = f64::from(tel.period_s.max(1));
        for p in &tel.series {
            let t = p.t_s - len / 2.0;
            add(
                "target: client errors (4XX)".into(),
                t,
                len,
                p.client_errors,
            );
            add(
                "target: integration errors".into(),
                t,
                len,
                p.integration_errors,
            );
            add(
                "target: execution errors".into(),
                t,
                len,
                p.execution_errors,
            );
        }
    }
    // Only causes that happened: a flat zero line per possible cause is noise.
    series.retain(|_, v| v.iter().any(|p| p.1.is_some_and(|y| y > 0.0)));
    draw_series(
        input,
        title,
        area,
        "events per second",
        series.into_iter().collect(),
        "no errors, refusals or throttles were recorded",
    )
}

pub(super) fn lambda<DB: DrawingBackend>(
    input: &ReportInput,
    title: &str,
    area: &DrawingArea<DB, Shift>,
) -> Drawing
where
    DB::ErrorType: 'static,
{
    let Some(tel) = &input.summary.telemetry else {
        let mut legend = Legend::new();
        time_chart(input, area, &mut legend, title, "count", 0.0)?;
        note(
            area,
            "no target figures: the target was not a stack with CloudWatch",
        )?;
        return Ok(legend);
    };
    let mut series = Series::new();
    for p in &tel.series {
        let mut throttles = 0;
        let mut cold = 0;
        let mut errors = 0;
        for (name, f) in &p.functions {
            series
                .entry(format!("concurrency: {name}"))
                .or_default()
                .push((p.t_s, Some(f.concurrency as f64)));
            throttles += f.throttles;
            cold += f.cold_starts;
            errors += f.errors;
        }
        for (label, n) in [
            ("throttles (all functions)", throttles),
            ("cold starts (all functions)", cold),
            ("errors (all functions)", errors),
            ("DLQ depth", p.dlq_depth.unwrap_or(0)),
        ] {
            series
                .entry(label.into())
                .or_default()
                .push((p.t_s, Some(n as f64)));
        }
    }
    series.retain(|k, v| k.starts_with("DLQ") || v.iter().any(|p| p.1.is_some_and(|y| y > 0.0)));
    draw_series(
        input,
        title,
        area,
        &format!(
            "instances (concurrency, max); counts per {} s ({})",
            tel.period_s.max(1),
            tel.source
        ),
        series.into_iter().collect(),
        "the target's telemetry has no samples",
    )
}
