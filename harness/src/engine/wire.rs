//! The worker protocol: what one worker recorded, as JSON, so the results of many workers
//! (processes on this machine today, other machines later) merge exactly into one
//! [`Record`] — histograms add, delivery bits union, counters sum.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram as Hdr;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::Shard;
use super::record::{ClientInfo, Interval, MessageInfo, PairBits, Record};

pub const SCHEMA: &str = "dynamowave.worker/1";

/// What a worker is asked to run (read from its stdin).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub scenario: std::path::PathBuf,
    pub websocket_url: String,
    pub shard: Shard,
    pub run_id: u32,
    /// Epoch ms at which every worker starts the schedule.
    pub start_epoch_ms: i64,
}

/// What a worker sends back (one JSON document on its stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerResult {
    pub schema: String,
    pub shard: Shard,
    pub latency: String,
    pub latency_from_send: String,
    pub schedule_lag: String,
    pub written: u64,
    pub latency_by_phase: BTreeMap<String, String>,
    pub connect: String,
    pub clients: BTreeMap<u32, ClientInfo>,
    pub messages: Vec<MessageInfo>,
    pub pairs: Vec<(u32, u32, PairBits)>,
    pub duplicated: u64,
    pub connect_failures: BTreeMap<String, u64>,
    pub other_frames: BTreeMap<String, u64>,
    pub closes: BTreeMap<String, u64>,
    pub send_failed: u64,
    pub intervals: Vec<(Interval, String)>,
    pub final_leave_us: Option<u64>,
    pub messages_scheduled: u64,
    pub elapsed_ms: u64,
    pub aborted: Option<String>,
}

fn encode(h: &Hdr<u64>) -> String {
    let mut bytes = Vec::new();
    let _ = V2DeflateSerializer::new().serialize(h, &mut bytes);
    STANDARD.encode(bytes)
}

fn decode_bytes(bytes: &[u8]) -> Result<Hdr<u64>, String> {
    let mut h: Hdr<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("a histogram does not decode: {e:?}"))?;
    // Merged histograms must cover the same range as ours.
    h.auto(true);
    Ok(h)
}

fn decode(text: &str) -> Result<Hdr<u64>, String> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| format!("a histogram is not base64: {e}"))?;
    decode_bytes(&bytes)
}

impl Record {
    pub fn to_wire(
        &self,
        shard: Shard,
        messages_scheduled: u64,
        elapsed_ms: u64,
        aborted: Option<String>,
    ) -> WorkerResult {
        WorkerResult {
            schema: SCHEMA.into(),
            shard,
            latency: encode(&self.latency),
            latency_from_send: encode(&self.latency_from_send),
            schedule_lag: encode(&self.schedule_lag),
            written: self.written,
            latency_by_phase: self
                .latency_by_phase
                .iter()
                .map(|(k, h)| (k.clone(), encode(h)))
                .collect(),
            connect: encode(&self.connect),
            clients: self.clients.clone(),
            messages: self.messages.clone(),
            pairs: self
                .pairs
                .iter()
                .map(|(&(r, s), p)| (r, s, p.clone()))
                .collect(),
            duplicated: self.duplicated,
            connect_failures: self.connect_failures.clone(),
            other_frames: self.other_frames.clone(),
            closes: self.closes.clone(),
            send_failed: self.send_failed,
            intervals: self
                .intervals
                .iter()
                .map(|i| (i.clone(), STANDARD.encode(&i.hdr_v2)))
                .collect(),
            final_leave_us: self.final_leave_us,
            messages_scheduled,
            elapsed_ms,
            aborted,
        }
    }

