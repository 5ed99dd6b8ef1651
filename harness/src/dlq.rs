//! Reads dead letters back for the accounting, through the AWS SDK (the same code path
//! against AWS and the local stack). Both record kinds count: the broadcast worker's
//! per-recipient records and Lambda's whole-event records.

use std::collections::HashMap;

use serde_json::Value;

use crate::accounting::DeadLetter;
use crate::engine::record::{PairBits, Record};
use crate::engine::stamp::Stamp;

/// A dead letter as the queue holds it: the message, and the recipient's connection id
/// when the record names one (a whole failed broadcast names none: all its recipients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub sender: u32,
    pub seq: u32,
    pub connection_id: Option<String>,
}

/// This run's dead letters, and how many of them lack the attributes that say why
/// (`ErrorCode` and `ErrorMessage` on both kinds — Lambda adds `RequestID` — and `Recipient`
/// on the broadcast worker's).
#[derive(Debug, Default)]
pub struct Read {
    pub letters: Vec<Letter>,
    pub missing_attributes: u64,
}

/// Receives every message currently in the queue (without deleting it, so `dlq replay`
/// can still use them) and keeps those of this run.
pub async fn read(sqs: &aws_sdk_sqs::Client, queue_url: &str, run: u32) -> Result<Read, String> {
    let mut out = Read::default();
    let mut empty_polls = 0;
    while empty_polls < 2 {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
        if got.messages().is_empty() {
            empty_polls += 1;
            continue;
        }
        for m in got.messages() {
            let Some(d) = parse(m.body().unwrap_or_default(), run) else {
                continue;
            };
            let attributes = m.message_attributes();
            let has = |k: &str| attributes.is_some_and(|a| a.contains_key(k));
            let needed: &[&str] = if d.connection_id.is_some() {
                &["ErrorCode", "ErrorMessage", "Recipient"]
            } else {
                &["ErrorCode", "ErrorMessage"]
            };
            if !needed.iter().all(|k| has(k)) {
                out.missing_attributes += 1;
            }
            out.letters.push(d);
        }
    }
    Ok(out)
}

fn parse(body: &str, run: u32) -> Option<Letter> {
    let v: Value = serde_json::from_str(body).ok()?;
    // A recipient-level record names the job and the recipient; Lambda's record is the job.
    let (job, recipient) = match v.get("kind").and_then(Value::as_str) {
        Some(_) => (v.get("job")?, Some(v.get("recipient")?.as_str()?)),
        None => (&v, None),
    };
    let stamp = Stamp::find(job.get("message")?.as_str()?, run)?;
    Some(Letter {
        sender: stamp.sender,
        seq: stamp.seq,
        connection_id: recipient.map(str::to_string),
    })
}

/// Letters turned into the accounting's dead letters, and how many named a connection no
/// client of this run can be found for.
#[derive(Debug, Default, PartialEq)]
pub struct Attributed {
    pub letters: Vec<DeadLetter>,
    pub unattributed: u64,
}

/// Maps each letter's connection id to the client that held it. A client that never
/// learned its own id (every answer to its whoami failed, as under injected post
/// failures) is still found: each unknown id is matched to a distinct client without a
/// known id that missed every message dead-lettered to that id (a bipartite matching, so
/// the counts are exact; when several such clients missed the same messages, which of them
/// is credited with which id cannot be told and does not change any total).
pub fn attribute(letters: &[Letter], record: &Record) -> Attributed {
    let known: HashMap<&str, u32> = record
        .clients
        .iter()
        .filter_map(|(id, c)| Some((c.connection_id.as_deref()?, *id)))
        .collect();
    let mut unknown: Vec<(&str, Vec<(u32, u32)>)> = Vec::new();
    for l in letters {
        if let Some(id) = l
            .connection_id
            .as_deref()
            .filter(|id| !known.contains_key(id))
        {
            match unknown.iter_mut().find(|(u, _)| *u == id) {
                Some((_, messages)) => messages.push((l.sender, l.seq)),
                None => unknown.push((id, vec![(l.sender, l.seq)])),
            }
        }
    }
    let rooms: HashMap<(u32, u32), Option<u32>> = record
        .messages
        .iter()
        .map(|m| ((m.sender, m.seq), m.room))
        .collect();
    let anonymous: Vec<u32> = record
        .clients
        .iter()
        .filter(|(_, c)| c.connection_id.is_none() && c.joined_us.is_some())
        .map(|(id, _)| *id)
        .collect();
    // Which anonymous clients could have held each unknown id.
    let candidates: Vec<Vec<u32>> = unknown
        .iter()
        .map(|(_, messages)| {
            anonymous
                .iter()
                .copied()
                .filter(|&c| {
                    let client = &record.clients[&c];
                    messages.iter().all(|&(sender, seq)| {
                        let in_room = rooms.get(&(sender, seq)) == Some(&client.room);
                        let got = record
                            .pairs
                            .get(&(c, sender))
                            .is_some_and(|p| PairBits::get(&p.received, seq));
                        in_room && !got
                    })
                })
                .collect()
        })
        .collect();
    let matched = match_ids(&candidates);
    let mut out = Attributed::default();
    for l in letters {
        let recipient = match l.connection_id.as_deref() {
            None => None,
            Some(id) => match known.get(id) {
                Some(&c) => Some(c),
                None => {
                    let u = unknown.iter().position(|(x, _)| *x == id);
                    match u.and_then(|u| matched[u]) {
                        Some(c) => Some(c),
                        None => {
                            out.unattributed += 1;
                            continue;
                        }
                    }
                }
            },
        };
        out.letters.push(DeadLetter {
            sender: l.sender,
            seq: l.seq,
            recipient,
        });
    }
    out
}

