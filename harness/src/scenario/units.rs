//! Durations (`500ms`, `10s`, `2m`, `1h`) and sizes (`64`, `2kb`, `1 KiB`) as scenario files
//! write them, deserialised with errors that say what was expected.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s, 2m or 1h"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?} is not a non-negative duration"));
    }
    // from_secs_f64 panics past u64::MAX seconds (fuzzing: `99999999999999999999h`).
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?} is too long a duration"))
}

pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: usize = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64, 2kb or 1KiB"))?;
    let factor = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "kb" | "kib" | "k" => 1024,
        "mb" | "mib" | "m" => 1024 * 1024,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use b, kb or mb)"
            ));
        }
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large a size"))
}

/// The most a file of ours (scenario, SLO, plan, tolerances) may hold: far beyond any real
/// one, and it keeps a path such as /dev/zero from reading forever.
pub const FILE_MAX: u64 = 8 * 1024 * 1024;

/// Reads a text file of at most [`FILE_MAX`] bytes.
pub fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(FILE_MAX + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > FILE_MAX {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB: not a file of ours",
            FILE_MAX / 1024 / 1024
        )));
    }
    Ok(text)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration like 500ms, 10s, 2m or 1h (a bare number is seconds)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        parse_duration(&v.to_string()).map_err(E::custom)
    }
}

pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor)
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a size like 64, 2kb or 1KiB")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<usize, E> {
        parse_size(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<usize, E> {
        Ok(v as usize)
    }
}

pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    d.deserialize_any(SizeVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_past_what_can_be_counted_are_errors_not_panics() {
        let long = parse_duration("99999999999999999999h").unwrap_err();
        assert!(long.contains("too long a duration"), "{long}");
        let big = parse_size("99999999999999999mb").unwrap_err();
        assert!(big.contains("too large a size"), "{big}");
        let phases = "phases:\n  - {name: a, duration: 18446744073709551615}\n  - {name: b, duration: 1000}\n";
        let e = crate::scenario::parse(phases, std::path::Path::new("s.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("phases[1] (b).duration") && e.contains("more time than can be counted"),
            "{e}"
        );
    }

    #[test]
    fn files_are_read_up_to_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.yaml");
        std::fs::write(&small, "phases: []\n").unwrap();
        assert_eq!(read_text(&small).unwrap(), "phases: []\n");
        let huge = dir.path().join("huge.yaml");
        std::fs::write(&huge, vec![b'#'; FILE_MAX as usize + 1]).unwrap();
        assert!(
            read_text(&huge)
                .unwrap_err()
                .to_string()
                .contains("larger than 8 MiB")
        );
        // A device that never ends stops at the limit too.
        assert!(read_text(std::path::Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn durations_and_sizes() {
        let cases = [
            ("500ms", 500),
            ("10s", 10_000),
            ("2m", 120_000),
            ("1.5s", 1_500),
            ("3", 3_000),
        ];
        for (text, ms) in cases {
            assert_eq!(
                parse_duration(text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
        assert!(
            parse_duration("10 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_size("2kb").unwrap(), 2048);
        assert_eq!(parse_size("64").unwrap(), 64);
        assert!(parse_size("lots").is_err());
    }
}
