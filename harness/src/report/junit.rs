//! junit.xml: one test case per threshold, for CI dashboards.

use super::Summary;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn render(s: &Summary) -> String {
    let failures = s.thresholds.iter().filter(|t| !t.passed).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"dynamowave\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        s.thresholds.len(),
        s.run.duration_s
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\" timestamp=\"{}\">\n",
        escape(&format!("slo: {}", s.run.scenario)),
        s.thresholds.len(),
        s.run.duration_s,
        escape(&s.run.started_at)
    ));
    for t in &s.thresholds {
        let name = format!("{} {}", t.name, t.expression);
        let observed = t
            .observed
            .map(|v| match t.window {
                Some(w) => format!("{v} (worst window {}–{} s)", w.start_s, w.end_s),
                None => format!("{v}"),
            })
            .unwrap_or_else(|| "no data".into());
        let observed = match &t.note {
            Some(n) => format!("{observed} ({n})"),
            None => observed,
        };
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            escape(&t.metric),
            escape(&name)
        ));
        if t.passed {
            out.push_str(&format!(
                ">\n      <system-out>observed {}</system-out>\n    </testcase>\n",
                escape(&observed)
            ));
        } else {
            out.push_str(&format!(
                ">\n      <failure message=\"{}\" type=\"threshold\">{} {} failed: observed {}</failure>\n    </testcase>\n",
                escape(&format!("observed {observed}")),
                escape(&t.name),
                escape(&t.expression),
                escape(&observed)
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
