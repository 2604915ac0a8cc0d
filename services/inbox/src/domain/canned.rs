//! Canned responses: a short code (`/hours`) and a text with placeholders, `{{contact.name}}`,
//! each optionally with a fallback after a bar (`{{contact.first_name|there}}`); spaces inside
//! the braces are ignored. The syntax and rules are those of the automation crate's reply
//! templates (`scifer-automation::template`), so a text reads the same wherever it is used:
//!
//! - a known placeholder without a value renders its fallback, or nothing, and is reported as
//!   missing so the composer can point at it;
//! - an unknown placeholder is left exactly as written; storing a text with one is refused;
//! - `{{` without a closing `}}` is plain text;
//! - values are inserted verbatim and never expanded again.

/// Longest canned text (the longest message any channel takes is WhatsApp's 4096).
pub const MAX_CONTENT_CHARS: usize = 4096;
const MAX_SHORT_CODE_CHARS: usize = 50;

pub const CONTACT_NAME: &str = "contact.name";
pub const CONTACT_FIRST_NAME: &str = "contact.first_name";
pub const AGENT_NAME: &str = "agent.name";
pub const AGENT_FIRST_NAME: &str = "agent.first_name";
pub const BUSINESS_NAME: &str = "business.name";
/// `contact.custom.<key>`: one of the contact's custom attributes.
pub const CONTACT_CUSTOM_PREFIX: &str = "contact.custom.";

