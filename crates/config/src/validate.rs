//! Semantic validation: every problem, each with the key path it is about.

use std::fmt;

use serde::Serialize;

use crate::{ProviderKind, Settings};

/// One configuration problem: `providers.openai.base_url: not a URL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// All problems of one configuration, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "  {p}")?;
        }
        Ok(())
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn check_url(path: &str, raw: &str, problems: &mut Vec<Problem>) {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => problems.push(Problem::new(
            path,
            format!("not an http(s) URL (scheme '{}')", u.scheme()),
        )),
        Err(_) => problems.push(Problem::new(path, "not a URL")),
    }
}

/// Checks the meaning of parsed settings. `env` looks up environment variables (for
/// `api_key_env`), so tests can supply their own.
pub fn validate(s: &Settings, env: impl Fn(&str) -> Option<String>) -> Problems {
    let mut p = Vec::new();

    let host = s.server.host.trim();
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        p.push(Problem::new("server.host", "not a host name or IP address"));
    }
    if s.server.max_body_bytes == 0 || s.server.max_body_bytes > 1 << 30 {
        p.push(Problem::new(
            "server.max_body_bytes",
            "must be between 1 and 1073741824",
        ));
    }
    if s.server.header_read_timeout_ms == 0 {
        p.push(Problem::new(
            "server.header_read_timeout_ms",
            "must be greater than 0",
        ));
    }
    if s.server.max_connections == 0 {
        p.push(Problem::new(
            "server.max_connections",
            "must be greater than 0",
        ));
    }
    if s.server.shutdown_grace_ms > 600_000 {
        p.push(Problem::new(
            "server.shutdown_grace_ms",
            "must be at most 600000 (10 minutes)",
        ));
    }
    if s.server
        .admin_token
        .as_ref()
        .is_some_and(|t| t.expose().len() < 16)
    {
        p.push(Problem::new(
            "server.admin_token",
            "must be at least 16 characters",
        ));
    }
    for (i, k) in s.server.api_keys.iter().enumerate() {
        if k.expose().len() < 8 {
            p.push(Problem::new(
                format!("server.api_keys[{i}]"),
                "must be at least 8 characters",
            ));
        }
    }
    if s.logging.level.trim().is_empty() {
        p.push(Problem::new(
            "logging.level",
            "must not be empty (e.g. info, modelgate=debug)",
        ));
    }
    if s.cache.ttl_seconds == 0 {
        p.push(Problem::new("cache.ttl_seconds", "must be at least 1"));
    }
    if !(1..=64).contains(&s.discovery.max_concurrent_refreshes) {
        p.push(Problem::new(
            "discovery.max_concurrent_refreshes",
            "must be between 1 and 64",
        ));
    }
    if s.discovery.data_dir.as_os_str().is_empty() {
        p.push(Problem::new("discovery.data_dir", "must not be empty"));
    }
    if let Some(u) = &s.catalog.url {
        check_url("catalog.url", u, &mut p);
    }
    if s.catalog.timeout_ms == 0 {
        p.push(Problem::new("catalog.timeout_ms", "must be greater than 0"));
    }
    if s.catalog.refresh_interval_seconds < 60 {
        p.push(Problem::new(
            "catalog.refresh_interval_seconds",
            "must be at least 60",
        ));
    }

    let rl = &s.rate_limit;
    if !(1..=6_000_000).contains(&rl.requests_per_minute) {
        p.push(Problem::new(
            "rate_limit.requests_per_minute",
            "must be between 1 and 6000000",
        ));
    }
    if !(1..=1_000_000).contains(&rl.burst) {
        p.push(Problem::new(
            "rate_limit.burst",
            "must be between 1 and 1000000",
        ));
    }
    if rl.max_clients < 16 {
        p.push(Problem::new(
            "rate_limit.max_clients",
            "must be at least 16",
        ));
    }
    for (prefix, limit) in &rl.routes {
        let at = |key: &str| format!("rate_limit.routes.{prefix}.{key}");
        if !prefix.starts_with('/') || prefix.contains(['?', '#', '{', '}']) {
            p.push(Problem::new(
                format!("rate_limit.routes.{prefix}"),
                "must be a path prefix starting with '/' (no query, no {placeholders})",
            ));
        }
        if !(1..=6_000_000).contains(&limit.requests_per_minute) {
            p.push(Problem::new(
                at("requests_per_minute"),
                "must be between 1 and 6000000",
            ));
        }
        if !(1..=1_000_000).contains(&limit.burst) {
            p.push(Problem::new(at("burst"), "must be between 1 and 1000000"));
        }
    }

    for (name, cfg) in &s.providers {
        let at = |key: &str| format!("providers.{name}.{key}");
        if !is_valid_name(name) {
            p.push(Problem::new(
                format!("providers.{name}"),
                "name must be 1-64 characters of a-z, 0-9, '_' or '-'",
            ));
        }
        match (&cfg.base_url, cfg.kind) {
            (Some(u), ProviderKind::Mock) if u.starts_with("mock://") => {}
            (Some(u), _) => check_url(&at("base_url"), u, &mut p),
            (None, kind) if kind.default_base_url().is_none() => p.push(Problem::new(
                at("base_url"),
                format!("required for kind '{kind}'"),
            )),
            (None, _) => {}
        }
        if cfg.timeout_ms == 0 || cfg.timeout_ms > 600_000 {
            p.push(Problem::new(
                at("timeout_ms"),
                "must be between 1 and 600000",
            ));
        }
        if cfg.cache_ttl_seconds == Some(0) {
            p.push(Problem::new(at("cache_ttl_seconds"), "must be at least 1"));
        }
        if let Some(var) = &cfg.api_key_env {
            if var.is_empty() || !var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                p.push(Problem::new(
                    at("api_key_env"),
                    "not an environment variable name",
                ));
            }
        }
        if cfg.enabled && cfg.kind.requires_key() && cfg.resolve_key(&env).is_none() {
            let msg = match &cfg.api_key_env {
                Some(var) => format!("no API key: environment variable {var} is not set"),
                None => "no API key: set api_key_env (or api_key)".to_owned(),
            };
            p.push(Problem::new(at("api_key"), msg));
        }
        for header in cfg.headers.keys() {
            if http_token(header).is_none() {
                p.push(Problem::new(
                    at("headers"),
                    format!("'{header}' is not a header name"),
                ));
            }
        }
        match (&cfg.mock, cfg.kind) {
            (Some(m), ProviderKind::Mock) => {
                if !(0.0..=1.0).contains(&m.failure_rate) {
                    p.push(Problem::new(
                        at("mock.failure_rate"),
                        "must be between 0 and 1",
                    ));
                }
                if m.models.is_empty() {
                    p.push(Problem::new(
                        at("mock.models"),
                        "must list at least one model",
                    ));
                }
                if m.latency_ms > 60_000 {
                    p.push(Problem::new(at("mock.latency_ms"), "must be at most 60000"));
                }
            }
            (Some(_), kind) => p.push(Problem::new(
                at("mock"),
                format!("only valid for kind 'mock', not '{kind}'"),
            )),
            (None, _) => {}
        }
    }
    for (alias, targets) in &s.routing.aliases {
        let at = format!("routing.aliases.{alias}");
        if alias.trim().is_empty() || alias.contains(char::is_whitespace) {
            p.push(Problem::new(
                at.clone(),
                "alias name must be non-empty without whitespace",
            ));
        }
        if targets.is_empty() {
            p.push(Problem::new(
                at.clone(),
                "must list at least one provider/model",
            ));
        }
        for (i, target) in targets.iter().enumerate() {
            let at = format!("{at}[{i}]");
            match target.split_once('/') {
                Some((provider, model)) if !provider.is_empty() && !model.is_empty() => {
                    if !s.providers.contains_key(provider) {
                        p.push(Problem::new(
                            at,
                            format!("'{provider}' is not a configured provider"),
                        ));
                    }
                }
                _ => p.push(Problem::new(
                    at,
                    format!("'{target}' is not of the form provider/model"),
                )),
            }
        }
    }
    Problems(p)
}

