//! `dynamowave capacity`: bad plan files fail with the file, the field and the line; a tiny
//! plan runs end to end on the local stack, and every point's cost is recomputed here from
//! its measured counts by the documented formulas.

use std::path::{Path, PathBuf};

use clap::Parser;
use dynamowave_harness::capacity::plan;
use dynamowave_harness::cli::{self, Cli};
use serde_json::Value;

const PRICES: &str = "prices:
  taken: 2025-01-15
  source: test
  region: us-east-1
  currency: USD
  api_gateway: {messages_per_million: 1.0, connection_minutes_per_million: 0.25}
  lambda: {requests_per_million: 0.2, gb_second: 0.0000166667}
  dynamodb: {read_request_units_per_million: 0.125, write_request_units_per_million: 0.625}
";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn base(dir: &Path) {
    write(
        dir,
        "base.yaml",
        "rooms: 2\nslo: slo.yaml\nphases:\n  - {name: x, duration: 1s}\n",
    );
    write(dir, "slo.yaml", "thresholds:\n  lost: [\"count==0\"]\n");
}

#[test]
fn bad_plans_name_the_file_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    base(dir.path());
    let head = "scenario: base.yaml\nconnections: [10, 20]\nmessage_rates: [1, 2]\npoint: {duration: 2s}\n";
    let good = format!("{head}{PRICES}");
    plan::parse(&good, &dir.path().join("good.yaml")).expect("the good plan parses");
    let cases: Vec<(String, &[&str])> = vec![
        (
            format!("{good}conections: [1]\n"),
            &["unknown field `conections`", "line 13"],
        ),
        (
            good.replace("[10, 20]", "[20, 10]"),
            &["connections (line 2)", "ascending"],
        ),
        (
            good.replace("[10, 20]", "[0, 10]"),
            &["connections (line 2)", "above 0"],
        ),
        (
            good.replace("connections: [10, 20]", "connections: []"),
            &["connections (line 2)"],
        ),
        (
            good.replace("[1, 2]", "[2, 1]"),
            &["message_rates (line 3)", "ascending"],
        ),
        (
            good.replace("[1, 2]", "[-1, 2]"),
            &["message_rates (line 3)", "above 0"],
        ),
        (
            good.replace("{duration: 2s}", "{duration: 0s}"),
            &["point.duration (line 4)"],
        ),
        (
            good.replace("{duration: 2s}", "{duration: 2 fortnights}"),
            &["line 4"],
        ),
        (
            good.replace("{duration: 2s}", "{duration: 2s, join_rate: 0}"),
            &["point.join_rate", "above 0"],
        ),
        (
            good.replace("{duration: 2s}", "{duration: 2s, jion_rate: 5}"),
            &["unknown field `jion_rate`", "line 4"],
        ),
        (
            format!("{good}room_sizes: [0]\n"),
            &["room_sizes (line 13)"],
        ),
        (format!("{good}bend_drop: 1.5\n"), &["bend_drop (line 13)"]),
        (
            good.replace("taken: 2025-01-15", "taken: last week"),
            &["prices.taken (line 6)", "YYYY-MM-DD"],
        ),
        (
            good.replace("gb_second: 0.0000166667", "gb_second: -1"),
            &["prices.lambda.gb_second"],
        ),
        (
            good.replace(
                "  lambda: {requests_per_million: 0.2, gb_second: 0.0000166667}\n",
                "",
            ),
            &["missing field `lambda`"],
        ),
        (
            good.replace("currency: USD", "currency: USD\n  discount: 0.5"),
            &["unknown field `discount`", "line 10"],
        ),
        (
            good.replace("base.yaml", "missing.yaml"),
            &["scenario (line 1)", "missing.yaml"],
        ),
        (head.to_string(), &["missing field `prices`"]),
    ];
    for (text, needles) in &cases {
        let err = plan::parse(text, &dir.path().join("bad.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.yaml"), "{err}");
        for n in *needles {
            assert!(err.contains(n), "{text}\n → {err}\n (wanted {n:?})");
        }
    }
    // A base scenario with chaos is refused: capacity points measure steady load.
    write(
        dir.path(),
        "chaos.yaml",
        "phases:\n  - {name: x, duration: 1s}\nchaos:\n  - {at: 0s, for: 1s, action: throttle-api, params: {rate: 1, burst: 1}}\n",
    );
    let err = plan::parse(
        &good.replace("base.yaml", "chaos.yaml"),
        &dir.path().join("c.yaml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("chaos"), "{err}");
}

#[test]
fn the_shipped_local_plan_is_valid() {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/capacity-local.yaml"
    ));
    assert!(plan::is_plan(p));
    let cp = plan::load(p).unwrap();
    assert!(cp.connections.len() * cp.message_rates.len() <= 16);
    assert!(cp.duration.as_secs() <= 10);
    assert!(cp.slo.is_some());
}

