//! The remaining flavors: Azure, Ollama, and the OpenAI-shaped vLLM, llama.cpp, Mistral, Groq
//! and OpenRouter listings and chats.

use modelgate_testkit::{MockModel, MockUpstream};
use modelgate_types::ProviderKind;
use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn azure_requires_api_version_and_api_key() {
    let mock = MockUpstream::start().await;
    let base = mock.base_url(ProviderKind::Azure);
    let (status, body) = get_json(&format!("{base}/openai/models"), &[("api-key", KEY)]).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": {"code": "404", "message": "Resource not found"}})
        )
    );
    let (status, body) = get_json(
        &format!("{base}/openai/models?api-version=2024-10-21"),
        &[("api-key", "bad")],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "401");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Access denied due to invalid subscription key"));
    let (status, body) = get_json(
        &format!("{base}/openai/models?api-version=2024-10-21"),
        &[("api-key", KEY)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "list");
    let m = &body["data"][0];
    for field in [
        "id",
        "status",
        "capabilities",
        "lifecycle_status",
        "deprecation",
        "created_at",
        "object",
    ] {
        assert!(m.get(field).is_some(), "missing {field}");
    }
    assert_eq!(m["capabilities"]["chat_completion"], true);
}

#[tokio::test]
async fn azure_chat_by_deployment_and_stream() {
    let mock = MockUpstream::start().await;
    let base = mock.base_url(ProviderKind::Azure);
    let url = format!("{base}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21");
    let req = json!({"messages": [{"role": "user", "content": "hello azure"}]});
    let (status, body) = post_json(&url, &[("api-key", KEY)], &req).await;
    assert_eq!(status, 200, "{body}");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(text, "Hello from azure gpt-4o: hello azure");
    assert!(body["prompt_filter_results"].is_array());

    let (_, raw) = post(
        &url,
        &[("api-key", KEY)],
        &json!({"stream": true, "messages": req["messages"]}),
    )
    .await;
    let events = parse_sse(&raw);
    let first = events[0].json();
    assert_eq!(
        first["choices"],
        json!([]),
        "Azure opens with a prompt_filter_results chunk"
    );
    let streamed: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(streamed, text);

    let missing = format!("{base}/openai/deployments/nope/chat/completions?api-version=2024-10-21");
    let (status, body) = post_json(&missing, &[("api-key", KEY)], &req).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "DeploymentNotFound");
}

