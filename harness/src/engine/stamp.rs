//! The measurement stamp every message carries inside its payload:
//! `dw1|{run}|{sender}|{seq}|{intended µs since run start}|xxxx…` padded to the message size.
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
}

impl Stamp {
    /// The payload string of `size` bytes (at least the stamp itself).
    pub fn payload(&self, size: usize) -> String {
        let mut s = format!(
            "dw1|{:08x}|{}|{}|{}|",
            self.run, self.sender, self.seq, self.intended_us
        );
        if s.len() < size {
            s.extend(std::iter::repeat_n('x', size - s.len()));
        }
        s
    }

    /// What a recipient searches for: this run's stamp prefix. Build it once per client.
    pub fn key(run: u32) -> String {
        format!("dw1|{run:08x}|")
    }

    /// Finds this run's stamp anywhere in a received frame.
    pub fn find(frame: &str, run: u32) -> Option<Stamp> {
        Stamp::find_with(frame, &Stamp::key(run), run)
    }

    /// [`Stamp::find`] with the key from [`Stamp::key`]: no allocation per frame.
    pub fn find_with(frame: &str, key: &str, run: u32) -> Option<Stamp> {
        let at = frame.find(key)? + key.len();
        let mut fields = frame[at..].splitn(4, '|');
        let sender = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let intended_us = fields.next()?.parse().ok()?;
        fields.next()?;
        Some(Stamp {
            run,
            sender,
            seq,
            intended_us,
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
        assert!(
            s.payload(10).len() < MIN_PAYLOAD,
            "the stamp alone fits the minimum"
        );
    }
}
