//! Event ids and canonical JSON.

use ring::digest;
use serde_json::Value;

/// Longest Meta id accepted verbatim as an id component; longer ones are hashed instead.
const MAX_PART_LEN: usize = 256;

/// Builds `<channel>:<kind>:<part>:<part>...` from Meta's own ids, or `None` when any part is
/// empty or could make the id ambiguous.
///
/// Parts are restricted to `[A-Za-z0-9._=+/-]` (what Meta's ids and our kind words use): `:`
/// never appears inside a part, so distinct part lists give distinct ids, and nothing can smuggle
/// a line break into the `Nats-Msg-Id` header. Callers fall back to [`hashed`] on `None`.
pub(crate) fn readable(channel: &str, kind: &str, parts: &[&str]) -> Option<String> {
    if !parts.iter().all(|p| is_safe_part(p)) {
        return None;
    }
    let mut id = format!("{channel}:{kind}");
    for part in parts {
        id.push(':');
        id.push_str(part);
    }
    Some(id)
}

fn is_safe_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_PART_LEN
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'+' | b'/' | b'-'))
}

/// `<channel>:<kind>:h:<sha256 hex>` over the canonical JSON of `scope` (which should contain the
/// item and the account it arrived for, so identical items of two accounts stay distinct).
pub(crate) fn hashed(channel: &str, kind: &str, scope: &Value) -> String {
    format!("{channel}:{kind}:h:{}", sha256_hex(&canonical_json(scope)))
}

/// First 16 hex digits of the canonical JSON's SHA-256: a discriminator inside a readable id.
pub(crate) fn short_hash(value: &Value) -> String {
    let mut hex = sha256_hex(&canonical_json(value));
    hex.truncate(16);
    hex
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes).as_ref())
}

/// Compact JSON with object keys sorted at every level.
///
/// Written out by hand instead of `serde_json::to_vec`: whether `Value` maps keep insertion
/// order depends on serde_json's `preserve_order` feature, which any crate in a binary can switch
/// on, and ids must not change with the dependency graph of whichever binary computes them.
pub(crate) fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_canonical(item, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping does not depend on any feature flag.
    match serde_json::to_vec(s) {
        Ok(bytes) => out.extend_from_slice(&bytes),
        // Serializing a &str cannot fail; keep the id distinct from other strings regardless.
        Err(_) => out.extend_from_slice(s.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_recursively() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": null, "y": true}], "c": "é"}});
        assert_eq!(
            String::from_utf8(canonical_json(&a)).unwrap(),
            r#"{"a":{"c":"é","d":[1,{"y":true,"z":null}]},"b":1}"#
        );
    }

    #[test]
    fn readable_rejects_ambiguous_or_empty_parts() {
        assert_eq!(
            readable("fb", "message", &["m_AbC-12_3"]).as_deref(),
            Some("fb:message:m_AbC-12_3")
        );
        assert_eq!(
            readable("wa", "message", &["wamid.HBgM+/x=="]).as_deref(),
            Some("wa:message:wamid.HBgM+/x==")
        );
        assert_eq!(readable("fb", "read", &["1", ""]), None);
        assert_eq!(readable("fb", "read", &["1:2", "3"]), None);
        assert_eq!(readable("fb", "message", &["m\r\nX-Evil: 1"]), None);
        assert_eq!(readable("fb", "message", &["é"]), None);
        assert_eq!(readable("fb", "message", &[&"a".repeat(MAX_PART_LEN + 1)]), None);
    }

    #[test]
    fn hashed_ids_depend_only_on_content() {
        let a = json!({"x": 1, "y": [1, 2]});
        let b: Value = serde_json::from_str(r#"{ "y": [1,2], "x": 1 }"#).unwrap();
        assert_eq!(hashed("fb", "x", &a), hashed("fb", "x", &b));
        assert_ne!(
            hashed("fb", "x", &a),
            hashed("fb", "x", &json!({"x": 2, "y": [1, 2]}))
        );
        let id = hashed("ig", "unhandled", &a);
        assert!(id.starts_with("ig:unhandled:h:"));
        assert_eq!(id.len(), "ig:unhandled:h:".len() + 64);
    }
}
