//! The model catalog: an embedded models.dev snapshot, parsed once, and the lookup that
//! matches a discovered `(provider kind, model id)` to catalog facts.
//!
//! Invariants: no I/O beyond decompressing the bytes compiled into the crate; no async; no
//! panics on any input. A miss is `None`, never a guess: a price is only carried over when
//! the record belongs to the provider that charges it (see [`Match::prices_apply`]).
//!
//! ```
//! use modelgate_catalog::Catalog;
//! use modelgate_types::ProviderKind;
//!
//! let catalog = Catalog::embedded();
//! let found = catalog.lookup(ProviderKind::Openai, "gpt-4o-2024-08-06").expect("known");
//! let model = found.entry.to_model("openai");
//! assert_eq!(model.input_cost, Some(0.0025));
//! assert!(catalog.lookup(ProviderKind::Openai, "gpt-nonexistent").is_none());
//! ```
#![forbid(unsafe_code)]

mod entry;
mod ids;
mod lookup;
mod raw;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use modelgate_types::Model;

pub use entry::{CatalogEntry, CatalogProvider, Cost, Limits};
pub use lookup::{home_providers, Match, MatchKind, MatchScope};

use ids::ParsedId;
use raw::RawDocument;

/// The gzip-compressed models.dev `api.json` snapshot compiled into the crate.
const EMBEDDED_GZ: &[u8] = include_bytes!("../data/models.dev.json.gz");

/// Date (`YYYY-MM-DD`) of the embedded snapshot.
pub const SNAPSHOT_DATE: &str = include_str!("../data/SNAPSHOT_DATE").trim_ascii_end();

/// Where models.dev publishes the same format live.
pub const MODELS_DEV_URL: &str = "https://models.dev/api.json";

/// The licence notice of the data (MIT, models.dev); ship it with any copy of the data.
pub const DATA_LICENSE: &str = include_str!("../data/LICENSE.models.dev");

/// Why a catalog document could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// Not JSON, or its top level is not an object of providers.
    #[error("catalog is not a models.dev api.json document: {0}")]
    Json(#[from] serde_json::Error),
    /// The embedded snapshot could not be decompressed (a broken build).
    #[error("embedded catalog could not be decompressed: {0}")]
    Decompress(#[source] std::io::Error),
}

/// Where a catalog's data came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provenance {
    /// `embedded` for the compiled-in snapshot, else what the caller set (e.g. a URL).
    pub source: String,
    /// Date of the snapshot, when known.
    pub snapshot_date: Option<String>,
}

/// A parsed, indexed catalog. Cheap to query from many threads; share it by reference or
/// in an `Arc`.
pub struct Catalog {
    providers: Vec<CatalogProvider>,
    /// Every record, grouped by provider (in provider order), sorted by id within one.
    entries: Vec<CatalogEntry>,
    /// `entries` range of each provider, parallel to `providers`.
    ranges: Vec<Range<u32>>,
    /// Per entry, parallel to `entries`.
    meta: Vec<EntryMeta>,
    provider_ix: HashMap<Box<str>, u32>,
    index: Index,
    provenance: Provenance,
}

#[derive(Debug, Clone, Copy)]
struct EntryMeta {
    provider: u32,
}

/// Normalised-key indexes over all entries. Every list is ranked: reference providers
/// first (see `lookup::REFERENCE_PROVIDERS`), untagged before tagged, then entry order.
#[derive(Debug, Default)]
struct Index {
    /// Canonical key → entries.
    canon: HashMap<Box<str>, Vec<u32>>,
    /// Base key → entries whose id is `base-latest`.
    latest: HashMap<Box<str>, Vec<u32>>,
    /// Base key → entries whose id is `base-<date>`.
    dated: HashMap<Box<str>, Vec<u32>>,
    /// Loose key → entries.
    loose: HashMap<Box<str>, Vec<u32>>,
}

impl fmt::Debug for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalog")
            .field("providers", &self.providers.len())
            .field("models", &self.entries.len())
            .field("provenance", &self.provenance)
            .finish_non_exhaustive()
    }
}

static EMBEDDED: OnceLock<Arc<Catalog>> = OnceLock::new();

impl Catalog {
    /// The embedded snapshot, decompressed, parsed and indexed on first use (tens of
    /// milliseconds, once per process). The crate's tests prove the compiled-in data
    /// parses; should it ever not, this is an empty catalog rather than a panic, and
    /// [`Catalog::load_embedded`] reports why.
    pub fn embedded() -> Arc<Catalog> {
        EMBEDDED
            .get_or_init(|| Arc::new(Catalog::load_embedded().unwrap_or_else(|_| Catalog::empty())))
            .clone()
    }

    /// Decompresses, parses and indexes the embedded snapshot anew (what
    /// [`Catalog::embedded`] does once).
    pub fn load_embedded() -> Result<Catalog, CatalogError> {
        let mut json = Vec::with_capacity(EMBEDDED_GZ.len() * 14);
        flate2::read::GzDecoder::new(EMBEDDED_GZ)
            .read_to_end(&mut json)
            .map_err(CatalogError::Decompress)?;
        let mut catalog = Catalog::from_json(&json)?;
        catalog.provenance = Provenance {
            source: "embedded".to_owned(),
            snapshot_date: Some(SNAPSHOT_DATE.to_owned()),
        };
        Ok(catalog)
    }

    /// Parses a models.dev `api.json` document (e.g. a fresher copy from
    /// [`MODELS_DEV_URL`]). Tolerant: unknown fields are ignored, a wrongly typed field
    /// reads as missing, a provider or model that is not an object is skipped. Errors only
    /// when the bytes are not JSON or the top level is not an object.
    pub fn from_json(bytes: &[u8]) -> Result<Catalog, CatalogError> {
        let doc: RawDocument = serde_json::from_slice(bytes)?;
        Ok(Catalog::build(doc))
    }

