//! Serializing a payload the way Meta puts it on the wire.
//!
//! Meta signs the *escaped* serialization it actually sends: every non-ASCII character becomes a
//! `\uXXXX` escape (UTF-16 code units, so emoji become surrogate pairs) and `/` is commonly sent
//! as `\/`. A receiver that re-serializes before verifying breaks on exactly these bytes, so the
//! simulator writes JSON itself instead of trusting `serde_json`'s (UTF-8, unescaped `/`) output.

use serde_json::Value;

/// How to turn a payload into body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Escape every non-ASCII char as `\uXXXX` (Meta: yes).
    pub ascii_only: bool,
    /// Escape `/` as `\/`. Observed in Meta bodies but not documented (UNCERTAIN in
    /// meta-platform.md §1.2), hence a toggle.
    pub escape_slash: bool,
}

impl Encoding {
    /// Meta's wire form: ASCII-only with `\/`.
    pub const META: Encoding = Encoding {
        ascii_only: true,
        escape_slash: true,
    };
    /// Plain UTF-8 JSON as most libraries write it: what a receiver that re-serializes would
    /// produce, used to send a body that differs from the signed one.
    pub const RAW_UTF8: Encoding = Encoding {
        ascii_only: false,
        escape_slash: false,
    };
}

impl Default for Encoding {
    fn default() -> Self {
        Self::META
    }
}

/// Serialize `value` compactly (no whitespace) under `encoding`.
pub fn encode(value: &Value, encoding: Encoding) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, encoding);
    out.into_bytes()
}

fn write_value(out: &mut String, value: &Value, enc: Encoding) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // serde_json's Number Display is already valid JSON (finite by construction).
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s, enc),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, enc);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k, enc);
                out.push(':');
                write_value(out, v, enc);
            }
            out.push('}');
        }
    }
}

fn push_u16_escape(out: &mut String, unit: u16) {
    // Lowercase hex, as PHP's json_encode and Python's json.dumps write it.
    out.push_str(&format!("\\u{unit:04x}"));
}

fn write_string(out: &mut String, s: &str, enc: Encoding) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if enc.escape_slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => push_u16_escape(out, c as u16),
            c if enc.ascii_only && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    push_u16_escape(out, *unit);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: &Value) -> String {
        String::from_utf8(encode(v, Encoding::META)).unwrap()
    }

    #[test]
    fn latin1_is_escaped_lowercase() {
        assert_eq!(meta(&json!("é")), r#""\u00e9""#);
        assert_eq!(meta(&json!("Jürgen Weiß")), r#""J\u00fcrgen Wei\u00df""#);
    }

    #[test]
    fn astral_chars_become_surrogate_pairs() {
        // U+1F600 GRINNING FACE = D83D DE00 in UTF-16.
        assert_eq!(meta(&json!("😀")), r#""\ud83d\ude00""#);
        // ❤ is in the BMP: a single escape.
        assert_eq!(meta(&json!("❤")), r#""\u2764""#);
    }

    #[test]
    fn slash_escaping_is_a_toggle() {
        let v = json!({"url": "https://cdn.example/x.jpg"});
        assert_eq!(meta(&v), r#"{"url":"https:\/\/cdn.example\/x.jpg"}"#);
        let no_slash = Encoding {
            escape_slash: false,
            ..Encoding::META
        };
        assert_eq!(
            String::from_utf8(encode(&v, no_slash)).unwrap(),
            r#"{"url":"https://cdn.example/x.jpg"}"#
        );
    }

    #[test]
    fn output_is_ascii_and_parses_back_to_the_same_value() {
        let v = json!({
            "text": "Olá, ¿qué tal? 😀👍🏽 李娜 Ольга \"quoted\" back\\slash /path\n\t\u{1}",
            "n": [1, -2, 3.5, 1767225600123_i64, null, true, false],
            "nested": {"emoji": "🇧🇷", "empty": "", "obj": {}}
        });
        let bytes = encode(&v, Encoding::META);
        assert!(bytes.is_ascii());
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, v);
        // And the raw form is different bytes for the same value.
        let raw = encode(&v, Encoding::RAW_UTF8);
        assert!(!raw.is_ascii());
        assert_ne!(raw, bytes);
        assert_eq!(serde_json::from_slice::<Value>(&raw).unwrap(), v);
    }

    #[test]
    fn raw_utf8_matches_serde_json() {
        let v = json!({"a": "é/😀", "b": [1, 2], "c": "\u{7f}\u{1f}"});
        assert_eq!(encode(&v, Encoding::RAW_UTF8), serde_json::to_vec(&v).unwrap());
    }
}
