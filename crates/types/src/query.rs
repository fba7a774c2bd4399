//! `ModelQuery`: the filters, search, sort and pagination of the models APIs, parsed from
//! query-string pairs with errors that name the offending parameter.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::{Capability, Cursor, ModelSource};

/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 1000;

/// Which records a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFilter {
    Catalog,
    Discovered,
    All,
}

impl SourceFilter {
    pub fn admits(self, source: ModelSource) -> bool {
        match self {
            SourceFilter::All => true,
            SourceFilter::Catalog => source == ModelSource::Catalog,
            SourceFilter::Discovered => source == ModelSource::Discovered,
        }
    }
}

/// A field results can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortField {
    Id,
    Name,
    Provider,
    ContextLength,
    MaxTokens,
    InputCost,
    OutputCost,
    CreatedAt,
    UpdatedAt,
    /// Search relevance (only meaningful with `q`): exact id, then prefix, then substring.
    Relevance,
}

impl SortField {
    pub const ALL: [SortField; 10] = [
        SortField::Id,
        SortField::Name,
        SortField::Provider,
        SortField::ContextLength,
        SortField::MaxTokens,
        SortField::InputCost,
        SortField::OutputCost,
        SortField::CreatedAt,
        SortField::UpdatedAt,
        SortField::Relevance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortField::Id => "id",
            SortField::Name => "name",
            SortField::Provider => "provider",
            SortField::ContextLength => "context_length",
            SortField::MaxTokens => "max_tokens",
            SortField::InputCost => "input_cost",
            SortField::OutputCost => "output_cost",
            SortField::CreatedAt => "created_at",
            SortField::UpdatedAt => "updated_at",
            SortField::Relevance => "relevance",
        }
    }
}

/// A sort field and direction, written `field`, `-field`, `field:asc` or `field:desc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SortKey {
    pub field: SortField,
    pub descending: bool,
}

impl fmt::Display for SortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.descending {
            f.write_str("-")?;
        }
        f.write_str(self.field.as_str())
    }
}

impl FromStr for SortKey {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let s = s.trim();
        let (name, descending) = if let Some(rest) = s.strip_prefix('-') {
            (rest, true)
        } else if let Some(rest) = s.strip_suffix(":desc") {
            (rest, true)
        } else if let Some(rest) = s.strip_suffix(":asc") {
            (rest, false)
        } else {
            (s.strip_prefix('+').unwrap_or(s), false)
        };
        let field = SortField::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .ok_or(())?;
        Ok(SortKey { field, descending })
    }
}

/// A parameter that could not be parsed; becomes a 400 `INVALID_FILTER` naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for '{parameter}': {message}")]
pub struct FilterError {
    pub parameter: String,
    pub value: String,
    pub message: String,
}

impl FilterError {
    pub fn new(parameter: &str, value: &str, message: impl Into<String>) -> Self {
        FilterError {
            parameter: parameter.to_owned(),
            value: value.to_owned(),
            message: message.into(),
        }
    }
}

/// Everything a models listing or search may ask for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provider: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_chat: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supports_completion: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_context: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_input_cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_cost: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort: Option<SortKey>,
    #[serde(skip)]
    pub limit: usize,
    #[serde(skip)]
    pub offset: usize,
    #[serde(skip)]
    pub cursor: Option<Cursor>,
    #[serde(skip)]
    pub refresh: bool,
    /// Sparse fieldset (`fields=id,provider`), validated against the Model's field names.
    #[serde(skip)]
    pub fields: Option<Vec<String>>,
    /// Whether `limit` was given explicitly (some listings default to "everything").
    #[serde(skip)]
    pub limit_given: bool,
}

impl Default for ModelQuery {
    fn default() -> Self {
        ModelQuery {
            q: None,
            provider: Vec::new(),
            supports_chat: None,
            supports_completion: None,
            min_context: None,
            max_cost: None,
            max_input_cost: None,
            max_output_cost: None,
            capabilities: Vec::new(),
            source: None,
            sort: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
            cursor: None,
            refresh: false,
            fields: None,
            limit_given: false,
        }
    }
}

