//! The query engine: search, filter, sort and paginate over an indexed model set.
//!
//! Pure and synchronous: it works on a pre-built [`ModelSet`] (lower-cased search fields
//! computed once per snapshot), so a query is one pass over the set plus a sort of the
//! matches.

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use modelgate_types::{
    Cursor, FilterError, Model, ModelQuery, Page, Pagination, SortField, SortKey,
};
use serde_json::Value;

/// Separates the fields of [`IndexedModel::hay`]; removed from queries, so a match
/// never spans two fields.
const FIELD_SEP: char = '\0';

/// A model with its search fields pre-lowercased.
#[derive(Debug, Clone)]
pub struct IndexedModel {
    pub model: Arc<Model>,
    /// `"{provider}/"`, lower-cased: queries written `openai/gpt-4o` match the bare id.
    provider_prefix_lc: String,
    /// `id \0 name \0 description`, lower-cased: one substring search per model tells
    /// the best field that matches (the first occurrence is in the earliest field).
    hay: String,
    id_end: usize,
    name_end: usize,
}

/// A lower-cased search query with its substring searchers built once per query (not
/// once per model).
#[derive(Debug)]
struct Needle {
    text: String,
    finder: memchr::memmem::Finder<'static>,
    /// `("{prefix}/", rest)` when the query is written `provider/model`: for models of
    /// that provider, `rest` is matched against the bare id.
    qualified: Option<(String, String, memchr::memmem::Finder<'static>)>,
    /// Present only when the query has more than one word: a one-word query's "every
    /// word appears" test is the substring test already made.
    words: Option<Vec<memchr::memmem::Finder<'static>>>,
}

impl Needle {
    fn new(q: &str) -> Needle {
        let text: String = q.to_lowercase().replace(FIELD_SEP, "");
        let finder = |s: &str| memchr::memmem::Finder::new(s.as_bytes()).into_owned();
        let qualified = text
            .split_once('/')
            .map(|(prefix, rest)| (format!("{prefix}/"), rest.to_owned(), finder(rest)));
        let words: Vec<_> = text.split_whitespace().map(finder).collect();
        Needle {
            finder: finder(&text),
            qualified,
            words: (words.len() > 1).then_some(words),
            text,
        }
    }
}

impl IndexedModel {
    pub fn new(model: Arc<Model>) -> Self {
        let clean = |s: &str| s.to_lowercase().replace(FIELD_SEP, " ");
        let mut hay = clean(&model.id);
        let id_end = hay.len();
        hay.push(FIELD_SEP);
        hay.push_str(&clean(&model.name));
        let name_end = hay.len();
        hay.push(FIELD_SEP);
        hay.push_str(&clean(model.description.as_deref().unwrap_or("")));
        IndexedModel {
            provider_prefix_lc: format!("{}/", model.provider.to_lowercase()),
            hay,
            id_end,
            name_end,
            model,
        }
    }

    fn id_lc(&self) -> &str {
        &self.hay[..self.id_end]
    }

