//! Integration tests of the discovery engine against the testkit mock upstream: real
//! adapters (OpenAI, Anthropic, Gemini, Ollama wire formats) over loopback HTTP, the
//! embedded catalog, persistence in a temp dir, single-flight and stale-while-revalidate
//! under Tokio's paused clock, and change events.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use modelgate_catalog::Catalog;
use modelgate_discovery::{
    Discovery, DiscoveryOptions, ModelEvent, ProviderHandle, ProviderStatus, Snapshot,
};
use modelgate_providers::{build_provider, HttpClient};
use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::{
    Capability, Model, ModelQuery, ModelSource, Page, ProviderConfig, ProviderKind, Secret,
};

/// The four providers most tests use: one per wire-format family.
const KINDS: [(&str, ProviderKind); 4] = [
    ("openai", ProviderKind::Openai),
    ("anthropic", ProviderKind::Anthropic),
    ("gemini", ProviderKind::Gemini),
    ("ollama", ProviderKind::Ollama),
];

/// A provider named `name` of `kind` pointed at the mock. Timeouts are generous: under a
/// paused clock, Tokio jumps straight to the next timer whenever every task is idle.
fn handle_with_key(
    mock: &MockUpstream,
    name: &str,
    kind: ProviderKind,
    key: &str,
) -> ProviderHandle {
    let mut cfg = ProviderConfig::new(kind);
    cfg.base_url = Some(mock.base_url(kind));
    cfg.timeout_ms = 30_000;
    let client = HttpClient::new().expect("http client");
    let provider = build_provider(name, &cfg, Some(Secret::new(key)), &client).expect("provider");
    ProviderHandle {
        provider,
        ttl: None,
        refresh_timeout: Duration::from_secs(60),
    }
}

fn handle(mock: &MockUpstream, name: &str, kind: ProviderKind) -> ProviderHandle {
    handle_with_key(mock, name, kind, MockUpstream::API_KEY)
}

fn handles(mock: &MockUpstream, kinds: &[(&str, ProviderKind)]) -> Vec<ProviderHandle> {
    kinds.iter().map(|(n, k)| handle(mock, n, *k)).collect()
}

fn opts(ttl: Duration, data_dir: Option<PathBuf>) -> DiscoveryOptions {
    DiscoveryOptions {
        ttl,
        refresh_interval: None,
        max_concurrent_refreshes: 4,
        data_dir,
        event_capacity: 4096,
    }
}

fn discovery(handles: Vec<ProviderHandle>, ttl: Duration, data_dir: Option<PathBuf>) -> Discovery {
    Discovery::new(
        handles,
        Vec::new(),
        Catalog::embedded(),
        opts(ttl, data_dir),
    )
}

fn q(pairs: &[(&str, &str)]) -> ModelQuery {
    ModelQuery::from_pairs(pairs.iter().copied()).expect("valid query")
}

fn keys(page: &Page<Arc<Model>>) -> Vec<(String, String)> {
    page.items
        .iter()
        .map(|m| (m.provider.clone(), m.id.clone()))
        .collect()
}

fn provider_models<'a>(snap: &'a Snapshot, name: &str) -> &'a [Arc<Model>] {
    &snap.provider(name).expect("provider state").models
}

/// A directory under the system temp dir, unique per test and process, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "modelgate-discovery-{tag}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 10 ms (virtual time under a paused clock) until it holds, for at
/// most 60 s of that clock.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every event already sent, without waiting.
fn drain(rx: &mut tokio::sync::broadcast::Receiver<ModelEvent>) -> Vec<ModelEvent> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        out.push(ev);
    }
    out
}