/// Field names of [`crate::Model`] accepted by `fields=`.
pub const MODEL_FIELDS: [&str; 19] = [
    "id",
    "name",
    "provider",
    "context_length",
    "max_tokens",
    "supports_chat",
    "supports_completion",
    "input_cost",
    "output_cost",
    "description",
    "capabilities",
    "created_at",
    "updated_at",
    "modalities",
    "knowledge_cutoff",
    "family",
    "status",
    "source",
    "stale",
];

impl ModelQuery {
    /// Parses decoded query-string pairs. Unknown parameters are ignored (as most HTTP
    /// APIs do); known ones with bad values are errors naming the parameter.
    pub fn from_pairs<'a, I>(pairs: I) -> Result<Self, FilterError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut q = ModelQuery::default();
        for (key, value) in pairs {
            match key {
                "q" | "query" | "search" => {
                    let v = value.trim();
                    if v.len() > 256 {
                        return Err(FilterError::new(key, value, "at most 256 characters"));
                    }
                    q.q = (!v.is_empty()).then(|| v.to_owned());
                }
                "provider" => {
                    for p in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        if !q.provider.iter().any(|x| x == p) {
                            q.provider.push(p.to_owned());
                        }
                    }
                }
                "supports_chat" => q.supports_chat = Some(parse_bool(key, value)?),
                "supports_completion" => q.supports_completion = Some(parse_bool(key, value)?),
                "refresh" => q.refresh = parse_bool(key, value)?,
                "min_context" => {
                    q.min_context = Some(value.trim().parse().map_err(|_| {
                        FilterError::new(key, value, "expected a non-negative integer")
                    })?)
                }
                "max_cost" => q.max_cost = Some(parse_cost(key, value)?),
                "max_input_cost" => q.max_input_cost = Some(parse_cost(key, value)?),
                "max_output_cost" => q.max_output_cost = Some(parse_cost(key, value)?),
                "capabilities" | "capability" => {
                    for cap in parse_capabilities(key, value)? {
                        if !q.capabilities.contains(&cap) {
                            q.capabilities.push(cap);
                        }
                    }
                }
                "source" => {
                    q.source = Some(match value.trim() {
                        "catalog" => SourceFilter::Catalog,
                        "discovered" => SourceFilter::Discovered,
                        "all" => SourceFilter::All,
                        _ => {
                            return Err(FilterError::new(
                                key,
                                value,
                                "expected one of catalog, discovered, all",
                            ))
                        }
                    })
                }
                "sort" => {
                    q.sort = Some(value.parse().map_err(|_| {
                        let names: Vec<&str> = SortField::ALL.iter().map(|f| f.as_str()).collect();
                        FilterError::new(
                            key,
                            value,
                            format!(
                                "expected one of {} (prefix '-' for descending)",
                                names.join(", ")
                            ),
                        )
                    })?)
                }
                "limit" => {
                    let n: usize = value.trim().parse().map_err(|_| {
                        FilterError::new(key, value, format!("expected an integer 1..={MAX_LIMIT}"))
                    })?;
                    if n == 0 || n > MAX_LIMIT {
                        return Err(FilterError::new(
                            key,
                            value,
                            format!("expected an integer 1..={MAX_LIMIT}"),
                        ));
                    }
                    q.limit = n;
                    q.limit_given = true;
                }
                "offset" => {
                    q.offset = value.trim().parse().map_err(|_| {
                        FilterError::new(key, value, "expected a non-negative integer")
                    })?
                }
                "cursor" => {
                    q.cursor = Some(
                        Cursor::decode(value.trim())
                            .map_err(|e| FilterError::new(key, value, e.to_string()))?,
                    )
                }
                "fields" => {
                    let mut fields = Vec::new();
                    for f in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                        if !MODEL_FIELDS.contains(&f) {
                            return Err(FilterError::new(
                                key,
                                value,
                                format!("unknown field '{f}'; known: {}", MODEL_FIELDS.join(", ")),
                            ));
                        }
                        if !fields.iter().any(|x| x == f) {
                            fields.push(f.to_owned());
                        }
                    }
                    if fields.is_empty() {
                        return Err(FilterError::new(key, value, "expected at least one field"));
                    }
                    q.fields = Some(fields);
                }
                _ => {}
            }
        }
        if q.cursor.is_some() && q.offset != 0 {
            return Err(FilterError::new(
                "cursor",
                "",
                "use either 'cursor' or 'offset', not both",
            ));
        }
        Ok(q)
    }

    /// The effective sort: explicit, else relevance when searching, else provider then id.
    pub fn effective_sort(&self) -> SortKey {
        self.sort.unwrap_or(if self.q.is_some() {
            SortKey {
                field: SortField::Relevance,
                descending: false,
            }
        } else {
            SortKey {
                field: SortField::Provider,
                descending: false,
            }
        })
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, FilterError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(FilterError::new(key, value, "expected true or false")),
    }
}