    /// Relevance of this model for a query: lower is better; `None` is no match. Exact
    /// id, then id prefix, then id substring, then name, then description, then "every
    /// word appears somewhere".
    fn relevance(&self, needle: &Needle) -> Option<u32> {
        // Ids are often written with their provider (`openai/gpt-4o`): match the bare id.
        let (q, finder) = match &needle.qualified {
            Some((prefix, rest, f)) if *prefix == self.provider_prefix_lc => (rest.as_str(), f),
            _ => (needle.text.as_str(), &needle.finder),
        };
        if self.id_lc() == q {
            return Some(0);
        }
        match finder.find(self.hay.as_bytes()) {
            Some(0) => return Some(1),
            Some(p) if p < self.id_end => return Some(2),
            Some(p) if p < self.name_end => return Some(3),
            Some(_) => return Some(4),
            None => {}
        }
        let words = needle.words.as_ref()?;
        words
            .iter()
            .all(|w| w.find(self.hay.as_bytes()).is_some())
            .then_some(5)
    }
}

/// Fields with a pre-sorted order: every [`SortField`] but relevance.
const ORDERED_FIELDS: usize = 9;

fn field_slot(field: SortField) -> Option<usize> {
    Some(match field {
        SortField::Id => 0,
        SortField::Name => 1,
        SortField::Provider => 2,
        SortField::ContextLength => 3,
        SortField::MaxTokens => 4,
        SortField::InputCost => 5,
        SortField::OutputCost => 6,
        SortField::CreatedAt => 7,
        SortField::UpdatedAt => 8,
        SortField::Relevance => return None,
    })
}

/// Models in canonical order (provider, id), indexed for search.
///
/// Each sort order (field, direction) is computed at most once per set, on first use,
/// as a permutation of `items`: a sorted query then walks that permutation and filters,
/// instead of sorting its matches on every request.
#[derive(Debug, Clone, Default)]
pub struct ModelSet {
    items: Vec<IndexedModel>,
    /// `[field][descending]` → indices into `items` in that order (ties in canonical
    /// order, nulls last), built lazily.
    orders: [[OnceLock<Vec<u32>>; 2]; ORDERED_FIELDS],
}

impl ModelSet {
    /// Builds the set, sorting into canonical order.
    pub fn new(models: impl IntoIterator<Item = Arc<Model>>) -> Self {
        let mut items: Vec<IndexedModel> = models.into_iter().map(IndexedModel::new).collect();
        items.sort_by(|a, b| canonical(&a.model, &b.model));
        ModelSet {
            items,
            orders: Default::default(),
        }
    }

