//! report.html from a recorded run: `dynamowave report DIR` on a fixture (a real smoke run's
//! summary.json and latency.hlog, with chaos and telemetry sections added by hand), checked
//! as XML, for external references, for its PNGs, and against summary.json's numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smoke-run")
}

/// A copy of the fixture folder, so rendering never writes into the source tree.
fn copy_fixture(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut summary: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("summary.json")).unwrap()).unwrap();
    edit(&mut summary);
    std::fs::write(
        dir.path().join("summary.json"),
        serde_json::to_vec_pretty(&summary).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        fixture().join("latency.hlog"),
        dir.path().join("latency.hlog"),
    )
    .unwrap();
    dir
}

fn render(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("report")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("report.html")).unwrap()
}

/// What the page holds: every table's rows (cell texts) by table id, link targets, and how
/// many inline SVGs. Parsing fails the test if the page is not well-formed.
#[derive(Default)]
struct Page {
    tables: BTreeMap<String, Vec<Vec<String>>>,
    links: Vec<String>,
    svgs: usize,
    text: String,
}

fn parse(html: &str) -> Page {
    let mut reader = Reader::from_str(html);
    reader.config_mut().check_end_names = true;
    let mut page = Page::default();
    let mut table: Option<String> = None;
    let mut cell: Option<String> = None;
    let mut depth = 0i64;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed at {}: {e}", reader.buffer_position()));
        let start = matches!(event, Event::Start(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                depth += i64::from(start);
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                for a in e.attributes() {
                    let a = a.unwrap();
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    let value = a.unescape_value().unwrap().to_string();
                    if key == "href" || key == "src" || key.ends_with(":href") {
                        page.links.push(value.clone());
                    }
                    if name == "table" && key == "id" {
                        table = Some(value.clone());
                        page.tables.insert(value, Vec::new());
                    }
                }
                match name.as_str() {
                    "svg" => page.svgs += 1,
                    "tr" => {
                        if let Some(t) = &table {
                            page.tables.get_mut(t).unwrap().push(Vec::new());
                        }
                    }
                    "td" => cell = Some(String::new()),
                    _ => {}
                }
            }
            Event::End(e) => {
                depth -= 1;
                match e.name().as_ref() {
                    b"td" => {
                        if let (Some(t), Some(c)) = (&table, cell.take()) {
                            let rows = page.tables.get_mut(t).unwrap();
                            rows.last_mut().unwrap().push(c);
                        }
                    }
                    b"table" => table = None,
                    _ => {}
                }
            }
            Event::Text(t) => {
                let s = t.decode().unwrap().to_string();
                page.text.push_str(&s);
                if let Some(c) = &mut cell {
                    c.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().unwrap().to_string();
                let s = match name.as_str() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" | "#39" => "'",
                    other => panic!("unexpected entity &{other};"),
                };
                page.text.push_str(s);
                if let Some(c) = &mut cell {
                    c.push_str(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "every element is closed");
    // Header rows hold only <th> cells.
    for rows in page.tables.values_mut() {
        rows.retain(|r| !r.is_empty());
    }
    page
}

fn rows(page: &Page, id: &str) -> Vec<Vec<String>> {
    page.tables
        .get(id)
        .unwrap_or_else(|| panic!("no table {id}"))
        .clone()
}

fn check_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} signature",
        path.display()
    );
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 420), "{}", path.display());
    // A blank image would decode too: the chart must have drawn something non-white.
    assert!(buf.iter().any(|&b| b < 200), "{} is blank", path.display());
}

#[test]
fn a_recorded_run_renders_a_self_contained_report_that_matches_its_summary() {
    let dir = copy_fixture(|_| {});
    let html = render(dir.path());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    let page = parse(&html);

    // Self-contained: no scripts, stylesheets or fonts from elsewhere; the only URLs are
    // the SVG namespace (an identifier, never fetched).
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("@import"));
    for l in &page.links {
        assert!(
            !l.contains("://") && !l.starts_with("//"),
            "external reference {l}"
        );
    }
    let urls = html.matches("http://").count() + html.matches("https://").count();
    let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(urls, namespaces, "only SVG namespaces name a URL");

    // Five charts inline, each with its PNG beside the page.
    assert_eq!(page.svgs, 5);
    let pngs: Vec<&String> = page.links.iter().filter(|l| l.ends_with(".png")).collect();
    assert_eq!(pngs.len(), 5);
    for p in pngs {
        check_png(&dir.path().join(p));
    }

    // The SLO table says what summary.json says, threshold by threshold.
    let slo = rows(&page, "slo");
    let thresholds = summary["thresholds"].as_array().unwrap();
    assert_eq!(slo.len(), thresholds.len());
    for (row, t) in slo.iter().zip(thresholds) {
        assert_eq!(row[0], t["name"].as_str().unwrap());
        assert!(row[1].starts_with(t["expression"].as_str().unwrap()));
        let observed: f64 = row[2].parse().unwrap();
        assert_eq!(observed, t["observed"].as_f64().unwrap(), "{row:?}");
        assert_eq!(row[3] == "pass", t["passed"].as_bool().unwrap());
    }

    // The accounting table too, figure by figure.
    let accounting: BTreeMap<String, f64> = rows(&page, "accounting")
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap()))
        .collect();
    let a = &summary["accounting"];
    for (label, field) in [
        ("expected", "expected"),
        ("delivered", "delivered"),
        ("late", "late"),
        ("duplicated", "duplicated"),
        ("dead-lettered", "deadLettered"),
        ("lost", "lost"),
    ] {
        assert_eq!(accounting[label], a[field].as_f64().unwrap(), "{label}");
    }
    assert!(
        a["expected"].as_f64().unwrap() > 0.0,
        "the fixture has traffic"
    );

    // The hand-added sections: the chaos timeline and the target's telemetry.
    let chaos = rows(&page, "chaos");
    assert_eq!(chaos.len(), 2);
    assert_eq!(chaos[0][0], "lambda-error");
    assert_eq!(chaos[0][1], "SendMessageFunction");
    assert!(chaos[1][7].contains("AccessDenied"), "{:?}", chaos[1]);
    let functions = rows(&page, "telemetry");
    let expected = summary["telemetry"]["functions"].as_object().unwrap();
    assert_eq!(functions.len(), expected.len());
    for row in &functions {
        let f = &expected[&row[0]];
        assert_eq!(
            row[1].parse::<f64>().unwrap(),
            f["invocations"].as_f64().unwrap()
        );
    }
    // Phases and chaos windows are labelled on the charts.
    assert!(page.text.contains("phase chat"));
    assert!(
        page.text
            .contains("chaos lambda-error (SendMessageFunction)")
    );
    assert!(page.text.contains("not applied"));
    assert!(page.text.contains("concurrency: BroadcastFunction"));
    // The distribution's axis reads as percentiles.
    assert!(page.text.contains("99%"));
}

#[test]
fn a_summary_without_chaos_or_telemetry_still_renders() {
    let dir = copy_fixture(|s| {
        let o = s.as_object_mut().unwrap();
        o.remove("chaos");
        o.remove("telemetry");
    });
    let page = parse(&render(dir.path()));
    assert!(!page.tables.contains_key("chaos"));
    assert!(!page.tables.contains_key("telemetry"));
    assert_eq!(page.svgs, 5);
    assert!(
        page.text
            .contains("no target figures: the target was not a stack with CloudWatch")
    );
}

#[test]
fn a_folder_without_a_summary_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dynamowave"))
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("summary.json") && err.contains("not found"),
        "{err}"
    );
    assert!(!dir.path().join("report.html").exists());
}
