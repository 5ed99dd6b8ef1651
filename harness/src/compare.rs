//! `dynamowave compare BASELINE NEW`: every metric of two runs side by side, the change, and
//! a verdict against regression tolerances (exit 99 on a regression, like a failed run).

mod history;
pub mod metrics;
pub mod tolerances;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::CompareArgs;
use crate::error::HarnessError;
use crate::report::data::{SummaryView, load_summary};
use crate::run::EXIT_SLO_FAILED;
use metrics::{Better, Metric};
use tolerances::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Regression,
    /// Worse, but within its tolerance.
    WorseWithin,
    /// Worse, and no tolerance judges it.
    Worse,
    Better,
    Same,
    /// No data, or a figure that is neither better nor worse when it moves.
    NotJudged,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::WorseWithin => "worse, within tolerance",
            Verdict::Worse => "worse (no tolerance)",
            Verdict::Better => "better",
            Verdict::Same => "same",
            Verdict::NotJudged => "—",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub key: String,
    pub unit: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    pub verdict: Verdict,
}

impl Row {
    pub fn change(&self) -> Option<f64> {
        Some(self.new? - self.base?)
    }
    pub fn change_pct(&self) -> Option<f64> {
        let base = self.base?;
        (base != 0.0).then(|| self.change().map(|c| c / base.abs() * 100.0))?
    }
}

pub struct Comparison {
    pub rows: Vec<Row>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
    }

    /// "worse than baseline: broadcast_latency.p99 +23.4 % (120.0 → 148.1 ms)", or the
    /// all-clear.
    pub fn headline(&self) -> String {
        let bad: Vec<&Row> = self.regressions().collect();
        match bad.split_first() {
            None => {
                let judged = self
                    .rows
                    .iter()
                    .filter(|r| r.verdict != Verdict::NotJudged)
                    .count();
                let better = self
                    .rows
                    .iter()
                    .filter(|r| r.verdict == Verdict::Better)
                    .count();
                format!(
                    "no regression against baseline ({} metrics, {judged} judged, {better} better)",
                    self.rows.len()
                )
            }
            Some((first, rest)) => {
                let mut line = format!("worse than baseline: {}", describe(first));
                if !rest.is_empty() {
                    let names: Vec<&str> = rest.iter().map(|r| r.key.as_str()).collect();
                    let _ = write!(line, "; and {} more: {}", rest.len(), names.join(", "));
                }
                line
            }
        }
    }
}

fn describe(r: &Row) -> String {
    let change = match (r.change_pct(), r.change()) {
        (Some(p), _) => format!("{p:+.1} %"),
        (None, Some(c)) => format!("{c:+}"),
        (None, None) => "no data".into(),
    };
    let base = r.base.map_or("—".into(), |v| number(v, r.unit));
    format!("{} {change} ({base} → {})", r.key, value(r.new, r.unit))
}

/// A number for people: ms to 0.1, whole counts as integers, ratios to 4 places.
fn number(v: f64, unit: &str) -> String {
    if unit == "ms" {
        format!("{v:.1}")
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// A number with its unit, or "—" without data.
pub fn value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "—".into(),
        Some(v) if unit.is_empty() => number(v, unit),
        Some(v) => format!("{} {unit}", number(v, unit)),
    }
}

fn judge(m_base: Option<&Metric>, m_new: Option<&Metric>, rule: Option<&Rule>) -> Verdict {
    let better = m_new.or(m_base).map_or(Better::Neither, |m| m.better);
    let (base, new) = (m_base.and_then(|m| m.value), m_new.and_then(|m| m.value));
    let rule = rule.filter(|r| !r.ignore);
    match (base, new) {
        // A judged figure that vanished (e.g. no latency at all) is a regression.
        (Some(_), None) if rule.is_some() => Verdict::Regression,
        (Some(b), Some(n)) if better != Better::Neither => {
            let worse = match better {
                Better::Lower => n - b,
                _ => b - n,
            };
            if worse == 0.0 {
                Verdict::Same
            } else if worse < 0.0 {
                Verdict::Better
            } else {
                match rule {
                    Some(r) if r.exceeded(worse, b) => Verdict::Regression,
                    Some(_) => Verdict::WorseWithin,
                    None => Verdict::Worse,
                }
            }
        }
        _ => Verdict::NotJudged,
    }
}