    /// Indices of `items` sorted by `field` (stable, so ties keep canonical order);
    /// `None` for relevance, which depends on the query.
    fn order(&self, field: SortField, descending: bool) -> Option<&[u32]> {
        let slot = field_slot(field)?;
        let order = self.orders[slot][usize::from(descending)].get_or_init(|| {
            let mut idx: Vec<u32> = (0..self.items.len() as u32).collect();
            idx.sort_by(|&a, &b| {
                compare(
                    &sort_value(&self.items[a as usize].model, field, 0),
                    &sort_value(&self.items[b as usize].model, field, 0),
                    descending,
                )
            });
            idx
        });
        Some(order)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Model>> {
        self.items.iter().map(|i| &i.model)
    }

    /// Runs a query: filter, rank/sort, paginate.
    pub fn query(&self, q: &ModelQuery) -> Result<Page<Arc<Model>>, FilterError> {
        let sort = q.effective_sort();
        if sort.field == SortField::Relevance && q.q.is_none() {
            return Err(FilterError::new(
                "sort",
                "relevance",
                "sorting by relevance needs a search query 'q'",
            ));
        }
        let needle = q.q.as_deref().map(Needle::new);
        let mut hits: Vec<(&IndexedModel, u32)> = Vec::new();
        let items = &self.items;
        let mut visit = |i: usize| {
            let item = &items[i];
            if !matches_filters(&item.model, q) {
                return;
            }
            let score = match &needle {
                Some(n) => match item.relevance(n) {
                    Some(s) => s,
                    None => return,
                },
                None => 0,
            };
            hits.push((item, score));
        };
        // Walk the items in the query's order, so the matches come out sorted; ties keep
        // the canonical order, the tie-break of every sort.
        match self.order(sort.field, sort.descending) {
            Some(order) => order.iter().for_each(|&i| visit(i as usize)),
            None => (0..items.len()).for_each(&mut visit),
        }
        if sort.field == SortField::Relevance {
            // Scores are small integers; a stable sort keeps canonical order among equals.
            if sort.descending {
                hits.sort_by_key(|h| std::cmp::Reverse(h.1));
            } else {
                hits.sort_by_key(|h| h.1);
            }
        }
        let total = hits.len();
        let start = match &q.cursor {
            Some(c) => {
                if c.sort != sort.to_string() {
                    return Err(FilterError::new(
                        "cursor",
                        "",
                        format!(
                            "cursor was issued for sort '{}' but this request sorts by '{sort}'",
                            c.sort
                        ),
                    ));
                }
                let key = CursorKey::from_cursor(c);
                // `hits` is in the cursor's order, so "after the cursor" is a suffix.
                hits.partition_point(|(m, s)| {
                    !after(
                        &sort_value(&m.model, sort.field, *s),
                        &m.model,
                        &key,
                        sort.descending,
                    )
                })
            }
            None => q.offset.min(total),
        };
        let end = start.saturating_add(q.limit).min(total);
        let items: Vec<Arc<Model>> = hits[start..end]
            .iter()
            .map(|(m, _)| m.model.clone())
            .collect();
        let has_next = end < total;
        let next_cursor = if has_next {
            hits.get(end.wrapping_sub(1))
                .filter(|_| end > start)
                .map(|(m, s)| {
                    Cursor {
                        sort: sort.to_string(),
                        value: sort_value(&m.model, sort.field, *s).to_json(),
                        provider: m.model.provider.clone(),
                        id: m.model.id.clone(),
                    }
                    .encode()
                })
        } else {
            None
        };
        Ok(Page {
            items,
            pagination: Pagination {
                limit: q.limit,
                offset: start,
                total,
                has_next,
                next_offset: has_next.then_some(end),
                next_cursor,
            },
        })
    }

    /// Every model with exactly this id (any provider).
    pub fn find_id(&self, id: &str) -> Vec<Arc<Model>> {
        self.items
            .iter()
            .filter(|i| i.model.id == id)
            .map(|i| i.model.clone())
            .collect()
    }

    /// The model `(provider, id)`.
    pub fn get(&self, provider: &str, id: &str) -> Option<Arc<Model>> {
        self.items
            .binary_search_by(|i| {
                i.model
                    .provider
                    .as_str()
                    .cmp(provider)
                    .then_with(|| i.model.id.as_str().cmp(id))
            })
            .ok()
            .map(|idx| self.items[idx].model.clone())
    }

    /// Up to `n` ids closest to `id` (edit distance, substring matches first), for
    /// "did you mean" suggestions.
    pub fn suggest(&self, id: &str, n: usize) -> Vec<String> {
        let target = id.to_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .items
            .iter()
            .map(|i| {
                let id_lc = i.id_lc();
                let d = if id_lc.contains(&target) || target.contains(id_lc) {
                    id_lc.len().abs_diff(target.len()) / 4
                } else {
                    levenshtein(id_lc, &target)
                };
                (d, i.model.id.as_str())
            })
            .collect();
        scored.sort();
        let mut out: Vec<String> = Vec::new();
        for (d, id) in scored {
            if out.len() >= n || d > target.len().max(4) {
                break;
            }
            if !out.iter().any(|x| x == id) {
                out.push(id.to_owned());
            }
        }
        out
    }
}

fn canonical(a: &Model, b: &Model) -> Ordering {
    a.provider.cmp(&b.provider).then_with(|| a.id.cmp(&b.id))
}

fn matches_filters(m: &Model, q: &ModelQuery) -> bool {
    if !q.provider.is_empty() && !q.provider.iter().any(|p| p == &m.provider) {
        return false;
    }
    if q.supports_chat.is_some_and(|v| v != m.supports_chat) {
        return false;
    }
    if q.supports_completion
        .is_some_and(|v| v != m.supports_completion)
    {
        return false;
    }
    if let Some(min) = q.min_context {
        if m.context_length.is_none_or(|c| c < min) {
            return false;
        }
    }
    for (limit, value) in [
        (q.max_cost, m.input_cost),
        (q.max_input_cost, m.input_cost),
        (q.max_output_cost, m.output_cost),
    ] {
        if let Some(limit) = limit {
            // An unknown price never passes a price ceiling.
            if value.is_none_or(|v| v > limit) {
                return false;
            }
        }
    }
    if !q.capabilities.iter().all(|c| m.has_capability(*c)) {
        return false;
    }
    if let Some(src) = q.source {
        if !src.admits(m.source) {
            return false;
        }
    }
    true
}

/// A sort value; `Null` (unknown) sorts last in either direction.
#[derive(Debug, Clone, PartialEq)]
enum SortVal<'a> {
    Num(f64),
    Str(&'a str),
    Null,
}

impl SortVal<'_> {
    fn to_json(&self) -> Value {
        match self {
            SortVal::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            SortVal::Str(s) => Value::String((*s).to_owned()),
            SortVal::Null => Value::Null,
        }
    }
}

fn sort_value(m: &Model, field: SortField, score: u32) -> SortVal<'_> {
    let num = |v: Option<f64>| v.map_or(SortVal::Null, SortVal::Num);
    match field {
        SortField::Id => SortVal::Str(&m.id),
        SortField::Name => SortVal::Str(&m.name),
        SortField::Provider => SortVal::Str(&m.provider),
        SortField::ContextLength => num(m.context_length.map(|v| v as f64)),
        SortField::MaxTokens => num(m.max_tokens.map(|v| v as f64)),
        SortField::InputCost => num(m.input_cost),
        SortField::OutputCost => num(m.output_cost),
        SortField::CreatedAt => m.created_at.as_deref().map_or(SortVal::Null, SortVal::Str),
        SortField::UpdatedAt => m.updated_at.as_deref().map_or(SortVal::Null, SortVal::Str),
        SortField::Relevance => SortVal::Num(f64::from(score)),
    }
}

