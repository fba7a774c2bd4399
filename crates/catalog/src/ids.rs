//! Model id normalisation: the spellings real providers list for one catalog model.
//!
//! Catalog ids and discovered ids go through the same [`ParsedId::new`], so two spellings
//! of one model meet at the same key. Every rule here is deliberately narrow: it removes
//! packaging (prefixes, region and version suffixes, tags, separators), never a word that
//! names a different model (`mini`, `pro`, `turbo`, `preview`, sizes).

/// A model id taken apart into the keys the indexes use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedId {
    /// The trimmed id with Gemini's `models/` prefix removed: the form tried for exact
    /// matches.
    pub bare: String,
    /// Canonical key of the model name (see [`canonical`]), vendor path removed.
    pub canon: String,
    /// `canon` without its date / snapshot suffix or `-latest`; equal to `canon` when
    /// there was none.
    pub base: String,
    /// `canon` carried a date or snapshot-version suffix (`-2024-08-06`, `-20241022`,
    /// `-0125`, `-001`).
    pub dated: bool,
    /// `canon` ended with `-latest` (or Vertex's `@default`).
    pub latest: bool,
    /// `canon` without trailing packaging words (`instruct`, `it`, `fp8`, ...): used only
    /// to find open-weights facts across hosts.
    pub loose: String,
    /// The vendor the id names: `anthropic` in `anthropic/claude-3.5-sonnet` or in
    /// Bedrock's `us.anthropic.claude-3-haiku-20240307-v1:0`.
    pub vendor: Option<String>,
    /// Shaped like an Amazon Bedrock model id.
    pub bedrock: bool,
    /// A tag that may change the price was removed (OpenRouter `:free`, `:nitro`, an
    /// Ollama quantisation tag).
    pub tag_dropped: bool,
}

/// Bedrock cross-region inference profile prefixes (`us.anthropic.…`).
const BEDROCK_REGIONS: &[&str] = &[
    "us", "us-gov", "eu", "apac", "ap", "au", "jp", "ca", "global",
];

/// Vendors that prefix Bedrock model ids (`anthropic.claude-…`, `meta.llama3-…`).
const BEDROCK_VENDORS: &[&str] = &[
    "ai21",
    "amazon",
    "anthropic",
    "cohere",
    "deepseek",
    "google",
    "luma",
    "meta",
    "minimax",
    "mistral",
    "moonshot",
    "moonshotai",
    "nvidia",
    "openai",
    "qwen",
    "stability",
    "twelvelabs",
    "writer",
    "xai",
    "zai",
];

/// OpenRouter variant suffixes (`vendor/model:free`): same model, different routing/price.
const ROUTER_VARIANTS: &[&str] = &[
    "free", "beta", "extended", "thinking", "nitro", "floor", "online", "exacto",
];

/// Trailing words that describe packaging, not a different model.
const LOOSE_SUFFIXES: &[&str] = &[
    "instruct", "it", "fp8", "fp16", "bf16", "fp4", "int4", "int8", "awq", "gptq", "gguf", "mlx",
];

impl ParsedId {
    /// Takes `raw` apart. Never fails; an empty id gives empty keys, which match nothing.
    pub fn new(raw: &str) -> ParsedId {
        let trimmed = raw.trim();
        let bare = trimmed.strip_prefix("models/").unwrap_or(trimmed);

        // Path form (`vendor/model`, `@cf/meta/model`, `accounts/fireworks/models/model`):
        // the name is the last segment, the vendor the one before it.
        let mut segments = bare.rsplit('/');
        let mut leaf = segments.next().unwrap_or(bare);
        let mut vendor = segments
            .next()
            .map(|v| v.trim_start_matches('~').to_ascii_lowercase());

        // Bedrock form: [region.]vendor.model[-v1:0].
        let mut bedrock = false;
        if let Some((region, rest)) = leaf.split_once('.') {
            if BEDROCK_REGIONS.contains(&region.to_ascii_lowercase().as_str())
                && rest
                    .split_once('.')
                    .is_some_and(|(v, _)| is_bedrock_vendor(v))
            {
                leaf = rest;
            }
        }
        if let Some((v, rest)) = leaf.split_once('.') {
            if is_bedrock_vendor(v) && !rest.is_empty() {
                vendor = Some(v.to_ascii_lowercase());
                leaf = rest;
                bedrock = true;
            }
        }
        let mut name = if bedrock {
            strip_bedrock_version(leaf, true)
        } else {
            let stripped = strip_bedrock_version(leaf, false);
            bedrock = stripped.len() != leaf.len();
            stripped
        }
        .to_owned();

        // Tags: `model:latest`, OpenRouter `model:free`, Ollama `model:3b-instruct-q4_K_M`.
        let mut tag_dropped = false;
        if let Some((model, tag)) = name.rsplit_once(':') {
            let tag = tag.to_ascii_lowercase();
            let model = model.to_owned();
            if tag == "latest" || tag.is_empty() {
                name = model;
            } else if ROUTER_VARIANTS.contains(&tag.as_str()) {
                name = model;
                tag_dropped = true;
            } else {
                let kept: Vec<&str> = tag
                    .split(['-', '_'])
                    .filter(|t| !is_quantisation(t))
                    .collect();
                tag_dropped = kept.len() != tag.split(['-', '_']).count();
                name = if kept.is_empty() {
                    model
                } else {
                    format!("{model}-{}", kept.join("-"))
                };
            }
        }

        // Azure names GPT-3.5 `gpt-35-turbo`.
        if let Some(rest) = name.strip_prefix("gpt-35") {
            name = format!("gpt-3.5{rest}");
        }

        let canon = canonical(&name);
        let (base, dated, latest) = split_version(&canon);
        let loose = loosen(&canon);
        ParsedId {
            bare: bare.to_owned(),
            base: base.to_owned(),
            canon,
            dated,
            latest,
            loose,
            vendor,
            bedrock,
            tag_dropped,
        }
    }
}

