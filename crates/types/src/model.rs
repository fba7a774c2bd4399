//! The `Model` contract: what every API response says about one model.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One model as served by the API (DESIGN.md, "Model").
///
/// Costs are USD per 1K tokens. A field that is not known is `None` and serialises as
/// `null`: modelgate never makes up a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub context_length: Option<u64>,
    /// Output limit in tokens.
    pub max_tokens: Option<u64>,
    pub supports_chat: bool,
    pub supports_completion: bool,
    /// USD per 1K input tokens.
    pub input_cost: Option<f64>,
    /// USD per 1K output tokens.
    pub output_cost: Option<f64>,
    pub description: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    /// RFC 3339; from the provider or the catalog's release date.
    pub created_at: Option<String>,
    /// RFC 3339; when modelgate's record of this model last changed.
    pub updated_at: Option<String>,
    #[serde(default)]
    pub modalities: Option<Modalities>,
    #[serde(default)]
    pub knowledge_cutoff: Option<String>,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub status: Option<ModelStatus>,
    #[serde(default)]
    pub source: ModelSource,
    /// True when the provider's last refresh failed and this is the last good record.
    #[serde(default)]
    pub stale: bool,
}

impl Model {
    /// A model with only its identity set; every fact is unknown.
    pub fn new(provider: impl Into<String>, id: impl Into<String>) -> Self {
        let id = id.into();
        Model {
            name: id.clone(),
            id,
            provider: provider.into(),
            context_length: None,
            max_tokens: None,
            supports_chat: false,
            supports_completion: false,
            input_cost: None,
            output_cost: None,
            description: None,
            capabilities: Vec::new(),
            created_at: None,
            updated_at: None,
            modalities: None,
            knowledge_cutoff: None,
            family: None,
            status: None,
            source: ModelSource::Discovered,
            stale: false,
        }
    }

    pub fn has_capability(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }

    /// Adds a capability once, keeping the list sorted so equal models compare equal.
    pub fn add_capability(&mut self, cap: Capability) {
        if let Err(pos) = self.capabilities.binary_search(&cap) {
            self.capabilities.insert(pos, cap);
        }
    }

    /// True when the facts (not the bookkeeping fields `updated_at`, `stale`) differ.
    pub fn facts_differ(&self, other: &Model) -> bool {
        let mut a = self.clone();
        a.updated_at.clone_from(&other.updated_at);
        a.stale = other.stale;
        a != *other
    }
}

/// Prices in USD per 1K tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Pricing {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}

impl Pricing {
    /// Converts a price per million tokens (models.dev, most price pages) to per 1K.
    pub fn per_1k_from_per_million(per_million: f64) -> f64 {
        round_price(per_million / 1000.0)
    }

    /// Converts a price per single token (OpenRouter) to per 1K.
    pub fn per_1k_from_per_token(per_token: f64) -> f64 {
        round_price(per_token * 1000.0)
    }
}

/// Rounds away binary noise (0.0025000000000000005 → 0.0025) at 12 significant decimals.
fn round_price(v: f64) -> f64 {
    (v * 1e12).round() / 1e12
}

/// Where a model record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// A configured provider listed it.
    #[default]
    Discovered,
    /// Known only from the embedded catalog.
    Catalog,
}

impl ModelSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelSource::Discovered => "discovered",
            ModelSource::Catalog => "catalog",
        }
    }
}

/// Lifecycle status of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelStatus {
    Active,
    Beta,
    Deprecated,
}

/// What a model can do beyond plain text generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    FunctionCalling,
    ToolUse,
    Vision,
    JsonMode,
    StructuredOutput,
    Reasoning,
    Streaming,
    Embeddings,
    AudioInput,
    AudioOutput,
    ImageGeneration,
    PdfInput,
}

