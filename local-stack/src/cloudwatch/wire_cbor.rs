//! Smithy RPC v2 CBOR: `POST /service/GraniteServiceVersion20100801/operation/<Op>`,
//! `Content-Type: application/cbor`, `smithy-protocol: rpc-v2-cbor`, what aws-sdk-cloudwatch
//! 1.140 sends (local-stack/WIRE.md). The SDK sends indefinite-length maps and timestamps as
//! tag 1 + float64; we answer with definite lengths and the same timestamps.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};
use serde_json::{Map, Number, Value};

use super::shape::{Out, malformed, query_code};
use crate::edge::AwsError;

/// Deeper nesting than any CloudWatch request has is refused, not recursed into.
const MAX_DEPTH: usize = 32;

/// The request body as a tree; an empty body is an empty request.
pub fn decode(body: &[u8]) -> Result<Value, AwsError> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let mut d = Decoder::new(body);
    let v = value(&mut d, 0).map_err(|e| malformed(format!("the body is not valid CBOR: {e}")))?;
    if d.position() != body.len() {
        return Err(malformed("the body has bytes after its CBOR value"));
    }
    if !v.is_object() {
        return Err(malformed("the body must be a CBOR map"));
    }
    Ok(v)
}

fn value(d: &mut Decoder<'_>, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    let e = |e: minicbor::decode::Error| e.to_string();
    Ok(match d.datatype().map_err(e)? {
        Type::Bool => Value::Bool(d.bool().map_err(e)?),
        Type::Null | Type::Undefined => {
            d.skip().map_err(e)?;
            Value::Null
        }
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => Value::from(d.u64().map_err(e)?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => Value::from(d.i64().map_err(e)?),
        Type::F16 | Type::F32 | Type::F64 => {
            let x = match d.datatype().map_err(e)? {
                Type::F64 => d.f64().map_err(e)?,
                Type::F32 => d.f32().map_err(e)? as f64,
                _ => d.f16().map_err(e)? as f64,
            };
            Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        Type::String => Value::String(d.str().map_err(e)?.to_string()),
        Type::StringIndef => {
            let mut s = String::new();
            for part in d.str_iter().map_err(e)? {
                s.push_str(part.map_err(e)?);
            }
            Value::String(s)
        }
        Type::Array | Type::ArrayIndef => array(d, depth)?,
        Type::Map | Type::MapIndef => map(d, depth)?,
        // Tag 1 is a timestamp (epoch seconds); others are passed through as their value.
        Type::Tag => {
            d.tag().map_err(e)?;
            value(d, depth + 1)?
        }
        other => return Err(format!("unexpected CBOR {other}")),
    })
}

fn array(d: &mut Decoder<'_>, depth: usize) -> Result<Value, String> {
    let e = |e: minicbor::decode::Error| e.to_string();
    let len = d.array().map_err(e)?;
    let mut items = Vec::new();
    for _ in 0..len.unwrap_or(u64::MAX) {
        if len.is_none() && d.datatype().map_err(e)? == Type::Break {
            // The break byte (0xFF) that ends an indefinite-length array.
            d.set_position(d.position() + 1);
            break;
        }
        items.push(value(d, depth + 1)?);
    }
    Ok(Value::Array(items))
}

fn map(d: &mut Decoder<'_>, depth: usize) -> Result<Value, String> {
    let e = |e: minicbor::decode::Error| e.to_string();
    let len = d.map().map_err(e)?;
    let mut out = Map::new();
    for _ in 0..len.unwrap_or(u64::MAX) {
        if len.is_none() && d.datatype().map_err(e)? == Type::Break {
            d.set_position(d.position() + 1);
            break;
        }
        let key = match value(d, depth + 1)? {
            Value::String(s) => s,
            other => return Err(format!("map keys must be strings, not {other}")),
        };
        out.insert(key, value(d, depth + 1)?);
    }
    Ok(Value::Object(out))
}

pub fn encode(out: &Out) -> Vec<u8> {
    let mut e = Encoder::new(Vec::new());
    write(&mut e, out);
    e.into_writer()
}

fn write(e: &mut Encoder<Vec<u8>>, out: &Out) {
    // Writing to a Vec cannot fail.
    let _ = match out {
        Out::Map(entries) => {
            let _ = e.map(entries.len() as u64);
            for (k, v) in entries {
                let _ = e.str(k);
                write(e, v);
            }
            Ok(&mut *e)
        }
        Out::List(items) => {
            let _ = e.array(items.len() as u64);
            for v in items {
                write(e, v);
            }
            Ok(&mut *e)
        }
        Out::Str(s) => e.str(s),
        Out::Num(x) => e.f64(*x),
        Out::Time(t) => e.tag(Tag::new(1)).and_then(|e| e.f64(*t)),
    };
}

pub fn ok(out: &Out) -> Response {
    response(StatusCode::OK, encode(out))
}

/// `__type` with the shape name, and the query code in `x-amzn-query-error`: the
/// header is what makes the SDK's typed errors (it matches on the query code).
pub fn error(e: &AwsError) -> Response {
    let body = Out::map([
        (
            "__type",
            Out::str(format!("com.amazonaws.cloudwatch#{}", e.code)),
        ),
        ("message", Out::str(&e.message)),
    ]);
    let mut r = response(e.status, encode(&body));
    super::query_error_headers(&mut r, e, query_code(e));
    r
}

fn response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/cbor"));
    h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_indefinite_maps_and_tagged_times() {
        // {_ "StartTime": 1(1700000000.0), "L": [_ "a"], "N": -3}
        let mut body = vec![0xBF, 0x69];
        body.extend(b"StartTime");
        body.extend([0xC1, 0xFB]);
        body.extend(1_700_000_000f64.to_be_bytes());
        body.extend([0x61, b'L', 0x9F, 0x61, b'a', 0xFF, 0x61, b'N', 0x22, 0xFF]);
        let v = decode(&body).unwrap();
        assert_eq!(v["StartTime"], 1_700_000_000.0);
        assert_eq!(v["L"][0], "a");
        assert_eq!(v["N"], -3);
    }

    #[test]
    fn refuses_garbage_without_panicking() {
        for body in [
            &[0xFFu8][..],
            &[0xBF],
            &[0x9F; 100],
            &[0xA1, 0x01, 0x02],
            &[0x61],
            &[0x82, 0x01],
        ] {
            assert_eq!(
                decode(body).unwrap_err().code,
                "SerializationException",
                "{body:?}"
            );
        }
        let round = encode(&Out::map([
            ("T", Out::Time(5.0)),
            ("V", Out::List(vec![Out::Num(1.5)])),
        ]));
        assert_eq!(decode(&round).unwrap()["V"][0], 1.5);
    }
}
