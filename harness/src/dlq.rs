//! Reads dead letters back for the accounting, through the AWS SDK (the same code path
//! against AWS and the local stack). Both record kinds count: the broadcast worker's
//! per-recipient records and Lambda's whole-event records.

use std::collections::HashMap;

use serde_json::Value;

use crate::accounting::DeadLetter;
use crate::engine::stamp::Stamp;

/// This run's dead letters, and how many of them lack the attributes that say why
/// (`ErrorCode` and `ErrorMessage` on both kinds — Lambda adds `RequestID` — and `Recipient`
/// on the broadcast worker's).
#[derive(Debug, Default)]
pub struct Read {
    pub letters: Vec<DeadLetter>,
    pub missing_attributes: u64,
}

/// Receives every message currently in the queue (without deleting it, so `dlq replay`
/// can still use them) and keeps those of this run.
pub async fn read(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    run: u32,
    connection_ids: &HashMap<String, u32>,
) -> Result<Read, String> {
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
            let Some(d) = parse(m.body().unwrap_or_default(), run, connection_ids) else {
                continue;
            };
            let attributes = m.message_attributes();
            let has = |k: &str| attributes.is_some_and(|a| a.contains_key(k));
            let needed: &[&str] = if d.recipient.is_some() {
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

fn parse(body: &str, run: u32, connection_ids: &HashMap<String, u32>) -> Option<DeadLetter> {
    let v: Value = serde_json::from_str(body).ok()?;
    // A recipient-level record names the job and the recipient; Lambda's record is the job.
    let (job, recipient) = match v.get("kind").and_then(Value::as_str) {
        Some(_) => (v.get("job")?, v.get("recipient").and_then(Value::as_str)),
        None => (&v, None),
    };
    let stamp = Stamp::find(job.get("message")?.as_str()?, run)?;
    let recipient = match recipient {
        Some(id) => Some(*connection_ids.get(id)?),
        None => None,
    };
    Some(DeadLetter {
        sender: stamp.sender,
        seq: stamp.seq,
        recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let ids = HashMap::from([("abc=".to_string(), 5)]);
        let recipient = serde_json::json!({"kind": "recipient-delivery-failed", "recipient": "abc=", "job": {"message": stamp}});
        assert_eq!(
            parse(&recipient.to_string(), 7, &ids),
            Some(DeadLetter {
                sender: 3,
                seq: 9,
                recipient: Some(5)
            })
        );
        let whole = serde_json::json!({"messageId": "m", "message": stamp});
        assert_eq!(
            parse(&whole.to_string(), 7, &ids),
            Some(DeadLetter {
                sender: 3,
                seq: 9,
                recipient: None
            })
        );
        assert_eq!(
            parse(&whole.to_string(), 8, &ids),
            None,
            "another run's letter"
        );
    }
}
