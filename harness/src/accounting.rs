//! Accounting: every (message, recipient) pair the room's membership expected is delivered,
//! late, dead-lettered or lost — the four always add up to `expected`. Duplicates and
//! deliveries nobody expected are counted beside them, never hidden.
//!
//! A pair is only owed when the target surely read the message. Bytes a client wrote are
//! not read by the server when the connection ends in a reset (or without an answered
//! Close): the server's kernel discards them. So a sender whose connection did not end
//! cleanly leaves its last messages uncertain — those after the last one anybody received
//! (the server reads a connection in order, so everything before a forwarded frame was
//! read). Their undelivered pairs are `unconfirmed`, beside `expected`, never `lost`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::engine::record::{PairBits, Record};

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub expected: u64,
    pub delivered: u64,
    pub late: u64,
    pub dead_lettered: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Deliveries to clients that joined after the message was sent: fine, not expected.
    pub unexpected: u64,
    /// Pairs not counted: the recipient left before the message's deadline without it.
    pub departed: u64,
    /// Pairs not counted: nobody received the message, and its sender's connection ended
    /// without a clean close after writing it, so the target may never have read it.
    pub unconfirmed: u64,
    /// Unconfirmed pairs by how the sender's connection ended (`reset`, `close_timeout`,
    /// `abnormal`, `vanished`, …).
    pub unconfirmed_by_cause: BTreeMap<String, u64>,
    /// Messages written but unconfirmed (each with at least one unconfirmed pair).
    pub send_unconfirmed: u64,
    /// The first of those messages, to look them up.
    pub uncertain: Vec<Uncertain>,
}

/// One unconfirmed message: who sent it, and why its pairs are uncertain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Uncertain {
    pub sender: u32,
    pub seq: u32,
    pub cause: String,
    pub pairs: u64,
}

/// How many uncertain messages summary.json lists one by one.
const UNCERTAIN_LISTED: usize = 100;

/// Per sender whose connection ended uncleanly: the cause, and the highest seq anybody
/// received (None: nothing of it reached anyone).
fn unconfirmed_senders(record: &Record) -> HashMap<u32, (&str, Option<u32>)> {
    let mut out: HashMap<u32, (&str, Option<u32>)> = record
        .clients
        .iter()
        .filter_map(|(&id, c)| Some((id, (c.unconfirmed.as_deref()?, None))))
        .collect();
    for (&(_, sender), bits) in &record.pairs {
        if let Some((_, highest)) = out.get_mut(&sender)
            && let Some(top) = highest_set(&bits.received)
        {
            *highest = Some(highest.map_or(top, |h| h.max(top)));
        }
    }
    out
}

fn highest_set(bits: &[u64]) -> Option<u32> {
    let (w, word) = bits.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
    Some(w as u32 * 64 + 63 - word.leading_zeros())
}

impl Totals {
    /// On-time deliveries over expected ones; None with nothing expected.
    pub fn delivery_ratio(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.delivered as f64 / self.expected as f64)
    }
}

/// A dead letter read back from the DLQ: the message, and the recipient when the record
/// names one (a whole failed broadcast names none: all its recipients).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeadLetter {
    pub sender: u32,
    pub seq: u32,
    pub recipient: Option<u32>,
}

