//! The MD5 digests SQS returns so clients can check what was stored: of the body, and of
//! the message attributes by AWS's documented byte layout.

use md5::{Digest, Md5};

use super::MessageAttribute;

/// Hex MD5 of the message body (`MD5OfMessageBody` / `MD5OfBody`).
pub fn of_body(body: &str) -> String {
    hex::encode(Md5::digest(body.as_bytes()))
}

/// Hex MD5 of message attributes (`MD5OfMessageAttributes`), or None when there are none,
/// since SQS then omits the field. Per attribute, sorted by name: length-prefixed name,
/// length-prefixed data type, one transport byte (1 string/number, 2 binary), then the
/// length-prefixed value. Lengths are 4-byte big-endian.
pub fn of_attributes<'a>(
    attributes: impl IntoIterator<Item = (&'a str, &'a MessageAttribute)>,
) -> Option<String> {
    let mut sorted: Vec<_> = attributes.into_iter().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Md5::new();
    for (name, attribute) in sorted {
        put(&mut hasher, name.as_bytes());
        put(&mut hasher, attribute.data_type.as_bytes());
        if attribute.is_binary() {
            hasher.update([2u8]);
            put(
                &mut hasher,
                attribute.binary_value.as_deref().unwrap_or_default(),
            );
        } else {
            hasher.update([1u8]);
            put(
                &mut hasher,
                attribute
                    .string_value
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes(),
            );
        }
    }
    Some(hex::encode(hasher.finalize()))
}

fn put(hasher: &mut Md5, bytes: &[u8]) {
    // Values are capped by the message size limit (256 KiB), so the length fits in u32.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    hasher.update(len.to_be_bytes());
    hasher.update(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(value: &str) -> MessageAttribute {
        MessageAttribute::string(value)
    }

    /// The layout built by hand for one String attribute, hashed independently.
    #[test]
    fn single_string_attribute_matches_hand_built_layout() {
        let mut layout = Vec::new();
        for part in [&b"attr1"[..], b"String"] {
            layout.extend_from_slice(&(part.len() as u32).to_be_bytes());
            layout.extend_from_slice(part);
        }
        layout.push(1);
        layout.extend_from_slice(&2u32.to_be_bytes());
        layout.extend_from_slice(b"v1");
        let expected = hex::encode(Md5::digest(&layout));
        let attr = string("v1");
        assert_eq!(of_attributes([("attr1", &attr)]), Some(expected));
    }

    #[test]
    fn order_of_input_does_not_matter_and_binary_uses_transport_2() {
        let a = string("x");
        let b = MessageAttribute::binary(vec![0, 1, 2]);
        let forward = of_attributes([("a", &a), ("b", &b)]);
        let backward = of_attributes([("b", &b), ("a", &a)]);
        assert_eq!(forward, backward);

        let mut layout = Vec::new();
        for part in [&b"a"[..], b"String"] {
            layout.extend_from_slice(&(part.len() as u32).to_be_bytes());
            layout.extend_from_slice(part);
        }
        layout.extend_from_slice(&[1, 0, 0, 0, 1, b'x']);
        for part in [&b"b"[..], b"Binary"] {
            layout.extend_from_slice(&(part.len() as u32).to_be_bytes());
            layout.extend_from_slice(part);
        }
        layout.extend_from_slice(&[2, 0, 0, 0, 3, 0, 1, 2]);
        assert_eq!(forward, Some(hex::encode(Md5::digest(&layout))));
    }

    #[test]
    fn no_attributes_no_digest_and_body_digest_is_plain_md5() {
        assert_eq!(of_attributes(std::iter::empty()), None);
        // RFC 1321 test vector.
        assert_eq!(of_body("abc"), "900150983cd24fb0d6963f7d28e17f72");
    }
}
