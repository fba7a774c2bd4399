//! The discovery engine: asks every configured provider which models it serves, merges
//! catalog facts, caches the result (stale-while-revalidate, single-flight), keeps the
//! last good list through outages (marked stale, persisted to disk), detects changes as
//! [`ModelEvent`]s and answers queries from a pre-built snapshot.
//!
//! Invariants: a provider failure never removes its last good models; concurrent
//! requests for an expired or missing provider cause at most one upstream list call;
//! every map is bounded by the number of configured providers; reads never block on an
//! upstream call unless the provider has no data at all (or `refresh=true`).
#![forbid(unsafe_code)]

mod engine;
mod persist;
pub mod query;
mod state;

pub use engine::{
    CacheStats, Discovery, DiscoveryOptions, ProviderCacheStats, ProviderHandle, RefreshReport,
};
pub use modelgate_types::ModelEvent;
pub use query::{IndexedModel, ModelSet};
pub use state::{ProviderState, ProviderStatus, Snapshot};
