//! A contact's custom attributes (`plan: gold`, `order_id: 1042`) and the name the team gives
//! a contact. Attributes are strings, stored as one JSON object per contact.

use std::collections::{BTreeMap, HashMap};

pub const MAX_ATTRIBUTES: usize = 50;
const MAX_KEY_CHARS: usize = 64;
const MAX_VALUE_CHARS: usize = 1000;
const MAX_NAME_CHARS: usize = 200;

pub type Attributes = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidAttributes(pub String);

/// The stored attributes; an unreadable value reads as none (it is only ever written from a
/// checked map).
pub fn from_json(json: &str) -> Attributes {
    serde_json::from_str(json).unwrap_or_default()
}

pub fn to_json(attributes: &Attributes) -> String {
    serde_json::to_string(attributes).unwrap_or_else(|_| "{}".into())
}

fn key(raw: &str) -> Result<String, InvalidAttributes> {
    let key = raw.trim().to_lowercase();
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(key)
    } else {
        Err(InvalidAttributes(format!(
            "attribute names are 1-{MAX_KEY_CHARS} letters, digits or '_' (got {:?})",
            raw.chars().take(MAX_KEY_CHARS + 10).collect::<String>()
        )))
    }
}

/// `current` with `set` applied (an empty value removes its key) and `remove` removed.
pub fn apply(
    mut current: Attributes,
    set: &HashMap<String, String>,
    remove: &[String],
) -> Result<Attributes, InvalidAttributes> {
    for k in remove {
        current.remove(&key(k)?);
    }
    for (k, v) in set {
        let k = key(k)?;
        let v = v.trim();
        if v.chars().count() > MAX_VALUE_CHARS || v.chars().any(|c| c.is_control() && c != '\n') {
            return Err(InvalidAttributes(format!(
                "attribute {k}: values are up to {MAX_VALUE_CHARS} characters without control characters"
            )));
        }
        if v.is_empty() {
            current.remove(&k);
        } else {
            current.insert(k, v.to_string());
        }
    }
    if current.len() > MAX_ATTRIBUTES {
        return Err(InvalidAttributes(format!(
            "a contact has at most {MAX_ATTRIBUTES} attributes"
        )));
    }
    Ok(current)
}

/// A name the team gives a contact: trimmed, 1-200 characters, no control characters. `None`
/// for an empty one, which hands the name back to Meta.
pub fn display_name(raw: &str) -> Result<Option<String>, InvalidAttributes> {
    let name = raw.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(InvalidAttributes(format!(
            "display_name must be at most {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(Some(name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attributes_are_set_removed_and_checked() {
        let current = from_json(r#"{"plan":"silver","city":"Lyon"}"#);
        let next = apply(
            current,
            &map(&[("Plan", " gold "), ("city", ""), ("order_id", "1042")]),
            &["missing".into()],
        )
        .unwrap();
        assert_eq!(to_json(&next), r#"{"order_id":"1042","plan":"gold"}"#);
        assert!(apply(Attributes::new(), &map(&[("two words", "x")]), &[]).is_err());
        assert!(apply(Attributes::new(), &map(&[("k", &"x".repeat(1001))]), &[]).is_err());
        assert!(apply(Attributes::new(), &map(&[("k", "a\u{7}b")]), &[]).is_err());
        let many: HashMap<String, String> = (0..51).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(apply(Attributes::new(), &many, &[]).is_err());
        assert_eq!(from_json("not json"), Attributes::new());
    }

    #[test]
    fn names_are_trimmed_and_empty_means_meta_s() {
        assert_eq!(display_name("  Ana S. ").unwrap(), Some("Ana S.".into()));
        assert_eq!(display_name("   ").unwrap(), None);
        assert!(display_name("a\nb").is_err());
        assert!(display_name(&"x".repeat(201)).is_err());
    }
}