/// Lines up two runs' metrics (the baseline's order, then any only the new run has).
pub fn compare_runs(
    base: &SummaryView,
    new: &SummaryView,
    rules: &BTreeMap<String, Rule>,
) -> Comparison {
    let b = metrics::extract(base);
    let n = metrics::extract(new);
    let mut keys: Vec<&str> = b.iter().map(|m| m.key.as_str()).collect();
    for m in &n {
        if !keys.contains(&m.key.as_str()) {
            keys.push(&m.key);
        }
    }
    let find = |ms: &'_ [Metric], k: &str| ms.iter().position(|m| m.key == k);
    let rows = keys
        .into_iter()
        .map(|k| {
            let mb = find(&b, k).map(|i| &b[i]);
            let mn = find(&n, k).map(|i| &n[i]);
            Row {
                key: k.to_string(),
                unit: mn.or(mb).map_or("", |m| m.unit),
                base: mb.and_then(|m| m.value),
                new: mn.and_then(|m| m.value),
                verdict: judge(mb, mn, rules.get(k)),
            }
        })
        .collect();
    Comparison { rows }
}

pub fn compare(args: CompareArgs) -> Result<i32, HarnessError> {
    let base = load_summary(&args.baseline)?;
    let new = load_summary(&args.new)?;
    let rules = match &args.tolerances {
        None => tolerances::defaults(),
        Some(path) => {
            let mut known = metrics::static_keys();
            for m in metrics::extract(&base)
                .into_iter()
                .chain(metrics::extract(&new))
            {
                if !known.contains(&m.key) {
                    known.push(m.key);
                }
            }
            tolerances::load(path, &known)?
        }
    };
    let c = compare_runs(&base, &new, &rules);
    print!("{}", text_table(&c));
    let mut trend_note = None;
    if let Some(dir) = &args.history {
        let out = args.out.clone().unwrap_or_else(|| folder_of(&args.new));
        let written = history::write(dir, &new, &out)?;
        trend_note = Some(written.clone());
        println!("trend: {}", written.display());
    }
    if let Some(md) = &args.markdown {
        let text = markdown(&c, &base, &new, trend_note.as_deref());
        crate::report::write_atomically(md, text.as_bytes())?;
    }
    println!("{}", c.headline());
    Ok(if c.regressions().next().is_some() {
        EXIT_SLO_FAILED
    } else {
        0
    })
}

/// The report folder a NEW argument names (itself, or the folder of its summary.json).
fn folder_of(p: &Path) -> PathBuf {
    if p.is_dir() {
        p.to_path_buf()
    } else {
        p.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

fn cells(r: &Row) -> [String; 6] {
    [
        r.key.clone(),
        value(r.base, r.unit),
        value(r.new, r.unit),
        r.change().map_or("—".into(), |c| value(Some(c), r.unit)),
        r.change_pct().map_or("—".into(), |p| format!("{p:+.1} %")),
        r.verdict.text().into(),
    ]
}

const HEADERS: [&str; 6] = ["metric", "baseline", "new", "change", "change %", "verdict"];

pub fn text_table(c: &Comparison) -> String {
    let rows: Vec<[String; 6]> = c.rows.iter().map(cells).collect();
    let mut width = HEADERS.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(&HEADERS.map(String::from));
    for r in &rows {
        line(r);
    }
    out
}

pub fn markdown(
    c: &Comparison,
    base: &SummaryView,
    new: &SummaryView,
    trend: Option<&Path>,
) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut md = String::new();
    let _ = writeln!(md, "### DynamoWave: {}\n", cell(&c.headline()));
    let _ = writeln!(
        md,
        "Baseline `{}` ({}, {}) → new `{}` ({}, {}).\n",
        base.run.id,
        base.run.scenario,
        base.run.started_at,
        new.run.id,
        new.run.scenario,
        new.run.started_at
    );
    let _ = writeln!(md, "| {} |", HEADERS.join(" | "));
    md.push_str("|---|---:|---:|---:|---:|---|\n");
    for r in &c.rows {
        let mut cs = cells(r).map(|s| cell(&s));
        if r.verdict == Verdict::Regression {
            cs[5] = "**REGRESSION**".into();
        }
        let _ = writeln!(md, "| {} |", cs.join(" | "));
    }
    if let Some(t) = trend {
        let _ = writeln!(md, "\nTrend over the history: `{}`.", t.display());
    }
    md
}
