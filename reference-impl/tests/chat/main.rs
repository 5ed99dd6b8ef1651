//! Handler tests: the library's functions against DynamoDB Local (a real database, started
//! on a free port) and a loopback recorder for @connections, SQS and Lambda.

mod broadcast;
mod lifecycle;
mod messages;
mod runtime;
mod support;