#[tokio::test]
async fn discovers_every_provider_and_merges_catalog_facts() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS), Duration::from_secs(300), None);
    let before = d.snapshot();
    assert!(
        before.discovered.is_empty(),
        "nothing is fetched before the first read"
    );
    assert_eq!(provider_models(&before, "openai").len(), 0);
    assert_eq!(
        before.provider("openai").unwrap().status,
        ProviderStatus::Pending
    );

    let report = d.refresh(None).await;
    assert!(report.providers_failed.is_empty(), "{report:?}");
    assert_eq!(report.providers_updated.len(), 4);

    let snap = d.snapshot();
    for (name, kind) in KINDS {
        let st = snap.provider(name).unwrap();
        assert_eq!(st.status, ProviderStatus::Active, "{name}");
        assert!(st.error.is_none());
        assert!(st.last_success.is_some());
        assert_eq!(st.kind, Some(kind));
        let listed: Vec<String> = mock.models(kind).into_iter().map(|m| m.id).collect();
        for m in st.models.iter() {
            assert_eq!(m.provider, name);
            assert_eq!(m.source, ModelSource::Discovered);
            assert!(!m.stale);
            assert!(m.updated_at.is_some());
        }
        // Every chat/LLM model the mock lists is discovered (adapters may skip a few
        // non-chat entries, never a chat one).
        let got: Vec<&str> = st.models.iter().map(|m| m.id.as_str()).collect();
        for id in &listed {
            if !id.contains("embed") {
                assert!(
                    got.contains(&id.as_str()),
                    "{name}: {id} missing from {got:?}"
                );
            }
        }
    }
    let total: usize = KINDS
        .iter()
        .map(|(n, _)| provider_models(&snap, n).len())
        .sum();
    assert_eq!(snap.discovered.len(), total);
    assert_eq!(report.models_discovered, total);

    // Catalog facts fill what the upstream does not say: Anthropic's and OpenAI's model
    // lists carry no context window or price.
    let opus = snap
        .discovered
        .get("anthropic", "claude-3-opus-20240229")
        .unwrap();
    assert_eq!(opus.context_length, Some(200_000));
    assert!(opus.input_cost.is_some_and(|c| c > 0.0), "{opus:?}");
    assert!(opus.supports_chat);
    let gpt = snap.discovered.get("openai", "gpt-4o").unwrap();
    assert_eq!(gpt.context_length, Some(128_000));
    assert!(
        gpt.input_cost.is_some() && gpt.output_cost.is_some(),
        "{gpt:?}"
    );
    assert!(gpt.has_capability(Capability::Vision), "{gpt:?}");
    // ... and the upstream's own numbers are kept where it gives them.
    let flash = snap.discovered.get("gemini", "gemini-2.0-flash").unwrap();
    assert_eq!(flash.context_length, Some(1_048_576));

    // `all` is the discovered models plus catalog models not discovered under the same
    // provider and id.
    assert!(snap.all.len() > snap.discovered.len());
    assert_eq!(
        snap.all.get("openai", "gpt-4o").unwrap().source,
        ModelSource::Discovered
    );
    let catalog_only = snap
        .all
        .iter()
        .filter(|m| m.source == ModelSource::Catalog)
        .count();
    assert_eq!(catalog_only + snap.discovered.len(), snap.all.len());
}