fn http_token(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ProviderConfig, Secret};

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&Settings::default(), no_env), Problems::default());
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let mut s = Settings::default();
        s.server.max_body_bytes = 0;
        s.cache.ttl_seconds = 0;
        let mut openai = ProviderConfig::new(ProviderKind::Openai);
        openai.base_url = Some("not a url".into());
        openai.api_key_env = Some("MISSING_KEY".into());
        s.providers.insert("openai".into(), openai);
        s.providers
            .insert("azure".into(), ProviderConfig::new(ProviderKind::Azure));
        let paths: Vec<String> = validate(&s, no_env).0.into_iter().map(|p| p.path).collect();
        for want in [
            "server.max_body_bytes",
            "cache.ttl_seconds",
            "providers.openai.base_url",
            "providers.openai.api_key",
            "providers.azure.base_url",
            "providers.azure.api_key",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "missing {want} in {paths:?}"
            );
        }
        let text = validate(&s, no_env).to_string();
        assert!(
            text.contains("providers.openai.base_url: not a URL"),
            "{text}"
        );
    }

    #[test]
    fn alias_entries_must_be_configured_provider_slash_model() {
        let mut s = Settings::default();
        let mut ollama = ProviderConfig::new(ProviderKind::Ollama);
        ollama.base_url = Some("http://127.0.0.1:11434".into());
        s.providers.insert("local".into(), ollama);
        s.routing.aliases.insert(
            "fast".into(),
            vec![
                "local/llama3.2:3b".into(),
                "gpt-4o".into(),
                "nope/m".into(),
                "local/".into(),
            ],
        );
        s.routing.aliases.insert("empty".into(), vec![]);
        let problems = validate(&s, no_env).0;
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "routing.aliases.empty",
                "routing.aliases.fast[1]",
                "routing.aliases.fast[2]",
                "routing.aliases.fast[3]"
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn key_from_env_satisfies_requirement() {
        let mut s = Settings::default();
        let mut openai = ProviderConfig::new(ProviderKind::Openai);
        openai.api_key_env = Some("OPENAI_API_KEY".into());
        s.providers.insert("openai".into(), openai);
        let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-x".to_owned());
        assert!(validate(&s, env).0.is_empty());
        if let Some(c) = s.providers.get_mut("openai") {
            c.api_key = Some(Secret::new(""));
        }
        assert!(validate(&s, env).0.is_empty());
    }
}
