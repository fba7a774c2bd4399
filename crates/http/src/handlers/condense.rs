//! Condensation API: `POST /api/condense` (`?async=true&priority=`), `POST
//! /api/condense/async` and `GET /api/condense/status/{request_id}`, over
//! `modelgate-condense`'s [`Condenser`] and bounded [`JobQueue`].

use std::sync::Arc;

use http::{Response, StatusCode};
use modelgate_condense::{
    CondenseError, CondenseRequest, CondenseSettings, Condenser, JobQueue, Priority, QueueConfig,
    SubmitError,
};
use modelgate_discovery::Discovery;
use modelgate_types::ErrorCode;
use serde_json::{json, Value};

use crate::body::{json_response, Body};
use crate::error::ApiError;
use crate::router::Ctx;

/// The condenser and its job queue, shared by the handlers.
#[derive(Debug)]
pub struct CondenseService {
    pub condenser: Arc<Condenser>,
    pub queue: JobQueue,
}

impl CondenseService {
    /// Builds the service; `summarize` uses the configured provider (through its
    /// resilience decorators) when `summarize_provider`/`summarize_model` are set and the
    /// provider is enabled, else it falls back to `extractive` and says so. Must be called
    /// inside a tokio runtime (the queue's workers are spawned here).
    pub fn new(settings: CondenseSettings, discovery: &Discovery) -> Self {
        let queue_config = QueueConfig::from_settings(&settings);
        let summarizer = settings
            .summarize_provider
            .as_deref()
            .and_then(|p| discovery.provider(p))
            .zip(settings.summarize_model.clone());
        let mut condenser = Condenser::new(settings);
        if let Some((provider, model)) = summarizer {
            condenser = condenser.with_summarizer(provider, model);
        }
        let condenser = Arc::new(condenser);
        CondenseService {
            queue: JobQueue::start(condenser.clone(), queue_config),
            condenser,
        }
    }
}

fn condense_error(e: CondenseError) -> ApiError {
    let field = match &e {
        CondenseError::EmptyMessages => Some("messages"),
        CondenseError::MissingMaxTokens
        | CondenseError::InvalidMaxTokens(_)
        | CondenseError::BudgetTooSmall { .. } => Some("max_tokens"),
        CondenseError::UnknownStrategy { .. } => Some("strategy"),
        CondenseError::UnknownPriority { .. } => Some("priority"),
        CondenseError::Tokenizer { .. } | CondenseError::Internal(_) => None,
    };
    if e.is_client_error() {
        let mut err = ApiError::invalid_request(e.to_string());
        if let Some(field) = field {
            let mut details = json!({ "field": field });
            if field == "strategy" {
                details["valid_strategies"] = json!(modelgate_condense::VALID_STRATEGIES);
            }
            if field == "priority" {
                details["valid_priorities"] = json!(["low", "medium", "high"]);
            }
            err = err.with_details(details);
        }
        err
    } else {
        ApiError::internal(e.to_string())
    }
}

fn submit_error(e: SubmitError) -> ApiError {
    match e {
        SubmitError::QueueFull {
            retry_after_secs, ..
        } => ApiError::new(ErrorCode::ServiceUnavailable, e.to_string())
            .with_retry_after(retry_after_secs.max(1)),
        SubmitError::ShuttingDown => {
            ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()).with_retry_after(5)
        }
    }
}

fn parse_bool(ctx: &Ctx, key: &str) -> Result<bool, ApiError> {
    match ctx.query_value(key).map(str::trim) {
        None | Some("") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(ApiError::invalid_request(format!(
            "query parameter '{key}' must be true or false, got '{other}'"
        ))
        .with_details(json!({ "field": key }))),
    }
}

fn priority(ctx: &Ctx) -> Result<Priority, ApiError> {
    match ctx.query_value("priority") {
        None => Ok(Priority::default()),
        Some(p) => p.parse().map_err(condense_error),
    }
}

async fn read_request(ctx: &mut Ctx) -> Result<CondenseRequest, ApiError> {
    let body: Option<Value> = ctx.json_body().await?;
    let Some(body) = body else {
        return Err(ApiError::invalid_request(
            "a JSON body with 'messages' and 'max_tokens' is required",
        ));
    };
    serde_json::from_value(body).map_err(|e| {
        ApiError::invalid_request(format!("invalid condensation request: {e}"))
            .with_details(json!({"field": "body"}))
    })
}

/// `POST /api/condense`; with `?async=true` it is `POST /api/condense/async`.
pub async fn condense(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    if parse_bool(ctx, "async")? {
        return submit(ctx).await;
    }
    // Validate the query before reading the body, so a typo is reported first.
    priority(ctx)?;
    let request = read_request(ctx).await?;
    let service = &ctx.state.condense;
    let job = service
        .condenser
        .validate(request)
        .map_err(condense_error)?;
    let result = service
        .condenser
        .condense(job)
        .await
        .map_err(condense_error)?;
    let mut body = serde_json::to_value(&result).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Value::Object(map) = &mut body {
        map.insert("status".into(), json!("success"));
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /api/condense/async`: 202 with the job ticket.
pub async fn submit(ctx: &mut Ctx) -> Result<Response<Body>, ApiError> {
    let priority = priority(ctx)?;
    let request = read_request(ctx).await?;
    let service = &ctx.state.condense;
    let job = service
        .condenser
        .validate(request)
        .map_err(condense_error)?;
    let ticket = service.queue.submit(job, priority).map_err(submit_error)?;
    Ok(json_response(StatusCode::ACCEPTED, &ticket))
}

/// `GET /api/condense/status/{request_id}`
pub async fn status(ctx: &Ctx, id: &str) -> Result<Response<Body>, ApiError> {
    match ctx.state.condense.queue.status(id) {
        Some(status) => Ok(json_response(StatusCode::OK, &status)),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no condensation request '{id}' (unknown, or its result has expired)"),
        )
        .with_details(json!({"request_id": id}))),
    }
}