#[tokio::test]
async fn query_filters_search_and_sort() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS), Duration::from_secs(300), None);
    d.refresh(None).await;
    let snap = d.snapshot();
    let set = &snap.discovered;
    let all_items = |query: ModelQuery| set.query(&query).expect("query").items;

    // provider
    let page = set
        .query(&q(&[("provider", "openai,gemini"), ("limit", "1000")]))
        .unwrap();
    assert!(!page.items.is_empty());
    assert!(page
        .items
        .iter()
        .all(|m| m.provider == "openai" || m.provider == "gemini"));
    assert_eq!(
        page.pagination.total,
        provider_models(&snap, "openai").len() + provider_models(&snap, "gemini").len()
    );

    // supports_chat: embeddings drop out
    let chat = all_items(q(&[("supports_chat", "true"), ("limit", "1000")]));
    assert!(chat.iter().all(|m| m.supports_chat));
    assert!(!chat.iter().any(|m| m.id == "text-embedding-3-small"));
    assert!(chat.iter().any(|m| m.id == "claude-sonnet-4-20250514"));

    // min_context: unknown context never passes
    let big = all_items(q(&[("min_context", "1000000"), ("limit", "1000")]));
    assert!(!big.is_empty());
    assert!(big
        .iter()
        .all(|m| m.context_length.is_some_and(|c| c >= 1_000_000)));
    assert!(big.iter().any(|m| m.id == "gemini-1.5-pro"));

    // max_cost: unknown price never passes a ceiling
    let cheap = all_items(q(&[("max_cost", "0.001"), ("limit", "1000")]));
    assert!(!cheap.is_empty());
    assert!(cheap
        .iter()
        .all(|m| m.input_cost.is_some_and(|c| c <= 0.001)));
    assert!(cheap.iter().any(|m| m.id == "gpt-4o-mini"));
    assert!(!cheap.iter().any(|m| m.id == "claude-3-opus-20240229"));

    // capabilities (all of them must be present)
    let vision = all_items(q(&[
        ("capabilities", "vision,function_calling"),
        ("limit", "1000"),
    ]));
    assert!(!vision.is_empty());
    assert!(vision
        .iter()
        .all(|m| m.has_capability(Capability::Vision)
            && m.has_capability(Capability::FunctionCalling)));

    // source, over the merged set
    let disc = snap
        .all
        .query(&q(&[("source", "discovered"), ("limit", "1")]))
        .unwrap();
    assert_eq!(disc.pagination.total, set.len());
    let cat = snap
        .all
        .query(&q(&[("source", "catalog"), ("limit", "1000")]))
        .unwrap();
    assert_eq!(cat.pagination.total, snap.all.len() - set.len());
    assert!(cat.items.iter().all(|m| m.source == ModelSource::Catalog));

    // combined filters + sort
    let combo = all_items(q(&[
        ("supports_chat", "true"),
        ("min_context", "100000"),
        ("sort", "-context_length"),
        ("limit", "1000"),
    ]));
    assert!(!combo.is_empty());
    assert!(combo
        .windows(2)
        .all(|w| w[0].context_length >= w[1].context_length));

    // sort with unknowns: nulls last in both directions
    for sort in ["input_cost", "-input_cost"] {
        let sorted = all_items(q(&[("sort", sort), ("limit", "1000")]));
        let first_null = sorted
            .iter()
            .position(|m| m.input_cost.is_none())
            .unwrap_or(sorted.len());
        assert!(
            sorted[first_null..].iter().all(|m| m.input_cost.is_none()),
            "{sort}: nulls last"
        );
        let known: Vec<f64> = sorted[..first_null]
            .iter()
            .filter_map(|m| m.input_cost)
            .collect();
        let ordered = if sort.starts_with('-') {
            known.windows(2).all(|w| w[0] >= w[1])
        } else {
            known.windows(2).all(|w| w[0] <= w[1])
        };
        assert!(ordered, "{sort}: {known:?}");
    }
    let by_id = all_items(q(&[("sort", "id"), ("limit", "1000")]));
    assert!(by_id.windows(2).all(|w| w[0].id <= w[1].id));

    // search ranking over the merged set: exact id, then prefix, then substring, then
    // name/description matches.
    let class = |m: &Model, needle: &str| {
        let id = m.id.to_lowercase();
        if id == needle {
            0
        } else if id.starts_with(needle) {
            1
        } else if id.contains(needle) {
            2
        } else {
            3
        }
    };
    for needle in ["gpt-4o", "claude-3-5", "gemini-2"] {
        let hits = snap
            .all
            .query(&q(&[("q", needle), ("limit", "1000")]))
            .unwrap()
            .items;
        assert!(!hits.is_empty(), "{needle}");
        let classes: Vec<u8> = hits.iter().map(|m| class(m, needle)).collect();
        assert!(
            classes.windows(2).all(|w| w[0] <= w[1]),
            "{needle}: {classes:?}"
        );
    }
    let hits = snap
        .all
        .query(&q(&[("q", "gpt-4o"), ("limit", "1000")]))
        .unwrap()
        .items;
    assert_eq!(hits[0].id, "gpt-4o");
    assert!(hits.iter().any(|m| m.id == "gpt-4o-mini"));
    assert!(hits
        .iter()
        .any(|m| m.id.contains("gpt-4o") && !m.id.starts_with("gpt-4o")));
    // a provider-qualified id finds the bare id first
    let hits = set.query(&q(&[("q", "openai/gpt-4o")])).unwrap().items;
    assert_eq!(
        (hits[0].provider.as_str(), hits[0].id.as_str()),
        ("openai", "gpt-4o")
    );
    // search combines with filters
    let hits = set
        .query(&q(&[("q", "gpt-4o"), ("provider", "openai")]))
        .unwrap()
        .items;
    assert!(hits.iter().all(|m| m.provider == "openai"));

    // bad input is a filter error naming the parameter, not a panic
    let err = set
        .query(&q(&[("sort", "relevance")]))
        .expect_err("relevance without q");
    assert_eq!(err.parameter, "sort");
    assert!(ModelQuery::from_pairs([("min_context", "lots")]).is_err());
}