/// A maximum matching of ids to clients (Kuhn's augmenting paths; the lists are short:
/// only clients that never learned their id take part).
fn match_ids(candidates: &[Vec<u32>]) -> Vec<Option<u32>> {
    fn augment(
        u: usize,
        candidates: &[Vec<u32>],
        seen: &mut Vec<u32>,
        owner: &mut HashMap<u32, usize>,
    ) -> bool {
        for &c in &candidates[u] {
            if seen.contains(&c) {
                continue;
            }
            seen.push(c);
            let free = match owner.get(&c) {
                None => true,
                Some(&v) => augment(v, candidates, seen, owner),
            };
            if free {
                owner.insert(c, u);
                return true;
            }
        }
        false
    }
    let mut owner: HashMap<u32, usize> = HashMap::new();
    for u in 0..candidates.len() {
        augment(u, candidates, &mut Vec::new(), &mut owner);
    }
    let mut matched = vec![None; candidates.len()];
    for (c, u) in owner {
        matched[u] = Some(c);
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::{Event, MessageInfo, Receipt};

    #[test]
    fn both_record_kinds_parse() {
        let stamp = Stamp {
            run: 7,
            sender: 3,
            seq: 9,
            intended_us: 1,
            sent_us: 2,
        }
        .payload(80);
        let recipient = serde_json::json!({"kind": "recipient-delivery-failed", "recipient": "abc=", "job": {"message": stamp}});
        assert_eq!(
            parse(&recipient.to_string(), 7),
            Some(Letter {
                sender: 3,
                seq: 9,
                connection_id: Some("abc=".into())
            })
        );
        let whole = serde_json::json!({"messageId": "m", "message": stamp});
        assert_eq!(
            parse(&whole.to_string(), 7),
            Some(Letter {
                sender: 3,
                seq: 9,
                connection_id: None
            })
        );
        assert_eq!(parse(&whole.to_string(), 8), None, "another run's letter");
    }

    /// Four clients in one room; 0 and 1 know their ids, 2 and 3 never learned theirs.
    /// Sender 0 sends seqs 0 and 1; client 2 got seq 0, client 3 got neither.
    fn record() -> Record {
        let mut r = Record::new(1_000_000, vec![(0, 100_000_000, "p".into())]);
        for c in 0..4u32 {
            r.add_client(c, None);
            r.apply(Event::Connected {
                client: c,
                at_us: 10,
                connect_us: 5,
                connection_id: (c < 2).then(|| format!("id{c}")),
            });
        }
        for seq in 0..2 {
            r.add_message(MessageInfo {
                sender: 0,
                seq,
                intended_us: 1_000 + u64::from(seq),
                room: None,
                sent: true,
            });
        }
        r.apply(Event::Received(vec![Receipt {
            recipient: 2,
            sender: 0,
            seq: 0,
            intended_us: 1_000,
            sent_us: 1_000,
            received_us: 2_000,
        }]));
        r
    }

    fn letter(seq: u32, id: Option<&str>) -> Letter {
        Letter {
            sender: 0,
            seq,
            connection_id: id.map(str::to_string),
        }
    }

    fn dead(seq: u32, recipient: Option<u32>) -> DeadLetter {
        DeadLetter {
            sender: 0,
            seq,
            recipient,
        }
    }

    #[test]
    fn known_ids_and_whole_broadcasts_map_directly() {
        let a = attribute(&[letter(0, Some("id1")), letter(1, None)], &record());
        assert_eq!(a.letters, [dead(0, Some(1)), dead(1, None)]);
        assert_eq!(a.unattributed, 0);
    }

    #[test]
    fn an_unknown_id_goes_to_a_client_without_one_that_missed_its_messages() {
        // "x" missed seq 0 and 1: only client 3 did. "y" missed seq 1: clients 2 and 3
        // did, and 3 is taken by "x" — the matching must move "y" to 2 whatever the order.
        for letters in [
            vec![
                letter(1, Some("y")),
                letter(0, Some("x")),
                letter(1, Some("x")),
            ],
            vec![
                letter(0, Some("x")),
                letter(1, Some("x")),
                letter(1, Some("y")),
            ],
        ] {
            let a = attribute(&letters, &record());
            assert_eq!(a.unattributed, 0, "{letters:?}");
            let by_id: Vec<_> = letters
                .iter()
                .zip(&a.letters)
                .map(|(l, d)| (l.connection_id.clone().unwrap(), d.recipient.unwrap()))
                .collect();
            for (id, client) in by_id {
                assert_eq!(client, if id == "x" { 3 } else { 2 }, "{letters:?}");
            }
        }
    }

    #[test]
    fn an_id_no_client_can_have_held_is_counted_apart() {
        // Three unknown ids, two anonymous clients: one id is left over.
        let letters = [
            letter(1, Some("x")),
            letter(1, Some("y")),
            letter(1, Some("z")),
        ];
        let a = attribute(&letters, &record());
        assert_eq!((a.letters.len(), a.unattributed), (2, 1));
        // Client 2 got seq 0, so an id dead-lettered for seq 0 and 1 cannot be client 2's
        // once client 3 is taken.
        let letters = [
            letter(0, Some("x")),
            letter(1, Some("x")),
            letter(0, Some("y")),
        ];
        let a = attribute(&letters, &record());
        assert_eq!(a.unattributed, 1);
    }
}
