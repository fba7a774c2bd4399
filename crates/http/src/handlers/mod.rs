//! Request handlers, one module per API area.

pub mod chat;
pub mod condense;
pub mod health;
pub mod models;
pub mod ops;
pub mod resilience;
pub mod v2;
pub mod ws;