pub fn account(
    record: &Record,
    deadline_us: u64,
    echo_to_sender: bool,
    dead: &[DeadLetter],
) -> Totals {
    let dead_pairs: HashSet<(u32, u32, u32)> = dead
        .iter()
        .filter_map(|d| Some((d.sender, d.seq, d.recipient?)))
        .collect();
    let dead_messages: HashSet<(u32, u32)> = dead
        .iter()
        .filter(|d| d.recipient.is_none())
        .map(|d| (d.sender, d.seq))
        .collect();
    let mut rooms: HashMap<Option<u32>, Vec<u32>> = HashMap::new();
    for (&id, c) in &record.clients {
        if c.joined_us.is_some() {
            rooms.entry(c.room).or_default().push(id);
        }
    }
    let mut t = Totals {
        duplicated: record.duplicated,
        ..Totals::default()
    };
    let uncertain_senders = unconfirmed_senders(record);
    let mut matched = 0u64;
    for m in record.messages.iter().filter(|m| m.sent) {
        let uncertain = uncertain_senders
            .get(&m.sender)
            .filter(|(_, highest)| highest.is_none_or(|h| m.seq > h))
            .map(|(cause, _)| *cause);
        let mut uncertain_pairs = 0;
        for &c in rooms.get(&m.room).map(Vec::as_slice).unwrap_or_default() {
            if c == m.sender && !echo_to_sender {
                continue;
            }
            let info = &record.clients[&c];
            let present = info.joined_us.is_some_and(|j| j <= m.intended_us)
                && info.left_us.is_none_or(|l| l > m.intended_us);
            if !present {
                continue;
            }
            let stayed = info.left_us.is_none_or(|l| {
                l >= m.intended_us + deadline_us || record.final_leave_us.is_some_and(|f| l >= f)
            });
            let pair = record.pairs.get(&(c, m.sender));
            let got = pair.is_some_and(|p| PairBits::get(&p.received, m.seq));
            // A client that left before the message's deadline is owed it only if it got it
            // before leaving; otherwise nobody can say it was lost.
            if !stayed && !got {
                t.departed += 1;
                continue;
            }
            let dead = dead_pairs.contains(&(m.sender, m.seq, c))
                || dead_messages.contains(&(m.sender, m.seq));
            if let Some(cause) = uncertain
                && !got
                && !dead
            {
                t.unconfirmed += 1;
                *t.unconfirmed_by_cause.entry(cause.to_string()).or_default() += 1;
                uncertain_pairs += 1;
                continue;
            }
            t.expected += 1;
            if got {
                matched += 1;
                if pair.is_some_and(|p| PairBits::get(&p.late, m.seq)) {
                    t.late += 1;
                } else {
                    t.delivered += 1;
                }
            } else if dead {
                t.dead_lettered += 1;
            } else {
                t.lost += 1;
            }
        }
        if let Some(cause) = uncertain.filter(|_| uncertain_pairs > 0) {
            t.send_unconfirmed += 1;
            if t.uncertain.len() < UNCERTAIN_LISTED {
                t.uncertain.push(Uncertain {
                    sender: m.sender,
                    seq: m.seq,
                    cause: cause.to_string(),
                    pairs: uncertain_pairs,
                });
            }
        }
    }
    let received: u64 = record
        .pairs
        .values()
        .map(|p| {
            p.received
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>()
        })
        .sum();
    t.unexpected = received.saturating_sub(matched);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{Event, MessageInfo, Receipt};

    #[test]
    fn the_totals_add_up() {
        let mut r = Record::new(1_000_000, vec![(0, 100_000_000, "p".into())]);
        for id in 0..4 {
            r.add_client(id, None);
        }
        for c in 0..4 {
            r.apply(Event::Connected {
                client: c,
                at_us: 10,
                connect_us: 5,
                connection_id: None,
            });
        }
        // Client 3 leaves before message 1's deadline: not expected for it.
        r.apply(Event::Closed {
            client: 3,
            at_us: 2_500_000,
            code: None,
            by_us: true,
            unconfirmed: None,
        });
        for seq in 0..2 {
            r.add_message(MessageInfo {
                sender: 0,
                seq,
                intended_us: 2_000_000 * u64::from(seq) + 100,
                room: None,
                sent: true,
            });
        }
        let rc = |recipient, seq, received_us| Receipt {
            recipient,
            sender: 0,
            seq,
            intended_us: 2_000_000 * u64::from(seq) + 100,
            sent_us: 2_000_000 * u64::from(seq) + 100,
            received_us,
        };
        r.apply(Event::Received(vec![
            rc(0, 0, 200),
            rc(1, 0, 300),
            rc(2, 0, 3_000_000),
            rc(3, 0, 400),
            rc(3, 0, 450),
            rc(0, 1, 2_000_300),
            rc(3, 1, 2_000_400),
        ]));
        let dead = [DeadLetter {
            sender: 0,
            seq: 1,
            recipient: Some(1),
        }];
        let t = account(&r, 1_000_000, true, &dead);
        // seq 0: 4 expected (0,1 on time, 2 late, 3 on time); seq 1: 3 stayed (0 on time,
        // 1 dead-lettered, 2 lost) and client 3, which left before the deadline but got it.
        assert_eq!(
            (t.expected, t.delivered, t.late, t.dead_lettered, t.lost),
            (8, 5, 1, 1, 1)
        );
        assert_eq!(t.expected, t.delivered + t.late + t.dead_lettered + t.lost);
        assert_eq!((t.duplicated, t.unexpected, t.departed), (1, 0, 0));
        // A message after client 3 left is not owed to it.
        r.add_message(MessageInfo {
            sender: 0,
            seq: 2,
            intended_us: 3_000_000,
            room: None,
            sent: true,
        });
        let t = account(&r, 1_000_000, false, &dead);
        assert_eq!(
            t.expected,
            6 + 2,
            "without echo the sender expects nothing of its own"
        );
    }

    #[test]
    fn only_messages_after_the_last_confirmed_one_of_an_unclean_sender_are_uncertain() {
        let build = |ends: [Option<&'static str>; 2]| {
            let mut r = Record::new(1_000_000, vec![(0, 100_000_000, "p".into())]);
            for c in 0..3 {
                r.add_client(c, None);
                r.apply(Event::Connected {
                    client: c,
                    at_us: 10,
                    connect_us: 5,
                    connection_id: None,
                });
            }
            // Sender 0 writes seqs 0-3, sender 1 seqs 0-1, all at 1 s.
            for (sender, count) in [(0, 4), (1, 2)] {
                for seq in 0..count {
                    r.add_message(MessageInfo {
                        sender,
                        seq,
                        intended_us: 1_000_000,
                        room: None,
                        sent: false,
                    });
                    r.apply(Event::Sent {
                        sender,
                        seq,
                        intended_us: 1_000_000,
                        sent_us: 1_000_050,
                    });
                }
            }
            // Everyone gets sender 0's seqs 0-1 and sender 1's seq 1; nobody the rest.
            let mut batch = Vec::new();
            for recipient in 0..3 {
                for (sender, seq) in [(0, 0), (0, 1), (1, 1)] {
                    batch.push(Receipt {
                        recipient,
                        sender,
                        seq,
                        intended_us: 1_000_000,
                        sent_us: 1_000_050,
                        received_us: 1_000_500,
                    });
                }
            }
            r.apply(Event::Received(batch));
            for (client, unconfirmed) in ends.into_iter().enumerate() {
                r.apply(Event::Closed {
                    client: client as u32,
                    at_us: 9_000_000,
                    code: None,
                    by_us: true,
                    unconfirmed,
                });
            }
            r.final_leave_us = Some(9_000_000);
            r
        };
        let dead = [DeadLetter {
            sender: 0,
            seq: 3,
            recipient: Some(2),
        }];
        let t = account(
            &build([Some("reset"), Some("close_timeout")]),
            1_000_000,
            true,
            &dead,
        );
        // Sender 0's seqs 2-3 came after its last confirmed one: 3 + 2 pairs uncertain (one
        // of seq 3's pairs is dead-lettered, so the target read it). Sender 1's seq 0 came
        // before its seq 1, which was forwarded: the server read it, so it is lost.
        assert_eq!((t.unconfirmed, t.send_unconfirmed), (5, 2));
        assert_eq!(t.unconfirmed_by_cause["reset"], 5);
        assert_eq!((t.lost, t.dead_lettered, t.delivered), (3, 1, 9));
        assert_eq!(t.expected, t.delivered + t.late + t.dead_lettered + t.lost);
        assert_eq!(t.uncertain[0].cause, "reset");
        assert_eq!((t.uncertain[1].seq, t.uncertain[1].pairs), (3, 2));
        // Clean closes confirm everything: the same silence is the target's loss.
        let t = account(&build([None, None]), 1_000_000, true, &dead);
        assert_eq!((t.unconfirmed, t.lost, t.expected), (0, 3 + 5, 9 + 1 + 8));
    }
}
