//! The engine: provider slots, the TTL cache, single-flight refresh, background refresh,
//! change detection, snapshot rebuilding and persistence.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

// Cache freshness uses Tokio's clock, so TTL expiry follows `tokio::time::pause`/`advance`
// in tests (it is the monotonic clock otherwise).
use tokio::time::Instant as CacheInstant;

use arc_swap::ArcSwap;
use modelgate_catalog::Catalog;
use modelgate_providers::Provider;
use modelgate_types::{Model, ModelEvent, ModelSource};
use serde::Serialize;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::persist::{self, PersistedProvider};
use crate::query::ModelSet;
use crate::state::{ProviderState, ProviderStatus, Snapshot};

/// How long a failed refresh is remembered before the next read tries again, so a
/// failing provider is not called on every request.
const ERROR_TTL_CAP: Duration = Duration::from_secs(30);

/// Engine settings.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    /// Freshness of a provider's list unless its handle says otherwise.
    pub ttl: Duration,
    /// Background refresh period; `None` disables it.
    pub refresh_interval: Option<Duration>,
    /// Providers refreshed at once.
    pub max_concurrent_refreshes: usize,
    /// Where the last good lists are persisted; `None` disables persistence.
    pub data_dir: Option<PathBuf>,
    /// Capacity of the change-event channel (a slower subscriber is told it lagged).
    pub event_capacity: usize,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            ttl: Duration::from_secs(300),
            refresh_interval: Some(Duration::from_secs(300)),
            max_concurrent_refreshes: 4,
            data_dir: None,
            event_capacity: 1024,
        }
    }
}

/// A provider to discover, with its cache TTL and overall refresh deadline.
#[derive(Debug, Clone)]
pub struct ProviderHandle {
    pub provider: Arc<dyn Provider>,
    /// Overrides [`DiscoveryOptions::ttl`].
    pub ttl: Option<Duration>,
    /// Bound on one whole refresh (all pages); adapters also time out each call.
    pub refresh_timeout: Duration,
}

/// One provider's slot: the adapter plus the single-flight machinery.
#[derive(Debug)]
struct Slot {
    name: String,
    handle: ProviderHandle,
    /// Matches `ProviderState::generation` while this slot is the installed one.
    generation: u64,
    /// Held while a refresh runs; waiters re-check `completed` after acquiring it.
    flight: tokio::sync::Mutex<()>,
    /// Number of refreshes completed (success or failure).
    completed: AtomicU64,
    /// A background refresh is scheduled or running.
    background: AtomicBool,
}

#[derive(Debug)]
struct CacheEntry {
    fetched_at: CacheInstant,
    fetched_wall: String,
    ttl: Duration,
    models: usize,
    approx_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ProviderCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
}

/// Cache statistics for `GET /api/cache/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Percent, as in the spec (`96.5`).
    pub hit_rate: f64,
    pub total_entries: usize,
    pub cached_models: usize,
    pub memory_usage_mb: f64,
    pub oldest_entry: Option<String>,
    pub newest_entry: Option<String>,
    pub providers: BTreeMap<String, ProviderCacheStats>,
}

/// What a refresh did.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    pub providers_updated: Vec<String>,
    pub providers_failed: BTreeMap<String, String>,
    pub models_discovered: usize,
    pub duration_ms: u64,
}

/// The discovery engine. Cheap to clone (shared inner state).
#[derive(Debug, Clone)]
pub struct Discovery {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    opts: DiscoveryOptions,
    catalog: ArcSwap<Catalog>,
    catalog_set: ArcSwap<ModelSet>,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    /// Freshness markers: provider name → when its list was last fetched.
    cache: quick_cache::sync::Cache<String, Arc<CacheEntry>>,
    states: Mutex<BTreeMap<String, ProviderState>>,
    snapshot: ArcSwap<Snapshot>,
    events: broadcast::Sender<ModelEvent>,
    refresh_permits: Semaphore,
    stats: Mutex<HashMap<String, (u64, u64)>>,
    version: AtomicU64,
    epoch: u64,
    persist_lock: tokio::sync::Mutex<()>,
    /// Source of slot generations.
    generations: AtomicU64,
    /// Serializes snapshot rebuilds, so the last snapshot stored is built from states at
    /// least as new as every write that preceded a rebuild request (two unserialized
    /// rebuilds could otherwise store an older view last).
    rebuild: Mutex<()>,
}