/// Orders two values: nulls last always, otherwise ascending or descending.
fn compare(a: &SortVal<'_>, b: &SortVal<'_>, descending: bool) -> Ordering {
    let ord = match (a, b) {
        (SortVal::Null, SortVal::Null) => return Ordering::Equal,
        (SortVal::Null, _) => return Ordering::Greater,
        (_, SortVal::Null) => return Ordering::Less,
        (SortVal::Num(x), SortVal::Num(y)) => x.total_cmp(y),
        (SortVal::Str(x), SortVal::Str(y)) => x.cmp(y),
        (SortVal::Num(_), SortVal::Str(_)) => Ordering::Less,
        (SortVal::Str(_), SortVal::Num(_)) => Ordering::Greater,
    };
    if descending {
        ord.reverse()
    } else {
        ord
    }
}

/// The position a cursor names, decoded once.
struct CursorKey {
    value: Value,
    provider: String,
    id: String,
}

impl CursorKey {
    fn from_cursor(c: &Cursor) -> Self {
        CursorKey {
            value: c.value.clone(),
            provider: c.provider.clone(),
            id: c.id.clone(),
        }
    }

    fn sort_val(&self) -> SortVal<'_> {
        match &self.value {
            Value::Number(n) => n.as_f64().map_or(SortVal::Null, SortVal::Num),
            Value::String(s) => SortVal::Str(s),
            _ => SortVal::Null,
        }
    }
}