#[tokio::test]
async fn ollama_tags_show_and_openai_chat_without_auth() {
    let mock = MockUpstream::start().await;
    let base = mock.base_url(ProviderKind::Ollama);
    let (status, tags) = get_json(&format!("{base}/api/tags"), &[]).await;
    assert_eq!(status, 200);
    let first = &tags["models"][0];
    assert_eq!(first["name"], "llama3.2:3b");
    assert_eq!(first["model"], "llama3.2:3b");
    assert_eq!(first["details"]["family"], "llama");
    assert_eq!(first["details"]["parameter_size"], "3B");
    assert_eq!(first["digest"].as_str().unwrap().len(), 64);

    let (status, show) = post_json(
        &format!("{base}/api/show"),
        &[],
        &json!({"model": "llama3.2:3b"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(show["model_info"]["general.architecture"], "llama");
    assert_eq!(show["model_info"]["llama.context_length"], 131_072);
    assert_eq!(show["capabilities"], json!(["completion", "tools"]));
    let (_, llava) = post_json(
        &format!("{base}/api/show"),
        &[],
        &json!({"model": "llava:7b"}),
    )
    .await;
    assert_eq!(llava["capabilities"], json!(["completion", "vision"]));
    let (status, missing) =
        post_json(&format!("{base}/api/show"), &[], &json!({"model": "nope"})).await;
    assert_eq!(
        (status, missing),
        (404, json!({"error": "model 'nope' not found"}))
    );

    let req = json!({"model": "qwen2.5:7b", "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = post_json(&format!("{base}/v1/chat/completions"), &[], &req).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from ollama qwen2.5:7b: hi"
    );
    let (_, models) = get_json(&format!("{base}/v1/models"), &[]).await;
    assert_eq!(models["data"][0]["owned_by"], "library");
}

#[tokio::test]
async fn openai_shaped_flavors_list_their_own_fields() {
    let mock = MockUpstream::start().await;
    let auth = bearer();
    let h = [("authorization", auth.as_str())];

    let (_, vllm) = get_json(&format!("{}/models", mock.base_url(ProviderKind::Vllm)), &h).await;
    let m = &vllm["data"][0];
    assert_eq!(m["max_model_len"], 131_072);
    assert_eq!(m["root"], m["id"]);
    assert!(m["parent"].is_null());
    assert_eq!(m["permission"][0]["object"], "model_permission");

    let (_, llama) = get_json(
        &format!("{}/models", mock.base_url(ProviderKind::Llamacpp)),
        &h,
    )
    .await;
    let meta = &llama["data"][0]["meta"];
    // llama-server's model_meta(): the training context, not the served one (that is in
    // /props, below).
    assert_eq!(meta["n_ctx_train"], 131_072);
    assert!(meta.get("n_ctx").is_none());
    assert!(meta["n_params"].is_u64());
    assert_eq!(llama["models"][0]["model"], llama["data"][0]["id"]);
    let props_url = format!(
        "{}/props",
        mock.base_url(ProviderKind::Llamacpp)
            .trim_end_matches("/v1")
    );
    let (status, props) = get_json(&props_url, &h).await;
    assert_eq!(status, 200);
    assert_eq!(props["default_generation_settings"]["n_ctx"], 8_192);
    let (status, _) = get_json(&props_url, &[]).await;
    assert_eq!(
        status, 401,
        "/props needs the key when llama-server has one"
    );

    let (_, mistral) = get_json(
        &format!("{}/models", mock.base_url(ProviderKind::Mistral)),
        &h,
    )
    .await;
    let m = &mistral["data"][0];
    assert_eq!(m["capabilities"]["completion_chat"], true);
    assert_eq!(m["max_context_length"], 131_072);
    assert_eq!(m["aliases"], json!(["mistral-large-2411"]));
    assert!(m["deprecation"].is_null());
    let pixtral = mistral["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "pixtral-large-latest")
        .unwrap();
    assert_eq!(pixtral["capabilities"]["vision"], true);

    let (_, groq) = get_json(&format!("{}/models", mock.base_url(ProviderKind::Groq)), &h).await;
    let m = &groq["data"][0];
    assert_eq!(m["context_window"], 131_072);
    assert_eq!(m["max_completion_tokens"], 131_072);
    assert_eq!(m["active"], true);

    let (_, or) = get_json(
        &format!("{}/models", mock.base_url(ProviderKind::Openrouter)),
        &[],
    )
    .await;
    assert!(or.get("object").is_none());
    let m = &or["data"][0];
    assert_eq!(m["pricing"]["prompt"], "0.0000025");
    assert_eq!(m["context_length"], 128_000);
    assert_eq!(m["top_provider"]["max_completion_tokens"], 16_384);
    for field in [
        "name",
        "description",
        "created",
        "architecture",
        "supported_parameters",
    ] {
        assert!(m.get(field).is_some(), "missing {field}");
    }
}

#[tokio::test]
async fn openai_shaped_flavors_chat_and_reject_bad_keys() {
    let mock = MockUpstream::start().await;
    let cases: [(ProviderKind, &str, Value); 5] = [
        (
            ProviderKind::Vllm,
            "Qwen/Qwen2.5-7B-Instruct",
            json!({"error": "Unauthorized"}),
        ),
        (
            ProviderKind::Llamacpp,
            "anything-goes",
            json!({"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}),
        ),
        (
            ProviderKind::Mistral,
            "mistral-small-latest",
            json!({"message": "Unauthorized"}),
        ),
        (
            ProviderKind::Groq,
            "llama-3.1-8b-instant",
            json!({"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        ),
        (
            ProviderKind::Openrouter,
            "openai/gpt-4o",
            json!({"error": {"message": "User not found.", "code": 401}}),
        ),
    ];
    for (kind, model, unauthorized) in cases {
        let url = format!("{}/chat/completions", mock.base_url(kind));
        let req = json!({"model": model, "messages": [{"role": "user", "content": "ping"}]});
        let (status, body) = post_json(&url, &[("authorization", "Bearer wrong")], &req).await;
        assert_eq!(status, 401, "{kind}");
        for (k, v) in unauthorized.as_object().unwrap() {
            assert_eq!(&body[k], v, "{kind}: {body}");
        }
        let (status, body) = post_json(&url, &[("authorization", &bearer())], &req).await;
        assert_eq!(status, 200, "{kind}: {body}");
        let name = match kind {
            ProviderKind::Llamacpp => "llamacpp",
            other => other.as_str(),
        };
        assert_eq!(
            body["choices"][0]["message"]["content"],
            format!("Hello from {name} {model}: ping")
        );
        let mut sreq = req.clone();
        sreq["stream"] = json!(true);
        let (_, raw) = post(&url, &[("authorization", &bearer())], &sreq).await;
        let events = parse_sse(&raw);
        assert_eq!(events.last().unwrap().data, "[DONE]", "{kind}");
        let streamed: String = events[..events.len() - 1]
            .iter()
            .filter_map(|e| {
                e.json()["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(
            streamed,
            format!("Hello from {name} {model}: ping"),
            "{kind}"
        );
    }
    // Unknown models: Mistral and OpenRouter answer 400, vLLM and Groq 404.
    let unknown = json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]});
    for (kind, status) in [
        (ProviderKind::Mistral, 400),
        (ProviderKind::Openrouter, 400),
        (ProviderKind::Vllm, 404),
        (ProviderKind::Groq, 404),
    ] {
        let (s, _) = post_json(
            &format!("{}/chat/completions", mock.base_url(kind)),
            &[("authorization", &bearer())],
            &unknown,
        )
        .await;
        assert_eq!(s, status, "{kind}");
    }
}

#[tokio::test]
async fn extra_fields_merge_into_listings() {
    let mock = MockUpstream::start().await;
    mock.set_models(
        ProviderKind::Groq,
        vec![MockModel::new("m1")
            .context_length(10)
            .extra(json!({"active": false, "public_apps": ["x"]}))],
    );
    mock.add_model(ProviderKind::Groq, MockModel::new("m2"));
    mock.remove_model(ProviderKind::Groq, "m1");
    mock.add_model(
        ProviderKind::Groq,
        MockModel::new("m1").extra(json!({"active": false})),
    );
    let (_, body) = get_json(
        &format!("{}/models", mock.base_url(ProviderKind::Groq)),
        &[("authorization", &bearer())],
    )
    .await;
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m2", "m1"]);
    assert_eq!(body["data"][1]["active"], false);
    assert!(
        body["data"][1]["context_window"].is_null(),
        "unknown stays null"
    );
}
