//! The local strategies: snapshots on a fixed conversation, the shared rules, and the
//! fits-the-budget property over random conversations.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should panic

use expect_test::{expect, Expect};
use modelgate_condense::{
    condense_messages, minimum_budget, CondenseError, LocalOptions, Strategy, TokenCounter,
    TokenizerKind,
};
use modelgate_types::chat::{ChatMessage, FunctionCall, Role, ToolCall};
use proptest::prelude::*;
use proptest::strategy::Strategy as _;
use proptest::test_runner::{Config, RngSeed};

fn msg(role: Role, text: &str) -> ChatMessage {
    ChatMessage::new(role, text)
}

fn conversation() -> Vec<ChatMessage> {
    vec![
        msg(Role::System, "You are a concise travel assistant."),
        msg(Role::User, "I am planning a trip to Lisbon in May. I like seafood and old trams. My budget is 1500 euros."),
        msg(Role::Assistant, "Lisbon in May is warm and sunny. Tram 28 crosses the Alfama district. Try grilled sardines in Alfama. Budget about 100 euros a day for food and transport."),
        msg(Role::User, "What about day trips? I do not want to rent a car."),
        msg(Role::Assistant, "Sintra is 40 minutes by train from Rossio station. Cascais has beaches and is reachable by train from Cais do Sodré. Both trips cost under 10 euros return."),
        msg(Role::User, "Great. Which neighbourhood should I stay in?"),
        msg(Role::Assistant, "Stay in Baixa or Chiado for central access. Alfama is charming but hilly. Príncipe Real is quiet and elegant."),
        msg(Role::User, "Please make me a three day itinerary with the trams and one day trip."),
    ]
}

fn render(c: &modelgate_condense::Condensed) -> String {
    let mut out = format!(
        "{} -> {} tokens ({}, {})\n",
        c.original_tokens, c.condensed_tokens, c.strategy_used, c.tokenizer
    );
    for m in &c.messages {
        out.push_str(&format!("{}: {}\n", m.role.as_str(), m.text()));
    }
    out
}

fn check(strategy: Strategy, budget: usize, expect: Expect) {
    let counter = TokenCounter::new(TokenizerKind::Cl100kBase).expect("counter");
    let messages = conversation();
    let c = condense_messages(
        &messages,
        budget,
        &counter,
        strategy,
        &LocalOptions::default(),
    )
    .expect("condense");
    assert!(c.condensed_tokens <= budget);
    assert_eq!(counter.count_messages(&c.messages), c.condensed_tokens);
    expect.assert_eq(&render(&c));
}