/// Whether an item comes strictly after the cursor position in the query's order.
fn after(v: &SortVal<'_>, m: &Model, key: &CursorKey, descending: bool) -> bool {
    match compare(v, &key.sort_val(), descending) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => {
            (m.provider.as_str(), m.id.as_str()) > (key.provider.as_str(), key.id.as_str())
        }
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The sort used by listings that do not ask for one.
pub fn default_sort() -> SortKey {
    SortKey {
        field: SortField::Provider,
        descending: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelgate_types::Capability;

    fn model(provider: &str, id: &str, ctx: Option<u64>, cost: Option<f64>) -> Arc<Model> {
        let mut m = Model::new(provider, id);
        m.context_length = ctx;
        m.input_cost = cost;
        m.supports_chat = true;
        Arc::new(m)
    }

    fn set() -> ModelSet {
        ModelSet::new(vec![
            model("openai", "gpt-4o", Some(128_000), Some(0.0025)),
            model("openai", "gpt-4o-mini", Some(128_000), Some(0.00015)),
            model("openai", "chatgpt-4o-latest", Some(128_000), None),
            model(
                "anthropic",
                "claude-3-opus-20240229",
                Some(200_000),
                Some(0.015),
            ),
            model("groq", "llama-3.1-8b-instant", None, Some(0.00005)),
        ])
    }

    fn q(pairs: &[(&str, &str)]) -> ModelQuery {
        ModelQuery::from_pairs(pairs.iter().copied()).expect("valid query")
    }

    fn ids(p: &Page<Arc<Model>>) -> Vec<&str> {
        p.items.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn ranking_exact_prefix_substring() {
        let p = set().query(&q(&[("q", "gpt-4o")])).expect("ok");
        assert_eq!(ids(&p), ["gpt-4o", "gpt-4o-mini", "chatgpt-4o-latest"]);
        let p = set().query(&q(&[("q", "openai/gpt-4o")])).expect("ok");
        assert_eq!(ids(&p)[0], "gpt-4o");
    }

    #[test]
    fn ranking_id_then_name_then_description_then_words() {
        let mk = |id: &str, name: &str, desc: &str| {
            let mut m = Model::new("p", id);
            m.name = name.to_owned();
            m.description = Some(desc.to_owned());
            Arc::new(m)
        };
        let set = ModelSet::new(vec![
            mk("a-desc", "A", "Fast Turbo model"),
            mk("b-name", "The Turbo One", ""),
            mk("c-words", "Fast", "a model that is turbo-charged"),
            mk("turbo", "Turbo", ""),
            mk("turbo-2", "", ""),
            mk("x-turbo", "", ""),
            mk("none", "Nothing", "at all"),
        ]);
        let p = set.query(&q(&[("q", "TURBO")])).expect("ok");
        assert_eq!(
            ids(&p),
            ["turbo", "turbo-2", "x-turbo", "b-name", "a-desc", "c-words"]
        );
        // Every word somewhere, in no single field: rank last; a missing word: no match.
        let p = set.query(&q(&[("q", "fast turbo-charged")])).expect("ok");
        assert_eq!(ids(&p), ["c-words"]);
        let p = set.query(&q(&[("q", "fast zebra")])).expect("ok");
        assert!(p.items.is_empty());
        // `provider/id` matches the bare id of that provider only; NUL never spans fields.
        let p = set.query(&q(&[("q", "p/turbo")])).expect("ok");
        assert_eq!(ids(&p)[0], "turbo");
        let p = set.query(&q(&[("q", "other/turbo")])).expect("ok");
        assert!(p.items.is_empty());
        let p = set.query(&q(&[("q", "desc\0a")])).expect("ok");
        assert!(p.items.is_empty(), "{:?}", ids(&p));
    }

    #[test]
    fn filters_and_nulls() {
        let p = set().query(&q(&[("min_context", "150000")])).expect("ok");
        assert_eq!(ids(&p), ["claude-3-opus-20240229"]);
        let p = set().query(&q(&[("max_cost", "0.001")])).expect("ok");
        assert_eq!(ids(&p), ["llama-3.1-8b-instant", "gpt-4o-mini"]);
        let p = set().query(&q(&[("sort", "-input_cost")])).expect("ok");
        assert_eq!(ids(&p).last(), Some(&"chatgpt-4o-latest"), "unknown last");
        let p = set().query(&q(&[("capabilities", "vision")])).expect("ok");
        assert!(p.items.is_empty());
        let _ = Capability::Vision;
    }

    #[test]
    fn cursor_is_stable_when_items_are_added_before_it() {
        let s = set();
        let first = s.query(&q(&[("limit", "2"), ("sort", "id")])).expect("ok");
        assert_eq!(ids(&first), ["chatgpt-4o-latest", "claude-3-opus-20240229"]);
        let cursor = first.pagination.next_cursor.clone().expect("cursor");
        // A refresh adds a model that sorts before the cursor: the next page is unchanged.
        let mut models: Vec<Arc<Model>> = s.iter().cloned().collect();
        models.push(model("openai", "aaa-new", None, None));
        let s2 = ModelSet::new(models);
        let next = s2
            .query(&q(&[("limit", "2"), ("sort", "id"), ("cursor", &cursor)]))
            .expect("ok");
        assert_eq!(ids(&next), ["gpt-4o", "gpt-4o-mini"]);
        let bad = s2.query(&q(&[("sort", "-id"), ("cursor", &cursor)]));
        assert_eq!(bad.expect_err("sort mismatch").parameter, "cursor");
    }

    #[test]
    fn offset_pagination() {
        let p = set()
            .query(&q(&[("limit", "2"), ("offset", "4")]))
            .expect("ok");
        assert_eq!(p.items.len(), 1);
        assert!(!p.pagination.has_next);
        assert_eq!(p.pagination.total, 5);
    }

    #[test]
    fn suggestions() {
        let s = set();
        let sug = s.suggest("gpt-4", 3);
        assert!(sug.contains(&"gpt-4o".to_owned()), "{sug:?}");
        assert!(s.get("openai", "gpt-4o").is_some());
        assert!(s.get("openai", "gpt-5").is_none());
    }

    /// The pre-sorted orders give exactly what a stable sort of the matches gives, for
    /// every field and direction, with nulls and ties, and cursors walk them without gaps.
    #[test]
    fn presorted_orders_equal_a_stable_sort_of_the_matches() {
        let mut models = Vec::new();
        for i in 0..60u64 {
            let mut m = Model::new(
                ["openai", "anthropic", "groq"][(i % 3) as usize],
                format!("m-{:02}", (i * 37) % 60),
            );
            m.name = format!("Model {}", i % 7);
            m.context_length = (i % 5 != 0).then_some(1_000 * (i % 4));
            m.max_tokens = (i % 3 != 0).then_some(10 * (i % 6));
            m.input_cost = (i % 4 != 0).then_some((i % 5) as f64 / 1000.0);
            m.output_cost = (i % 6 != 0).then_some((i % 3) as f64 / 100.0);
            m.created_at = (i % 7 != 0).then(|| format!("2024-0{}-01T00:00:00Z", 1 + i % 9));
            m.updated_at = m.created_at.clone();
            m.supports_chat = i % 2 == 0;
            models.push(Arc::new(m));
        }
        let set = ModelSet::new(models);
        for field in SortField::ALL
            .into_iter()
            .filter(|f| *f != SortField::Relevance)
        {
            for descending in [false, true] {
                let sort = format!("{}{}", if descending { "-" } else { "" }, field.as_str());
                for extra in [None, Some(("supports_chat", "true")), Some(("q", "m-1"))] {
                    let mut pairs = vec![("sort", sort.as_str()), ("limit", "1000")];
                    pairs.extend(extra);
                    let query = q(&pairs);
                    let got = set.query(&query).expect("ok");
                    let mut want: Vec<&Arc<Model>> = set
                        .iter()
                        .filter(|m| matches_filters(m, &query))
                        .filter(|m| extra != Some(("q", "m-1")) || m.id.contains("m-1"))
                        .collect();
                    want.sort_by(|a, b| {
                        compare(
                            &sort_value(a, field, 0),
                            &sort_value(b, field, 0),
                            descending,
                        )
                    });
                    let want: Vec<(&str, &str)> = want
                        .iter()
                        .map(|m| (m.provider.as_str(), m.id.as_str()))
                        .collect();
                    let got_ids: Vec<(&str, &str)> = got
                        .items
                        .iter()
                        .map(|m| (m.provider.as_str(), m.id.as_str()))
                        .collect();
                    assert_eq!(got_ids, want, "{sort} {extra:?}");

                    // Cursor pages of 7 concatenate to the same order.
                    let mut walked = Vec::new();
                    let mut cursor: Option<String> = None;
                    loop {
                        let mut pairs = vec![("sort", sort.as_str()), ("limit", "7")];
                        pairs.extend(extra);
                        if let Some(c) = &cursor {
                            pairs.push(("cursor", c.as_str()));
                        }
                        let page = set.query(&q(&pairs)).expect("page");
                        walked.extend(
                            page.items
                                .iter()
                                .map(|m| (m.provider.clone(), m.id.clone())),
                        );
                        match page.pagination.next_cursor {
                            Some(c) => cursor = Some(c),
                            None => break,
                        }
                    }
                    let walked: Vec<(&str, &str)> = walked
                        .iter()
                        .map(|(p, i)| (p.as_str(), i.as_str()))
                        .collect();
                    assert_eq!(walked, want, "cursor walk {sort} {extra:?}");
                }
            }
        }
    }
}