    /// A catalog with no providers: every lookup misses.
    pub fn empty() -> Catalog {
        Catalog::build(RawDocument::default())
    }

    /// Sets where this catalog came from (e.g. the URL it was fetched from and its date).
    #[must_use]
    pub fn with_provenance(
        mut self,
        source: impl Into<String>,
        snapshot_date: Option<String>,
    ) -> Catalog {
        self.provenance = Provenance {
            source: source.into(),
            snapshot_date,
        };
        self
    }

    pub fn provenance(&self) -> &Provenance {
        &self.provenance
    }

    /// Number of providers.
    pub fn provider_count(&self) -> usize {
        self.providers.len()
    }

    /// Number of model records (one model listed by two providers counts twice).
    pub fn model_count(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Providers, sorted by id.
    pub fn providers(&self) -> &[CatalogProvider] {
        &self.providers
    }

    /// One provider by models.dev id.
    pub fn provider(&self, id: &str) -> Option<&CatalogProvider> {
        self.providers.get(*self.provider_ix.get(id)? as usize)
    }

    /// Every record, grouped by provider and sorted by id within each.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The records of one provider, sorted by id; empty for an unknown provider.
    pub fn provider_entries(&self, provider_id: &str) -> &[CatalogEntry] {
        self.provider_ix
            .get(provider_id)
            .and_then(|&p| self.ranges.get(p as usize))
            .and_then(|r| self.entries.get(r.start as usize..r.end as usize))
            .unwrap_or(&[])
    }

    /// The record with exactly this provider id and model id.
    pub fn get(&self, provider_id: &str, model_id: &str) -> Option<&CatalogEntry> {
        let list = self.provider_entries(provider_id);
        list.binary_search_by(|e| e.id.as_str().cmp(model_id))
            .ok()
            .and_then(|i| list.get(i))
    }

    /// Every record as a `Model` (`provider` = the models.dev provider id,
    /// `source: catalog`), in [`Catalog::entries`] order.
    pub fn models(&self) -> impl ExactSizeIterator<Item = Model> + '_ {
        self.entries.iter().map(|e| e.to_model(&e.provider))
    }

    /// [`Catalog::models`], collected: what the gateway serves with no provider configured.
    pub fn all_models(&self) -> Vec<Model> {
        self.models().collect()
    }

    fn build(doc: RawDocument) -> Catalog {
        let mut raw_providers = doc.0;
        raw_providers.sort_by(|a, b| a.0.cmp(&b.0));
        raw_providers.dedup_by(|a, b| a.0 == b.0);

        let total: usize = raw_providers.iter().map(|(_, p)| p.models.len()).sum();
        let mut providers = Vec::with_capacity(raw_providers.len());
        let mut entries = Vec::with_capacity(total);
        let mut ranges = Vec::with_capacity(raw_providers.len());
        let mut meta = Vec::with_capacity(total);
        let mut provider_ix = HashMap::with_capacity(raw_providers.len());

        for (p, (id, mut raw)) in (0u32..).zip(raw_providers) {
            let id: Arc<str> = Arc::from(id);
            let mut models = std::mem::take(&mut raw.models);
            models.sort_by(|a, b| a.0.cmp(&b.0));
            models.dedup_by(|a, b| a.0 == b.0);
            let start = entries.len() as u32;
            for (model_id, raw_model) in models {
                entries.push(CatalogEntry::from_raw(id.clone(), model_id, raw_model));
                meta.push(EntryMeta { provider: p });
            }
            ranges.push(start..entries.len() as u32);
            provider_ix.insert(Box::from(&*id), p);
            providers.push(CatalogProvider::from_raw(id, raw));
        }

        let index = build_index(&providers, &entries, &meta);
        Catalog {
            providers,
            entries,
            ranges,
            meta,
            provider_ix,
            index,
            provenance: Provenance {
                source: "api.json".to_owned(),
                snapshot_date: None,
            },
        }
    }
}

fn build_index(
    providers: &[CatalogProvider],
    entries: &[CatalogEntry],
    meta: &[EntryMeta],
) -> Index {
    // Provider rank: reference providers first, in their listed order; then by id.
    let n_ref = lookup::REFERENCE_PROVIDERS.len();
    let rank: Vec<usize> = providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            lookup::REFERENCE_PROVIDERS
                .iter()
                .position(|r| **r == *p.id)
                .unwrap_or(n_ref + i)
        })
        .collect();

    let mut index = Index::default();
    let mut tagged = vec![false; entries.len()];
    for (i, entry) in (0u32..).zip(entries) {
        let q = ParsedId::new(&entry.id);
        if q.canon.is_empty() {
            continue;
        }
        tagged[i as usize] = q.tag_dropped;
        if q.latest {
            push(&mut index.latest, &q.base, i);
        }
        if q.dated {
            push(&mut index.dated, &q.base, i);
        }
        push(&mut index.loose, &q.loose, i);
        push(&mut index.canon, &q.canon, i);
    }
    let key = |i: &u32| {
        let i = *i as usize;
        (rank[meta[i].provider as usize], tagged[i], i)
    };
    for map in [
        &mut index.canon,
        &mut index.latest,
        &mut index.dated,
        &mut index.loose,
    ] {
        for list in map.values_mut() {
            list.sort_by_key(key);
        }
    }
    index
}

fn push(map: &mut HashMap<Box<str>, Vec<u32>>, key: &str, i: u32) {
    match map.get_mut(key) {
        Some(list) => list.push(i),
        None => {
            map.insert(Box::from(key), vec![i]);
        }
    }
}
