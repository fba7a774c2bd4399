//! modelgate's HTTP layer: a hand-routed hyper 1.x service (no web framework), JSON and
//! error helpers, request limits, and [`serve`], which runs a listener with graceful
//! shutdown.
//!
//! Invariants: every non-2xx JSON body is the spec's error format, built only by
//! [`ApiError`]; every response carries `X-Request-Id`; request bodies are read through a
//! size limit; the server never holds more than `server.max_connections` connections.
#![forbid(unsafe_code)]

mod app;
mod auth;
pub mod autofit;
pub mod body;
pub mod catalog_fetch;
mod error;
mod handlers;
pub mod metrics;
pub mod ratelimit;
mod request_id;
mod router;
mod routing;
mod server;
pub mod usage;
pub mod watch;

pub use app::{build_state, BuildError, Extensions};
pub use body::Body;
pub use error::ApiError;
pub use handlers::ops::{reload_config, ReloadError, ReloadReport};
pub use router::{AppState, Router};
pub use server::{serve, ServeOptions};
