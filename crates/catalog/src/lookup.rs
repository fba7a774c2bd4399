//! Matching a discovered `(provider kind, model id)` to a catalog record.
//!
//! The search goes from the most to the least specific place, and stops at the first hit:
//!
//! 1. **Home**: the catalog providers that *are* the discovered provider
//!    ([`home_providers`]); prices apply.
//! 2. **Named**: a provider the id itself names: a Bedrock-shaped id (`amazon-bedrock`),
//!    a vendor prefix (`anthropic/…`, `anthropic.…` → `anthropic`).
//! 3. **Any**: every provider, by canonical key, ranked so first-party labs and well-known
//!    hosts come first; for self-hosted kinds (Ollama, vLLM, llama.cpp, LM Studio) only
//!    open-weights records.
//!
//! Within a scope, the model itself is looked for in every provider of the scope (exact
//! id, then canonical key: case, separators, prefixes, tags) before the snapshot rules are
//! tried in them: a dated id with no record of its own falls back to the provider's undated
//! alias (`gpt-4o-2024-08-06` → `gpt-4o`); an undated or `-latest` id with no record falls
//! back to the `-latest` alias or the newest dated snapshot (`claude-3-5-sonnet-latest` →
//! `claude-3-5-sonnet-20241022`). A dated id never matches a different date, and in the
//! Any scope only its own. Outside home, prices never apply: they belong to another seller.

use modelgate_types::{Model, ProviderKind};

use crate::entry::CatalogEntry;
use crate::ids::{path_vendor, ParsedId};
use crate::Catalog;

/// How an id matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatchKind {
    /// The record's id is the given id.
    Exact,
    /// Same model once case, separators, prefixes and tags are normalised.
    Normalized,
    /// Another snapshot's record of the same model line (undated alias, `-latest`, or the
    /// newest dated snapshot for an undated id).
    Snapshot,
    /// Same open-weights model with packaging words (`instruct`, `fp8`, ...) removed.
    Loose,
}

/// Where the matched record lives, relative to the discovered provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MatchScope {
    /// A catalog provider that is the discovered provider (see [`home_providers`]).
    Home,
    /// A provider the id names (vendor prefix, Bedrock shape).
    Named,
    /// Any provider listing the same model.
    Any,
}

/// A catalog record found for a discovered model.
#[derive(Debug, Clone, Copy)]
pub struct Match<'c> {
    pub entry: &'c CatalogEntry,
    pub kind: MatchKind,
    pub scope: MatchScope,
    /// Whether the record's prices are what the discovered provider charges: only for a
    /// home record, and not when a price-relevant tag (`:free`, `:nitro`, a quantisation)
    /// had to be dropped to match.
    pub prices_apply: bool,
}

impl Match<'_> {
    /// Fills what `model` does not already know from the matched record; prices only when
    /// [`Match::prices_apply`]. See [`CatalogEntry::merge_into`] for the rules.
    pub fn merge_into(&self, model: &mut Model) {
        self.entry.fill(model, self.prices_apply);
    }
}

/// The models.dev provider ids that are the discovered provider of this kind, searched
/// first and the only ones whose prices apply. Empty for self-hosted and generic kinds.
pub fn home_providers(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Openai => &["openai"],
        ProviderKind::Anthropic => &["anthropic"],
        ProviderKind::Gemini => &["google"],
        ProviderKind::Cohere => &["cohere"],
        ProviderKind::Mistral => &["mistral"],
        ProviderKind::Groq => &["groq"],
        ProviderKind::Openrouter => &["openrouter"],
        ProviderKind::Xai => &["xai"],
        ProviderKind::Deepseek => &["deepseek"],
        ProviderKind::Together => &["togetherai"],
        ProviderKind::Fireworks => &["fireworks-ai"],
        // Azure OpenAI bills OpenAI's list prices for the models it does not list itself.
        ProviderKind::Azure => &["azure", "openai"],
        ProviderKind::Lmstudio => &["lmstudio"],
        ProviderKind::Ollama
        | ProviderKind::Vllm
        | ProviderKind::Llamacpp
        | ProviderKind::OpenaiCompatible
        | ProviderKind::Mock => &[],
    }
}

