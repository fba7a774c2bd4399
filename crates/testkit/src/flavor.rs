//! The wire-format families ("flavors") the mock speaks, and which provider kind maps to which.

use modelgate_types::ProviderKind;

/// One wire format served under its own path prefix (`/{prefix}/...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Flavor {
    Openai,
    Vllm,
    Llamacpp,
    Mistral,
    Groq,
    Openrouter,
    Anthropic,
    Gemini,
    Cohere,
    Azure,
    Ollama,
}

impl Flavor {
    pub(crate) const ALL: [Flavor; 11] = [
        Flavor::Openai,
        Flavor::Vllm,
        Flavor::Llamacpp,
        Flavor::Mistral,
        Flavor::Groq,
        Flavor::Openrouter,
        Flavor::Anthropic,
        Flavor::Gemini,
        Flavor::Cohere,
        Flavor::Azure,
        Flavor::Ollama,
    ];

    /// The flavor a provider kind talks to. OpenAI-compatible clouds and the in-process
    /// `mock` kind share the OpenAI flavor.
    pub(crate) fn of(kind: ProviderKind) -> Flavor {
        match kind {
            ProviderKind::Openai
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Deepseek
            | ProviderKind::Together
            | ProviderKind::Fireworks
            | ProviderKind::Xai
            | ProviderKind::Lmstudio
            | ProviderKind::Mock => Flavor::Openai,
            ProviderKind::Vllm => Flavor::Vllm,
            ProviderKind::Llamacpp => Flavor::Llamacpp,
            ProviderKind::Mistral => Flavor::Mistral,
            ProviderKind::Groq => Flavor::Groq,
            ProviderKind::Openrouter => Flavor::Openrouter,
            ProviderKind::Anthropic => Flavor::Anthropic,
            ProviderKind::Gemini => Flavor::Gemini,
            ProviderKind::Cohere => Flavor::Cohere,
            ProviderKind::Azure => Flavor::Azure,
            ProviderKind::Ollama => Flavor::Ollama,
        }
    }

    /// The first path segment of every URL of this flavor, also its name in reply texts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Flavor::Openai => "openai",
            Flavor::Vllm => "vllm",
            Flavor::Llamacpp => "llamacpp",
            Flavor::Mistral => "mistral",
            Flavor::Groq => "groq",
            Flavor::Openrouter => "openrouter",
            Flavor::Anthropic => "anthropic",
            Flavor::Gemini => "gemini",
            Flavor::Cohere => "cohere",
            Flavor::Azure => "azure",
            Flavor::Ollama => "ollama",
        }
    }

    pub(crate) fn from_prefix(segment: &str) -> Option<Flavor> {
        Flavor::ALL.into_iter().find(|f| f.name() == segment)
    }

    /// The path a user puts after the server URL in `providers.X.base_url`.
    pub(crate) fn base_path(self) -> &'static str {
        match self {
            Flavor::Openai => "/openai/v1",
            Flavor::Vllm => "/vllm/v1",
            Flavor::Llamacpp => "/llamacpp/v1",
            Flavor::Mistral => "/mistral/v1",
            Flavor::Groq => "/groq/openai/v1",
            Flavor::Openrouter => "/openrouter/api/v1",
            Flavor::Anthropic => "/anthropic",
            Flavor::Gemini => "/gemini",
            Flavor::Cohere => "/cohere",
            Flavor::Azure => "/azure",
            Flavor::Ollama => "/ollama",
        }
    }

    /// Whether requests must carry [`crate::MockUpstream::API_KEY`] by default. Ollama has no
    /// auth; vLLM and llama.cpp behave as if started with `--api-key`.
    pub(crate) fn requires_auth_by_default(self) -> bool {
        !matches!(self, Flavor::Ollama)
    }

    /// Whether list endpoints of this flavor paginate (and so honour `set_page_size`).
    pub(crate) fn default_page_size(self) -> usize {
        match self {
            Flavor::Anthropic | Flavor::Cohere => 20,
            Flavor::Gemini => 50,
            _ => usize::MAX,
        }
    }
}
