//! One queue's state: messages in send order, each with its visibility, receive count and
//! the receipt handle of its latest receive.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use tokio::sync::Notify;

use super::{MessageAttribute, QueueDepth, md5 as digest, validate, wire};
use crate::edge::AwsError;
use crate::model::QueueSpec;

/// SQS's defaults for what `QueueSpec` does not carry.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 262_144;

#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    pub name: String,
    pub url: String,
    pub arn: String,
    pub visibility_timeout: Duration,
    pub retention: Duration,
    pub delay: Duration,
    pub max_message_size: usize,
    pub receive_wait: Duration,
    pub fifo: bool,
}

impl QueueConfig {
    pub fn from_spec(spec: &QueueSpec) -> Self {
        QueueConfig {
            name: spec.name.clone(),
            url: spec.url.clone(),
            arn: spec.arn.clone(),
            visibility_timeout: spec.visibility_timeout,
            retention: spec.retention,
            delay: Duration::ZERO,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            receive_wait: Duration::ZERO,
            fifo: spec.fifo,
        }
    }
}

struct Message {
    id: String,
    body: String,
    md5_body: String,
    /// Sorted by name.
    attributes: Vec<(String, MessageAttribute)>,
    sender_id: String,
    sent_ms: u64,
    enqueued: Instant,
    /// Until then the message is delayed (never received) or in flight (received).
    visible_at: Instant,
    /// Also the generation of the latest receipt handle.
    receive_count: u32,
    first_receive_ms: Option<u64>,
}

#[derive(Default)]
struct State {
    /// Keyed by a per-queue sequence number, so iteration is send order.
    messages: BTreeMap<u64, Message>,
    next_seq: u64,
}

#[derive(Debug)]
pub struct Sent {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
}

pub struct Received {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_body: String,
    pub attributes: Vec<(String, MessageAttribute)>,
    pub sender_id: String,
    pub sent_ms: u64,
    pub receive_count: u32,
    pub first_receive_ms: u64,
}

pub struct Queue {
    pub config: QueueConfig,
    pub created_secs: u64,
    /// Keys receipt handles, so handles this queue never issued are told apart from
    /// stale ones of deleted messages (which SQS accepts).
    secret: [u8; 16],
    state: Mutex<State>,
    /// Wakes long-polling receives when a message is sent or made visible.
    pub notify: Notify,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Queue {
    pub fn new(config: QueueConfig) -> Self {
        Queue {
            config,
            created_secs: now_ms() / 1000,
            secret: rand::random(),
            state: Mutex::new(State::default()),
            notify: Notify::new(),
        }
    }

    /// The state with messages past the retention period dropped (lazily, on each access).
    fn state(&self, now: Instant) -> MutexGuard<'_, State> {
        // Poisoning is ignored: no update here leaves the map inconsistent midway.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let retention = self.config.retention;
        state
            .messages
            .retain(|_, m| now.saturating_duration_since(m.enqueued) < retention);
        state
    }

    /// Validates and enqueues a message; `delay` None means the queue's own.
    pub fn send(
        &self,
        body: String,
        mut attributes: Vec<(String, MessageAttribute)>,
        delay: Option<Duration>,
        sender_id: &str,
    ) -> Result<Sent, AwsError> {
        validate::validate_body(&body)?;
        attributes.sort_by(|a, b| a.0.cmp(&b.0));
        validate::validate_attributes(&attributes)?;
        let size = body.len()
            + attributes
                .iter()
                .map(|(name, a)| name.len() + a.data_type.len() + a.value_len())
                .sum::<usize>();
        if size > self.config.max_message_size {
            return Err(wire::invalid_value(
                "MessageBody",
                format!("({size} bytes with attributes)"),
                &format!(
                    "Message (body plus attributes) must be at most {} bytes.",
                    self.config.max_message_size
                ),
            ));
        }
        let sent = Sent {
            message_id: uuid::Uuid::new_v4().to_string(),
            md5_body: digest::of_body(&body),
            md5_attributes: digest::of_attributes(attributes.iter().map(|(n, a)| (n.as_str(), a))),
        };
        let now = Instant::now();
        let message = Message {
            id: sent.message_id.clone(),
            md5_body: sent.md5_body.clone(),
            body,
            attributes,
            sender_id: sender_id.to_string(),
            sent_ms: now_ms(),
            enqueued: now,
            visible_at: now + delay.unwrap_or(self.config.delay),
            receive_count: 0,
            first_receive_ms: None,
        };
        {
            let mut state = self.state(now);
            let seq = state.next_seq;
            state.next_seq += 1;
            state.messages.insert(seq, message);
        }
        self.notify.notify_waiters();
        Ok(sent)
    }

