//! Benchmarks: condensing a ~100k-token conversation with each local strategy, and
//! tokenizer throughput. Run with `cargo bench -p modelgate-condense`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should panic

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modelgate_condense::{condense_messages, LocalOptions, Strategy, TokenCounter, TokenizerKind};
use modelgate_types::chat::{ChatMessage, Role};

const VOCAB: &str = "the gateway routes requests to providers while the cache keeps model lists fresh \
    latency budgets matter because users notice slow answers and retries add jitter to every call \
    circuit breakers open after failures so a broken upstream cannot drag the whole service down \
    tokens are counted with byte pair encoding which merges frequent pairs into single symbols \
    Lisbon trams climb steep hills past tiled facades cafes bakeries and viewpoints over the river \
    engineers measure throughput p95 p99 error rates memory and allocations before they optimise \
    configuration lives in YAML files environment variables override them and validation rejects typos \
    summaries keep decisions names numbers and open questions so the assistant can continue the work";

/// A deterministic conversation of about `target` o200k tokens: varied sentences from a
/// small vocabulary, chosen by a linear congruential generator.
fn conversation(target: usize) -> Vec<ChatMessage> {
    let words: Vec<&str> = VOCAB.split_whitespace().collect();
    let counter = TokenCounter::new(TokenizerKind::O200kBase).expect("counter");
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) as usize) % n
    };
    let mut messages = vec![ChatMessage::new(
        Role::System,
        "You are a helpful assistant.",
    )];
    let mut total = 0;
    let mut turn = 0;
    while total < target {
        let mut text = String::new();
        for _ in 0..(3 + next(20)) {
            let len = 6 + next(18);
            for w in 0..len {
                if w > 0 {
                    text.push(' ');
                }
                text.push_str(words[next(words.len())]);
            }
            text.push_str(if next(5) == 0 { "?\n" } else { ". " });
            if next(7) == 0 {
                text.push_str(&format!("Value {} is {}. ", next(10_000), next(1_000_000)));
            }
        }
        let role = if turn % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        let m = ChatMessage::new(role, text);
        total += counter.count_message(&m);
        messages.push(m);
        turn += 1;
    }
    messages
}

fn bench(c: &mut Criterion) {
    let messages = conversation(100_000);
    let counter = TokenCounter::new(TokenizerKind::O200kBase).expect("counter");
    let total = counter.count_messages(&messages);
    println!(
        "BENCH condense.conversation messages={} o200k_tokens={total} budget=8000 (targets: truncate and middle_out < 20 ms, extractive < 100 ms)",
        messages.len()
    );
    let options = LocalOptions::default();

    let mut group = c.benchmark_group("condense_100k_tokens_to_8k");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for strategy in [
        Strategy::Truncate,
        Strategy::MiddleOut,
        Strategy::Extractive,
    ] {
        group.bench_function(strategy.as_str(), |b| {
            b.iter(|| {
                let r = condense_messages(&messages, 8_000, &counter, strategy, &options)
                    .expect("condense");
                assert!(r.condensed_tokens <= 8_000);
                r
            })
        });
    }
    group.finish();

    let text: String = messages
        .iter()
        .map(ChatMessage::text)
        .collect::<Vec<_>>()
        .join("\n");
    let mut group = c.benchmark_group("tokenizer");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4));
    for kind in [TokenizerKind::O200kBase, TokenizerKind::Cl100kBase] {
        let counter = TokenCounter::new(kind).expect("counter");
        let tokens = counter.count_text(&text);
        group.throughput(Throughput::Elements(tokens as u64));
        group.bench_function(format!("{}_count_text_single_thread", kind.as_str()), |b| {
            b.iter(|| counter.count_text(&text))
        });
        group.bench_function(format!("{}_count_messages", kind.as_str()), |b| {
            b.iter(|| counter.count_messages(&messages))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
