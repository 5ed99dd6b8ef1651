//! Accounting: every (message, recipient) pair the room's membership expected is delivered,
//! late, dead-lettered or lost — the four always add up to `expected`. Duplicates and
//! deliveries nobody expected are counted beside them, never hidden.

use std::collections::{HashMap, HashSet};

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
    let mut matched = 0u64;
    for m in record.messages.iter().filter(|m| m.sent) {
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
            t.expected += 1;
            if got {
                matched += 1;
                if pair.is_some_and(|p| PairBits::get(&p.late, m.seq)) {
                    t.late += 1;
                } else {
                    t.delivered += 1;
                }
            } else if dead_pairs.contains(&(m.sender, m.seq, c))
                || dead_messages.contains(&(m.sender, m.seq))
            {
                t.dead_lettered += 1;
            } else {
                t.lost += 1;
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
}
