//! The aggregator: clients send it small events; it keeps the histograms (whole run, per
//! phase, per interval), the per-pair delivery bits for accounting, and the counters.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use hdrhistogram::Histogram as Hdr;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::Serialize;

/// Latencies in µs, 1 µs to 60 s at 3 significant figures.
pub fn histogram() -> Hdr<u64> {
    Hdr::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

#[derive(Debug, Clone)]
pub struct Receipt {
    pub recipient: u32,
    pub sender: u32,
    pub seq: u32,
    pub intended_us: u64,
    /// When the sender wrote it (from the stamp), for latency from the actual send.
    pub sent_us: u64,
    pub received_us: u64,
}

#[derive(Debug)]
pub enum Event {
    Connected {
        client: u32,
        at_us: u64,
        connect_us: u64,
        connection_id: Option<String>,
    },
    ConnectFailed {
        client: u32,
        cause: String,
    },
    Received(Vec<Receipt>),
    /// A frame without our stamp: an error frame or something else the server said.
    OtherFrame {
        text: String,
    },
    /// `at_us`: when the connection ended, or for a client that left, when it began to
    /// leave (sent its Close): nothing sent after that is owed to it.
    Closed {
        client: u32,
        at_us: u64,
        code: Option<u16>,
        by_us: bool,
        /// Why what this client wrote may not have been read by the server: the connection
        /// ended without a completed closing handshake (reset, abnormal end, no answer to
        /// our Close in time, vanished). None after a clean close.
        unconfirmed: Option<&'static str>,
    },
    /// A message was written to the socket (the only moment it counts as sent).
    Sent {
        sender: u32,
        seq: u32,
        intended_us: u64,
        sent_us: u64,
    },
    SendFailed {
        sender: u32,
        seq: u32,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub room: Option<u32>,
    pub joined_us: Option<u64>,
    pub left_us: Option<u64>,
    pub connection_id: Option<String>,
    /// Set when the connection ended without a clean close: the cause (see
    /// [`Event::Closed`]). The server may not have read this client's last writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unconfirmed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageInfo {
    pub sender: u32,
    pub seq: u32,
    pub intended_us: u64,
    pub room: Option<u32>,
    /// Written to the socket (false while only scheduled, or when the write failed).
    pub sent: bool,
}

/// Which seqs of one sender a recipient got, and which of those came late.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairBits {
    pub received: Vec<u64>,
    pub late: Vec<u64>,
}

impl PairBits {
    fn set(bits: &mut Vec<u64>, i: u32) -> bool {
        let (w, b) = ((i / 64) as usize, i % 64);
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        let was = bits[w] & (1 << b) != 0;
        bits[w] |= 1 << b;
        was
    }

    pub fn get(bits: &[u64], i: u32) -> bool {
        bits.get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// One interval's figures, for progress, the report's time series and the .hlog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interval {
    pub start_s: f64,
    pub length_s: f64,
    pub phase: Option<String>,
    pub received: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub connected: u64,
    pub sent: u64,
    pub other_frames: u64,
    /// Handshakes that failed in this interval, by cause (as `clients.failuresByCause`).
    #[serde(default)]
    pub connect_failures: BTreeMap<String, u64>,
    /// Closes the server initiated (or abnormal ones) in this interval, by close code.
    #[serde(default)]
    pub closes: BTreeMap<String, u64>,
    /// Throttling the client saw: handshakes refused with HTTP 429 and "Too Many Requests"
    /// frames (both are also counted above, by cause).
    #[serde(default)]
    pub throttled: u64,
    /// The interval's histogram, V2-deflate serialised (for the .hlog and for merging).
    #[serde(skip_serializing, default)]
    pub hdr_v2: Vec<u8>,
}

/// API Gateway's answer to a throttled message ("Too Many Requests"), or a limit error code.
fn is_throttle_frame(text: &str) -> bool {
    text.contains("Too Many Requests") || text.contains("LimitExceeded")
}

/// The phase running at `t_us`; after the last phase (drain), the last one.
fn phase_at(phases: &[(u64, u64, String)], t_us: u64) -> Option<&str> {
    phases
        .iter()
        .find(|(s, e, _)| t_us >= *s && t_us < *e)
        .or_else(|| phases.last().filter(|(_, e, _)| t_us >= *e))
        .map(|(_, _, n)| n.as_str())
}

impl Interval {
    /// An interval's latency figures from its histogram (the counters start at 0).
    pub fn from_histogram(
        start_s: f64,
        length_s: f64,
        phase: Option<String>,
        h: &Hdr<u64>,
    ) -> Interval {
        let ms = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0);
        let mut hdr_v2 = Vec::new();
        let _ = V2DeflateSerializer::new().serialize(h, &mut hdr_v2);
        Interval {
            start_s,
            length_s,
            phase,
            received: h.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: (!h.is_empty()).then(|| h.max() as f64 / 1000.0),
            connected: 0,
            sent: 0,
            other_frames: 0,
            connect_failures: BTreeMap::new(),
            closes: BTreeMap::new(),
            throttled: 0,
            hdr_v2,
        }
    }
}

pub struct Record {
    /// Broadcast latency from each message's intended send time (free of coordinated
    /// omission: a late generator shows up here).
    pub latency: Hdr<u64>,
    /// The same deliveries measured from the actual send: the gap between the two views is
    /// the generator's own lateness.
    pub latency_from_send: Hdr<u64>,
    /// How late each write left after its intended time (µs).
    pub schedule_lag: Hdr<u64>,
    /// Messages written to their socket.
    pub written: u64,
    pub latency_by_phase: BTreeMap<String, Hdr<u64>>,
    pub connect: Hdr<u64>,
    /// By client id (ids are global across workers).
    pub clients: BTreeMap<u32, ClientInfo>,
    pub messages: Vec<MessageInfo>,
    pub pairs: HashMap<(u32, u32), PairBits>,
    pub duplicated: u64,
    pub connect_failures: BTreeMap<String, u64>,
    pub other_frames: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub send_failed: u64,
    pub intervals: Vec<Interval>,
    /// When the run's final departure began: clients leaving then had the whole drain to
    /// receive what was sent, so they count as members to the end.
    pub final_leave_us: Option<u64>,
    /// Where each (sender, seq) is in `messages`, for the events that follow it.
    message_index: HashMap<(u32, u32), usize>,
    interval: Hdr<u64>,
    interval_start_us: u64,
    interval_sent: u64,
    interval_other: u64,
    interval_failures: BTreeMap<String, u64>,
    interval_closes: BTreeMap<String, u64>,
    interval_throttled: u64,
    connected_now: u64,
    deadline_us: u64,
    /// Phase name by start offset (µs), to tag each latency with its message's phase.
    phases: Vec<(u64, u64, String)>,
}

impl Record {
    pub fn new(deadline_us: u64, phases: Vec<(u64, u64, String)>) -> Self {
        Record {
            latency: histogram(),
            latency_from_send: histogram(),
            schedule_lag: histogram(),
            written: 0,
            latency_by_phase: BTreeMap::new(),
            connect: histogram(),
            clients: BTreeMap::new(),
            messages: Vec::new(),
            pairs: HashMap::new(),
            duplicated: 0,
            connect_failures: BTreeMap::new(),
            other_frames: BTreeMap::new(),
            closes: BTreeMap::new(),
            send_failed: 0,
            intervals: Vec::new(),
            final_leave_us: None,
            message_index: HashMap::new(),
            interval: histogram(),
            interval_start_us: 0,
            interval_sent: 0,
            interval_other: 0,
            interval_failures: BTreeMap::new(),
            interval_closes: BTreeMap::new(),
            interval_throttled: 0,
            connected_now: 0,
            deadline_us,
            phases,
        }
    }

    pub fn phase_of(&self, t_us: u64) -> Option<&str> {
        phase_at(&self.phases, t_us)
    }

    pub fn add_client(&mut self, id: u32, room: Option<u32>) {
        self.clients.insert(
            id,
            ClientInfo {
                room,
                ..Default::default()
            },
        );
    }

    /// A scheduled message; it counts as sent once its [`Event::Sent`] arrives.
    pub fn add_message(&mut self, m: MessageInfo) {
        self.message_index
            .insert((m.sender, m.seq), self.messages.len());
        self.messages.push(m);
    }

    fn message_mut(&mut self, sender: u32, seq: u32) -> Option<&mut MessageInfo> {
        let i = *self.message_index.get(&(sender, seq))?;
        self.messages.get_mut(i)
    }

    pub fn apply(&mut self, event: Event) {
        match event {
            Event::Connected {
                client,
                at_us,
                connect_us,
                connection_id,
            } => {
                let _ = self.connect.record(connect_us.max(1));
                if let Some(c) = self.clients.get_mut(&client) {
                    c.joined_us = Some(at_us);
                    c.connection_id = connection_id;
                }
                self.connected_now += 1;
            }
            Event::ConnectFailed { cause, .. } => {
                if cause.starts_with("http_429") {
                    self.interval_throttled += 1;
                }
                *self.interval_failures.entry(cause.clone()).or_default() += 1;
                *self.connect_failures.entry(cause).or_default() += 1;
            }
            Event::Received(batch) => {
                for r in batch {
                    self.receipt(r);
                }
            }
            Event::OtherFrame { text } => {
                self.interval_other += 1;
                if is_throttle_frame(&text) {
                    self.interval_throttled += 1;
                }
                *self.other_frames.entry(text).or_default() += 1;
            }
            Event::Closed {
                client,
                at_us,
                code,
                by_us,
                unconfirmed,
            } => {
                if let Some(c) = self.clients.get_mut(&client)
                    && c.left_us.is_none()
                {
                    c.left_us = Some(at_us);
                    c.unconfirmed = unconfirmed.map(str::to_string);
                    self.connected_now = self.connected_now.saturating_sub(1);
                }
                if !by_us {
                    let key = code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "abnormal".into());
                    *self.interval_closes.entry(key.clone()).or_default() += 1;
                    *self.closes.entry(key).or_default() += 1;
                }
            }
            Event::Sent {
                sender,
                seq,
                intended_us,
                sent_us,
            } => {
                self.written += 1;
                self.interval_sent += 1;
                let _ = self
                    .schedule_lag
                    .record(sent_us.saturating_sub(intended_us).min(60_000_000));
                if let Some(m) = self.message_mut(sender, seq) {
                    m.sent = true;
                }
            }
            Event::SendFailed { sender, seq } => {
                self.send_failed += 1;
                if let Some(m) = self.message_mut(sender, seq) {
                    m.sent = false;
                }
            }
        }
    }

    fn receipt(&mut self, r: Receipt) {
        let latency = r.received_us.saturating_sub(r.intended_us).max(1);
        let pair = self.pairs.entry((r.recipient, r.sender)).or_default();
        if PairBits::set(&mut pair.received, r.seq) {
            self.duplicated += 1;
            return;
        }
        if latency > self.deadline_us {
            PairBits::set(&mut pair.late, r.seq);
        }
        let latency = latency.min(60_000_000);
        let _ = self.latency.record(latency);
        let from_send = r.received_us.saturating_sub(r.sent_us).clamp(1, 60_000_000);
        let _ = self.latency_from_send.record(from_send);
        let _ = self.interval.record(latency);
        // Allocates the phase's name only the first time the phase is seen.
        if let Some(name) = phase_at(&self.phases, r.intended_us) {
            match self.latency_by_phase.get_mut(name) {
                Some(h) => {
                    let _ = h.record(latency);
                }
                None => {
                    let mut h = histogram();
                    let _ = h.record(latency);
                    self.latency_by_phase.insert(name.to_string(), h);
                }
            }
        }
    }

    /// Closes the interval ending at `now_us` and starts the next.
    pub fn close_interval(&mut self, now_us: u64) -> &Interval {
        let h = std::mem::replace(&mut self.interval, histogram());
        let mut interval = Interval::from_histogram(
            self.interval_start_us as f64 / 1e6,
            now_us.saturating_sub(self.interval_start_us) as f64 / 1e6,
            self.phase_of(self.interval_start_us).map(str::to_string),
            &h,
        );
        interval.connected = self.connected_now;
        interval.sent = std::mem::take(&mut self.interval_sent);
        interval.other_frames = std::mem::take(&mut self.interval_other);
        interval.connect_failures = std::mem::take(&mut self.interval_failures);
        interval.closes = std::mem::take(&mut self.interval_closes);
        interval.throttled = std::mem::take(&mut self.interval_throttled);
        self.interval_start_us = now_us;
        self.intervals.push(interval);
        self.intervals.last().expect("just pushed")
    }

    pub fn connected_now(&self) -> u64 {
        self.connected_now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_count_duplicates_and_lates_once_each() {
        let mut r = Record::new(1_000, vec![(0, 10_000_000, "p".into())]);
        let rc = |seq, received_us| Receipt {
            recipient: 1,
            sender: 2,
            seq,
            intended_us: 0,
            sent_us: 0,
            received_us,
        };
        r.apply(Event::Received(vec![rc(0, 500), rc(0, 600), rc(70, 5_000)]));
        assert_eq!(r.duplicated, 1);
        let pair = &r.pairs[&(1, 2)];
        assert!(PairBits::get(&pair.received, 0) && PairBits::get(&pair.received, 70));
        assert!(!PairBits::get(&pair.late, 0) && PairBits::get(&pair.late, 70));
        assert_eq!(r.latency.len(), 2);
        assert_eq!(r.latency_by_phase["p"].len(), 2);
    }

    #[test]
    fn intervals_count_failures_closes_and_throttles_of_their_own_second() {
        let mut r = Record::new(1_000, vec![(0, 10_000_000, "p".into())]);
        r.add_client(1, None);
        r.apply(Event::ConnectFailed {
            client: 2,
            cause: "http_429 Too Many Requests".into(),
        });
        r.apply(Event::ConnectFailed {
            client: 3,
            cause: "timeout".into(),
        });
        r.apply(Event::OtherFrame {
            text: "Too Many Requests".into(),
        });
        r.apply(Event::Closed {
            client: 1,
            at_us: 500_000,
            code: Some(1001),
            by_us: false,
            unconfirmed: None,
        });
        let first = r.close_interval(1_000_000).clone();
        assert_eq!(first.connect_failures.values().sum::<u64>(), 2);
        assert_eq!(first.closes["1001"], 1);
        assert_eq!((first.throttled, first.other_frames), (2, 1));
        let second = r.close_interval(2_000_000);
        assert!(second.connect_failures.is_empty() && second.closes.is_empty());
        assert_eq!(second.throttled, 0);
        // The run's totals keep everything.
        assert_eq!(r.connect_failures.values().sum::<u64>(), 2);
    }
}
