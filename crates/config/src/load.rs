//! Layered loading: built-in defaults, then the YAML file, then `MODELGATE__` env vars.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Yaml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::validate::{Problem, Problems};
use crate::Settings;

/// Environment variable naming the config file when `--config` is not given.
pub const ENV_CONFIG_PATH: &str = "MODELGATE_CONFIG";
/// Prefix of override variables: `MODELGATE__SERVER__PORT=9000` sets `server.port`.
pub const ENV_PREFIX: &str = "MODELGATE__";
/// The file used when neither `--config` nor `MODELGATE_CONFIG` names one.
pub const DEFAULT_PATH: &str = "config/default.yaml";

/// Where the settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: built-in defaults and environment only.
    Defaults,
    File(PathBuf),
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Defaults => f.write_str("built-in defaults"),
            ConfigSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Validated settings and facts about how they were loaded.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub source: ConfigSource,
    pub file_size_bytes: Option<u64>,
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration:\n{0}")]
    Invalid(Problems),
}

impl LoadError {
    /// Every problem found, one per entry (a read error is a single problem).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            LoadError::Read { path, source } => vec![Problem::new(
                "config",
                format!("cannot read {}: {source}", path.display()),
            )],
            LoadError::Invalid(p) => p.0.clone(),
        }
    }
}

/// Picks the config file: the CLI flag, else `MODELGATE_CONFIG`, else
/// `config/default.yaml` if it exists, else none (built-in defaults).
pub fn resolve_path(cli: Option<&Path>, env_value: Option<String>) -> Option<PathBuf> {
    if let Some(p) = cli {
        return Some(p.to_owned());
    }
    if let Some(p) = env_value.filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from(DEFAULT_PATH);
    default.exists().then_some(default)
}

/// Loads and validates settings. Reports every problem found, each with its key path.
pub fn load(path: Option<&Path>) -> Result<Loaded, LoadError> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    let mut file_size_bytes = None;
    let source = match path {
        Some(p) => {
            let meta = std::fs::metadata(p).map_err(|source| LoadError::Read {
                path: p.to_owned(),
                source,
            })?;
            file_size_bytes = Some(meta.len());
            // Read it ourselves so a missing file is an error, not an empty layer.
            let text = std::fs::read_to_string(p).map_err(|source| LoadError::Read {
                path: p.to_owned(),
                source,
            })?;
            figment = figment.merge(Yaml::string(&text));
            ConfigSource::File(p.to_owned())
        }
        None => ConfigSource::Defaults,
    };
    figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
    let settings = extract(&figment)?;
    Ok(Loaded {
        settings,
        source,
        file_size_bytes,
    })
}

/// Extracts section by section so one bad section does not hide problems in others.
fn extract(figment: &Figment) -> Result<Settings, LoadError> {
    let tree: Value = figment.extract().map_err(|e| {
        LoadError::Invalid(Problems(
            e.into_iter()
                .map(|e| {
                    let path = if e.path.is_empty() {
                        "config".to_owned()
                    } else {
                        e.path.join(".")
                    };
                    Problem::new(path, e.kind.to_string())
                })
                .collect(),
        ))
    })?;
    let mut problems = Vec::new();
    let mut settings = Settings::default();
    let Value::Object(map) = tree else {
        return Err(LoadError::Invalid(Problems(vec![Problem::new(
            "config",
            "expected a mapping at the top level",
        )])));
    };
    for (key, value) in map {
        match key.as_str() {
            "server" => section(&key, value, &mut settings.server, &mut problems),
            "logging" => section(&key, value, &mut settings.logging, &mut problems),
            "cache" => section(&key, value, &mut settings.cache, &mut problems),
            "discovery" => section(&key, value, &mut settings.discovery, &mut problems),
            "catalog" => section(&key, value, &mut settings.catalog, &mut problems),
            "routing" => section(&key, value, &mut settings.routing, &mut problems),
            "rate_limit" => section(&key, value, &mut settings.rate_limit, &mut problems),
            "providers" => match value {
                Value::Object(providers) => {
                    for (name, entry) in providers {
                        let path = format!("providers.{name}");
                        let mut slot = None;
                        option_section(&path, entry, &mut slot, &mut problems);
                        if let Some(cfg) = slot {
                            settings.providers.insert(name, cfg);
                        }
                    }
                }
                Value::Null => {}
                _ => problems.push(Problem::new(
                    "providers",
                    "expected a mapping of name to provider",
                )),
            },
            ext if crate::settings::EXTENSION_SECTIONS.contains(&ext) => {
                settings.extensions.insert(key, value);
            }
            other => problems.push(Problem::new(other, "unknown section")),
        }
    }
    problems.extend(crate::validate::validate(&settings, |k| std::env::var(k).ok()).0);
    if problems.is_empty() {
        Ok(settings)
    } else {
        Err(LoadError::Invalid(Problems(problems)))
    }
}

fn section<T: DeserializeOwned>(
    path: &str,
    value: Value,
    slot: &mut T,
    problems: &mut Vec<Problem>,
) {
    let mut opt = None;
    option_section(path, value, &mut opt, problems);
    if let Some(v) = opt {
        *slot = v;
    }
}

fn option_section<T: DeserializeOwned>(
    path: &str,
    value: Value,
    slot: &mut Option<T>,
    problems: &mut Vec<Problem>,
) {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => *slot = Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_owned()
            } else {
                format!("{path}.{inner}")
            };
            problems.push(Problem::new(full, e.into_inner().to_string()));
        }
    }
}