    /// Takes up to `max` visible messages, oldest first, hiding each for `visibility`.
    /// Also returns when the next hidden message becomes visible, for long polls to wake.
    pub fn receive(&self, max: usize, visibility: Duration) -> (Vec<Received>, Option<Instant>) {
        let now = Instant::now();
        let wall_ms = now_ms();
        let mut state = self.state(now);
        let mut out = Vec::new();
        let mut next_visible: Option<Instant> = None;
        for (&seq, m) in state.messages.iter_mut() {
            if m.visible_at > now {
                next_visible = Some(next_visible.map_or(m.visible_at, |t| t.min(m.visible_at)));
                continue;
            }
            if out.len() >= max {
                break;
            }
            m.receive_count = m.receive_count.saturating_add(1);
            m.visible_at = now + visibility;
            let first_receive_ms = *m.first_receive_ms.get_or_insert(wall_ms);
            out.push(Received {
                message_id: m.id.clone(),
                receipt_handle: self.handle(seq, m.receive_count),
                body: m.body.clone(),
                md5_body: m.md5_body.clone(),
                attributes: m.attributes.clone(),
                sender_id: m.sender_id.clone(),
                sent_ms: m.sent_ms,
                receive_count: m.receive_count,
                first_receive_ms,
            });
        }
        (out, next_visible)
    }

    /// Deletes with the latest handle; a stale handle of a message that was received again
    /// or deleted already succeeds without effect, as SQS documents.
    pub fn delete(&self, handle: &str) -> Result<(), AwsError> {
        let (seq, generation) = self.parse_handle(handle)?;
        let mut state = self.state(Instant::now());
        if state
            .messages
            .get(&seq)
            .is_some_and(|m| m.receive_count == generation)
        {
            state.messages.remove(&seq);
        }
        Ok(())
    }

    pub fn change_visibility(&self, handle: &str, timeout: Duration) -> Result<(), AwsError> {
        let (seq, generation) = self.parse_handle(handle)?;
        let now = Instant::now();
        {
            let mut state = self.state(now);
            let Some(m) = state
                .messages
                .get_mut(&seq)
                .filter(|m| m.receive_count == generation)
            else {
                return Err(wire::invalid_value(
                    "ReceiptHandle",
                    handle,
                    "Message does not exist or is not available for visibility timeout change.",
                ));
            };
            if m.visible_at <= now {
                return Err(wire::sqs_error(
                    400,
                    "MessageNotInflight",
                    "AWS.SimpleQueueService.MessageNotInflight",
                    format!("The message for receipt handle {handle} is not in flight."),
                ));
            }
            m.visible_at = now + timeout;
        }
        if timeout.is_zero() {
            self.notify.notify_waiters();
        }
        Ok(())
    }

    pub fn purge(&self) {
        self.state(Instant::now()).messages.clear();
    }

    /// Messages ever sent to the queue (CloudWatch's NumberOfMessagesSent, as deltas).
    pub fn sent_total(&self) -> u64 {
        self.state(Instant::now()).next_seq
    }

    pub fn depth(&self) -> QueueDepth {
        let now = Instant::now();
        let state = self.state(now);
        let mut depth = QueueDepth::default();
        for m in state.messages.values() {
            match (m.visible_at <= now, m.receive_count) {
                (true, _) => depth.visible += 1,
                (false, 0) => depth.delayed += 1,
                (false, _) => depth.in_flight += 1,
            }
        }
        depth
    }

    fn tag(&self, payload: &str) -> String {
        let mut hasher = Md5::new();
        hasher.update(self.secret);
        hasher.update(payload.as_bytes());
        hex::encode(&hasher.finalize()[..8])
    }

    /// Opaque to clients: hex of `seq/generation`, then a keyed tag of it.
    fn handle(&self, seq: u64, generation: u32) -> String {
        let payload = format!("{seq}/{generation}");
        format!("{}{}", hex::encode(&payload), self.tag(&payload))
    }

    fn parse_handle(&self, handle: &str) -> Result<(u64, u32), AwsError> {
        let invalid = || wire::receipt_handle_invalid(handle);
        let split = handle.len().checked_sub(16).ok_or_else(invalid)?;
        let (payload_hex, tag) = (handle.get(..split), handle.get(split..));
        let payload = payload_hex
            .and_then(|h| hex::decode(h).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(invalid)?;
        if tag != Some(self.tag(&payload).as_str()) {
            return Err(invalid());
        }
        let (seq, generation) = payload.split_once('/').ok_or_else(invalid)?;
        Ok((
            seq.parse().map_err(|_| invalid())?,
            generation.parse().map_err(|_| invalid())?,
        ))
    }
}
