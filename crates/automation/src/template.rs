//! Reply templates: `{{contact.name}}`, `{{business.name}}`, `{{agent.name}}`, each optionally
//! with a fallback after a bar, `{{contact.name|there}}`; spaces inside the braces are ignored.
//!
//! Decisions:
//! - A known placeholder without a value (or with an empty one) renders its fallback, or nothing.
//! - An unknown placeholder (`{{contact.email}}`) is left exactly as written, so a mistake is
//!   visible in a test message instead of silently vanishing; [`crate::validate`] and
//!   [`crate::validate_template`] reject such templates before they are stored.
//! - `{{` without a closing `}}` is plain text.
//! - Values are inserted verbatim and never expanded again, so a contact named `{{agent.name}}`
//!   stays that string.

pub const CONTACT_NAME: &str = "contact.name";
pub const BUSINESS_NAME: &str = "business.name";
pub const AGENT_NAME: &str = "agent.name";
/// Every placeholder a template may use.
pub const PLACEHOLDER_NAMES: [&str; 3] = [CONTACT_NAME, BUSINESS_NAME, AGENT_NAME];

/// The values a reply can refer to; the caller fills what it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholders {
    pub contact_name: Option<String>,
    pub business_name: Option<String>,
    pub agent_name: Option<String>,
}

impl Placeholders {
    /// `None` for a name that is not a placeholder; `Some(None)` for a known one without a value.
    fn lookup(&self, name: &str) -> Option<Option<&str>> {
        let value = match name {
            CONTACT_NAME => &self.contact_name,
            BUSINESS_NAME => &self.business_name,
            AGENT_NAME => &self.agent_name,
            _ => return None,
        };
        Some(value.as_deref().filter(|v| !v.is_empty()))
    }
}

/// Fill a template's placeholders. Never panics, whatever the input.
pub fn render(template: &str, vars: &Placeholders) -> String {
    let mut out = String::with_capacity(template.len());
    for segment in segments(template) {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Placeholder { raw, name, fallback } => match vars.lookup(name) {
                Some(Some(value)) => out.push_str(value),
                Some(None) => out.push_str(fallback.unwrap_or("")),
                None => out.push_str(raw),
            },
        }
    }
    out
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    Text(&'a str),
    Placeholder {
        /// The whole `{{...}}` as written.
        raw: &'a str,
        name: &'a str,
        fallback: Option<&'a str>,
    },
}

/// Split a template into text and placeholders. An unclosed `{{` ends up in a `Text`.
pub(crate) fn segments(template: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(first_open) = rest.find("{{") {
        let Some(close_offset) = rest[first_open + 2..].find("}}") else {
            break;
        };
        let close = first_open + 2 + close_offset;
        // The placeholder opens at the last "{{" before its "}}": in "{{ {{contact.name}}" or
        // "{{{contact.name}}" the earlier braces are text.
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