#[tokio::test]
async fn cursor_pagination_is_stable_across_a_refresh() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS), Duration::from_secs(300), None);
    d.refresh(None).await;
    let snap = d.snapshot();
    let base = [("sort", "id"), ("limit", "4")];

    // Walking every page by cursor yields every model once, in order.
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut pairs = base.to_vec();
        if let Some(c) = &cursor {
            pairs.push(("cursor", c));
        }
        let page = snap.discovered.query(&q(&pairs)).unwrap();
        walked.extend(keys(&page));
        match page.pagination.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let every = keys(
        &snap
            .discovered
            .query(&q(&[("sort", "id"), ("limit", "1000")]))
            .unwrap(),
    );
    assert_eq!(walked, every);

    // Page 1, then a refresh that adds two models before the cursor, removes one on
    // page 1 and adds one after it.
    let first = snap.discovered.query(&q(&base)).unwrap();
    let cursor = first.pagination.next_cursor.clone().unwrap();
    let last = first.items.last().unwrap().clone();
    let removed = first.items[0].clone();
    assert!(removed.id < last.id || removed.provider < last.provider);
    mock.add_model(
        ProviderKind::Openai,
        MockModel::new("aaa-added-before").created(1_700_000_000),
    );
    mock.add_model(
        ProviderKind::Openai,
        MockModel::new("aab-added-before").created(1_700_000_000),
    );
    mock.add_model(
        ProviderKind::Openai,
        MockModel::new("zzz-added-after").created(1_700_000_000),
    );
    let removed_kind = KINDS
        .iter()
        .find(|(n, _)| *n == removed.provider)
        .unwrap()
        .1;
    mock.remove_model(removed_kind, &removed.id);
    let report = d.refresh(None).await;
    assert!(report.providers_failed.is_empty(), "{report:?}");

    let snap2 = d.snapshot();
    assert!(snap2.discovered.get("openai", "aaa-added-before").is_some());
    assert!(snap2
        .discovered
        .get(&removed.provider, &removed.id)
        .is_none());
    let mut pairs = base.to_vec();
    pairs.push(("cursor", &cursor));
    let second = snap2.discovered.query(&q(&pairs)).unwrap();

    // Expected: the items that follow page 1's last item in the new order.
    let every2 = keys(
        &snap2
            .discovered
            .query(&q(&[("sort", "id"), ("limit", "1000")]))
            .unwrap(),
    );
    let pos = every2
        .iter()
        .position(|(p, id)| (id.as_str(), p.as_str()) > (last.id.as_str(), last.provider.as_str()))
        .unwrap();
    assert_eq!(keys(&second), every2[pos..pos + 4].to_vec());
    for k in keys(&first) {
        assert!(
            !keys(&second).contains(&k),
            "{k:?} repeated after a refresh"
        );
    }
    // Offsets shift under the same change (net one model added before the cursor), a
    // cursor does not.
    let by_offset = snap2
        .discovered
        .query(&q(&[("sort", "id"), ("limit", "4"), ("offset", "4")]))
        .unwrap();
    assert_ne!(keys(&by_offset), keys(&second));
    // The walk ends with the model added after the cursor.
    let mut tail = keys(&second);
    let mut next = second.pagination.next_cursor.clone();
    while let Some(c) = next {
        let mut pairs = base.to_vec();
        pairs.push(("cursor", &c));
        let page = snap2.discovered.query(&q(&pairs)).unwrap();
        tail.extend(keys(&page));
        next = page.pagination.next_cursor;
    }
    assert_eq!(tail, every2[pos..].to_vec());
    assert!(tail.iter().any(|(_, id)| id == "zzz-added-after"));
}

