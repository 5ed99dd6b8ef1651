//! What SQS refuses in a message: empty bodies, characters outside its XML-safe set, and
//! malformed attributes. Shared by SendMessage and the stack's in-process sends.

use super::{MessageAttribute, wire};
use crate::edge::AwsError;

const MAX_ATTRIBUTES: usize = 10;

/// SQS's allowed characters: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000+.
fn allowed_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

pub fn validate_body(body: &str) -> Result<(), AwsError> {
    if body.is_empty() {
        return Err(wire::missing("MessageBody"));
    }
    if let Some(c) = body.chars().find(|&c| !allowed_char(c)) {
        return Err(wire::sqs_error(
            400,
            "InvalidMessageContents",
            "InvalidMessageContents",
            format!(
                "Invalid character '#x{:X}' was found in the MessageBody; the allowed \
                 characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | \
                 #x10000 to #x10FFFF",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// Attribute rules SQS enforces; `attributes` is sorted by name.
pub fn validate_attributes(attributes: &[(String, MessageAttribute)]) -> Result<(), AwsError> {
    const FIELD: &str = "MessageAttributes";
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(wire::invalid_value(
            FIELD,
            format!("({} attributes)", attributes.len()),
            &format!("Number of message attributes must be at most {MAX_ATTRIBUTES}."),
        ));
    }
    for pair in attributes.windows(2) {
        if pair[0].0 == pair[1].0 {
            return Err(wire::invalid_value(
                FIELD,
                &pair[0].0,
                "Duplicate attribute name.",
            ));
        }
    }
    for (name, a) in attributes {
        let bad =
            |reason: &str| wire::invalid_value(&format!("{FIELD}.{name}"), &a.data_type, reason);
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(wire::invalid_value(
                FIELD,
                name,
                "Attribute names are 1-256 of A-Z a-z 0-9 _ - ., with no leading, trailing \
                 or doubled '.', and do not start with AWS. or Amazon.",
            ));
        }
        let base = a.data_type.split('.').next().unwrap_or_default();
        match base {
            "String" | "Number" => {
                let value = a.string_value.as_deref().unwrap_or_default();
                if value.is_empty() {
                    return Err(bad(
                        "StringValue is required and must not be empty for this DataType.",
                    ));
                }
                if value.chars().any(|c| !allowed_char(c)) {
                    return Err(bad("StringValue contains characters SQS does not allow."));
                }
                if base == "Number" && !is_number(value) {
                    return Err(wire::invalid_value(
                        &format!("{FIELD}.{name}.StringValue"),
                        value,
                        "Cannot cast the value to a number.",
                    ));
                }
            }
            "Binary" if a.binary_value.as_ref().is_some_and(|b| !b.is_empty()) => {}
            "Binary" => {
                return Err(bad(
                    "BinaryValue is required and must not be empty for this DataType.",
                ));
            }
            _ => {
                return Err(bad(
                    "DataType must be String, Number or Binary, optionally followed by a '.' and a custom label.",
                ));
            }
        }
    }
    Ok(())
}

/// Decimal notation only (no `inf`/`NaN`, which Rust's parser would take).
fn is_number(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && s.chars().any(|c| c.is_ascii_digit())
        && s.parse::<f64>().is_ok_and(f64::is_finite)
}
