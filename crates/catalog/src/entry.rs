//! Catalog records (one provider, one model) and their conversion to the `Model` contract.

use std::sync::Arc;

use modelgate_types::{
    format_rfc3339, parse_rfc3339, Capability, Modalities, Modality, Model, ModelSource,
    ModelStatus, Pricing,
};

use crate::raw::{RawModel, RawProvider};

/// One provider of the catalog (a models.dev provider: a lab, a host or a router).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogProvider {
    /// models.dev provider id (`openai`, `google`, `amazon-bedrock`, ...).
    pub id: Arc<str>,
    /// Display name (`OpenAI`).
    pub name: Option<String>,
    /// Environment variables its SDKs read the key from.
    pub env: Vec<String>,
    /// The AI SDK npm package.
    pub npm: Option<String>,
    /// Base URL of its OpenAI-compatible API, where it has one.
    pub api: Option<String>,
    /// Documentation URL.
    pub doc: Option<String>,
}

impl CatalogProvider {
    pub(crate) fn from_raw(id: Arc<str>, raw: RawProvider) -> Self {
        CatalogProvider {
            id,
            name: raw.name,
            env: raw.env,
            npm: raw.npm,
            api: raw.api,
            doc: raw.doc,
        }
    }
}

/// Prices as models.dev writes them: USD per **million** tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Cost {
    pub input: Option<f64>,
    pub output: Option<f64>,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
}

impl Cost {
    /// The same prices in USD per 1K tokens, as the `Model` contract states them.
    pub fn per_1k(&self) -> Pricing {
        let conv = |v: Option<f64>| {
            v.filter(|v| *v >= 0.0)
                .map(Pricing::per_1k_from_per_million)
        };
        Pricing {
            input: conv(self.input),
            output: conv(self.output),
            cache_read: conv(self.cache_read),
            cache_write: conv(self.cache_write),
        }
    }
}

/// Token limits. A limit models.dev writes as `0` (unknown) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Limits {
    /// Context window in tokens.
    pub context: Option<u64>,
    /// Maximum output tokens.
    pub output: Option<u64>,
    /// Maximum input tokens, where it is smaller than the context window.
    pub input: Option<u64>,
}

/// What the catalog knows about one model at one provider. Every fact may be missing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CatalogEntry {
    /// models.dev provider id this record belongs to.
    pub provider: Arc<str>,
    /// The model id at that provider (`gpt-4o`, `anthropic/claude-3-haiku`, ...).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    pub family: Option<String>,
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub release_date: Option<String>,
    pub last_updated: Option<String>,
    /// Training cut-off (`YYYY-MM` or a date).
    pub knowledge: Option<String>,
    /// Accepts file attachments.
    pub attachment: Option<bool>,
    pub reasoning: Option<bool>,
    pub tool_call: Option<bool>,
    pub structured_output: Option<bool>,
    /// Accepts a `temperature` parameter.
    pub temperature: Option<bool>,
    pub open_weights: Option<bool>,
    /// models.dev lifecycle status (`deprecated`, `beta`, `alpha`, ...), as written.
    pub status: Option<String>,
    /// USD per million tokens.
    pub cost: Cost,
    pub limit: Limits,
    pub modalities: Option<Modalities>,
}

impl CatalogEntry {
    pub(crate) fn from_raw(provider: Arc<str>, id: String, raw: RawModel) -> Self {
        let positive = |v: Option<u64>| v.filter(|v| *v > 0);
        let limit = raw.limit.unwrap_or_default();
        let cost = raw.cost.unwrap_or_default();
        CatalogEntry {
            provider,
            id,
            name: raw.name.filter(|n| !n.trim().is_empty()),
            family: raw.family.filter(|f| !f.trim().is_empty()),
            release_date: raw.release_date,
            last_updated: raw.last_updated,
            knowledge: raw.knowledge.filter(|k| !k.trim().is_empty()),
            attachment: raw.attachment,
            reasoning: raw.reasoning,
            tool_call: raw.tool_call,
            structured_output: raw.structured_output,
            temperature: raw.temperature,
            open_weights: raw.open_weights,
            status: raw.status,
            cost: Cost {
                input: cost.input,
                output: cost.output,
                cache_read: cost.cache_read,
                cache_write: cost.cache_write,
            },
            limit: Limits {
                context: positive(limit.context),
                output: positive(limit.output),
                input: positive(limit.input),
            },
            modalities: raw.modalities.map(|m| Modalities {
                input: m.input,
                output: m.output,
            }),
        }
    }

    fn has_input(&self, m: Modality) -> bool {
        self.modalities
            .as_ref()
            .is_some_and(|x| x.input.contains(&m))
    }

    fn has_output(&self, m: Modality) -> bool {
        self.modalities
            .as_ref()
            .is_some_and(|x| x.output.contains(&m))
    }