#[tokio::test]
async fn failing_provider_keeps_stale_models_and_others_are_unaffected() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS[..3]), Duration::from_secs(300), None);
    d.refresh(None).await;
    let good = d.snapshot();
    let anthropic_before: Vec<String> = provider_models(&good, "anthropic")
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert!(!anthropic_before.is_empty());

    mock.fail_next(ProviderKind::Anthropic, 1, 500);
    let report = d.refresh(None).await;
    assert_eq!(
        report.providers_failed.keys().collect::<Vec<_>>(),
        ["anthropic"]
    );
    assert_eq!(report.providers_updated.len(), 2);

    let snap = d.snapshot();
    let st = snap.provider("anthropic").unwrap();
    assert_eq!(st.status, ProviderStatus::Error);
    let error = st.error.clone().unwrap();
    assert!(!error.is_empty());
    assert!(!error.contains(MockUpstream::API_KEY), "{error}");
    let ids: Vec<String> = st.models.iter().map(|m| m.id.clone()).collect();
    assert_eq!(ids, anthropic_before, "last good list kept");
    assert!(st.models.iter().all(|m| m.stale));
    // Still listed through queries, marked stale.
    let page = snap
        .discovered
        .query(&q(&[("provider", "anthropic")]))
        .unwrap();
    assert_eq!(page.items.len(), anthropic_before.len());
    assert!(page.items.iter().all(|m| m.stale));
    for name in ["openai", "gemini"] {
        let st = snap.provider(name).unwrap();
        assert_eq!(st.status, ProviderStatus::Active, "{name}");
        assert!(st.models.iter().all(|m| !m.stale), "{name}");
        assert_eq!(st.models.len(), provider_models(&good, name).len());
    }

    // Recovery clears the stale marks.
    let report = d.refresh(Some(&["anthropic".to_owned()])).await;
    assert!(report.providers_failed.is_empty());
    let snap = d.snapshot();
    assert_eq!(
        snap.provider("anthropic").unwrap().status,
        ProviderStatus::Active
    );
    assert!(provider_models(&snap, "anthropic").iter().all(|m| !m.stale));
}

#[tokio::test]
async fn rejected_key_is_redacted_and_isolated() {
    let mock = MockUpstream::start().await;
    // A key shaped like a real one, which the upstream's error body echoes (masked).
    let secret = "sk-proj-TOPSECRET0123456789abcdefXYZ";
    let d = discovery(
        vec![
            handle_with_key(&mock, "openai", ProviderKind::Openai, secret),
            handle(&mock, "gemini", ProviderKind::Gemini),
            handle_with_key(&mock, "anthropic", ProviderKind::Anthropic, secret),
        ],
        Duration::from_secs(300),
        None,
    );
    let report = d.refresh(None).await;
    assert_eq!(report.providers_failed.len(), 2, "{report:?}");
    let snap = d.snapshot();
    for name in ["openai", "anthropic"] {
        let st = snap.provider(name).unwrap();
        assert_eq!(st.status, ProviderStatus::Error);
        assert!(st.models.is_empty());
        let error = st.error.clone().unwrap();
        assert!(
            !error.contains(secret) && !error.contains("TOPSECRET"),
            "{name}: {error}"
        );
        assert!(!report.providers_failed[name].contains("TOPSECRET"));
    }
    assert_eq!(
        snap.provider("gemini").unwrap().status,
        ProviderStatus::Active
    );
    assert!(!provider_models(&snap, "gemini").is_empty());
}