    /// Adds one worker's result. Workers own disjoint clients, so nothing is counted twice.
    pub fn merge(&mut self, w: &WorkerResult) -> Result<(), String> {
        if w.schema != SCHEMA {
            return Err(format!(
                "worker result schema {:?} is not {SCHEMA:?}",
                w.schema
            ));
        }
        let add = |into: &mut Hdr<u64>, text: &str| -> Result<(), String> {
            into.add(decode(text)?)
                .map_err(|e| format!("histograms do not add: {e:?}"))
        };
        add(&mut self.latency, &w.latency)?;
        add(&mut self.latency_from_send, &w.latency_from_send)?;
        add(&mut self.schedule_lag, &w.schedule_lag)?;
        self.written += w.written;
        add(&mut self.connect, &w.connect)?;
        for (phase, h) in &w.latency_by_phase {
            add(
                self.latency_by_phase
                    .entry(phase.clone())
                    .or_insert_with(super::record::histogram),
                h,
            )?;
        }
        self.clients.extend(w.clients.clone());
        self.messages.extend(w.messages.iter().cloned());
        for (r, s, bits) in &w.pairs {
            let p = self.pairs.entry((*r, *s)).or_default();
            union(&mut p.received, &bits.received);
            union(&mut p.late, &bits.late);
        }
        self.duplicated += w.duplicated;
        self.send_failed += w.send_failed;
        for (into, from) in [
            (&mut self.connect_failures, &w.connect_failures),
            (&mut self.other_frames, &w.other_frames),
            (&mut self.closes, &w.closes),
        ] {
            for (k, v) in from {
                *into.entry(k.clone()).or_default() += v;
            }
        }
        self.final_leave_us = match (self.final_leave_us, w.final_leave_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (n, (interval, hdr)) in w.intervals.iter().enumerate() {
            let bytes = STANDARD
                .decode(hdr)
                .map_err(|e| format!("an interval is not base64: {e}"))?;
            match self.intervals.get_mut(n) {
                None => {
                    let mut i = interval.clone();
                    i.hdr_v2 = bytes;
                    self.intervals.push(i);
                }
                Some(mine) => {
                    let mut h = if mine.hdr_v2.is_empty() {
                        super::record::histogram()
                    } else {
                        decode_bytes(&mine.hdr_v2)?
                    };
                    h.add(decode_bytes(&bytes)?)
                        .map_err(|e| format!("histograms do not add: {e:?}"))?;
                    let connected = mine.connected + interval.connected;
                    let sent = mine.sent + interval.sent;
                    let other = mine.other_frames + interval.other_frames;
                    let mut failures = std::mem::take(&mut mine.connect_failures);
                    let mut closes = std::mem::take(&mut mine.closes);
                    for (into, from) in [
                        (&mut failures, &interval.connect_failures),
                        (&mut closes, &interval.closes),
                    ] {
                        for (k, v) in from {
                            *into.entry(k.clone()).or_default() += v;
                        }
                    }
                    let throttled = mine.throttled + interval.throttled;
                    *mine = Interval::from_histogram(
                        mine.start_s,
                        mine.length_s.max(interval.length_s),
                        mine.phase.clone(),
                        &h,
                    );
                    mine.connected = connected;
                    mine.sent = sent;
                    mine.other_frames = other;
                    mine.connect_failures = failures;
                    mine.closes = closes;
                    mine.throttled = throttled;
                }
            }
        }
        Ok(())
    }
}

fn union(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a |= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounting::account;
    use crate::engine::record::{Event, Receipt};

    /// The events of a small run: 6 clients, 3 messages each from clients 0–2, every client
    /// receiving everything with different latencies, a duplicate and a late one.
    fn feed(r: &mut Record, keep: impl Fn(u32) -> bool) {
        for c in (0..6).filter(|c| keep(*c)) {
            r.add_client(c, None);
            r.apply(Event::Connected {
                client: c,
                at_us: 10,
                connect_us: 100 + u64::from(c),
                connection_id: None,
            });
        }
        for sender in (0..3).filter(|s| keep(*s)) {
            for seq in 0..3 {
                r.add_message(MessageInfo {
                    sender,
                    seq,
                    intended_us: 1_000 * u64::from(seq + 1),
                    room: None,
                    sent: false,
                });
                r.apply(Event::Sent {
                    sender,
                    seq,
                    intended_us: 1_000 * u64::from(seq + 1),
                    sent_us: 1_000 * u64::from(seq + 1) + u64::from(sender) * 11,
                });
            }
        }
        let mut batch = Vec::new();
        for recipient in (0..6).filter(|c| keep(*c)) {
            for sender in 0..3 {
                for seq in 0..3 {
                    let intended_us = 1_000 * u64::from(seq + 1);
                    let latency = 500
                        + u64::from(recipient * 97 + sender * 13 + seq * 7)
                        + if recipient == 5 && seq == 2 {
                            5_000_000
                        } else {
                            0
                        };
                    batch.push(Receipt {
                        recipient,
                        sender,
                        seq,
                        intended_us,
                        sent_us: intended_us + u64::from(sender) * 11,
                        received_us: intended_us + latency,
                    });
                }
            }
            if recipient == 4 {
                batch.push(Receipt {
                    recipient,
                    sender: 0,
                    seq: 0,
                    intended_us: 1_000,
                    sent_us: 1_000,
                    received_us: 9_000,
                });
            }
        }
        r.apply(Event::Received(batch));
        // Refused handshakes and server closes, per interval too.
        for c in (100..105).filter(|c| keep(*c)) {
            let cause = if c % 2 == 0 {
                "http_429 Too Many Requests"
            } else {
                "timeout"
            };
            r.apply(Event::ConnectFailed {
                client: c,
                cause: cause.into(),
            });
            r.apply(Event::Closed {
                client: c,
                at_us: 20,
                code: Some(1006),
                by_us: false,
                unconfirmed: Some("reset"),
            });
        }
        r.close_interval(10_000_000);
    }

    #[test]
    fn two_merged_workers_equal_one_process() {
        let phases = vec![(0, 100_000_000, "p".to_string())];
        let mut single = Record::new(1_000_000, phases.clone());
        feed(&mut single, |_| true);

        let mut merged = Record::new(1_000_000, phases.clone());
        for index in 0..2 {
            let mut worker = Record::new(1_000_000, phases.clone());
            feed(&mut worker, |id| id % 2 == index);
            let wire = worker.to_wire(Shard { index, count: 2 }, 0, 0, None);
            // Through JSON, as it travels between processes.
            let wire: WorkerResult =
                serde_json::from_str(&serde_json::to_string(&wire).unwrap()).unwrap();
            merged.merge(&wire).unwrap();
        }
        assert_eq!(merged.latency, single.latency, "the latency histogram");
        assert_eq!(merged.latency_from_send, single.latency_from_send);
        assert_eq!(merged.schedule_lag, single.schedule_lag);
        assert_eq!((merged.written, single.written), (9, 9));
        assert_eq!(merged.latency_by_phase, single.latency_by_phase);
        assert_eq!(merged.connect, single.connect);
        assert_eq!(merged.clients, single.clients);
        assert_eq!(merged.pairs, single.pairs);
        assert_eq!(merged.duplicated, single.duplicated);
        let mut a = merged.messages.clone();
        let mut b = single.messages.clone();
        a.sort_by_key(|m| (m.sender, m.seq));
        b.sort_by_key(|m| (m.sender, m.seq));
        assert_eq!(a, b);
        assert_eq!(merged.intervals[0].received, single.intervals[0].received);
        assert_eq!(merged.intervals[0].p99_ms, single.intervals[0].p99_ms);
        assert_eq!(
            merged.intervals[0].connect_failures,
            single.intervals[0].connect_failures
        );
        assert_eq!(merged.intervals[0].closes, single.intervals[0].closes);
        assert_eq!(merged.intervals[0].throttled, 3);
        assert_eq!(single.intervals[0].throttled, 3);
        let (ta, tb) = (
            account(&merged, 1_000_000, true, &[]),
            account(&single, 1_000_000, true, &[]),
        );
        assert_eq!(ta, tb);
        assert_eq!((tb.expected, tb.late, tb.duplicated), (54, 3, 1));
    }

    #[test]
    fn a_result_of_another_schema_is_refused() {
        let r = Record::new(1, vec![]);
        let mut w = r.to_wire(Shard::SINGLE, 0, 0, None);
        w.schema = "dynamowave.worker/99".into();
        assert!(
            Record::new(1, vec![])
                .merge(&w)
                .unwrap_err()
                .contains("schema")
        );
    }
}
