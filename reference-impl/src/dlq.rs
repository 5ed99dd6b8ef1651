//! The dead-letter queue for recipients whose delivery failed for good.

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::error::{ChatError, Result};
use crate::message::DeadLetter;

#[derive(Clone)]
pub struct DeadLetterQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl DeadLetterQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: &str) -> Self {
        DeadLetterQueue {
            client,
            url: url.to_string(),
        }
    }

    /// Sends one dead letter. Attributes mirror Lambda's own DLQ records (ErrorCode,
    /// ErrorMessage) plus what a reader filters on without parsing the body.
    pub async fn send(&self, letter: &DeadLetter) -> Result<()> {
        let fail = |message: String| ChatError::DeadLetter {
            queue: self.url.clone(),
            message,
        };
        let body = serde_json::to_string(letter).map_err(|e| fail(e.to_string()))?;
        let attr = |data_type: &str, value: String| {
            MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(value)
                .build()
                .expect("data type is set")
        };
        let status = letter.error.status.unwrap_or(0);
        // SQS refuses empty attribute values; Lambda's own DLQ keeps the first 1 KB.
        let mut error_message: String = letter.error.message.chars().take(1024).collect();
        if error_message.is_empty() {
            error_message = "(no message)".into();
        }
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("DynamoWaveKind", attr("String", letter.kind.clone()))
            .message_attributes("MessageId", attr("String", letter.job.message_id.clone()))
            .message_attributes("Recipient", attr("String", letter.recipient.clone()))
            .message_attributes("ErrorCode", attr("Number", status.to_string()))
            .message_attributes("ErrorMessage", attr("String", error_message))
            .send()
            .await
            .map_err(|e| fail(crate::aws::describe(&e)))?;
        Ok(())
    }
}