fn parse_cost(key: &str, value: &str) -> Result<f64, FilterError> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(FilterError::new(
            key,
            value,
            "expected a non-negative number (USD per 1K tokens)",
        )),
    }
}

/// Accepts `["vision","tool_use"]`, `vision,tool_use` or a single name.
fn parse_capabilities(key: &str, value: &str) -> Result<Vec<Capability>, FilterError> {
    let v = value.trim();
    let names: Vec<String> = if v.starts_with('[') {
        serde_json::from_str::<Vec<String>>(v).map_err(|_| {
            FilterError::new(
                key,
                value,
                "expected a JSON array of strings, a comma-separated list or a repeated parameter",
            )
        })?
    } else {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    names
        .iter()
        .map(|n| {
            n.parse::<Capability>().map_err(|e| {
                let known: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
                FilterError::new(key, value, format!("{e}; known: {}", known.join(", ")))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ModelQuery, FilterError> {
        ModelQuery::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn defaults() {
        let q = parse(&[]).expect("empty");
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(q.offset, 0);
        assert_eq!(q.effective_sort().to_string(), "provider");
    }

    #[test]
    fn capability_syntaxes() {
        let a = parse(&[("capabilities", r#"["vision","tool_use"]"#)]).expect("json");
        let b = parse(&[("capabilities", "vision,tool_use")]).expect("csv");
        let c = parse(&[("capabilities", "vision"), ("capabilities", "tool_use")]).expect("rep");
        assert_eq!(
            a.capabilities,
            vec![Capability::Vision, Capability::ToolUse]
        );
        assert_eq!(a.capabilities, b.capabilities);
        assert_eq!(b.capabilities, c.capabilities);
        let err = parse(&[("capabilities", "[vision")]).expect_err("bad json");
        assert_eq!(err.parameter, "capabilities");
        let err = parse(&[("capabilities", "telepathy")]).expect_err("unknown");
        assert!(err.message.contains("telepathy"));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (k, v) in [
            ("min_context", "abc"),
            ("limit", "0"),
            ("limit", "1001"),
            ("sort", "popularity"),
            ("max_cost", "-1"),
            ("max_cost", "NaN"),
            ("supports_chat", "maybe"),
            ("source", "elsewhere"),
            ("fields", "id,secret"),
            ("cursor", "!!!"),
        ] {
            let err = parse(&[(k, v)]).expect_err(k);
            assert_eq!(err.parameter, k, "{k}={v}");
        }
    }

    #[test]
    fn sort_syntaxes() {
        let s: SortKey = "-created_at".parse().expect("desc");
        assert!(s.descending);
        assert_eq!(s.field, SortField::CreatedAt);
        let s: SortKey = "input_cost:asc".parse().expect("asc");
        assert!(!s.descending);
        assert_eq!(s.to_string(), "input_cost");
    }

    #[test]
    fn filters_applied_serialisation_skips_unset() {
        let q = parse(&[("supports_chat", "true"), ("min_context", "100000")]).expect("ok");
        let v = serde_json::to_value(&q).expect("serialise");
        assert_eq!(
            v,
            serde_json::json!({"supports_chat": true, "min_context": 100000})
        );
    }
}