/// Providers whose ids use this kind's naming, searched (for facts only) before the rest.
fn naming_twins(kind: ProviderKind) -> &'static [&'static str] {
    match kind {
        ProviderKind::Ollama => &["ollama-cloud"],
        _ => &[],
    }
}

/// Kinds that can only serve open-weights models.
fn self_hosted(kind: ProviderKind) -> bool {
    matches!(
        kind,
        ProviderKind::Ollama | ProviderKind::Vllm | ProviderKind::Llamacpp | ProviderKind::Lmstudio
    )
}

/// The catalog providers of the lab a vendor prefix names.
fn vendor_providers(vendor: &str) -> &'static [&'static str] {
    match vendor {
        "anthropic" => &["anthropic"],
        "openai" => &["openai"],
        "google" => &["google"],
        "meta" | "meta-llama" => &["llama"],
        "mistral" | "mistralai" => &["mistral"],
        "cohere" | "coherelabs" | "cohereforai" => &["cohere"],
        "deepseek" | "deepseek-ai" => &["deepseek"],
        "x-ai" | "xai" => &["xai"],
        "qwen" => &["alibaba"],
        "moonshot" | "moonshotai" => &["moonshotai"],
        "z-ai" | "zai" | "zai-org" | "thudm" => &["zai"],
        "minimax" | "minimaxai" => &["minimax"],
        "nvidia" => &["nvidia"],
        "amazon" => &["amazon-bedrock"],
        "perplexity" => &["perplexity"],
        _ => &[],
    }
}

/// Providers ranked first when several list the same model: labs, then clouds, then
/// well-known hosts. The rest follow in id order.
pub(crate) const REFERENCE_PROVIDERS: &[&str] = &[
    "openai",
    "anthropic",
    "google",
    "mistral",
    "cohere",
    "deepseek",
    "xai",
    "alibaba",
    "moonshotai",
    "zai",
    "minimax",
    "llama",
    "nvidia",
    "perplexity",
    "amazon-bedrock",
    "azure",
    "google-vertex",
    "huggingface",
    "togetherai",
    "fireworks-ai",
    "deepinfra",
    "groq",
    "openrouter",
];

