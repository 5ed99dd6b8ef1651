//! The measurement stamp every message carries inside its payload:
//! `dw2|{run}|{sender}|{seq}|{intended µs}|{sent µs}|xxxx…` padded to the message size, both
//! times in µs since the run's start: the intended time (the schedule's, for latency free of
//! coordinated omission) and the actual send (taken just before the write, as wrk2 does).
//! It is plain ASCII that needs no JSON escaping, so a recipient finds it with one substring
//! search instead of parsing the frame.

/// Room for the stamp's fields at their widest.
pub const MIN_PAYLOAD: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub run: u32,
    pub sender: u32,
    pub seq: u32,
    pub intended_us: u64,
    pub sent_us: u64,
}

impl Stamp {
    /// The payload string of `size` bytes (at least the stamp itself).
    pub fn payload(&self, size: usize) -> String {
        let mut s = format!(
            "dw2|{:08x}|{}|{}|{}|{}|",
            self.run, self.sender, self.seq, self.intended_us, self.sent_us
        );
        if s.len() < size {
            s.extend(std::iter::repeat_n('x', size - s.len()));
        }
        s
    }

    /// What a recipient searches for: this run's stamp prefix. Build it once per client.
    pub fn key(run: u32) -> String {
        format!("dw2|{run:08x}|")
    }

    /// Finds this run's stamp anywhere in a received frame.
    pub fn find(frame: &str, run: u32) -> Option<Stamp> {
        Stamp::find_with(frame, &Stamp::key(run), run)
    }

    /// [`Stamp::find`] with the key from [`Stamp::key`]: no allocation per frame.
    pub fn find_with(frame: &str, key: &str, run: u32) -> Option<Stamp> {
        let at = frame.find(key)? + key.len();
        let mut fields = frame[at..].splitn(5, '|');
        let sender = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let intended_us = fields.next()?.parse().ok()?;
        let sent_us = fields.next()?.parse().ok()?;
        fields.next()?;
        Some(Stamp {
            run,
            sender,
            seq,
            intended_us,
            sent_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_inside_a_json_frame() {
        let s = Stamp {
            run: 0xdead_beef,
            sender: 12,
            seq: 345,
            intended_us: 6_789_012,
            sent_us: 6_789_070,
        };
        let p = s.payload(200);
        assert_eq!(p.len(), 200);
        let frame = format!(r#"{{"type":"message","sender":"abc=","message":"{p}","sentAt":1}}"#);
        assert_eq!(Stamp::find(&frame, 0xdead_beef), Some(s));
        assert_eq!(
            Stamp::find(&frame, 1),
            None,
            "another run's stamp is not ours"
        );
        assert_eq!(Stamp::find(r#"{"message":"Forbidden"}"#, 0xdead_beef), None);
        let widest = Stamp {
            run: u32::MAX,
            sender: u32::MAX,
            seq: u32::MAX,
            // Two hours in µs, the longest a connection lives on API Gateway.
            intended_us: 7_200_000_000,
            sent_us: 7_200_000_000,
        };
        assert!(
            widest.payload(10).len() <= MIN_PAYLOAD,
            "the stamp alone fits the minimum"
        );
    }
}