#[tokio::test(start_paused = true)]
async fn restart_serves_the_persisted_list_at_once_while_providers_are_down() {
    let dir = TempDir::new("restart");
    let mock = MockUpstream::start().await;
    let first = discovery(
        handles(&mock, &KINDS[..3]),
        Duration::from_secs(300),
        Some(dir.path().into()),
    );
    let report = first.refresh(None).await;
    assert!(report.providers_failed.is_empty(), "{report:?}");
    let before: Vec<(String, String)> = first
        .snapshot()
        .discovered
        .iter()
        .map(|m| (m.provider.clone(), m.id.clone()))
        .collect();
    assert!(dir.path().join("models.json").is_file());
    drop(first);

    // Every provider is down (accepts, never answers).
    for (_, kind) in &KINDS[..3] {
        mock.set_hang(*kind, true);
    }
    let second = discovery(
        handles(&mock, &KINDS[..3]),
        Duration::from_secs(300),
        Some(dir.path().into()),
    );
    let snap = second.snapshot();
    let after: Vec<(String, String)> = snap
        .discovered
        .iter()
        .map(|m| (m.provider.clone(), m.id.clone()))
        .collect();
    assert_eq!(after, before, "persisted list loaded at construction");
    assert!(
        snap.discovered.iter().all(|m| m.stale),
        "unconfirmed since restart: stale"
    );
    assert!(snap
        .discovered
        .iter()
        .all(|m| m.source == ModelSource::Discovered));

    // A read is served at once: the virtual clock does not move while it runs, so it
    // did not wait for a hung upstream.
    let t0 = tokio::time::Instant::now();
    let hit = second.ensure_fresh(None, false).await;
    assert_eq!(tokio::time::Instant::now(), t0);
    assert!(hit);
    assert_eq!(second.snapshot().discovered.len(), before.len());

    // The background revalidation times out; the persisted models stay, stale.
    wait_until("background refreshes to fail", || {
        let s = second.snapshot();
        ["openai", "anthropic", "gemini"]
            .iter()
            .all(|n| s.provider(n).unwrap().status == ProviderStatus::Error)
    })
    .await;
    let snap = second.snapshot();
    assert_eq!(snap.discovered.len(), before.len());
    assert!(snap.discovered.iter().all(|m| m.stale));
    assert!(snap
        .provider("openai")
        .unwrap()
        .error
        .as_deref()
        .unwrap()
        .contains("timed out"));

    // Back up: fresh again, and persisted again.
    for (_, kind) in &KINDS[..3] {
        mock.set_hang(*kind, false);
    }
    let report = second.refresh(None).await;
    assert!(report.providers_failed.is_empty(), "{report:?}");
    assert!(second.snapshot().discovered.iter().all(|m| !m.stale));
}

#[tokio::test]
async fn corrupt_persisted_file_starts_empty() {
    let dir = TempDir::new("corrupt");
    std::fs::write(dir.path().join("models.json"), b"{not json").unwrap();
    let mock = MockUpstream::start().await;
    let d = discovery(
        handles(&mock, &KINDS[..1]),
        Duration::from_secs(300),
        Some(dir.path().into()),
    );
    assert!(d.snapshot().discovered.is_empty());
    assert!(
        !d.ensure_fresh(None, false).await,
        "no data: a synchronous refresh"
    );
    assert!(!d.snapshot().discovered.is_empty());
    // The refresh replaced the corrupt file with a valid snapshot.
    let again = discovery(
        handles(&mock, &KINDS[..1]),
        Duration::from_secs(300),
        Some(dir.path().into()),
    );
    assert_eq!(
        again.snapshot().discovered.len(),
        d.snapshot().discovered.len()
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_reads_of_an_expired_entry_make_one_upstream_call() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS[..1]), Duration::from_secs(60), None);
    d.refresh(None).await;
    let calls_before = mock.hits(ProviderKind::Openai);
    assert_eq!(calls_before, 1);

    tokio::time::advance(Duration::from_secs(61)).await;
    mock.set_latency(ProviderKind::Openai, Duration::from_millis(500));
    let version = d.snapshot().version;
    let reads = (0..100).map(|_| {
        let d = d.clone();
        tokio::spawn(async move { d.ensure_fresh(None, false).await })
    });
    for r in futures_util::future::join_all(reads).await {
        assert!(r.unwrap(), "an expired entry is still a hit");
    }
    wait_until("the background refresh", || d.snapshot().version > version).await;
    assert_eq!(mock.hits(ProviderKind::Openai) - calls_before, 1);
    let stats = d.cache_stats();
    assert_eq!(stats.providers["openai"].hits, 100);
}

