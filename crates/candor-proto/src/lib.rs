//! Wire types shared by the Candor agent and server.
//!
//! This crate owns everything both halves must agree on: the event model
//! ([`event`]), the batch codec used on the ingest path ([`batch`]), policy
//! documents and consent ([`policy`]), and the small JSON messages of the agent
//! API ([`api`], [`token`]). It does no I/O.

pub mod api;
pub mod batch;
pub mod event;
pub mod policy;
pub mod screen;
pub mod software;
pub mod token;
pub mod web;

pub use event::{Category, Event, Payload};

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
