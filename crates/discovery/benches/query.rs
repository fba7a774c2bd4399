//! Benchmarks: search, filter, sort and paginate over the embedded catalog (5,276 models,
//! the set a gateway with no provider serves), plus per-query latency percentiles from an
//! HDR histogram of individually timed queries (criterion reports means with confidence
//! intervals; the target of issue 4 is a p99). Run with
//! `cargo bench -p modelgate-discovery --bench query` (or `cargo xtask bench criterion`).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // bench code: a failure should panic

use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, Criterion};
use hdrhistogram::Histogram;
use modelgate_catalog::Catalog;
use modelgate_discovery::ModelSet;
use modelgate_types::ModelQuery;

/// The queries measured, as the query-string pairs a client would send. `@cursor` is
/// replaced by the `next_cursor` of the same query's first page.
const QUERIES: &[(&str, &[(&str, &str)])] = &[
    ("list_default_page", &[]),
    (
        "list_1000_sorted_created_desc",
        &[("limit", "1000"), ("sort", "-created_at")],
    ),
    ("search_gpt", &[("q", "gpt")]),
    (
        "search_claude_provider_anthropic",
        &[("q", "claude"), ("provider", "anthropic")],
    ),
    (
        "search_multiword_open_weights",
        &[("q", "llama instruct"), ("supports_chat", "true")],
    ),
    (
        "filters_chat_ctx128k_cost_vision_tools_sort_ctx",
        &[
            ("supports_chat", "true"),
            ("min_context", "128000"),
            ("max_cost", "0.005"),
            ("capabilities", "vision,function_calling"),
            ("sort", "-context_length"),
        ],
    ),
    (
        "search_sonnet_tool_use_sort_input_cost",
        &[
            ("q", "sonnet"),
            ("capabilities", "tool_use"),
            ("sort", "input_cost"),
        ],
    ),
    (
        "cursor_page2_sort_context_length",
        &[
            ("sort", "context_length"),
            ("limit", "100"),
            ("cursor", "@cursor"),
        ],
    ),
    ("search_no_match", &[("q", "zzzz-no-such-model")]),
];

fn catalog_set() -> ModelSet {
    // Exactly how the engine builds its catalog set (engine.rs).
    let catalog = Catalog::embedded();
    ModelSet::new(catalog.all_models().into_iter().map(Arc::new))
}

/// Parses each query, resolving `@cursor` against the set.
fn parsed(set: &ModelSet) -> Vec<(&'static str, ModelQuery)> {
    QUERIES
        .iter()
        .map(|(name, pairs)| {
            let first: Vec<(&str, &str)> = pairs
                .iter()
                .copied()
                .filter(|(k, _)| *k != "cursor")
                .collect();
            let q = if pairs.iter().any(|(_, v)| *v == "@cursor") {
                let page1 = set
                    .query(&ModelQuery::from_pairs(first.iter().copied()).expect("query"))
                    .expect("page 1");
                let cursor = page1.pagination.next_cursor.expect("a second page");
                let mut with = first.clone();
                with.push(("cursor", cursor.as_str()));
                ModelQuery::from_pairs(with.iter().copied()).expect("cursor query")
            } else {
                ModelQuery::from_pairs(first.iter().copied()).expect("query")
            };
            (*name, q)
        })
        .collect()
}

fn bench_queries(c: &mut Criterion, set: &ModelSet, queries: &[(&'static str, ModelQuery)]) {
    let mut group = c.benchmark_group(format!("query_{}_models", set.len()));
    for (name, q) in queries {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(set.query(black_box(q)).expect("query").pagination.total))
        });
    }
    // Parsing the query string is part of every request too.
    let (_, pairs) = QUERIES[5];
    group.bench_function("parse_and_filter (filters_chat_ctx128k...)", |b| {
        b.iter(|| {
            let q = ModelQuery::from_pairs(black_box(pairs).iter().copied()).expect("parse");
            black_box(set.query(&q).expect("query").pagination.total)
        })
    });
    group.finish();
}

/// Times `per_query` individual executions of every query (interleaved, so a burst of
/// noise from another process spreads over all of them) and prints p50/p99/max per query
/// and over the mix, in microseconds.
fn hdr_report(set: &ModelSet, queries: &[(&'static str, ModelQuery)], per_query: usize) {
    let new_hist = || Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("bounds");
    let mut per: Vec<Histogram<u64>> = queries.iter().map(|_| new_hist()).collect();
    let mut mix = new_hist();
    // Warm up caches and the allocator.
    for (_, q) in queries {
        for _ in 0..10 {
            black_box(set.query(q).expect("query"));
        }
    }
    for _ in 0..per_query {
        for (i, (_, q)) in queries.iter().enumerate() {
            let t = Instant::now();
            let page = set.query(black_box(q)).expect("query");
            let ns = t.elapsed().as_nanos() as u64;
            black_box(page);
            per[i].saturating_record(ns);
            mix.saturating_record(ns);
        }
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    println!(
        "\nPer-query latency over {} models ({per_query} individually timed runs per query, HDR histogram):",
        set.len()
    );
    for (i, (name, q)) in queries.iter().enumerate() {
        let h = &per[i];
        let total = set.query(q).expect("query").pagination.total;
        println!(
            "BENCH discovery.query.{name} matches={total} p50_us={:.1} p99_us={:.1} max_us={:.1} n={}",
            us(h.value_at_quantile(0.50)),
            us(h.value_at_quantile(0.99)),
            us(h.max()),
            h.len()
        );
    }
    println!(
        "BENCH discovery.query.mix p50_us={:.1} p99_us={:.1} p999_us={:.1} max_us={:.1} n={} (target: p99 < 1000 us)",
        us(mix.value_at_quantile(0.50)),
        us(mix.value_at_quantile(0.99)),
        us(mix.value_at_quantile(0.999)),
        us(mix.max()),
        mix.len()
    );
}

fn main() {
    let set = catalog_set();
    let queries = parsed(&set);
    let mut c = Criterion::default().configure_from_args();
    bench_queries(&mut c, &set, &queries);
    c.final_summary();
    // `cargo test --all-targets` runs this binary without `--bench`: keep that quick.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    hdr_report(&set, &queries, if bench_mode { 2_000 } else { 1 });
}