impl Catalog {
    /// Finds the catalog record for a model a provider of `kind` listed as `model_id`.
    /// `None` when nothing matches without guessing: the caller leaves the facts `null`.
    pub fn lookup(&self, kind: ProviderKind, model_id: &str) -> Option<Match<'_>> {
        let q = ParsedId::new(model_id);
        if q.canon.is_empty() {
            return None;
        }
        let home = home_providers(kind);
        if let Some(found) = self.in_providers(home, &q) {
            return Some(self.make(found, MatchScope::Home, &q));
        }
        let mut named: Vec<&str> = Vec::new();
        if q.bedrock {
            named.push("amazon-bedrock");
        }
        if let Some(v) = q.vendor.as_deref() {
            named.extend_from_slice(vendor_providers(v));
            named.push(v);
        }
        named.retain(|n| !home.contains(n));
        if let Some(found) = self.in_providers(&named, &q) {
            return Some(self.make(found, MatchScope::Named, &q));
        }
        if let Some(found) = self.in_providers(naming_twins(kind), &q) {
            return Some(self.make(found, MatchScope::Any, &q));
        }
        self.anywhere(&q, self_hosted(kind))
            .map(|found| self.make(found, MatchScope::Any, &q))
    }

    /// [`Catalog::lookup`] for `model.id`, then [`Match::merge_into`]: the one call
    /// discovery makes per listed model.
    pub fn enrich(&self, kind: ProviderKind, model: &mut Model) -> Option<Match<'_>> {
        let found = self.lookup(kind, &model.id)?;
        found.merge_into(model);
        Some(found)
    }

    fn make(&self, (i, kind): (u32, MatchKind), scope: MatchScope, q: &ParsedId) -> Match<'_> {
        let entry = &self.entries[i as usize];
        Match {
            entry,
            kind,
            scope,
            prices_apply: scope == MatchScope::Home && (kind == MatchKind::Exact || !q.tag_dropped),
        }
    }

    /// Searches `names` in order: the id itself in each, then snapshot variants in each.
    fn in_providers(&self, names: &[&str], q: &ParsedId) -> Option<(u32, MatchKind)> {
        let ids: Vec<u32> = names
            .iter()
            .filter_map(|n| self.provider_ix.get(*n).copied())
            .collect();
        ids.iter()
            .find_map(|&p| self.same_model(p, q))
            .or_else(|| ids.iter().find_map(|&p| self.other_snapshot(p, q)))
    }

    /// The record of exactly this model (exact id, then canonical key) at provider `p`.
    fn same_model(&self, p: u32, q: &ParsedId) -> Option<(u32, MatchKind)> {
        let idx = &self.index;
        let of_p = |list: Option<&Vec<u32>>| -> Vec<u32> {
            list.map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| self.meta[i as usize].provider == p)
                    .collect()
            })
            .unwrap_or_default()
        };
        let same = of_p(idx.canon.get(q.canon.as_str()));
        if let Some(&i) = same
            .iter()
            .find(|&&i| self.entries[i as usize].id == q.bare)
        {
            return Some((i, MatchKind::Exact));
        }
        if !same.is_empty() {
            let vendor_match = same.iter().copied().find(|&i| {
                q.vendor.is_some()
                    && path_vendor(&self.entries[i as usize].id)
                        .is_some_and(|v| Some(v.to_ascii_lowercase()) == q.vendor)
            });
            return vendor_match
                .or(same.first().copied())
                .map(|i| (i, MatchKind::Normalized));
        }
        None
    }

    /// Another snapshot's record of this model line at provider `p` (see the module docs).
    fn other_snapshot(&self, p: u32, q: &ParsedId) -> Option<(u32, MatchKind)> {
        let idx = &self.index;
        let of_p = |list: Option<&Vec<u32>>| -> Vec<u32> {
            list.map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| self.meta[i as usize].provider == p)
                    .collect()
            })
            .unwrap_or_default()
        };
        if q.dated || q.latest {
            if let Some(&i) = of_p(idx.canon.get(q.base.as_str())).first() {
                return Some((i, MatchKind::Snapshot));
            }
        }
        if let Some(&i) = of_p(idx.latest.get(q.base.as_str())).first() {
            return Some((i, MatchKind::Snapshot));
        }
        if !q.dated {
            let newest = of_p(idx.dated.get(q.base.as_str()))
                .into_iter()
                .max_by(|&a, &b| {
                    let (ea, eb) = (&self.entries[a as usize], &self.entries[b as usize]);
                    ea.release_date
                        .cmp(&eb.release_date)
                        .then_with(|| eb.id.cmp(&ea.id))
                });
            if let Some(i) = newest {
                return Some((i, MatchKind::Snapshot));
            }
        }
        None
    }

    fn anywhere(&self, q: &ParsedId, open_only: bool) -> Option<(u32, MatchKind)> {
        let idx = &self.index;
        let pick = |list: Option<&Vec<u32>>| -> Option<u32> {
            list?
                .iter()
                .copied()
                .find(|&i| !open_only || self.entries[i as usize].open_weights != Some(false))
        };
        if let Some(i) = pick(idx.canon.get(q.canon.as_str())) {
            let kind = if self.entries[i as usize].id == q.bare {
                MatchKind::Exact
            } else {
                MatchKind::Normalized
            };
            return Some((i, kind));
        }
        if q.latest {
            // Only a true undated record; a `-latest` alias elsewhere may be a newer model.
            // A dated id is not matched to another seller's undated alias: which snapshot
            // that alias means is the seller's business.
            if let Some(i) = pick(idx.canon.get(q.base.as_str())) {
                return Some((i, MatchKind::Snapshot));
            }
        }
        pick(idx.loose.get(q.loose.as_str())).map(|i| (i, MatchKind::Loose))
    }
}