fn is_bedrock_vendor(v: &str) -> bool {
    BEDROCK_VENDORS.contains(&v.to_ascii_lowercase().as_str())
}

/// Removes a Bedrock version suffix: `-v1:0`, `-1:0`, `:0` and (for ids already known to be
/// Bedrock-shaped) a bare `-v1`. Outside Bedrock only the unambiguous `-vN:M` form goes.
fn strip_bedrock_version(s: &str, is_bedrock: bool) -> &str {
    let Some((head, minor)) = s.rsplit_once(':') else {
        if is_bedrock {
            if let Some((head, v)) = s.rsplit_once("-v") {
                if is_digits(v) && !head.is_empty() {
                    return head;
                }
            }
        }
        return s;
    };
    if !is_digits(minor) {
        return s;
    }
    if let Some((h, major)) = head.rsplit_once("-v") {
        if is_digits(major) && !h.is_empty() {
            return h;
        }
    }
    if is_bedrock {
        if let Some((h, major)) = head.rsplit_once('-') {
            if is_digits(major) && !h.is_empty() {
                return h;
            }
        }
        return head;
    }
    s
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Ollama quantisation / precision tag words (`q4_K_M` arrives split as `q4`, `k`, `m`).
fn is_quantisation(t: &str) -> bool {
    let t = t.to_ascii_lowercase();
    let b = t.as_bytes();
    matches!(
        t.as_str(),
        "k" | "m" | "s" | "l" | "xs" | "xxs" | "fp16" | "fp32" | "bf16" | "fp8" | "fp4" | "gguf"
    ) || (b.len() >= 2 && (b[0] == b'q' || b[0] == b'i') && b[1].is_ascii_digit())
        || (t.starts_with("iq") && t.len() > 2)
}

/// The canonical key of a model name: lower case; `.`, `_`, `@`, `:`, spaces and `/`
/// become `-`; a `p` between digits (Fireworks' `k2p6`) becomes `-`; a `-` is inserted
/// where letters meet digits (`llama3` → `llama-3`, `gpt4o` → `gpt-4o`); runs of `-`
/// collapse. So `claude-3.5-sonnet`, `claude-3-5-sonnet` and `Claude-3_5-Sonnet` meet.
pub(crate) fn canonical(name: &str) -> String {
    let chars: Vec<char> = name
        .trim()
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut out = String::with_capacity(chars.len() + 4);
    let mut prev: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let sep = matches!(c, '.' | '_' | '@' | ':' | ' ' | '/' | '-')
            || (c == 'p'
                && prev.is_some_and(|p| p.is_ascii_digit())
                && next.is_some_and(|n| n.is_ascii_digit()));
        if sep {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        } else {
            if c.is_ascii_digit() && out.ends_with(|p: char| p.is_ascii_alphabetic()) {
                out.push('-');
            }
            out.push(c);
        }
        prev = Some(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Splits a canonical key into (base, dated, latest).
fn split_version(canon: &str) -> (&str, bool, bool) {
    for suffix in ["-latest", "-default"] {
        if let Some(base) = canon.strip_suffix(suffix) {
            if !base.is_empty() {
                return (base, false, true);
            }
        }
    }
    let tokens: Vec<&str> = canon.split('-').collect();
    let n = tokens.len();
    let len_of = |k: usize| -> usize {
        // Length of the base when the last `k` tokens are dropped.
        tokens[..n - k]
            .iter()
            .map(|t| t.len() + 1)
            .sum::<usize>()
            .saturating_sub(1)
    };
    let is = |t: &str, len: usize| t.len() == len && is_digits(t);
    let year = |t: &str| is(t, 4) && t.starts_with("20");
    // -YYYY-MM-DD
    if n > 3 && year(tokens[n - 3]) && is(tokens[n - 2], 2) && is(tokens[n - 1], 2) {
        return (&canon[..len_of(3)], true, false);
    }
    // -MM-YYYY (Cohere `command-r-08-2024`, Gemini `preview-09-2025`)
    if n > 2 && is(tokens[n - 2], 2) && year(tokens[n - 1]) {
        return (&canon[..len_of(2)], true, false);
    }
    if n > 1 {
        let last = tokens[n - 1];
        // -YYYYMMDD, -MMDD / -YYMM, -00N (Gemini stable versions)
        if (is(last, 8) && last.starts_with("20"))
            || is(last, 4)
            || (is(last, 3) && last.starts_with('0'))
        {
            return (&canon[..len_of(1)], true, false);
        }
    }
    (canon, false, false)
}

/// Drops trailing packaging words from a canonical key.
fn loosen(canon: &str) -> String {
    let mut s = canon;
    while let Some((head, last)) = s.rsplit_once('-') {
        if LOOSE_SUFFIXES.contains(&last) && !head.is_empty() {
            s = head;
        } else {
            break;
        }
    }
    s.to_owned()
}

/// The vendor path segment of a catalog id (`openai` in `openai/gpt-4o`), if any.
pub(crate) fn path_vendor(id: &str) -> Option<&str> {
    let mut segments = id.rsplit('/');
    segments.next();
    segments.next().map(|v| v.trim_start_matches('~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ParsedId {
        ParsedId::new(s)
    }

    #[test]
    fn canonical_joins_spellings() {
        assert_eq!(canonical("claude-3.5-sonnet"), "claude-3-5-sonnet");
        assert_eq!(canonical("claude-3-5-sonnet"), "claude-3-5-sonnet");
        assert_eq!(canonical("Llama3.2"), "llama-3-2");
        assert_eq!(canonical("llama-3.2"), "llama-3-2");
        assert_eq!(canonical("kimi-k2p6"), canonical("kimi-k2.6"));
        assert_eq!(canonical("gpt-4o"), "gpt-4o");
        assert_eq!(canonical("Qwen3-32B"), "qwen-3-32b");
        assert_eq!(canonical("--a__b--"), "a-b");
        assert_eq!(canonical(""), "");
    }

    #[test]
    fn dates_and_latest() {
        let q = p("gpt-4o-2024-08-06");
        assert_eq!((q.base.as_str(), q.dated), ("gpt-4o", true));
        let q = p("claude-3-5-sonnet-20241022");
        assert_eq!((q.base.as_str(), q.dated), ("claude-3-5-sonnet", true));
        let q = p("claude-3-5-sonnet-latest");
        assert_eq!(
            (q.base.as_str(), q.dated, q.latest),
            ("claude-3-5-sonnet", false, true)
        );
        let q = p("gpt-3.5-turbo-0125");
        assert_eq!(q.base, "gpt-3-5-turbo");
        let q = p("command-r-08-2024");
        assert_eq!(q.base, "command-r");
        let q = p("models/gemini-2.0-flash-001");
        assert_eq!(
            (q.bare.as_str(), q.base.as_str()),
            ("gemini-2.0-flash-001", "gemini-2-0-flash")
        );
        let q = p("claude-3-5-haiku@20241022");
        assert_eq!(q.base, "claude-3-5-haiku");
        // Sizes and single-digit versions are not dates.
        assert!(!p("claude-sonnet-4-0").dated);
        assert!(!p("llama-3.1-405b").dated);
        assert!(!p("phi-4").dated);
    }

    #[test]
    fn bedrock_shapes() {
        let q = p("anthropic.claude-3-haiku-20240307-v1:0");
        assert_eq!(q.vendor.as_deref(), Some("anthropic"));
        assert!(q.bedrock);
        assert_eq!(q.canon, "claude-3-haiku-20240307");
        let q = p("us.anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert_eq!(q.canon, "claude-sonnet-4-5-20250929");
        let q = p("anthropic.claude-opus-4-6-v1");
        assert_eq!(q.canon, "claude-opus-4-6");
        let q = p("openai.gpt-oss-120b-1:0");
        assert_eq!(q.canon, "gpt-oss-120b");
        // A dotted version is not a Bedrock vendor.
        let q = p("gpt-4.1");
        assert!(!q.bedrock);
        assert_eq!(q.canon, "gpt-4-1");
        // `-v2` without the Bedrock shape stays: it names a model generation.
        assert_eq!(p("deepseek-v2").canon, "deepseek-v-2");
    }

    #[test]
    fn paths_and_tags() {
        let q = p("anthropic/claude-3.5-sonnet");
        assert_eq!(q.vendor.as_deref(), Some("anthropic"));
        assert_eq!(q.canon, "claude-3-5-sonnet");
        let q = p("meta-llama/llama-3.2-3b-instruct:free");
        assert!(q.tag_dropped);
        assert_eq!(q.canon, "llama-3-2-3b-instruct");
        assert_eq!(q.loose, "llama-3-2-3b");
        let q = p("llama3.2:3b");
        assert_eq!(q.canon, "llama-3-2-3b");
        assert!(!q.tag_dropped);
        let q = p("llama3.1:latest");
        assert_eq!(q.canon, "llama-3-1");
        let q = p("llama3.2:3b-instruct-q4_K_M");
        assert_eq!(q.canon, "llama-3-2-3b-instruct");
        assert!(q.tag_dropped);
        let q = p("gpt-35-turbo-0125");
        assert_eq!(q.base, "gpt-3-5-turbo");
        assert_eq!(
            path_vendor("~anthropic/claude-sonnet-latest"),
            Some("anthropic")
        );
        assert_eq!(path_vendor("gpt-4o"), None);
    }
}
