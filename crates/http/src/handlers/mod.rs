//! Request handlers, one module per API area.

pub mod condense;
pub mod health;
pub mod models;
pub mod v2;
pub mod ws;
