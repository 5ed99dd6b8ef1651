//! The broadcast fan-out: every page of recipients, bounded concurrency, 410s deleted,
//! throttles and 5xx retried with full jitter, and what still fails dead-lettered.

use std::sync::Arc;

use futures::{StreamExt, stream};
use serde::Serialize;

use crate::connections::{PostFailure, Poster};
use crate::dlq::DeadLetterQueue;
use crate::error::{ChatError, Result};
use crate::message::{BroadcastJob, DEAD_LETTER_KIND, DeadLetter};
use crate::retry::Backoff;
use crate::store::{ConnectionStore, now_ms};

/// What one broadcast did; logged and returned by the broadcast function.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanoutReport {
    pub pages: u64,
    pub recipients: u64,
    pub delivered: u64,
    /// Recipients that answered 410 Gone; their rows were deleted.
    pub gone: u64,
    pub dead_lettered: u64,
    /// Posts that were attempted again after a retryable failure.
    pub retries: u64,
}

enum Outcome {
    Delivered {
        attempts: u32,
    },
    Gone {
        attempts: u32,
    },
    DeadLettered {
        attempts: u32,
    },
    /// Failed and could not be dead-lettered either: the invocation must fail.
    Unrecorded {
        attempts: u32,
        error: ChatError,
    },
}

pub struct Fanout {
    pub store: ConnectionStore,
    pub poster: Poster,
    pub dlq: Option<DeadLetterQueue>,
    pub backoff: Backoff,
    pub concurrency: usize,
    pub delete_gone: bool,
}

impl Fanout {
    pub async fn broadcast(&self, job: &BroadcastJob) -> Result<FanoutReport> {
        let frame: Arc<[u8]> = job.frame().into();
        let mut report = FanoutReport::default();
        let mut unrecorded: Vec<ChatError> = Vec::new();
        let mut start = None;
        loop {
            let read_at_us = epoch_us();
            let (ids, next) = self
                .store
                .recipients_page(job.room.as_deref(), start)
                .await?;
            report.pages += 1;
            report.recipients += ids.len() as u64;
            let outcomes: Vec<Outcome> = stream::iter(ids)
                .map(|id| self.deliver(job, id, frame.clone(), read_at_us))
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            for outcome in outcomes {
                let attempts = match outcome {
                    Outcome::Delivered { attempts } => {
                        report.delivered += 1;
                        attempts
                    }
                    Outcome::Gone { attempts } => {
                        report.gone += 1;
                        attempts
                    }
                    Outcome::DeadLettered { attempts } => {
                        report.dead_lettered += 1;
                        attempts
                    }
                    Outcome::Unrecorded { attempts, error } => {
                        unrecorded.push(error);
                        attempts
                    }
                };
                report.retries += u64::from(attempts.saturating_sub(1));
            }
            match next {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        tracing::info!(message_id = %job.message_id, report = ?report, "broadcast done");
        match unrecorded.into_iter().next() {
            // Nothing is dropped silently: Lambda's async retries and DLQ take it from here.
            Some(first) => Err(first),
            None => Ok(report),
        }
    }

    /// `read_at_us`: when the page naming `recipient` was read (logged with a 410, so a
    /// reader can tell a row kept after an earlier 410 from two broadcasts in flight).
    async fn deliver(
        &self,
        job: &BroadcastJob,
        recipient: String,
        frame: Arc<[u8]>,
        read_at_us: u64,
    ) -> Outcome {
        let mut attempt = 1;
        loop {
            let failure = match self.poster.post(&recipient, frame.to_vec()).await {
                Ok(()) => return Outcome::Delivered { attempts: attempt },
                Err(f) => f,
            };
            if failure.gone {
                let deleted = self.delete_gone
                    && {
                        let result = self.store.delete(&recipient).await;
                        if let Err(e) = &result {
                            // The row's TTL removes it later; the next broadcast pays one more 410.
                            tracing::warn!(%recipient, error = %e, "could not delete a gone connection");
                        }
                        result.is_ok()
                    };
                // Info, not debug: `dynamowave` counts repeated 410s per recipient from
                // these lines: a 410 from a page read after an earlier 410 was handled
                // (`at_us`, after the delete) is a stale row kept and paid for again.
                tracing::info!(%recipient, message_id = %job.message_id, read_at_us,
                    at_us = epoch_us(), deleted, "connection gone");
                return Outcome::Gone { attempts: attempt };
            }
            if failure.retryable && attempt < self.backoff.max_attempts {
                let wait = self.backoff.delay(attempt);
                // Info, not debug: `dynamowave` checks the backoff from these lines. The
                // runtime's log lines carry no time of their own (CloudWatch stamps them on
                // arrival, to the millisecond), so the line says when, to the microsecond.
                let at_us = epoch_us();
                tracing::info!(%recipient, message_id = %job.message_id, attempt,
                    wait_ms = wait.as_millis() as u64, at_us, error = %failure.error.message,
                    "retrying post");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return self.dead_letter(job, recipient, failure, attempt).await;
        }
    }

    async fn dead_letter(
        &self,
        job: &BroadcastJob,
        recipient: String,
        failure: PostFailure,
        attempts: u32,
    ) -> Outcome {
        tracing::warn!(%recipient, message_id = %job.message_id, attempts,
            error = %failure.error.message, "delivery failed; dead-lettering");
        let Some(dlq) = &self.dlq else {
            let error = ChatError::DeadLetter {
                queue: "(none)".into(),
                message: format!(
                    "DLQ_URL is not set, so the failed delivery to {recipient} cannot be recorded"
                ),
            };
            return Outcome::Unrecorded { attempts, error };
        };
        let letter = DeadLetter {
            kind: DEAD_LETTER_KIND.into(),
            job: job.clone(),
            recipient,
            error: failure.error,
            attempts,
            failed_at: now_ms(),
        };
        match dlq.send(&letter).await {
            Ok(()) => Outcome::DeadLettered { attempts },
            Err(error) => Outcome::Unrecorded { attempts, error },
        }
    }
}

/// Now, in microseconds since the epoch (log lines carry their own times: the runtime's
/// are CloudWatch's arrival times, to the millisecond).
fn epoch_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}
