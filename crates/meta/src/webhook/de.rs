//! Lenient field deserializers.
//!
//! Meta is inconsistent about scalar types across products and API versions (`app_id` and
//! `sticker_id` are numbers, WhatsApp timestamps are strings, `previous_owner_app_id` may be
//! null). A field of the wrong type should not make the whole item unmappable, so these accept
//! any JSON and yield `None` for what they cannot use.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string, or a number rendered in decimal (ids such as `app_id` arrive as either).
pub(crate) fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// An integer given as a JSON number or a decimal string (WhatsApp sends `"1767225600"`).
pub(crate) fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().or_else(|| {
            // Saturating float-to-int cast: a fractional timestamp keeps its integer part.
            n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A boolean, accepting Meta's occasional `1`/`0` and `"true"`/`"false"`; anything else is false.
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_i64().is_some_and(|i| i != 0),
        Value::String(s) => s == "true" || s == "1",
        _ => false,
    })
}

/// A plain string; numbers are rendered, other types dropped.
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    id(d)
}

/// An optional nested object that is dropped, instead of failing its parent, when malformed.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    // serde's derived structs also accept arrays (fields by position): only objects are meant.
    Ok(match Value::deserialize(d)? {
        value @ Value::Object(_) => T::deserialize(&value).ok(),
        _ => None,
    })
}

/// A list of objects whose malformed elements are skipped rather than failing the whole list.
pub(crate) fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .iter()
            .filter(|v| v.is_object())
            .filter_map(|v| T::deserialize(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A list of strings (such as `delivery.mids`), skipping anything that is not one.
pub(crate) fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}