    /// An embedding model: its output modality says so, or its family or id has an
    /// `embed…` word (`text-embedding-3-small`, `mistral-embed`, `nomic-embed-text`).
    /// models.dev lists embedding models with a `text` output, hence the name check.
    pub fn is_embedding(&self) -> bool {
        let has_embed_word = |s: &str| {
            s.split(['-', '_', '/', '.', ' '])
                .any(|w| w.to_ascii_lowercase().starts_with("embed"))
        };
        self.has_output(Modality::Embedding)
            || self.family.as_deref().is_some_and(has_embed_word)
            || has_embed_word(&self.id)
    }

    /// A chat model: text in, text out, and not an embedding model.
    pub fn supports_chat(&self) -> bool {
        self.has_output(Modality::Text) && self.has_input(Modality::Text) && !self.is_embedding()
    }

    /// Lifecycle status: `deprecated`, `beta` (also `alpha`, `preview`, `experimental`),
    /// otherwise active.
    pub fn model_status(&self) -> ModelStatus {
        match self
            .status
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("deprecated" | "retired" | "legacy") => ModelStatus::Deprecated,
            Some("beta" | "alpha" | "preview" | "experimental") => ModelStatus::Beta,
            _ => ModelStatus::Active,
        }
    }

    /// The capabilities these facts support, sorted.
    pub fn capabilities(&self) -> Vec<Capability> {
        let mut caps = Vec::new();
        if self.tool_call == Some(true) {
            caps.extend([Capability::FunctionCalling, Capability::ToolUse]);
        }
        if self.has_input(Modality::Image) {
            caps.push(Capability::Vision);
        }
        if self.structured_output == Some(true) {
            caps.extend([Capability::JsonMode, Capability::StructuredOutput]);
        }
        if self.reasoning == Some(true) {
            caps.push(Capability::Reasoning);
        }
        if self.supports_chat() {
            caps.push(Capability::Streaming);
        }
        if self.is_embedding() {
            caps.push(Capability::Embeddings);
        }
        if self.has_input(Modality::Audio) {
            caps.push(Capability::AudioInput);
        }
        if self.has_output(Modality::Audio) {
            caps.push(Capability::AudioOutput);
        }
        if self.has_output(Modality::Image) {
            caps.push(Capability::ImageGeneration);
        }
        if self.has_input(Modality::Pdf) {
            caps.push(Capability::PdfInput);
        }
        caps.sort();
        caps.dedup();
        caps
    }

    /// Modalities as the contract states them; an embedding model outputs `embedding`.
    fn model_modalities(&self) -> Option<Modalities> {
        let mut m = self.modalities.clone()?;
        if self.is_embedding() {
            m.output = vec![Modality::Embedding];
        }
        Some(m)
    }

    /// The output limit; `None` for embedding models, whose models.dev "output" is the
    /// vector dimension, not a token count.
    fn max_tokens(&self) -> Option<u64> {
        if self.is_embedding() {
            None
        } else {
            self.limit.output
        }
    }

    /// This record as a `Model` served by `provider_name`, with `source: catalog` and
    /// prices converted to USD per 1K tokens. Unknown facts stay `None`.
    pub fn to_model(&self, provider_name: &str) -> Model {
        let mut model = Model::new(provider_name, self.id.clone());
        model.source = ModelSource::Catalog;
        self.fill(&mut model, true);
        model.updated_at = self.last_updated.as_deref().and_then(date_to_rfc3339);
        model
    }

    /// Fills the facts `model` does not have from this record (prices included): a field
    /// that is `None` (or a name equal to the id) is set, capabilities are unioned,
    /// `supports_chat` becomes true if either says so. What the provider reported wins.
    /// `id`, `provider`, `source`, `updated_at` and `stale` are never touched.
    pub fn merge_into(&self, model: &mut Model) {
        self.fill(model, true);
    }

    pub(crate) fn fill(&self, model: &mut Model, with_prices: bool) {
        if model.name.is_empty() || model.name == model.id {
            if let Some(name) = &self.name {
                model.name.clone_from(name);
            }
        }
        model.context_length = model.context_length.or(self.limit.context);
        model.max_tokens = model.max_tokens.or_else(|| self.max_tokens());
        if with_prices {
            let prices = self.cost.per_1k();
            model.input_cost = model.input_cost.or(prices.input);
            model.output_cost = model.output_cost.or(prices.output);
        }
        model.supports_chat |= self.supports_chat();
        model.capabilities.sort_unstable();
        model.capabilities.dedup();
        for cap in self.capabilities() {
            model.add_capability(cap);
        }
        if model.created_at.is_none() {
            model.created_at = self.release_date.as_deref().and_then(date_to_rfc3339);
        }
        if model.modalities.is_none() {
            model.modalities = self.model_modalities();
        }
        if model.knowledge_cutoff.is_none() {
            model.knowledge_cutoff.clone_from(&self.knowledge);
        }
        if model.family.is_none() {
            model.family.clone_from(&self.family);
        }
        if model.status.is_none() {
            model.status = Some(self.model_status());
        }
    }
}

fn date_to_rfc3339(s: &str) -> Option<String> {
    parse_rfc3339(s).map(format_rfc3339)
}
