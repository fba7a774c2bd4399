//! Tolerant deserialisation of the models.dev `api.json` document into lean structs.
//!
//! Unknown fields are skipped without being built; a field of the wrong type (a price
//! written as a string it cannot read, `limit: "n/a"`) reads as missing instead of failing
//! the whole document; a provider or model that is not an object is skipped. Only a
//! document that is not JSON, or whose top level is not an object, is an error.

use std::fmt;
use std::marker::PhantomData;

use modelgate_types::Modality;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// For visitors whose value has a `Default`: every scalar reads as the default.
macro_rules! forward_scalars_to_default {
    () => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
}

/// The whole document: providers in document order.
#[derive(Debug, Default)]
pub(crate) struct RawDocument(pub Vec<(String, RawProvider)>);

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawProvider {
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient_strings")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    pub npm: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub api: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub doc: Option<String>,
    #[serde(deserialize_with = "object_map")]
    pub models: Vec<(String, RawModel)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawModel {
    #[serde(deserialize_with = "lenient")]
    pub name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub family: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub release_date: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub last_updated: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub knowledge: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub attachment: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub reasoning: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub tool_call: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub structured_output: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub temperature: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub open_weights: Option<bool>,
    #[serde(deserialize_with = "lenient")]
    pub status: Option<String>,
    #[serde(deserialize_with = "object")]
    pub cost: Option<RawCost>,
    #[serde(deserialize_with = "object")]
    pub limit: Option<RawLimit>,
    #[serde(deserialize_with = "object")]
    pub modalities: Option<RawModalities>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawCost {
    #[serde(deserialize_with = "lenient")]
    pub input: Option<f64>,
    #[serde(deserialize_with = "lenient")]
    pub output: Option<f64>,
    #[serde(deserialize_with = "lenient")]
    pub cache_read: Option<f64>,
    #[serde(deserialize_with = "lenient")]
    pub cache_write: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawLimit {
    #[serde(deserialize_with = "lenient")]
    pub context: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    pub output: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    pub input: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawModalities {
    #[serde(deserialize_with = "modality_list")]
    pub input: Vec<Modality>,
    #[serde(deserialize_with = "modality_list")]
    pub output: Vec<Modality>,
}

impl<'de> Deserialize<'de> for RawDocument {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The top level must be an object; anything else is not a catalog.
        struct DocVisitor;
        impl<'de> Visitor<'de> for DocVisitor {
            type Value = RawDocument;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of providers keyed by provider id")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawDocument, A::Error> {
                collect_objects(map).map(RawDocument)
            }
        }
        d.deserialize_map(DocVisitor)
    }
}

/// Reads `{ key: object, ... }` into pairs, skipping entries whose value is not an object.
fn collect_objects<'de, A, T>(mut map: A) -> Result<Vec<(String, T)>, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
    while let Some(key) = map.next_key::<String>()? {
        if let Obj(Some(value)) = map.next_value::<Obj<T>>()? {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// `{ key: object }` where a non-object value of the whole field reads as empty.
fn object_map<'de, D, T>(d: D) -> Result<Vec<(String, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<(String, T)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            collect_objects(map)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq).map(|()| Vec::new())
        }
        forward_scalars_to_default!();
    }
    d.deserialize_any(V(PhantomData))
}

/// An object read as `T`, or `None` when the value is not an object.
struct Obj<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(Obj)
    }
}

fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq).map(|()| None)
        }
        forward_scalars_to_default!();
    }
    d.deserialize_any(V(PhantomData))
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A scalar that can be read leniently from whatever JSON value is there.
pub(crate) trait Lenient: Sized {
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_str(_: &str) -> Option<Self> {
        None
    }
}

impl Lenient for bool {
    fn from_bool(b: bool) -> Option<Self> {
        Some(b)
    }
}

impl Lenient for String {
    fn from_str(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
}

impl Lenient for u64 {
    fn from_u64(v: u64) -> Option<Self> {
        Some(v)
    }
    fn from_i64(v: i64) -> Option<Self> {
        u64::try_from(v).ok()
    }
    fn from_f64(v: f64) -> Option<Self> {
        // Token counts written as 128000.0 still count; fractions and negatives do not.
        (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 1e18).then_some(v as u64)
    }
}

impl Lenient for f64 {
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f64)
    }
    fn from_f64(v: f64) -> Option<Self> {
        v.is_finite().then_some(v)
    }
    fn from_str(s: &str) -> Option<Self> {
        // Prices written as strings ("2.5") are read; anything else is missing.
        s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(T::from_bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(T::from_i64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(T::from_u64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(T::from_f64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::from_str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| None)
    }
}

/// Reads a scalar field; a value of another type reads as `None`.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Lenient,
{
    d.deserialize_any(LenientVisitor(PhantomData))
}

/// One element of a lenient list.
struct Item<T>(Option<T>);

impl<'de, T: Lenient> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient(d).map(Item)
    }
}

/// A list whose elements are read leniently, with `keep` deciding what stays.
fn list<'de, D, T, U>(d: D, keep: fn(T) -> Option<U>) -> Result<Vec<U>, D::Error>
where
    D: Deserializer<'de>,
    T: Lenient,
{
    struct V<T, U>(fn(T) -> Option<U>);
    impl<'de, T: Lenient, U> Visitor<'de> for V<T, U> {
        type Value = Vec<U>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4));
            while let Some(Item(item)) = seq.next_element::<Item<T>>()? {
                if let Some(u) = item.and_then(self.0) {
                    out.push(u);
                }
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map).map(|()| Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        forward_scalars_to_default!();
    }
    d.deserialize_any(V(keep))
}

fn lenient_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list::<D, String, String>(d, Some)
}

/// Modalities modelgate does not know (e.g. a future `3d`) are dropped, not errors.
fn modality_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Modality>, D::Error> {
    list::<D, String, Modality>(d, |s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_read_as_missing() {
        let json = br#"{
            "p": {"name": 7, "env": "X", "models": {
                "m": {"name": "M", "tool_call": "yes", "reasoning": true,
                      "cost": {"input": "2.5", "output": [1], "cache_read": null},
                      "limit": "n/a",
                      "modalities": {"input": ["text", "image", "hologram", 3], "output": "text"},
                      "future": {"deep": [1, {"x": 2}]}},
                "bad": 42
            }},
            "also-bad": []
        }"#;
        let doc: RawDocument = serde_json::from_slice(json).expect("parses");
        assert_eq!(doc.0.len(), 1);
        let (pid, p) = &doc.0[0];
        assert_eq!(pid, "p");
        assert_eq!(p.name, None);
        assert!(p.env.is_empty());
        assert_eq!(p.models.len(), 1);
        let m = &p.models[0].1;
        assert_eq!(m.tool_call, None);
        assert_eq!(m.reasoning, Some(true));
        let cost = m.cost.as_ref().expect("cost");
        assert_eq!(
            (cost.input, cost.output, cost.cache_read),
            (Some(2.5), None, None)
        );
        assert!(m.limit.is_none());
        let mods = m.modalities.as_ref().expect("modalities");
        assert_eq!(mods.input, vec![Modality::Text, Modality::Image]);
        assert!(mods.output.is_empty());
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert!(serde_json::from_slice::<RawDocument>(b"[]").is_err());
        assert!(serde_json::from_slice::<RawDocument>(b"{\"p\": {").is_err());
        assert!(serde_json::from_slice::<RawDocument>(b"{}").is_ok());
    }
}