/// The documented price model, written out again independently of the harness's code.
fn recompute(point: &Value, prices: &Value) -> [f64; 6] {
    let c = &point["counts"];
    let u = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("counts.{k}: {c}"));
    let api = &prices["api_gateway"];
    let unit = api["message_unit_bytes"].as_u64().unwrap();
    assert_eq!(unit, 32768, "the default unit is 32 KB");
    let messages_in = u("messagesSent") + u("whoamiSent");
    let delivered = u("posts");
    let api_units = messages_in * u("unitsPerMessageIn") + delivered * u("unitsPerPost");
    assert_eq!(
        point["usage"]["apiMessageUnits"].as_u64().unwrap(),
        api_units
    );
    let (mut requests, mut gbs) = (0u64, 0f64);
    for f in c["functions"].as_object().unwrap().values() {
        requests += f["invocations"].as_u64().unwrap();
        gbs += f["durationMsTotal"].as_f64().unwrap() / 1000.0 * f["memoryMb"].as_f64().unwrap()
            / 1024.0;
    }
    let broadcasts = u("messagesSent") as f64;
    let rows_per = u("posts") as f64 / broadcasts;
    let row_bytes = prices["dynamodb"]["row_bytes"].as_f64().unwrap();
    let rru = broadcasts * (1.0 + 0.5 * (rows_per * row_bytes / 4096.0).ceil());
    let rooms = c["roomsUsed"].as_bool().unwrap();
    let wru = (u("connects") + u("disconnects")) * if rooms { 2 } else { 1 };
    let p = |a: &str, b: &str| prices[a][b].as_f64().unwrap();
    [
        api_units as f64 / 1e6 * p("api_gateway", "messages_per_million"),
        c["connectionMinutes"].as_f64().unwrap() / 1e6
            * p("api_gateway", "connection_minutes_per_million"),
        requests as f64 / 1e6 * p("lambda", "requests_per_million"),
        gbs * p("lambda", "gb_second"),
        rru / 1e6 * p("dynamodb", "read_request_units_per_million"),
        wru as f64 / 1e6 * p("dynamodb", "write_request_units_per_million"),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-9 * a.abs().max(b.abs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_plan_runs_end_to_end_with_verdicts_limiters_and_costs() {
    let exe = std::env::current_exe().unwrap();
    let binaries = exe.parent().unwrap().parent().unwrap().to_path_buf();
    assert!(
        binaries.join("connect").is_file(),
        "build dynamowave-chat first"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "base.yaml",
        "rooms: 2\nmessage_size: 128\ndeadline: 5s\ndrain: 2s\nlocal: {WarmerEnabled: \"false\"}\nphases:\n  - {name: x, duration: 1s}\n",
    );
    // messages_sent < 20 holds at 2 msg/s for 4 s (≈ 8) and fails at 12 msg/s (≈ 48):
    // a failing point whatever the machine's speed; the rest is the usual SLO.
    write(
        d,
        "slo.yaml",
        "thresholds:\n  messages_sent: [\"count<20\"]\n  lost: [\"count==0\"]\n  broadcast_latency: [\"p(99)<5000\"]\n",
    );
    let plan = write(
        d,
        "plan.yaml",
        &format!(
            "scenario: base.yaml\nslo: slo.yaml\nconnections: [6, 10]\nmessage_rates: [2, 12]\n\
             point: {{duration: 4s, join_rate: 20, settle: 0s}}\n{PRICES}"
        ),
    );
    let out = d.join("report");
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let args = [
        "dynamowave",
        "capacity",
        plan.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--template",
        template,
        "--binaries",
        binaries.to_str().unwrap(),
    ];
    let code = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        cli::run(Cli::try_parse_from(args).unwrap()),
    )
    .await
    .expect("the plan finishes within 5 minutes")
    .unwrap();
    assert_eq!(code, 0);

    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("capacity.json")).unwrap()).unwrap();
    assert_eq!(r["schema"], "dynamowave.capacity/1");
    for key in [
        "plan",
        "prices",
        "formulas",
        "functions",
        "rows",
        "bends",
        "points",
    ] {
        assert!(r.get(key).is_some(), "capacity.json lacks {key}");
    }
    assert_eq!(r["prices"]["taken"], "2025-01-15");
    assert_eq!(
        r["functions"]["Broadcast"]["memoryMb"], 512,
        "{}",
        r["functions"]
    );
    assert_eq!(r["functions"]["SendMessage"]["memoryMb"], 256);
    let points = r["points"].as_array().unwrap();
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        // Each row passed at 2 msg/s and stopped at 12 (the SLO caps messages at 20).
        assert_eq!(row["maxSustainableRate"], 2.0, "{row}");
        assert_eq!(row["firstFailingRate"], 12.0, "{row}");
        assert_eq!(row["allRatesPassed"], false);
    }
    assert_eq!(points.len(), 4);
    for p in points {
        let verdict = p["verdict"].as_str().unwrap();
        assert!(["pass", "fail", "error"].contains(&verdict), "{p}");
        assert_ne!(verdict, "error", "{}", p["error"]);
        let limiters = p["limiters"].as_array().unwrap();
        if verdict == "pass" {
            assert!(limiters.is_empty(), "{p}");
        } else {
            assert!(
                !limiters.is_empty(),
                "a failed point names its limiter: {p}"
            );
            assert!(
                p["failedThresholds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["name"] == "messages_sent"),
                "{p}"
            );
        }
        // The counts are the point's own summary.json figures.
        let s: Value = serde_json::from_slice(
            &std::fs::read(out.join(p["report"].as_str().unwrap()).join("summary.json")).unwrap(),
        )
        .unwrap();
        let c = &p["counts"];
        let sent = s["messages"]["scheduled"].as_u64().unwrap()
            - s["messages"]["sendFailed"].as_u64().unwrap();
        assert_eq!(c["messagesSent"].as_u64().unwrap(), sent);
        assert!(sent > 0);
        assert_eq!(c["connects"], s["clients"]["connected"]);
        assert_eq!(c["posts"], s["telemetry"]["api"]["posts"]);
        let minutes: f64 = s["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["connected"].as_f64().unwrap() * i["lengthS"].as_f64().unwrap() / 60.0)
            .sum();
        assert!(close(c["connectionMinutes"].as_f64().unwrap(), minutes));
        for (name, f) in s["telemetry"]["functions"].as_object().unwrap() {
            assert_eq!(
                c["functions"][name]["invocations"], f["invocations"],
                "{name}"
            );
            assert_eq!(
                c["functions"][name]["durationMsTotal"], f["durationMsTotal"],
                "{name}"
            );
        }
        // Costs from the counts, by the documented formulas.
        let parts = recompute(p, &r["prices"]);
        let cost = &p["cost"];
        let names = [
            "apiGatewayMessages",
            "apiGatewayConnectionMinutes",
            "lambdaRequests",
            "lambdaDuration",
            "dynamodbReads",
            "dynamodbWrites",
        ];
        for (name, want) in names.iter().zip(parts) {
            let got = cost[name].as_f64().unwrap();
            assert!(close(got, want), "{name}: {got} vs {want}");
        }
        let total: f64 = parts.iter().sum();
        assert!(total > 0.0);
        assert!(close(cost["total"].as_f64().unwrap(), total));
        let hour = total * 3600.0 / c["durationS"].as_f64().unwrap();
        assert!(close(cost["perHour"].as_f64().unwrap(), hour));
        let per_m = total / sent as f64 * 1e6;
        assert!(close(cost["perMillionMessages"].as_f64().unwrap(), per_m));
    }
    // The report files: Markdown, self-contained HTML (well-formed, no scripts or URLs), PNGs.
    let md = std::fs::read_to_string(out.join("capacity.md")).unwrap();
    assert!(md.contains("| 6 |") && md.contains("| 10 |"), "{md}");
    let html = std::fs::read_to_string(out.join("capacity.html")).unwrap();
    let mut reader = quick_xml::Reader::from_str(html.trim_start_matches("<!DOCTYPE html>\n"));
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("capacity.html is not well formed: {e}"),
        }
    }
    assert!(!html.contains("<script"));
    // The only URLs are the inline SVGs' namespace.
    let urls = html.matches("http://").count() + html.matches("https://").count();
    let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(
        urls, namespaces,
        "capacity.html refers to something outside itself"
    );
    assert!(html.matches("<svg").count() >= 2);
    for png in ["capacity.png", "capacity-cost.png"] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}");
    }
}