impl Capability {
    pub const ALL: [Capability; 12] = [
        Capability::FunctionCalling,
        Capability::ToolUse,
        Capability::Vision,
        Capability::JsonMode,
        Capability::StructuredOutput,
        Capability::Reasoning,
        Capability::Streaming,
        Capability::Embeddings,
        Capability::AudioInput,
        Capability::AudioOutput,
        Capability::ImageGeneration,
        Capability::PdfInput,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::FunctionCalling => "function_calling",
            Capability::ToolUse => "tool_use",
            Capability::Vision => "vision",
            Capability::JsonMode => "json_mode",
            Capability::StructuredOutput => "structured_output",
            Capability::Reasoning => "reasoning",
            Capability::Streaming => "streaming",
            Capability::Embeddings => "embeddings",
            Capability::AudioInput => "audio_input",
            Capability::AudioOutput => "audio_output",
            Capability::ImageGeneration => "image_generation",
            Capability::PdfInput => "pdf_input",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability name that is not one of [`Capability::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability '{0}'")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let cap = match norm.as_str() {
            "function_calling" | "functions" => Capability::FunctionCalling,
            "tool_use" | "tools" | "tool_call" | "tool_calling" => Capability::ToolUse,
            "vision" | "image_input" => Capability::Vision,
            "json_mode" | "json" => Capability::JsonMode,
            "structured_output" | "structured_outputs" => Capability::StructuredOutput,
            "reasoning" => Capability::Reasoning,
            "streaming" | "stream" => Capability::Streaming,
            "embeddings" | "embedding" => Capability::Embeddings,
            "audio_input" => Capability::AudioInput,
            "audio_output" => Capability::AudioOutput,
            "image_generation" => Capability::ImageGeneration,
            "pdf_input" | "pdf" => Capability::PdfInput,
            _ => return Err(UnknownCapability(s.to_owned())),
        };
        Ok(cap)
    }
}

/// A kind of input or output content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Text,
    Image,
    Audio,
    Video,
    Pdf,
    Embedding,
}

impl FromStr for Modality {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "text" => Modality::Text,
            "image" => Modality::Image,
            "audio" => Modality::Audio,
            "video" => Modality::Video,
            "pdf" | "file" => Modality::Pdf,
            "embedding" | "embeddings" => Modality::Embedding,
            _ => return Err(()),
        })
    }
}

/// Input and output modalities of a model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Modalities {
    pub input: Vec<Modality>,
    pub output: Vec<Modality>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_conversion_is_exact_for_catalog_values() {
        assert_eq!(Pricing::per_1k_from_per_million(2.5), 0.0025);
        assert_eq!(Pricing::per_1k_from_per_million(10.0), 0.01);
        assert_eq!(Pricing::per_1k_from_per_million(0.15), 0.00015);
        assert_eq!(Pricing::per_1k_from_per_token(0.0000025), 0.0025);
    }

    #[test]
    fn capability_round_trip_and_aliases() {
        for cap in Capability::ALL {
            assert_eq!(cap.as_str().parse::<Capability>(), Ok(cap));
            let json = serde_json::to_string(&cap).expect("serialise");
            assert_eq!(json, format!("\"{}\"", cap.as_str()));
        }
        assert_eq!("Tool-Use".parse::<Capability>(), Ok(Capability::ToolUse));
        assert!("telepathy".parse::<Capability>().is_err());
    }

    #[test]
    fn unknown_fields_serialise_as_null() {
        let m = Model::new("openai", "gpt-x");
        let v = serde_json::to_value(&m).expect("serialise");
        assert!(v["input_cost"].is_null());
        assert!(v["context_length"].is_null());
        assert_eq!(v["source"], "discovered");
        assert_eq!(v["stale"], false);
    }

    #[test]
    fn facts_differ_ignores_bookkeeping() {
        let a = Model::new("p", "m");
        let mut b = a.clone();
        b.updated_at = Some("2024-01-01T00:00:00Z".into());
        b.stale = true;
        assert!(!a.facts_differ(&b));
        b.context_length = Some(8192);
        assert!(a.facts_differ(&b));
    }
}