const NAMES: [&str; 5] = [
    CONTACT_NAME,
    CONTACT_FIRST_NAME,
    AGENT_NAME,
    AGENT_FIRST_NAME,
    BUSINESS_NAME,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCanned(pub String);

/// A short code: lowercase letters, digits, '-' and '_', at most 50, typed after a '/' (which is
/// not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortCode(String);

impl ShortCode {
    pub fn parse(raw: &str) -> Result<Self, InvalidCanned> {
        let code = raw.trim().trim_start_matches('/').to_lowercase();
        let valid = !code.is_empty()
            && code.chars().count() <= MAX_SHORT_CODE_CHARS
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(code))
        } else {
            Err(InvalidCanned(format!(
                "short_code must be 1-{MAX_SHORT_CODE_CHARS} letters, digits, '-' or '_'"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A canned text: trimmed, not empty, at most [`MAX_CONTENT_CHARS`], only known placeholders.
pub fn parse_content(raw: &str) -> Result<String, InvalidCanned> {
    let content = raw.trim();
    if content.is_empty() {
        return Err(InvalidCanned("content is required".into()));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(InvalidCanned(format!(
            "content must be at most {MAX_CONTENT_CHARS} characters"
        )));
    }
    let unknown: Vec<&str> = segments(content)
        .into_iter()
        .filter_map(|s| match s {
            Segment::Placeholder { name, .. } if !is_known(name) => Some(name),
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        return Err(InvalidCanned(format!(
            "unknown placeholders: {}; use {}, or contact.custom.<attribute>",
            unknown.join(", "),
            NAMES.join(", ")
        )));
    }
    Ok(content.to_string())
}

fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
        || name
            .strip_prefix(CONTACT_CUSTOM_PREFIX)
            .is_some_and(|key| !key.is_empty())
}

/// The values a canned text can refer to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Values {
    pub contact_name: String,
    pub agent_name: String,
    pub business_name: String,
    pub custom: std::collections::BTreeMap<String, String>,
}

impl Values {
    /// `None` for a name that is not a placeholder; `Some("")` for a known one without a value.
    fn lookup(&self, name: &str) -> Option<&str> {
        Some(match name {
            CONTACT_NAME => &self.contact_name,
            CONTACT_FIRST_NAME => first_word(&self.contact_name),
            AGENT_NAME => &self.agent_name,
            AGENT_FIRST_NAME => first_word(&self.agent_name),
            BUSINESS_NAME => &self.business_name,
            _ => {
                let key = name.strip_prefix(CONTACT_CUSTOM_PREFIX)?;
                if key.is_empty() {
                    return None;
                }
                self.custom.get(key).map_or("", String::as_str)
            }
        })
    }
}

fn first_word(name: &str) -> &str {
    name.split_whitespace().next().unwrap_or("")
}

/// A rendered text and the known placeholders that had no value (and no fallback), once each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub missing: Vec<String>,
}

/// Fills a canned text's placeholders. Never panics, whatever the input.
pub fn render(template: &str, values: &Values) -> Rendered {
    let mut text = String::with_capacity(template.len());
    let mut missing: Vec<String> = Vec::new();
    for segment in segments(template) {
        match segment {
            Segment::Text(t) => text.push_str(t),
            Segment::Placeholder { raw, name, fallback } => match values.lookup(name) {
                Some(value) if !value.trim().is_empty() => text.push_str(value),
                Some(_) => match fallback {
                    Some(fallback) => text.push_str(fallback),
                    None => {
                        if !missing.iter().any(|m| m == name) {
                            missing.push(name.to_string());
                        }
                    }
                },
                None => text.push_str(raw),
            },
        }
    }
    Rendered { text, missing }
}

/// How much a canned text has to do with a customer's message: the distinct words (three
/// letters or more, case folded) they share. Orders the canned responses given to the AI, most
/// relevant first.
pub fn relevance(canned: &str, message: &str) -> usize {
    let words = |text: &str| -> std::collections::HashSet<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .collect()
    };
    words(canned).intersection(&words(message)).count()
}

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Text(&'a str),
    Placeholder {
        /// The whole `{{...}}` as written.
        raw: &'a str,
        name: &'a str,
        fallback: Option<&'a str>,
    },
}

/// Splits a text into text and placeholders. An unclosed `{{` ends up in a `Text`.
fn segments(template: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(first_open) = rest.find("{{") {
        let Some(close_offset) = rest[first_open + 2..].find("}}") else {
            break;
        };
        let close = first_open + 2 + close_offset;
        // The placeholder opens at the last "{{" before its "}}": in "{{{contact.name}}" the
        // earlier brace is text.
        let open = rest[..close].rfind("{{").unwrap_or(first_open);
        if open > 0 {
            out.push(Segment::Text(&rest[..open]));
        }
        let inner = &rest[open + 2..close];
        let (name, fallback) = match inner.split_once('|') {
            Some((name, fallback)) => (name.trim(), Some(fallback.trim())),
            None => (inner.trim(), None),
        };
        out.push(Segment::Placeholder {
            raw: &rest[open..close + 2],
            name,
            fallback,
        });
        rest = &rest[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            contact_name: "Ana Souza".into(),
            agent_name: "Bruno Lima".into(),
            business_name: "Bakery".into(),
            custom: [("plan".to_string(), "gold".to_string())].into(),
        }
    }

    #[test]
    fn placeholders_are_filled_with_spaces_and_first_names() {
        let r = render(
            "Hi {{ contact.first_name }}, I'm {{agent.first_name}} from {{business.name}} ({{contact.custom.plan}}).",
            &values(),
        );
        assert_eq!(r.text, "Hi Ana, I'm Bruno from Bakery (gold).");
        assert!(r.missing.is_empty());
    }

    #[test]
    fn missing_values_take_the_fallback_or_are_reported() {
        let r = render(
            "Hi {{contact.name|there}}, {{contact.name}}! {{contact.custom.tier}} {{contact.name}}",
            &Values::default(),
        );
        assert_eq!(r.text, "Hi there, !  ");
        assert_eq!(r.missing, ["contact.name", "contact.custom.tier"]);
    }

    #[test]
    fn unknown_placeholders_and_unclosed_braces_stay_as_written() {
        let r = render("{{contact.email}} and {{contact.name", &values());
        assert_eq!(r.text, "{{contact.email}} and {{contact.name");
        // Values are not expanded again.
        let tricky = Values {
            contact_name: "{{agent.name}}".into(),
            ..values()
        };
        assert_eq!(render("{{contact.name}}", &tricky).text, "{{agent.name}}");
        assert_eq!(render("{{{contact.name}}}", &values()).text, "{Ana Souza}");
    }

    #[test]
    fn stored_texts_use_known_placeholders_only() {
        assert_eq!(
            parse_content("  Hi {{contact.name|there}}  ").unwrap(),
            "Hi {{contact.name|there}}"
        );
        assert!(parse_content("{{contact.custom.plan}}").is_ok());
        let err = parse_content("Hi {{contact.email}} {{contact.custom.}}").unwrap_err();
        assert!(err.0.contains("contact.email"), "{err}");
        assert!(err.0.contains("contact.custom."), "{err}");
        assert!(parse_content("   ").is_err());
        assert!(parse_content(&"x".repeat(MAX_CONTENT_CHARS + 1)).is_err());
    }

    #[test]
    fn relevance_counts_shared_words() {
        assert_eq!(
            relevance("We open at 8 on Sundays.", "Are you OPEN on sundays?"),
            2
        );
        assert_eq!(relevance("Rue Haute 12", "when do you open?"), 0);
    }

    #[test]
    fn short_codes_are_normalised() {
        assert_eq!(ShortCode::parse(" /Hours ").unwrap().as_str(), "hours");
        assert_eq!(ShortCode::parse("ship-2_days").unwrap().as_str(), "ship-2_days");
        for bad in ["", "/", "two words", "émoji", &"x".repeat(51)] {
            assert!(ShortCode::parse(bad).is_err(), "{bad:?}");
        }
    }
}
