//! The Condenser (validation, cache, summarize with a test-double provider and its
//! fallback) and the job queue (priorities, capacity, retention, shutdown).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code: a failure should panic

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use modelgate_condense::{
    CondenseError, CondenseJob, CondenseRequest, CondenseSettings, Condenser, JobQueue, JobState,
    Priority, QueueConfig, Strategy, SubmitError, TokenCounter, SUMMARY_PREFIX,
};
use modelgate_providers::{ChatStream, Provider, ProviderError, ProviderErrorKind};
use modelgate_types::chat::{
    ChatMessage, ChatRequest, ChatResponse, Choice, ResponseMessage, Role,
};
use modelgate_types::{Model, ProviderKind};
use serde_json::Map;

/// A provider that answers every chat with a fixed summary (or a fixed error) and records
/// the transcripts it was sent.
#[derive(Debug)]
struct FakeSummarizer {
    reply: Result<String, ProviderErrorKind>,
    seen: Mutex<Vec<ChatRequest>>,
}

impl FakeSummarizer {
    fn ok(summary: &str) -> Arc<Self> {
        Arc::new(FakeSummarizer {
            reply: Ok(summary.to_owned()),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn failing(kind: ProviderErrorKind) -> Arc<Self> {
        Arc::new(FakeSummarizer {
            reply: Err(kind),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn transcripts(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.messages[1].text())
            .collect()
    }
}

#[async_trait]
impl Provider for FakeSummarizer {
    fn name(&self) -> &str {
        "fake"
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenaiCompatible
    }

    async fn list_models(&self) -> Result<Vec<Model>, ProviderError> {
        Ok(Vec::new())
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.seen.lock().expect("lock").push(request.clone());
        let text = self
            .reply
            .clone()
            .map_err(|kind| ProviderError::new("fake", kind, "boom").with_status(503))?;
        Ok(ChatResponse {
            id: "chatcmpl-1".to_owned(),
            object: "chat.completion".to_owned(),
            created: 0,
            model: request.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage {
                    role: Role::Assistant,
                    content: Some(text),
                    tool_calls: None,
                    extra: Map::new(),
                },
                finish_reason: Some("stop".to_owned()),
                extra: Map::new(),
            }],
            usage: None,
            extra: Map::new(),
        })
    }

    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        Err(ProviderError::new(
            "fake",
            ProviderErrorKind::Unsupported,
            "no streams",
        ))
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn long_conversation(marker: &str) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::new(
        Role::System,
        "You are a helpful assistant.",
    )];
    for i in 0..12 {
        messages.push(ChatMessage::new(
            Role::User,
            format!("Question {i} about {marker}: how do I configure the retry budget and the circuit breaker for provider number {i}?"),
        ));
        messages.push(ChatMessage::new(
            Role::Assistant,
            format!("Answer {i}: set retries to {i}, use jittered backoff, and open the breaker after five failures in ten seconds."),
        ));
    }
    messages
}

fn request(messages: Vec<ChatMessage>, max_tokens: i64, strategy: &str) -> CondenseRequest {
    CondenseRequest {
        messages,
        max_tokens: Some(max_tokens),
        model: Some("gpt-4o".to_owned()),
        strategy: Some(strategy.to_owned()),
    }
}

fn job(condenser: &Condenser, marker: &str, strategy: &str) -> CondenseJob {
    condenser
        .validate(request(long_conversation(marker), 300, strategy))
        .expect("valid")
}

#[test]
fn validation_errors_are_client_errors() {
    let c = Condenser::new(CondenseSettings::default());
    let msgs = long_conversation("x");
    let cases = [
        (request(Vec::new(), 100, "truncate"), "messages must not be empty"),
        (CondenseRequest { max_tokens: None, ..request(msgs.clone(), 1, "truncate") }, "max_tokens is required"),
        (request(msgs.clone(), 0, "truncate"), "max_tokens must be a positive integer, got 0"),
        (request(msgs.clone(), -5, "truncate"), "max_tokens must be a positive integer, got -5"),
        (
            request(msgs.clone(), 100, "shorten"),
            "unknown strategy 'shorten'; valid strategies: truncate, middle_out, extractive, summarize",
        ),
        (request(msgs.clone(), 5, "truncate"), "max_tokens 5 is too small"),
    ];
    for (req, want) in cases {
        let err = c.validate(req).expect_err(want);
        assert!(err.is_client_error(), "{err}");
        assert!(err.to_string().starts_with(want), "{err}");
    }
    let err = "urgent".parse::<Priority>().expect_err("unknown priority");
    assert_eq!(
        err.to_string(),
        "unknown priority 'urgent'; valid priorities: low, medium, high"
    );
    assert!(err.is_client_error());
    assert_eq!("middle-out".parse::<Strategy>(), Ok(Strategy::MiddleOut));
    let defaulted = c
        .validate(CondenseRequest {
            strategy: None,
            ..request(msgs, 100, "x")
        })
        .expect("valid");
    assert_eq!(defaulted.strategy, Strategy::Truncate);
}

#[tokio::test]
async fn cache_hits_are_counted_and_flagged() {
    let c = Condenser::new(CondenseSettings::default());
    let first = c
        .condense(job(&c, "cache", "middle_out"))
        .await
        .expect("first");
    let second = c
        .condense(job(&c, "cache", "middle_out"))
        .await
        .expect("second");
    let other = c
        .condense(job(&c, "cache", "truncate"))
        .await
        .expect("other strategy");
    assert!(!first.cache_hit && second.cache_hit && !other.cache_hit);
    assert_eq!(first.messages, second.messages);
    assert_eq!(first.condensed_tokens, second.condensed_tokens);
    let stats = c.stats();
    assert_eq!(
        (stats.total_summaries, stats.cache_hits, stats.cache_misses),
        (3, 1, 2)
    );
    assert_eq!(stats.cache_entries, 2);
    assert!(stats.avg_latency >= 0.0);
}

#[tokio::test]
async fn result_has_the_spec_fields() {
    let c = Condenser::new(CondenseSettings::default());
    let r = c
        .condense(job(&c, "shape", "truncate"))
        .await
        .expect("condense");
    let v = serde_json::to_value(&r).expect("json");
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    expect_test::expect![[r#"["cache_hit", "compression_ratio", "condensed_tokens", "max_tokens", "messages", "original_tokens", "processing_time_ms", "strategy_requested", "strategy_used", "summary", "tokenizer"]"#]]
        .assert_eq(&format!("{keys:?}"));
    assert_eq!(v["tokenizer"], "o200k_base");
    assert_eq!(v["strategy_used"], "truncate");
    assert!(r.condensed_tokens <= 300 && r.condensed_tokens < r.original_tokens);
    let ratio = r.condensed_tokens as f64 / r.original_tokens as f64;
    assert!((r.compression_ratio - ratio).abs() < 1e-4);
}

#[tokio::test]
async fn summarize_uses_the_model_and_keeps_recent_turns() {
    let fake = FakeSummarizer::ok(
        "The user asked how to configure retries and breakers for twelve providers.",
    );
    let c =
        Condenser::new(CondenseSettings::default()).with_summarizer(fake.clone(), "summarizer-1");
    let original = long_conversation("summary");
    let r = c
        .condense(job(&c, "summary", "summarize"))
        .await
        .expect("condense");
    assert_eq!(r.strategy_used, Strategy::Summarize);
    assert_eq!(r.fallback_reason, None);
    assert_eq!(
        r.summary,
        "The user asked how to configure retries and breakers for twelve providers."
    );
    assert!(r.condensed_tokens <= 300);
    let counter = TokenCounter::for_model(Some("gpt-4o")).expect("counter");
    assert_eq!(
        counter.count_messages(&r.messages) as u64,
        r.condensed_tokens
    );
    // System prompt kept, then the summary, then the most recent turns verbatim.
    assert_eq!(r.messages[0], original[0]);
    assert_eq!(r.messages[1].role, Role::System);
    assert!(r.messages[1].text().starts_with(SUMMARY_PREFIX));
    let recent = &r.messages[2..];
    assert!(!recent.is_empty());
    assert_eq!(recent, &original[original.len() - recent.len()..]);
    // The model saw the older turns, not the recent ones, with the model id and a limit.
    let seen = fake.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].model, "summarizer-1");
    assert!(seen[0].max_tokens.is_some_and(|m| m > 0 && m < 300));
    assert!(seen[0].messages[1]
        .text()
        .contains("Question 0 about summary"));
    assert!(!seen[0].messages[1]
        .text()
        .contains(&recent[recent.len() - 1].text()));
    // Cached: a second call does not ask the model again.
    let again = c
        .condense(job(&c, "summary", "summarize"))
        .await
        .expect("again");
    assert!(again.cache_hit);
    assert_eq!(fake.seen.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn summarize_falls_back_to_extractive_when_the_provider_fails() {
    let fake = FakeSummarizer::failing(ProviderErrorKind::Upstream);
    let c =
        Condenser::new(CondenseSettings::default()).with_summarizer(fake.clone(), "summarizer-1");
    let r = c
        .condense(job(&c, "fail", "summarize"))
        .await
        .expect("condense");
    assert_eq!(r.strategy_requested, Strategy::Summarize);
    assert_eq!(r.strategy_used, Strategy::Extractive);
    let reason = r.fallback_reason.clone().expect("reason");
    assert!(
        reason.contains("summarization failed") && reason.contains("fake"),
        "{reason}"
    );
    assert!(r.condensed_tokens <= 300);
    let v = serde_json::to_value(&r).expect("json");
    assert_eq!(v["strategy_used"], "extractive");
    // Fallbacks are not cached: the model is tried again.
    let again = c
        .condense(job(&c, "fail", "summarize"))
        .await
        .expect("again");
    assert!(!again.cache_hit);
    assert_eq!(fake.seen.lock().expect("lock").len(), 2);
    assert_eq!(c.stats().fallbacks, 2);
}

#[tokio::test]
async fn summarize_falls_back_when_the_summary_does_not_fit_or_no_model() {
    let fake = FakeSummarizer::ok(&"far too long summary ".repeat(400));
    let c = Condenser::new(CondenseSettings::default()).with_summarizer(fake, "summarizer-1");
    let r = c
        .condense(job(&c, "big", "summarize"))
        .await
        .expect("condense");
    assert_eq!(r.strategy_used, Strategy::Extractive);
    assert!(
        r.fallback_reason
            .as_deref()
            .is_some_and(|s| s.contains("does not fit")),
        "{:?}",
        r.fallback_reason
    );
    assert!(r.condensed_tokens <= 300);

    let bare = Condenser::new(CondenseSettings::default());
    let r = bare
        .condense(job(&bare, "none", "summarize"))
        .await
        .expect("condense");
    assert_eq!(r.strategy_used, Strategy::Extractive);
    assert!(r
        .fallback_reason
        .as_deref()
        .is_some_and(|s| s.contains("no summarization model")));
}

fn queue_config(capacity: usize, workers: usize, keep: usize) -> QueueConfig {
    QueueConfig {
        capacity,
        workers,
        result_ttl: Duration::from_secs(3600),
        result_max_count: keep,
    }
}

async fn wait_done(queue: &JobQueue, id: &str) -> modelgate_condense::JobStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = queue.status(id).expect("known id");
        if matches!(status.status, JobState::Completed | JobState::Failed) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_honours_priorities_then_fifo() {
    let fake = FakeSummarizer::ok("summary");
    let condenser =
        Arc::new(Condenser::new(CondenseSettings::default()).with_summarizer(fake.clone(), "m"));
    let queue = JobQueue::start_paused(Arc::clone(&condenser), queue_config(10, 1, 100));
    let order = [
        ("low-1", Priority::Low),
        ("medium-1", Priority::Medium),
        ("high-1", Priority::High),
        ("low-2", Priority::Low),
        ("high-2", Priority::High),
        ("medium-2", Priority::Medium),
    ];
    let mut ids = Vec::new();
    for (marker, priority) in order {
        let ticket = queue
            .submit(job(&condenser, marker, "summarize"), priority)
            .expect("submit");
        assert!(ticket.request_id.starts_with("req_") && ticket.request_id.len() == 20);
        assert_eq!(ticket.status, JobState::Queued);
        assert!(ticket.estimated_time_ms > 0);
        let status = queue.status(&ticket.request_id).expect("status");
        assert_eq!(status.status, JobState::Queued);
        ids.push(ticket.request_id);
    }
    queue.resume();
    for id in &ids {
        let status = wait_done(&queue, id).await;
        assert_eq!(status.status, JobState::Completed, "{:?}", status.error);
        assert!(status.started_at.is_some() && status.completed_at.is_some());
        assert!(status.processing_time_ms.is_some());
        assert!(status.result.is_some());
    }
    let served: Vec<String> = fake
        .transcripts()
        .iter()
        .map(|t| {
            let start = t.find("about ").expect("marker") + 6;
            t[start..].split(':').next().expect("marker").to_owned()
        })
        .collect();
    assert_eq!(
        served,
        ["high-1", "high-2", "medium-1", "medium-2", "low-1", "low-2"]
    );
    queue.shutdown().await;
}

#[tokio::test]
async fn full_queue_unknown_ids_retention_and_shutdown() {
    let condenser = Arc::new(Condenser::new(CondenseSettings::default()));
    let queue = JobQueue::start_paused(Arc::clone(&condenser), queue_config(2, 1, 2));
    assert!(queue.status("req_0000000000000000").is_none());
    let a = queue
        .submit(job(&condenser, "a", "truncate"), Priority::Medium)
        .expect("a");
    let b = queue
        .submit(job(&condenser, "b", "truncate"), Priority::Medium)
        .expect("b");
    let full = queue
        .submit(job(&condenser, "c", "truncate"), Priority::High)
        .expect_err("full");
    assert!(
        matches!(full, SubmitError::QueueFull { capacity: 2, retry_after_secs } if retry_after_secs >= 1)
    );
    queue.resume();
    wait_done(&queue, &a.request_id).await;
    wait_done(&queue, &b.request_id).await;
    let c = queue
        .submit(job(&condenser, "c", "truncate"), Priority::High)
        .expect("c");
    wait_done(&queue, &c.request_id).await;
    // At most two finished results are kept: the oldest is evicted.
    assert!(queue.status(&a.request_id).is_none());
    assert!(queue.status(&b.request_id).is_some() && queue.status(&c.request_id).is_some());

    queue.pause();
    let d = queue
        .submit(job(&condenser, "d", "truncate"), Priority::Low)
        .expect("d");
    queue.shutdown().await;
    let d = queue.status(&d.request_id).expect("d kept");
    assert_eq!(d.status, JobState::Failed);
    assert_eq!(d.error.as_deref(), Some("the gateway is shutting down"));
    let refused = queue
        .submit(job(&condenser, "e", "truncate"), Priority::Low)
        .expect_err("closed");
    assert_eq!(refused, SubmitError::ShuttingDown);
}

#[tokio::test]
async fn failed_jobs_report_their_error() {
    let condenser = Arc::new(Condenser::new(CondenseSettings::default()));
    let queue = JobQueue::start(Arc::clone(&condenser), queue_config(4, 2, 10));
    // A job built by hand, bypassing validation, with an impossible budget.
    let bad = CondenseJob {
        messages: long_conversation("x"),
        max_tokens: 3,
        model: None,
        strategy: Strategy::Truncate,
    };
    let t = queue.submit(bad, Priority::High).expect("submit");
    let status = wait_done(&queue, &t.request_id).await;
    assert_eq!(status.status, JobState::Failed);
    assert!(status
        .error
        .as_deref()
        .is_some_and(|e| e.contains("too small")));
    let json = serde_json::to_value(&status).expect("json");
    assert_eq!(json["status"], "failed");
    queue.shutdown().await;
    let _ = CondenseError::EmptyMessages;
}