#[tokio::test(start_paused = true)]
async fn concurrent_first_reads_make_one_upstream_call() {
    let mock = MockUpstream::start().await;
    mock.set_latency(ProviderKind::Openai, Duration::from_millis(500));
    mock.set_latency(ProviderKind::Gemini, Duration::from_millis(300));
    let d = discovery(
        handles(&mock, &[KINDS[0], KINDS[2]]),
        Duration::from_secs(60),
        None,
    );
    let reads = (0..100).map(|_| {
        let d = d.clone();
        tokio::spawn(async move { d.ensure_fresh(None, false).await })
    });
    for r in futures_util::future::join_all(reads).await {
        r.unwrap();
    }
    assert_eq!(mock.hits(ProviderKind::Openai), 1);
    assert_eq!(mock.hits(ProviderKind::Gemini), 1);
    assert!(!d.snapshot().discovered.is_empty());
    // Now fresh: more reads are hits with no upstream call.
    assert!(d.ensure_fresh(None, false).await);
    assert_eq!(mock.hits(ProviderKind::Openai), 1);
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_serves_at_once_and_refreshes_once() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS[..2]), Duration::from_secs(60), None);
    d.refresh(None).await;
    let calls = mock.hits(ProviderKind::Openai);

    // Fresh: a hit, no call.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(d.ensure_fresh(None, false).await);
    tokio::task::yield_now().await;
    assert_eq!(mock.hits(ProviderKind::Openai), calls);

    // Expired: still a hit, served before the (slow) upstream answers.
    mock.add_model(ProviderKind::Openai, MockModel::new("gpt-swr-new"));
    mock.set_latency(ProviderKind::Openai, Duration::from_secs(2));
    tokio::time::advance(Duration::from_secs(31)).await;
    let t0 = tokio::time::Instant::now();
    assert!(d.ensure_fresh(Some(&["openai".to_owned()]), false).await);
    assert_eq!(tokio::time::Instant::now(), t0, "served without waiting");
    assert!(
        d.snapshot()
            .discovered
            .get("openai", "gpt-swr-new")
            .is_none(),
        "old list served"
    );
    assert!(d.ensure_fresh(Some(&["openai".to_owned()]), false).await);

    wait_until("the revalidated list", || {
        d.snapshot()
            .discovered
            .get("openai", "gpt-swr-new")
            .is_some()
    })
    .await;
    assert_eq!(
        mock.hits(ProviderKind::Openai) - calls,
        1,
        "one background refresh"
    );
    // Anthropic was not selected, so it was not revalidated.
    assert_eq!(mock.hits(ProviderKind::Anthropic), 1);
    // Fresh again: no more calls.
    assert!(d.ensure_fresh(Some(&["openai".to_owned()]), false).await);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(mock.hits(ProviderKind::Openai) - calls, 1);
}

