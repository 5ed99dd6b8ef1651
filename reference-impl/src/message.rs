//! What travels: the sendMessage request, the broadcast job, the frames clients receive, and
//! the dead-letter record that is enough to replay one failed delivery.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The actions a client may send; `$default` names them in its error frame.
pub const VALID_ACTIONS: [&str; 2] = ["sendMessage", "whoami"];

/// Why a sendMessage body was refused; each becomes an error frame to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
}

/// Validates a sendMessage body: JSON, an object, a `message` string within `max_bytes`.
/// Returns the message string exactly as sent.
pub fn parse_send_body(body: Option<&str>, max_bytes: usize) -> Result<String, Rejection> {
    let reject = |code, message: String| Err(Rejection { code, message });
    let Some(body) = body else {
        return reject("empty_body", "the frame had no body".into());
    };
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return reject(
                "malformed_json",
                format!("the frame is not valid JSON: {e}"),
            );
        }
    };
    let Some(obj) = value.as_object() else {
        return reject("malformed_json", "the frame must be a JSON object".into());
    };
    match obj.get("message") {
        None => reject(
            "missing_message",
            "the frame has no \"message\" field; send {\"action\":\"sendMessage\",\"message\":\"...\"}".into(),
        ),
        Some(Value::String(m)) if m.len() > max_bytes => reject(
            "message_too_large",
            format!("\"message\" is {} bytes; the limit is {max_bytes}", m.len()),
        ),
        Some(Value::String(m)) => Ok(m.clone()),
        Some(_) => reject("message_not_string", "\"message\" must be a JSON string".into()),
    }
}

/// The unit of work send-message hands to broadcast (the async Invoke payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastJob {
    pub message_id: String,
    /// The sender's connection id, from the request context, never from the body.
    pub sender: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub message: String,
    /// When send-message accepted it (epoch ms).
    pub sent_at: i64,
    /// `https://{domainName}/{stage}` of the API the sender used: the @connections
    /// fallback when no endpoint is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_url: Option<String>,
}

impl BroadcastJob {
    /// The frame every recipient receives. `message` is the sender's string, unchanged.
    pub fn frame(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": "message",
            "messageId": self.message_id,
            "sender": self.sender,
            "room": self.room,
            "message": self.message,
            "sentAt": self.sent_at,
        }))
        .expect("a JSON value always serialises")
    }
}

/// An error frame: `{"type":"error","code":…,"message":…}` plus extra fields.
pub fn error_frame(code: &str, message: &str, extra: Value) -> Vec<u8> {
    let mut frame = json!({"type": "error", "code": code, "message": message});
    if let (Some(obj), Value::Object(more)) = (frame.as_object_mut(), extra) {
        obj.extend(more);
    }
    serde_json::to_vec(&frame).expect("a JSON value always serialises")
}

/// The `$default` answer to `whoami`: the caller's own connection id.
pub fn whoami_frame(connection_id: &str, request_id: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "whoami",
        "connectionId": connection_id,
        "requestId": request_id,
    }))
    .expect("a JSON value always serialises")
}

/// The `action` of a frame, when it is a JSON object with a string `action`.
pub fn action_of(body: Option<&str>) -> Option<String> {
    let v: Value = serde_json::from_str(body?).ok()?;
    v.get("action")?.as_str().map(str::to_string)
}

/// The error a delivery failed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryError {
    /// HTTP status of the last attempt; `None` for timeouts and connection failures.
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
}

/// The body of a recipient-level dead letter: everything `dlq replay` needs.
/// (Whole-invocation failures reach the same queue from Lambda itself, with the
/// original job as the body; `kind` tells the two apart.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub kind: String,
    pub job: BroadcastJob,
    pub recipient: String,
    pub error: DeliveryError,
    pub attempts: u32,
    pub failed_at: i64,
}

pub const DEAD_LETTER_KIND: &str = "recipient-delivery-failed";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_message_byte_for_byte() {
        let body = r#"{"action":"sendMessage","message":"héllo \"quoted\" \u2603 \n"}"#;
        let m = parse_send_body(Some(body), 1024).unwrap();
        assert_eq!(m, "héllo \"quoted\" ☃ \n");
        let job = BroadcastJob {
            message_id: "m".into(),
            sender: "s".into(),
            room: None,
            message: m.clone(),
            sent_at: 1,
            connections_url: None,
        };
        let frame: Value = serde_json::from_slice(&job.frame()).unwrap();
        assert_eq!(frame["message"].as_str().unwrap(), m);
    }

    #[test]
    fn rejects_each_bad_body_with_its_code() {
        let cases = [
            (None, "empty_body"),
            (Some("{"), "malformed_json"),
            (Some("[1]"), "malformed_json"),
            (Some(r#"{"action":"sendMessage"}"#), "missing_message"),
            (Some(r#"{"message":5}"#), "message_not_string"),
            (Some(r#"{"message":"0123456789A"}"#), "message_too_large"),
        ];
        for (body, code) in cases {
            assert_eq!(
                parse_send_body(body, 10).unwrap_err().code,
                code,
                "{body:?}"
            );
        }
    }

    #[test]
    fn action_is_read_only_from_json_objects() {
        assert_eq!(
            action_of(Some(r#"{"action":"whoami"}"#)).as_deref(),
            Some("whoami")
        );
        assert_eq!(action_of(Some(r#"{"action":3}"#)), None);
        assert_eq!(action_of(Some("whoami")), None);
    }
}
