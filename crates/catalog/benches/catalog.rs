//! Benchmarks: the catalog's cost at startup — what `Catalog::embedded()` does once per
//! process (gunzip + parse + index of the compiled-in snapshot), the parse + index step
//! alone (what `catalog.url` pays for a fetched document) — and lookups.
//!
//! Run: `cargo bench -p modelgate-catalog --bench catalog` (criterion; reports land in
//! `target/criterion/`). One group: `cargo bench -p modelgate-catalog --bench catalog -- load`.

use std::io::Read;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use modelgate_catalog::Catalog;
use modelgate_types::ProviderKind;

/// The same bytes the crate embeds.
const SNAPSHOT_GZ: &[u8] = include_bytes!("../data/models.dev.json.gz");

fn load(c: &mut Criterion) {
    c.bench_function("load_embedded (gunzip + parse + index)", |b| {
        b.iter(|| Catalog::load_embedded().map(|c| black_box(c.model_count())))
    });
    let mut json = Vec::new();
    let decoded = flate2::read::GzDecoder::new(SNAPSHOT_GZ).read_to_end(&mut json);
    if decoded.is_ok() {
        c.bench_function("from_json (parse + index, already decompressed)", |b| {
            b.iter(|| Catalog::from_json(black_box(&json)).map(|c| black_box(c.model_count())))
        });
    }
}

fn lookup(c: &mut Criterion) {
    let catalog = Catalog::embedded();
    let cases: &[(ProviderKind, &str)] = &[
        (ProviderKind::Openai, "gpt-4o"),
        (ProviderKind::Openai, "gpt-4o-2024-08-06"),
        (ProviderKind::Anthropic, "claude-3-5-sonnet-latest"),
        (ProviderKind::Gemini, "models/gemini-2.5-pro"),
        (ProviderKind::Openrouter, "anthropic/claude-3.5-sonnet"),
        (ProviderKind::Ollama, "llama3.2:3b"),
        (
            ProviderKind::OpenaiCompatible,
            "anthropic.claude-3-haiku-20240307-v1:0",
        ),
        (ProviderKind::Openai, "gpt-unknown-9000"),
    ];
    c.bench_function("lookup (mixed 8 ids)", |b| {
        b.iter(|| {
            for (kind, id) in cases {
                black_box(catalog.lookup(*kind, black_box(id)).is_some());
            }
        })
    });
    c.bench_function("lookup exact (openai gpt-4o)", |b| {
        b.iter(|| {
            black_box(
                catalog
                    .lookup(ProviderKind::Openai, black_box("gpt-4o"))
                    .is_some(),
            )
        })
    });
    c.bench_function("lookup miss (openai gpt-unknown-9000)", |b| {
        b.iter(|| {
            black_box(
                catalog
                    .lookup(ProviderKind::Openai, black_box("gpt-unknown-9000"))
                    .is_some(),
            )
        })
    });
    c.bench_function("all_models (5,276 conversions)", |b| {
        b.iter(|| black_box(catalog.all_models().len()))
    });
}

criterion_group!(benches, load, lookup);
criterion_main!(benches);
