//! Token counts against published tiktoken fixtures, and tokenizer selection by model.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should panic

use modelgate_condense::{TokenCounter, TokenizerKind};
use modelgate_types::chat::{ChatMessage, Role};

fn cl100k() -> TokenCounter {
    TokenCounter::new(TokenizerKind::Cl100kBase).expect("cl100k")
}

fn o200k() -> TokenCounter {
    TokenCounter::new(TokenizerKind::O200kBase).expect("o200k")
}

/// Token ids published in the OpenAI Cookbook, "How to count tokens with tiktoken"
/// (examples/How_to_count_tokens_with_tiktoken.ipynb): `encoding.encode(...)` and the
/// `compare_encodings` outputs for cl100k_base.
#[test]
fn cl100k_matches_published_token_ids() {
    let c = cl100k();
    let cases: [(&str, &[u32]); 5] = [
        ("hello world", &[15339, 1917]),
        ("tiktoken is great!", &[83, 1609, 5963, 374, 2294, 0]),
        (
            "antidisestablishmentarianism",
            &[519, 85342, 34500, 479, 8997, 2191],
        ),
        ("2 + 2 = 4", &[17, 489, 220, 17, 284, 220, 19]),
        (
            "お誕生日おめでとう",
            &[33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699],
        ),
    ];
    for (text, ids) in cases {
        assert_eq!(c.encode(text), ids, "{text}");
        assert_eq!(c.count_text(text), ids.len(), "{text}");
    }
}

/// o200k_base counts from the same cookbook's `compare_encodings` (which lists o200k_base
/// since the gpt-4o update), with the ids of "2 + 2 = 4".
#[test]
fn o200k_matches_published_counts() {
    let c = o200k();
    assert_eq!(c.encode("2 + 2 = 4"), [17, 659, 220, 17, 314, 220, 19]);
    assert_eq!(c.count_text("antidisestablishmentarianism"), 6);
    assert_eq!(c.count_text("お誕生日おめでとう"), 8);
    assert_eq!(c.count_text("hello world"), 2);
    assert_eq!(c.count_text(""), 0);
}

fn named(role: Role, name: &str, content: &str) -> ChatMessage {
    let mut m = ChatMessage::new(role, content);
    m.name = Some(name.to_owned());
    m
}

/// The cookbook's `example_messages` and the prompt token counts it reports (identical to
/// what the OpenAI API returned): 129 for gpt-3.5-turbo / gpt-4, 124 for gpt-4o / gpt-4o-mini.
#[test]
fn message_overhead_matches_cookbook_example() {
    let messages = vec![
        ChatMessage::new(
            Role::System,
            "You are a helpful, pattern-following assistant that translates corporate jargon into plain English.",
        ),
        named(Role::System, "example_user", "New synergies will help drive top-line growth."),
        named(Role::System, "example_assistant", "Things working well together will increase revenue."),
        named(
            Role::System,
            "example_user",
            "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
        ),
        named(
            Role::System,
            "example_assistant",
            "Let's talk later when we're less busy about how to do better.",
        ),
        ChatMessage::new(
            Role::User,
            "This late pivot means we don't have time to boil the ocean for the client deliverable.",
        ),
    ];
    for model in ["gpt-3.5-turbo", "gpt-4-0613", "gpt-4"] {
        let c = TokenCounter::for_model(Some(model)).expect("counter");
        assert_eq!(c.kind(), TokenizerKind::Cl100kBase, "{model}");
        assert_eq!(c.count_messages(&messages), 129, "{model}");
    }
    for model in ["gpt-4o", "gpt-4o-mini"] {
        let c = TokenCounter::for_model(Some(model)).expect("counter");
        assert_eq!(c.kind(), TokenizerKind::O200kBase, "{model}");
        assert_eq!(c.count_messages(&messages), 124, "{model}");
    }
}

#[test]
fn tokenizer_selection_by_model_family() {
    let cases = [
        ("gpt-4o", "o200k_base"),
        ("openai/gpt-4o-2024-08-06", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("gpt-4.1-mini", "o200k_base"),
        ("GPT-5", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("o4-mini-2025-04-16", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("claude-3-5-sonnet-20241022", "approx_cl100k"),
        ("anthropic/claude-3-haiku", "approx_cl100k"),
        ("gemini-1.5-pro", "approx_cl100k"),
        ("llama3.1:8b", "approx_cl100k"),
        ("mistral-large-latest", "approx_cl100k"),
        ("o1x-custom", "approx_cl100k"),
    ];
    for (model, want) in cases {
        assert_eq!(
            TokenizerKind::for_model(Some(model)).as_str(),
            want,
            "{model}"
        );
    }
    assert_eq!(TokenizerKind::for_model(None), TokenizerKind::Cl100kBase);
    assert_eq!(
        serde_json::to_value(TokenizerKind::ApproxCl100k).expect("json"),
        "approx_cl100k"
    );
}

#[test]
fn approximation_is_deterministic_and_counts_like_cl100k() {
    let approx = TokenCounter::for_model(Some("claude-3-opus")).expect("counter");
    assert_eq!(approx.kind(), TokenizerKind::ApproxCl100k);
    assert!(!approx.kind().is_exact());
    assert_eq!(approx.count_text("hello world"), 2);
}

#[test]
fn parallel_counting_equals_sequential() {
    // Above the parallel threshold (128 KiB of text).
    let messages: Vec<ChatMessage> = (0..200)
        .map(|i| {
            ChatMessage::new(
                if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                format!("Message {i}: ").repeat(120),
            )
        })
        .collect();
    let c = cl100k();
    let parallel = c.message_costs(&messages);
    let sequential: Vec<_> = messages.iter().map(|m| c.message_cost(m)).collect();
    assert_eq!(parallel, sequential);
}