#[test]
fn the_shipped_seed_comparison_plan_is_valid() {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../baselines/seed-python/capacity-vs-reference.yaml"
    ));
    let cp = plan::load(p).unwrap();
    let names: Vec<&str> = cp.systems.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reference", "seed"]);
    assert!(cp.systems.iter().all(|s| s.template.is_file()));
}

#[test]
fn systems_are_validated_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    base(d);
    write(d, "t.yaml", "Resources: {}\n");
    for (systems, why) in [
        ("[{name: a/b, template: t.yaml}]", "systems.0.name"),
        (
            "[{name: a, template: t.yaml}, {name: a, template: t.yaml}]",
            "two systems are named a",
        ),
        ("[{name: a, template: nope.yaml}]", "systems.0.template"),
        (
            "[{name: a, template: t.yaml, scenario: none.yaml}]",
            "systems.0.scenario",
        ),
    ] {
        let text = format!(
            "scenario: base.yaml\nconnections: [2]\nmessage_rates: [1]\npoint: {{duration: 1s}}\nsystems: {systems}\n{PRICES}"
        );
        let err = plan::parse(&text, &d.join("plan.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{systems}: {err}");
    }
}

/// Two systems in one plan, with a share of @connections posts failing on both stacks: the
/// seed design drops what failed (lost), the reference retries and dead-letters the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_and_the_reference_side_by_side_lose_and_dead_letter() {
    let exe = std::env::current_exe().unwrap();
    let binaries = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let failing = "local_stack: {post_failure_share: 0.7, post_failure_status: 500}\n";
    // The drain outlasts the reference's retries (5 attempts, backoff capped at 2 s), so what
    // it could not deliver is in the DLQ when the run reads it.
    let chat = "message_size: 64\ndeadline: 5s\ndrain: 10s\nslo: slo.yaml\nphases:\n  - {name: x, duration: 1s}\n";
    write(d, "seed.yaml", &format!("{chat}{failing}"));
    write(
        d,
        "reference.yaml",
        &format!("{chat}{failing}local: {{WarmerEnabled: \"false\"}}\n"),
    );
    write(
        d,
        "slo.yaml",
        "thresholds:\n  broadcast_latency: [\"p(99)<10000\"]\n",
    );
    let plan = write(
        d,
        "plan.yaml",
        &format!(
            "scenario: seed.yaml\nslo: slo.yaml\nconnections: [6]\nmessage_rates: [3]\n\
             point: {{duration: 4s, join_rate: 20, settle: 0s, warmup: false}}\n\
             systems:\n  - {{name: reference, template: {}, scenario: reference.yaml}}\n  - {{name: seed, template: {}}}\n{PRICES}",
            root.join("template.yaml").display(),
            root.join("baselines/seed-python/template.yaml").display(),
        ),
    );
    let out = d.join("report");
    let args = [
        "dynamowave",
        "capacity",
        plan.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--binaries",
        binaries.to_str().unwrap(),
    ];
    let code = tokio::time::timeout(
        std::time::Duration::from_secs(300),
        cli::run(Cli::try_parse_from(args).unwrap()),
    )
    .await
    .expect("the comparison finishes within 5 minutes")
    .unwrap();
    assert_eq!(code, 0);
    for f in [
        "comparison.json",
        "comparison.md",
        "comparison.svg",
        "comparison.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    for system in ["reference", "seed"] {
        assert!(out.join(system).join("capacity.json").is_file(), "{system}");
    }
    let c: Value =
        serde_json::from_slice(&std::fs::read(out.join("comparison.json")).unwrap()).unwrap();
    assert_eq!(c["systems"], serde_json::json!(["reference", "seed"]));
    let cell = |s: &str| {
        c["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["system"] == s)
            .cloned()
            .unwrap_or_else(|| panic!("no {s} cell: {c}"))
    };
    let (reference, seed) = (cell("reference"), cell("seed"));
    assert!(
        seed["lost"].as_u64().unwrap() > 0,
        "the design loses silently: {seed}"
    );
    assert_eq!(seed["deadLettered"], 0, "{seed}");
    assert!(
        reference["deadLettered"].as_u64().unwrap() > 0,
        "the reference dead-letters what still failed: {reference}"
    );
    assert_eq!(reference["lost"], 0, "{reference}");
}
