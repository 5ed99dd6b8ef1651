//! The edge: one loopback endpoint for every AWS-shaped API, routed by path and
//! `X-Amz-Target` as the SDKs address services.

pub mod aws_error;

pub use aws_error::AwsError;
