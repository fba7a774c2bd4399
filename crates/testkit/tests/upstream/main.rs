//! Raw-HTTP tests of the mock upstream, one module per wire format: auth rejection bodies,
//! listing shapes, pagination, chat round-trips, streams, and every injectable fault.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod cohere;
mod common;
mod faults;
mod gemini;
mod openai;
mod others;