#[tokio::test]
async fn events_for_added_removed_models_and_status_changes() {
    let mock = MockUpstream::start().await;
    let d = discovery(handles(&mock, &KINDS[..3]), Duration::from_secs(300), None);
    let mut rx = d.subscribe();
    d.refresh(None).await;
    let initial = drain(&mut rx);
    let became_active: Vec<&str> = initial
        .iter()
        .filter_map(|e| match e {
            ModelEvent::ProviderStatusChanged {
                provider,
                status,
                previous_status,
                ..
            } => {
                assert_eq!(status, "active");
                assert_eq!(previous_status.as_deref(), Some("pending"));
                Some(provider.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(became_active.len(), 3);
    let added = initial.iter().filter(|e| e.kind() == "model_added").count();
    assert_eq!(added, d.snapshot().discovered.len());

    // Unchanged refresh: no events.
    d.refresh(None).await;
    assert!(drain(&mut rx).is_empty());

    // Added.
    mock.add_model(
        ProviderKind::Openai,
        MockModel::new("gpt-event-test").created(1_750_000_000),
    );
    d.refresh(None).await;
    let evs = drain(&mut rx);
    assert_eq!(evs.len(), 1, "{evs:?}");
    match &evs[0] {
        ModelEvent::ModelAdded { model, timestamp } => {
            assert_eq!(
                (model.provider.as_str(), model.id.as_str()),
                ("openai", "gpt-event-test")
            );
            assert!(!timestamp.is_empty());
        }
        other => panic!("expected model_added, got {other:?}"),
    }

    // Removed.
    mock.remove_model(ProviderKind::Gemini, "gemini-1.5-flash");
    d.refresh(None).await;
    let evs = drain(&mut rx);
    assert_eq!(evs.len(), 1, "{evs:?}");
    match &evs[0] {
        ModelEvent::ModelRemoved { model, .. } => {
            assert_eq!(
                (model.provider.as_str(), model.id.as_str()),
                ("gemini", "gemini-1.5-flash")
            );
        }
        other => panic!("expected model_removed, got {other:?}"),
    }

    // A failing provider: one status change (not one per failed refresh), and no
    // removals (its models are kept, stale).
    mock.fail_next(ProviderKind::Anthropic, 2, 503);
    d.refresh(None).await;
    d.refresh(None).await;
    let evs = drain(&mut rx);
    assert_eq!(evs.len(), 1, "{evs:?}");
    match &evs[0] {
        ModelEvent::ProviderStatusChanged {
            provider,
            status,
            previous_status,
            error,
            ..
        } => {
            assert_eq!(provider, "anthropic");
            assert_eq!(status, "error");
            assert_eq!(previous_status.as_deref(), Some("active"));
            let error = error.as_deref().unwrap();
            assert!(!error.contains(MockUpstream::API_KEY), "{error}");
        }
        other => panic!("expected provider_status_changed, got {other:?}"),
    }
    assert_eq!(evs[0].provider(), "anthropic");

    // Recovery: back to active, still no model events (same facts).
    d.refresh(None).await;
    let evs = drain(&mut rx);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(matches!(
        &evs[0],
        ModelEvent::ProviderStatusChanged { status, previous_status, .. }
            if status == "active" && previous_status.as_deref() == Some("error")
    ));
}

#[tokio::test]
async fn a_replaced_adapter_cannot_overwrite_its_successor() {
    // A config reload replaces provider `p` (OpenAI wire format) by a new adapter
    // (Anthropic) while the old one's refresh is still in flight; when the old refresh
    // finally answers, its models must not replace the new adapter's.
    let mock = MockUpstream::start().await;
    let d = discovery(
        vec![handle(&mock, "p", ProviderKind::Openai)],
        Duration::from_secs(300),
        None,
    );
    mock.set_latency(ProviderKind::Openai, Duration::from_millis(300));
    let old = {
        let d = d.clone();
        tokio::spawn(async move { d.refresh(None).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while mock.requests(ProviderKind::Openai).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "old refresh never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    d.replace_providers(
        vec![handle(&mock, "p", ProviderKind::Anthropic)],
        Vec::new(),
    );
    d.refresh(None).await;
    old.await.unwrap();

    let snap = d.snapshot();
    let ids: Vec<String> = snap.discovered.iter().map(|m| m.id.clone()).collect();
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|id| id.starts_with("claude")), "{ids:?}");
    let st = snap.provider("p").unwrap();
    assert_eq!(st.kind, Some(ProviderKind::Anthropic));
    assert_eq!(st.status, ProviderStatus::Active);
    // And reads keep serving the new adapter's list (its freshness entry is intact).
    assert!(d.ensure_fresh(None, false).await);
    assert!(d
        .snapshot()
        .discovered
        .iter()
        .all(|m| m.id.starts_with("claude")));
}