/// The state `slot` may write: none when a reload has replaced or removed the slot since
/// its refresh began (that refresh's result is dropped; the new adapter refreshes itself).
fn current_state<'a>(
    states: &'a mut BTreeMap<String, ProviderState>,
    slot: &Slot,
) -> Option<&'a mut ProviderState> {
    let st = states.get_mut(&slot.name)?;
    if st.generation != slot.generation {
        tracing::debug!(provider = %slot.name, "dropping the result of a replaced adapter");
        return None;
    }
    Some(st)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Discovery {
    /// Builds the engine for `providers` (enabled ones) and `disabled` names, loading the
    /// persisted lists from `data_dir` if present. Nothing is fetched until the first
    /// read or [`Discovery::start`].
    pub fn new(
        providers: Vec<ProviderHandle>,
        disabled: Vec<String>,
        catalog: Arc<Catalog>,
        opts: DiscoveryOptions,
    ) -> Self {
        let (events, _) = broadcast::channel(opts.event_capacity.max(16));
        let catalog_set = Arc::new(ModelSet::new(
            catalog.all_models().into_iter().map(Arc::new),
        ));
        let epoch = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0);
            h.finish() & 0xffff_ffff
        };
        let inner = Arc::new(Inner {
            cache: quick_cache::sync::Cache::new((providers.len() + disabled.len()).max(16)),
            refresh_permits: Semaphore::new(opts.max_concurrent_refreshes.max(1)),
            opts,
            catalog: ArcSwap::new(catalog),
            catalog_set: ArcSwap::new(catalog_set.clone()),
            slots: RwLock::new(BTreeMap::new()),
            states: Mutex::new(BTreeMap::new()),
            snapshot: ArcSwap::new(Arc::new(Snapshot {
                version: 0,
                epoch,
                discovered: ModelSet::default(),
                catalog: catalog_set.clone(),
                all: (*catalog_set).clone(),
                providers: Vec::new(),
                updated_at: modelgate_types::now_rfc3339(),
                has_providers: false,
            })),
            events,
            stats: Mutex::new(HashMap::new()),
            version: AtomicU64::new(0),
            epoch,
            persist_lock: tokio::sync::Mutex::new(()),
            generations: AtomicU64::new(0),
            rebuild: Mutex::new(()),
        });
        let d = Discovery { inner };
        d.install_providers(providers, disabled);
        d.load_persisted();
        d.rebuild_snapshot();
        d
    }

    fn install_providers(&self, providers: Vec<ProviderHandle>, disabled: Vec<String>) {
        let mut slots = self
            .inner
            .slots
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut states = lock(&self.inner.states);
        let mut keep: BTreeSet<String> = BTreeSet::new();
        for handle in providers {
            let name = handle.provider.name().to_owned();
            let kind = handle.provider.kind();
            keep.insert(name.clone());
            let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed) + 1;
            slots.insert(
                name.clone(),
                Arc::new(Slot {
                    name: name.clone(),
                    generation,
                    handle,
                    flight: tokio::sync::Mutex::new(()),
                    completed: AtomicU64::new(0),
                    background: AtomicBool::new(false),
                }),
            );
            self.inner.cache.remove(&name);
            let st = states
                .entry(name.clone())
                .or_insert_with(|| ProviderState::new(&name, Some(kind), ProviderStatus::Pending));
            st.kind = Some(kind);
            st.generation = generation;
            if st.status == ProviderStatus::Disabled {
                st.status = ProviderStatus::Pending;
            }
        }
        for name in disabled {
            keep.insert(name.clone());
            slots.remove(&name);
            self.inner.cache.remove(&name);
            let mut st = ProviderState::new(&name, None, ProviderStatus::Disabled);
            if let Some(old) = states.get(&name) {
                st.kind = old.kind;
            }
            states.insert(name, st);
        }
        slots.retain(|name, _| keep.contains(name));
        states.retain(|name, _| keep.contains(name));
        let stale: Vec<String> = self
            .inner
            .cache
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !keep.contains(k))
            .collect();
        for k in stale {
            self.inner.cache.remove(&k);
        }
    }

    /// Replaces the provider set (config reload). Providers in `changed` (and new ones)
    /// get fresh slots and are refreshed on next use; others keep their state.
    pub fn replace_providers(&self, providers: Vec<ProviderHandle>, disabled: Vec<String>) {
        self.install_providers(providers, disabled);
        self.rebuild_snapshot();
    }

    fn load_persisted(&self) {
        let Some(dir) = &self.inner.opts.data_dir else {
            return;
        };
        match persist::load(dir) {
            Ok(None) => {}
            Ok(Some(file)) => {
                let mut states = lock(&self.inner.states);
                let mut loaded = 0;
                for (name, p) in file.providers {
                    if let Some(st) = states.get_mut(&name) {
                        if st.status == ProviderStatus::Disabled {
                            continue;
                        }
                        loaded += p.models.len();
                        // Not confirmed by the provider since the restart: stale until the
                        // first successful refresh.
                        let models: Vec<Arc<Model>> = p
                            .models
                            .into_iter()
                            .map(|mut m| {
                                m.stale = true;
                                Arc::new(m)
                            })
                            .collect();
                        // An already-expired entry: reads serve the persisted list at once and
                        // revalidate in the background instead of waiting on the provider.
                        self.inner.cache.insert(
                            name.clone(),
                            Arc::new(CacheEntry {
                                fetched_at: CacheInstant::now(),
                                fetched_wall: p
                                    .last_success
                                    .clone()
                                    .unwrap_or_else(|| file.saved_at.clone()),
                                ttl: Duration::ZERO,
                                models: models.len(),
                                approx_bytes: models.iter().map(|m| approx_size(m)).sum(),
                            }),
                        );
                        st.models = Arc::new(models);
                        st.last_success = p.last_success;
                    }
                }
                tracing::info!(models = loaded, path = %persist::path(dir).display(), "loaded persisted model lists");
            }
            Err(e) => tracing::warn!("ignoring persisted model lists: {e}"),
        }
    }

    /// The current snapshot (cheap: an `Arc` clone).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// The catalog in use.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.catalog.load_full()
    }

    /// Swaps in a fresher catalog (from `catalog.url`) and re-merges facts on next refresh.
    pub fn set_catalog(&self, catalog: Arc<Catalog>) {
        let set = Arc::new(ModelSet::new(
            catalog.all_models().into_iter().map(Arc::new),
        ));
        self.inner.catalog.store(catalog);
        self.inner.catalog_set.store(set);
        self.rebuild_snapshot();
    }

    /// Subscribes to change events.
    pub fn subscribe(&self) -> broadcast::Receiver<ModelEvent> {
        self.inner.events.subscribe()
    }

    /// Names of configured, enabled providers.
    pub fn provider_names(&self) -> Vec<String> {
        self.slots_snapshot()
            .into_iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// The adapter of a provider, for callers that talk to it directly (chat).
    pub fn provider(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.inner
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .map(|s| s.handle.provider.clone())
    }

    /// Whether `name` is configured (enabled or disabled).
    pub fn knows_provider(&self, name: &str) -> bool {
        lock(&self.inner.states).contains_key(name)
    }

    fn slots_snapshot(&self) -> Vec<Arc<Slot>> {
        self.inner
            .slots
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn selected_slots(&self, names: Option<&[String]>) -> Vec<Arc<Slot>> {
        let all = self.slots_snapshot();
        match names {
            None | Some([]) => all,
            Some(names) => all
                .into_iter()
                .filter(|s| names.iter().any(|n| n == &s.name))
                .collect(),
        }
    }

    /// Makes sure the selected providers (all when `None`) have data: fresh entries are
    /// hits; expired ones are hits that schedule one background refresh; missing ones
    /// are refreshed now (single-flight). `force` refreshes all selected now. Returns
    /// whether everything was served from cache.
    pub async fn ensure_fresh(&self, names: Option<&[String]>, force: bool) -> bool {
        let slots = self.selected_slots(names);
        let mut sync = Vec::new();
        let mut all_hit = true;
        for slot in slots {
            // Read before the cache: a refresh that completes after this point satisfies
            // this caller (single-flight), even if it finished before the caller's own
            // refresh would start.
            let seen = slot.completed.load(Ordering::Acquire);
            if force {
                all_hit = false;
                sync.push((slot, seen));
                continue;
            }
            match self.inner.cache.get(&slot.name) {
                Some(entry) => {
                    self.count(&slot.name, true);
                    if entry.fetched_at.elapsed() >= entry.ttl {
                        self.spawn_background(slot, seen);
                    }
                }
                None => {
                    self.count(&slot.name, false);
                    all_hit = false;
                    sync.push((slot, seen));
                }
            }
        }
        if !sync.is_empty() {
            let this = self.clone();
            futures_util::future::join_all(sync.into_iter().map(|(slot, seen)| {
                let this = this.clone();
                async move { this.refresh_slot_since(&slot, seen).await }
            }))
            .await;
        }
        all_hit
    }

    fn count(&self, name: &str, hit: bool) {
        let mut stats = lock(&self.inner.stats);
        let e = stats.entry(name.to_owned()).or_default();
        if hit {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }

    fn spawn_background(&self, slot: Arc<Slot>, seen: u64) {
        if slot.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.refresh_slot_since(&slot, seen).await;
            slot.background.store(false, Ordering::Release);
        });
    }

    /// Refreshes the selected providers now and reports what happened.
    pub async fn refresh(&self, names: Option<&[String]>) -> RefreshReport {
        let start = Instant::now();
        let slots = self.selected_slots(names);
        let this = self.clone();
        futures_util::future::join_all(slots.into_iter().map(|slot| {
            let this = this.clone();
            async move { this.refresh_slot(&slot).await }
        }))
        .await;
        self.report(names, start)
    }

    /// The state of the selected providers as a refresh report (used after
    /// [`Discovery::ensure_fresh`] when only expired providers were refreshed).
    pub fn report(&self, names: Option<&[String]>, started: Instant) -> RefreshReport {
        let snap = self.snapshot();
        let mut report = RefreshReport {
            providers_updated: Vec::new(),
            providers_failed: BTreeMap::new(),
            models_discovered: 0,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        for slot in self.selected_slots(names) {
            if let Some(p) = snap.provider(&slot.name) {
                match p.status {
                    ProviderStatus::Active => {
                        report.models_discovered += p.models.len();
                        report.providers_updated.push(slot.name.clone());
                    }
                    _ => {
                        report
                            .providers_failed
                            .insert(slot.name.clone(), p.error.clone().unwrap_or_default());
                    }
                }
            }
        }
        report
    }

    /// Single-flight refresh of one provider: if another refresh completes while this
    /// caller waits for the flight lock, its result is used instead of calling again.
    async fn refresh_slot(&self, slot: &Arc<Slot>) {
        self.refresh_slot_since(slot, slot.completed.load(Ordering::Acquire))
            .await;
    }

    /// As [`Discovery::refresh_slot`], where `seen` is the completion count the caller
    /// observed before deciding to refresh: any refresh completed since then is used.
    async fn refresh_slot_since(&self, slot: &Arc<Slot>, seen: u64) {
        let _flight = slot.flight.lock().await;
        if slot.completed.load(Ordering::Acquire) != seen {
            return;
        }
        let _permit = self.inner.refresh_permits.acquire().await;
        let started = Instant::now();
        let provider = slot.handle.provider.clone();
        let result =
            tokio::time::timeout(slot.handle.refresh_timeout, provider.list_models()).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let now = modelgate_types::now_rfc3339();
        let ttl = slot.handle.ttl.unwrap_or(self.inner.opts.ttl);
        match result {
            Ok(Ok(models)) => {
                self.apply_success(slot, models, elapsed_ms, &now, ttl)
                    .await
            }
            Ok(Err(e)) => self.apply_failure(slot, e.to_string(), elapsed_ms, &now, ttl),
            Err(_) => self.apply_failure(
                slot,
                format!(
                    "provider '{}' timed out: no complete model list within {} ms",
                    slot.name,
                    slot.handle.refresh_timeout.as_millis()
                ),
                elapsed_ms,
                &now,
                ttl,
            ),
        }
        slot.completed.fetch_add(1, Ordering::AcqRel);
    }

    async fn apply_success(
        &self,
        slot: &Slot,
        mut models: Vec<Model>,
        elapsed_ms: u64,
        now: &str,
        ttl: Duration,
    ) {
        let catalog = self.inner.catalog.load_full();
        let kind = slot.handle.provider.kind();
        // Deduplicate by id (some upstreams list aliases twice), keeping the first.
        let mut seen = BTreeSet::new();
        models.retain(|m| seen.insert(m.id.clone()));
        for m in &mut models {
            m.provider.clone_from(&slot.name);
            m.source = ModelSource::Discovered;
            m.stale = false;
            catalog.enrich(kind, m);
        }
        let mut events = Vec::new();
        let changed;
        {
            let mut states = lock(&self.inner.states);
            let Some(st) = current_state(&mut states, slot) else {
                return;
            };
            let previous: HashMap<&str, &Arc<Model>> =
                st.models.iter().map(|m| (m.id.as_str(), m)).collect();
            let mut next: Vec<Arc<Model>> = Vec::with_capacity(models.len());
            let mut models_changed = false;
            for mut m in models {
                match previous.get(m.id.as_str()) {
                    Some(old) if !old.facts_differ(&m) => {
                        m.updated_at.clone_from(&old.updated_at);
                        if old.stale {
                            models_changed = true;
                        }
                        if m.updated_at.is_none() {
                            m.updated_at = Some(now.to_owned());
                        }
                        next.push(Arc::new(m));
                    }
                    Some(_) => {
                        m.updated_at = Some(now.to_owned());
                        let m = Arc::new(m);
                        events.push(ModelEvent::ModelUpdated {
                            model: Box::new((*m).clone()),
                            timestamp: now.to_owned(),
                        });
                        models_changed = true;
                        next.push(m);
                    }
                    None => {
                        m.updated_at = Some(now.to_owned());
                        let m = Arc::new(m);
                        events.push(ModelEvent::ModelAdded {
                            model: Box::new((*m).clone()),
                            timestamp: now.to_owned(),
                        });
                        models_changed = true;
                        next.push(m);
                    }
                }
            }
            let next_ids: BTreeSet<&str> = next.iter().map(|m| m.id.as_str()).collect();
            for (id, old) in &previous {
                if !next_ids.contains(id) {
                    events.push(ModelEvent::ModelRemoved {
                        model: Box::new((***old).clone()),
                        timestamp: now.to_owned(),
                    });
                    models_changed = true;
                }
            }
            if st.status != ProviderStatus::Active {
                events.push(ModelEvent::ProviderStatusChanged {
                    provider: slot.name.clone(),
                    status: "active".to_owned(),
                    previous_status: Some(st.status.as_str().to_owned()),
                    error: None,
                    timestamp: now.to_owned(),
                });
            }
            changed = models_changed || st.status != ProviderStatus::Active;
            let approx_bytes: usize = next.iter().map(|m| approx_size(m)).sum();
            self.inner.cache.insert(
                slot.name.clone(),
                Arc::new(CacheEntry {
                    fetched_at: CacheInstant::now(),
                    fetched_wall: now.to_owned(),
                    ttl,
                    models: next.len(),
                    approx_bytes,
                }),
            );
            st.models = Arc::new(next);
            st.status = ProviderStatus::Active;
            st.error = None;
            st.last_check = Some(now.to_owned());
            st.last_success = Some(now.to_owned());
            st.response_time_ms = Some(elapsed_ms);
            st.kind = Some(kind);
            if models_changed {
                tracing::info!(provider = %slot.name, models = st.models.len(), "model list changed");
            }
        }
        // Status fields (last_check, response time) change on every refresh.
        self.rebuild_snapshot();
        for ev in events {
            let _ = self.inner.events.send(ev);
        }
        if changed {
            self.persist().await;
        }
    }

    fn apply_failure(&self, slot: &Slot, error: String, elapsed_ms: u64, now: &str, ttl: Duration) {
        let mut event = None;
        {
            let mut states = lock(&self.inner.states);
            let Some(st) = current_state(&mut states, slot) else {
                return;
            };
            tracing::warn!(provider = %slot.name, %error, "model refresh failed; serving last good list");
            if st.status != ProviderStatus::Error {
                event = Some(ModelEvent::ProviderStatusChanged {
                    provider: slot.name.clone(),
                    status: "error".to_owned(),
                    previous_status: Some(st.status.as_str().to_owned()),
                    error: Some(error.clone()),
                    timestamp: now.to_owned(),
                });
            }
            if st.models.iter().any(|m| !m.stale) {
                st.models = Arc::new(
                    st.models
                        .iter()
                        .map(|m| {
                            let mut m = (**m).clone();
                            m.stale = true;
                            Arc::new(m)
                        })
                        .collect(),
                );
            }
            st.status = ProviderStatus::Error;
            st.error = Some(error);
            st.last_check = Some(now.to_owned());
            st.response_time_ms = Some(elapsed_ms);
            // Remember the failure briefly so reads do not hammer a failing provider.
            self.inner.cache.insert(
                slot.name.clone(),
                Arc::new(CacheEntry {
                    fetched_at: CacheInstant::now(),
                    fetched_wall: now.to_owned(),
                    ttl: ttl.min(ERROR_TTL_CAP),
                    models: st.models.len(),
                    approx_bytes: st.models.iter().map(|m| approx_size(m)).sum(),
                }),
            );
        }
        self.rebuild_snapshot();
        if let Some(ev) = event {
            let _ = self.inner.events.send(ev);
        }
    }

    fn rebuild_snapshot(&self) {
        let _serial = lock(&self.inner.rebuild);
        let states: Vec<ProviderState> = lock(&self.inner.states).values().cloned().collect();
        let discovered = ModelSet::new(states.iter().flat_map(|s| s.models.iter().cloned()));
        let catalog = self.inner.catalog_set.load_full();
        let has_providers = !states.is_empty();
        let all = if has_providers {
            let mut v: Vec<Arc<Model>> = discovered.iter().cloned().collect();
            v.extend(
                catalog
                    .iter()
                    .filter(|m| discovered.get(&m.provider, &m.id).is_none())
                    .cloned(),
            );
            ModelSet::new(v)
        } else {
            (*catalog).clone()
        };
        let version = self.inner.version.fetch_add(1, Ordering::AcqRel) + 1;
        self.inner.snapshot.store(Arc::new(Snapshot {
            version,
            epoch: self.inner.epoch,
            discovered,
            catalog,
            all,
            providers: states,
            updated_at: modelgate_types::now_rfc3339(),
            has_providers,
        }));
    }

    async fn persist(&self) {
        let Some(dir) = self.inner.opts.data_dir.clone() else {
            return;
        };
        let _guard = self.inner.persist_lock.lock().await;
        let data: BTreeMap<String, PersistedProvider> = lock(&self.inner.states)
            .values()
            .filter(|s| !s.models.is_empty())
            .map(|s| {
                (
                    s.name.clone(),
                    PersistedProvider {
                        models: s
                            .models
                            .iter()
                            .map(|m| {
                                let mut m = (**m).clone();
                                m.stale = false;
                                m
                            })
                            .collect(),
                        last_success: s.last_success.clone(),
                    },
                )
            })
            .collect();
        match tokio::task::spawn_blocking(move || persist::save(&dir, data)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("cannot persist model lists: {e}"),
            Err(e) => tracing::warn!("persist task failed: {e}"),
        }
    }

    /// Clears the cache for one provider or all; the last good lists are kept (they
    /// are served until the next refresh replaces them). Returns the models cleared.
    pub fn clear_cache(&self, provider: Option<&str>) -> usize {
        match provider {
            Some(name) => self
                .inner
                .cache
                .remove(name)
                .map(|(_, e)| e.models)
                .unwrap_or(0),
            None => {
                let n = self.inner.cache.iter().map(|(_, e)| e.models).sum();
                self.inner.cache.clear();
                n
            }
        }
    }

    /// Cache statistics.
    pub fn cache_stats(&self) -> CacheStats {
        let stats = lock(&self.inner.stats).clone();
        let (mut hits, mut misses) = (0, 0);
        let mut providers = BTreeMap::new();
        for (name, (h, m)) in stats {
            hits += h;
            misses += m;
            providers.insert(
                name,
                ProviderCacheStats {
                    hits: h,
                    misses: m,
                    hit_rate: percent(h, m),
                },
            );
        }
        let entries: Vec<Arc<CacheEntry>> = self.inner.cache.iter().map(|(_, e)| e).collect();
        let oldest = entries
            .iter()
            .min_by_key(|e| e.fetched_at)
            .map(|e| e.fetched_wall.clone());
        let newest = entries
            .iter()
            .max_by_key(|e| e.fetched_at)
            .map(|e| e.fetched_wall.clone());
        let bytes: usize = entries.iter().map(|e| e.approx_bytes).sum();
        CacheStats {
            hits,
            misses,
            hit_rate: percent(hits, misses),
            total_entries: entries.len(),
            cached_models: entries.iter().map(|e| e.models).sum(),
            memory_usage_mb: ((bytes as f64) / 1_048_576.0 * 100.0).round() / 100.0,
            oldest_entry: oldest,
            newest_entry: newest,
            providers,
        }
    }

    /// Runs the initial refresh of every provider, then one every `refresh_interval`,
    /// until `shutdown` is cancelled. Returns at once; the work runs in a task.
    pub fn start(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = this.refresh(None) => {}
                () = shutdown.cancelled() => return,
            }
            let Some(period) = this.inner.opts.refresh_interval else {
                return;
            };
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let r = this.refresh(None).await;
                        tracing::debug!(updated = ?r.providers_updated, failed = ?r.providers_failed.keys().collect::<Vec<_>>(), "background refresh");
                    }
                    () = shutdown.cancelled() => return,
                }
            }
        })
    }
}

fn percent(h: u64, m: u64) -> f64 {
    if h + m == 0 {
        0.0
    } else {
        ((h as f64) * 1000.0 / ((h + m) as f64)).round() / 10.0
    }
}

/// A rough per-model memory estimate (strings plus fixed overhead) for cache stats.
fn approx_size(m: &Model) -> usize {
    256 + m.id.len()
        + m.name.len()
        + m.provider.len()
        + m.description.as_ref().map_or(0, String::len)
        + m.capabilities.len() * 8
}