#[test]
fn truncate_snapshot() {
    check(
        Strategy::Truncate,
        120,
        expect![[r#"
            217 -> 80 tokens (truncate, cl100k_base)
            system: You are a concise travel assistant.
            user: Great. Which neighbourhood should I stay in?
            assistant: Stay in Baixa or Chiado for central access. Alfama is charming but hilly. Príncipe Real is quiet and elegant.
            user: Please make me a three day itinerary with the trams and one day trip.
        "#]],
    );
}

#[test]
fn middle_out_snapshot() {
    check(
        Strategy::MiddleOut,
        160,
        expect![[r#"
            217 -> 134 tokens (middle_out, cl100k_base)
            system: You are a concise travel assistant.
            user: I am planning a trip to Lisbon in May. I like seafood and old trams. My budget is 1500 euros.
            system: [modelgate middle-out: 3 messages (107 tokens) omitted here to fit the token budget]
            user: Great. Which neighbourhood should I stay in?
            assistant: Stay in Baixa or Chiado for central access. Alfama is charming but hilly. Príncipe Real is quiet and elegant.
            user: Please make me a three day itinerary with the trams and one day trip.
        "#]],
    );
}

#[test]
fn extractive_snapshot() {
    check(
        Strategy::Extractive,
        150,
        expect![[r#"
            217 -> 134 tokens (extractive, cl100k_base)
            system: You are a concise travel assistant.
            user: I am planning a trip to Lisbon in May. I like seafood and old trams. My budget is 1500 euros.
            assistant: Sintra is 40 minutes by train from Rossio station. Cascais has beaches and is reachable by train from Cais do Sodré. Both trips cost under 10 euros return.
            assistant: Stay in Baixa or Chiado for central access. … Príncipe Real is quiet and elegant.
            user: Please make me a three day itinerary with the trams and one day trip.
        "#]],
    );
}

#[test]
fn oversize_single_message_is_cut_at_a_token_boundary() {
    let counter = TokenCounter::new(TokenizerKind::O200kBase).expect("counter");
    let long = "Zürich café ☕ naïve façade — ".repeat(40) + "THE END";
    let messages = vec![msg(Role::System, "Be brief."), msg(Role::User, &long)];
    for strategy in [
        Strategy::Truncate,
        Strategy::MiddleOut,
        Strategy::Extractive,
    ] {
        let c = condense_messages(&messages, 40, &counter, strategy, &LocalOptions::default())
            .expect("condense");
        assert!(c.condensed_tokens <= 40, "{strategy}");
        assert_eq!(c.messages[0].text(), "Be brief.", "{strategy}");
        let text = c.messages[1].text();
        assert!(!text.contains('\u{fffd}'), "{strategy}: {text}");
        if strategy != Strategy::Extractive {
            // truncate keeps the end; middle_out keeps both ends.
            assert!(text.ends_with("THE END"), "{strategy}: {text}");
        }
        if strategy == Strategy::MiddleOut {
            assert!(text.starts_with("Zürich") && text.contains("[…]"), "{text}");
        }
    }
}

#[test]
fn fitting_conversation_is_unchanged() {
    let counter = TokenCounter::new(TokenizerKind::Cl100kBase).expect("counter");
    let messages = conversation();
    let c = condense_messages(
        &messages,
        10_000,
        &counter,
        Strategy::MiddleOut,
        &LocalOptions::default(),
    )
    .expect("condense");
    assert_eq!(c.messages, messages);
    assert_eq!(c.original_tokens, c.condensed_tokens);
}

#[test]
fn huge_system_prompt_is_cut_as_a_last_resort() {
    let counter = TokenCounter::new(TokenizerKind::Cl100kBase).expect("counter");
    let messages = vec![
        msg(Role::System, &"Rule: always answer in French. ".repeat(100)),
        msg(Role::User, "Bonjour, quelle heure est-il ?"),
    ];
    let c = condense_messages(
        &messages,
        60,
        &counter,
        Strategy::Truncate,
        &LocalOptions::default(),
    )
    .expect("condense");
    assert!(c.condensed_tokens <= 60);
    assert_eq!(c.messages.len(), 2);
    assert!(c.messages[0]
        .text()
        .starts_with("Rule: always answer in French."));
    assert_eq!(c.messages[1].text(), "Bonjour, quelle heure est-il ?");
}

#[test]
fn absurd_budget_is_a_clear_error() {
    let counter = TokenCounter::new(TokenizerKind::Cl100kBase).expect("counter");
    let messages = conversation();
    let minimum = minimum_budget(&counter, &messages);
    assert_eq!(
        minimum,
        3 + 3 + 1 + 1,
        "priming + per-message + role + one token"
    );
    let err = condense_messages(
        &messages,
        minimum - 1,
        &counter,
        Strategy::Truncate,
        &LocalOptions::default(),
    )
    .expect_err("too small");
    assert_eq!(
        err,
        CondenseError::BudgetTooSmall {
            max_tokens: minimum - 1,
            minimum
        }
    );
    let ok = condense_messages(
        &messages,
        minimum,
        &counter,
        Strategy::Truncate,
        &LocalOptions::default(),
    )
    .expect("minimum fits");
    assert_eq!(ok.condensed_tokens, minimum);
}

#[test]
fn orphaned_tool_results_are_dropped() {
    let counter = TokenCounter::new(TokenizerKind::Cl100kBase).expect("counter");
    let mut call = msg(Role::Assistant, "");
    call.content = None;
    call.tool_calls = Some(vec![ToolCall {
        id: "call_1".to_owned(),
        kind: "function".to_owned(),
        function: FunctionCall {
            name: "weather".to_owned(),
            arguments: r#"{"city":"Lisbon"}"#.repeat(30),
        },
    }]);
    let mut result = msg(Role::Tool, "Sunny, 24 degrees.");
    result.tool_call_id = Some("call_1".to_owned());
    let messages = vec![
        msg(Role::User, "Weather in Lisbon?"),
        call,
        result,
        msg(Role::User, "Thanks! And tomorrow?"),
    ];
    let c = condense_messages(
        &messages,
        40,
        &counter,
        Strategy::Truncate,
        &LocalOptions::default(),
    )
    .expect("condense");
    assert!(
        c.messages.iter().all(|m| m.role != Role::Tool),
        "{:?}",
        c.messages
    );
    assert_eq!(
        c.messages.last().map(ChatMessage::text).as_deref(),
        Some("Thanks! And tomorrow?")
    );
}

const WORDS: [&str; 24] = [
    "alpha",
    "beta",
    "gamma",
    "token",
    "budget",
    "Lisbon",
    "tram",
    "über",
    "naïve",
    "日本語",
    "emoji🙂",
    "data",
    "model",
    "context",
    "window",
    "42",
    "3.14",
    "x",
    "the",
    "and",
    "code",
    "fn",
    "{}",
    "→",
];

fn text_strategy() -> impl proptest::strategy::Strategy<Value = String> {
    prop::collection::vec((0..WORDS.len(), 0..10u8), 0..60).prop_map(|ws| {
        let mut s = String::new();
        for (w, p) in ws {
            s.push_str(WORDS[w]);
            s.push_str(match p {
                0 => ". ",
                1 => "!\n",
                2 => "\n\n",
                3 => "? ",
                _ => " ",
            });
        }
        s
    })
}

fn message_strategy() -> impl proptest::strategy::Strategy<Value = ChatMessage> {
    (0..6u8, text_strategy(), any::<bool>()).prop_map(|(r, text, named)| {
        let role = match r {
            0 => Role::System,
            1 | 2 => Role::User,
            _ => Role::Assistant,
        };
        let mut m = ChatMessage::new(role, text);
        if named {
            m.name = Some("bob".to_owned());
        }
        m
    })
}

proptest! {
    #![proptest_config(Config {
        cases: 96,
        rng_seed: RngSeed::Fixed(0x6d67_6374),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn result_always_fits_the_budget(
        messages in prop::collection::vec(message_strategy(), 1..14),
        budget in 1usize..400,
        strategy in prop::sample::select(vec![Strategy::Truncate, Strategy::MiddleOut, Strategy::Extractive]),
        o200k in any::<bool>(),
        note in any::<bool>(),
    ) {
        let kind = if o200k { TokenizerKind::O200kBase } else { TokenizerKind::Cl100kBase };
        let counter = TokenCounter::new(kind).expect("counter");
        let minimum = minimum_budget(&counter, &messages);
        let options = LocalOptions { middle_out_note: note };
        match condense_messages(&messages, budget, &counter, strategy, &options) {
            Ok(c) => {
                prop_assert!(budget >= minimum);
                prop_assert!(c.condensed_tokens <= budget);
                prop_assert_eq!(counter.count_messages(&c.messages), c.condensed_tokens);
                prop_assert_eq!(counter.count_messages(&messages), c.original_tokens);
                prop_assert!(!c.messages.is_empty());
                // Deterministic.
                let again = condense_messages(&messages, budget, &counter, strategy, &options).expect("again");
                prop_assert_eq!(again, c);
            }
            Err(CondenseError::BudgetTooSmall { minimum: m, .. }) => {
                prop_assert_eq!(m, minimum);
                prop_assert!(budget < minimum);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
