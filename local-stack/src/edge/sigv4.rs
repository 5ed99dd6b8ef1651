//! SigV4 verified, when the stack is given credentials (`local up --access-key-id …
//! --secret-access-key …`): the signature is computed again with aws-sigv4 (the SDK for
//! Rust's own signer) over the headers the caller says it signed, and compared. Without
//! credentials the edge only checks that a call is signed, as before.

use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;

use super::AwsError;

/// The access key the stack accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// AWS refuses a request signed more than 15 minutes before or after its clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// AWS's answer to a call with no signature at all.
pub fn missing_token() -> AwsError {
    AwsError::new(
        403,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
}

fn incomplete(message: &str) -> AwsError {
    AwsError::new(403, "IncompleteSignatureException", message)
}

fn required<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, AwsError> {
    v.filter(|v| !v.is_empty())
        .ok_or_else(|| incomplete(&format!("Authorization header requires '{name}' parameter")))
}

fn parse(header: &str) -> Result<Authorization<'_>, AwsError> {
    let rest = header
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| incomplete("Unsupported signing algorithm; use AWS4-HMAC-SHA256"))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').unwrap_or((part.trim(), ""));
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let credential = required(credential, "Credential")?;
    let signed = required(signed, "SignedHeaders")?;
    let signature = required(signature, "Signature")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return Err(incomplete(&format!(
            "Credential should be scoped to a valid region and service: {credential}"
        )));
    };
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed.split(';').collect(),
        signature,
    })
}

/// Checks one request's signature; `uri` is its path and query as received.
pub fn verify(
    method: &str,
    uri: &str,
    headers: &HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    now: SystemTime,
) -> Result<(), AwsError> {
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(missing_token)?;
    let auth = parse(header)?;
    if auth.access_key_id != credentials.access_key_id {
        return Err(AwsError::new(
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header"))?;
    let signed_at = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            incomplete(&format!(
                "X-Amz-Date {amz_date:?} is not of the form 20261201T120000Z"
            ))
        })?
        .and_utc();
    if !amz_date.starts_with(auth.date) {
        return Err(signature_mismatch());
    }
    let now_utc = chrono::DateTime::<chrono::Utc>::from(now);
    let skew = chrono::Duration::from_std(MAX_SKEW).unwrap_or_default();
    let format = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let off = if signed_at < now_utc - skew {
        Some((
            "expired",
            "is now earlier than",
            format(now_utc - skew),
            '-',
        ))
    } else if signed_at > now_utc + skew {
        Some((
            "not yet current",
            "is still later than",
            format(now_utc + skew),
            '+',
        ))
    } else {
        None
    };
    if let Some((what, relation, bound, sign)) = off {
        return Err(AwsError::new(
            403,
            "InvalidSignatureException",
            format!(
                "Signature {what}: {amz_date} {relation} {bound} ({} {sign} 15 min.)",
                format(now_utc)
            ),
        ));
    }
    let mut signed_headers = Vec::new();
    for name in &auth.signed_headers {
        let value = headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                incomplete(&format!(
                    "SignedHeaders names {name}, which the request lacks"
                ))
            })?;
        signed_headers.push((*name, value));
    }
    let body = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(hash) => aws_sigv4::http_request::SignableBody::Precomputed(hash.to_string()),
        None => aws_sigv4::http_request::SignableBody::Bytes(body),
    };
    let request = aws_sigv4::http_request::SignableRequest::new(
        method,
        uri,
        signed_headers.into_iter(),
        body,
    )
    .map_err(|e| incomplete(&format!("the request cannot be signed: {e}")))?;
    let identity = aws_credential_types::Credentials::new(
        &credentials.access_key_id,
        &credentials.secret_access_key,
        None,
        None,
        "dynamowave-local",
    )
    .into();
    let mut settings = aws_sigv4::http_request::SigningSettings::default();
    // Sign exactly what the caller named.
    settings.excluded_headers = Some(Vec::new());
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at.into())
        .settings(settings)
        .build()
        .map_err(|e| incomplete(&e.to_string()))?;
    let expected = aws_sigv4::http_request::sign(request, &params.into())
        .map_err(|e| incomplete(&format!("the request cannot be signed: {e}")))?;
    if expected.signature() != auth.signature {
        return Err(signature_mismatch());
    }
    Ok(())
}

fn signature_mismatch() -> AwsError {
    AwsError::new(
        403,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_parse_or_name_what_is_missing() {
        let a = parse("AWS4-HMAC-SHA256 Credential=AKID/20261201/eu-west-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc").unwrap();
        assert_eq!(
            (a.access_key_id, a.date, a.region, a.service, a.signature),
            ("AKID", "20261201", "eu-west-1", "sqs", "abc")
        );
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        for (header, says) in [
            (
                "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
                "'Credential'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/1/r/s/aws4_request, Signature=abc",
                "'SignedHeaders'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/1/r/s/aws4_request, SignedHeaders=host",
                "'Signature'",
            ),
            (
                "AWS4-HMAC-SHA256 Credential=A/1/r, SignedHeaders=host, Signature=x",
                "scoped",
            ),
            ("AWS3 whatever", "AWS4-HMAC-SHA256"),
        ] {
            let e = parse(header).unwrap_err();
            assert!(e.message.contains(says), "{header}: {}", e.message);
            assert_eq!(e.code, "IncompleteSignatureException");
        }
    }
}
