//! WhatsApp templates (issue 5): reading Graph's `message_templates` pages and deciding whether a
//! template may be sent.

use serde_json::Value;

/// The fields asked of Graph for each template.
pub const FIELDS: &str = "id,name,language,status,category,components";
/// Templates per page asked of Graph.
pub const PAGE_LIMIT: u32 = 100;
/// Pages read per sync at most: 100 x 100 is far beyond Meta's per-WABA template limit, and a
/// Graph that kept answering `next` cannot hold a sync forever.
pub const MAX_PAGES: usize = 100;

/// One template as Graph lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub components_json: String,
}

/// One page of `GET /{waba}/message_templates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub templates: Vec<Listed>,
    /// The `after` cursor of the next page; None on the last one.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("Graph's template list is not what was expected: {0}")]
pub struct MalformedPage(pub &'static str);

/// Reads a page; a template without a name or language is skipped (it could never be sent).
pub fn parse_page(body: &Value) -> Result<Page, MalformedPage> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or(MalformedPage("no data array"))?;
    let text = |t: &Value, key: &str| match t.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let templates = data
        .iter()
        .map(|t| Listed {
            id: text(t, "id"),
            name: text(t, "name"),
            language: text(t, "language"),
            status: text(t, "status").to_ascii_uppercase(),
            category: text(t, "category").to_ascii_uppercase(),
            components_json: t
                .get("components")
                .filter(|c| c.is_array())
                .map(Value::to_string)
                .unwrap_or_else(|| "[]".into()),
        })
        .filter(|t| !t.name.is_empty() && !t.language.is_empty())
        .collect();
    // Graph sets `next` only when another page exists; the cursor alone is also on the last page.
    let next = body
        .pointer("/paging/next")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .and_then(|_| body.pointer("/paging/cursors/after").and_then(Value::as_str))
        .filter(|a| !a.is_empty())
        .map(str::to_string);
    Ok(Page { templates, next })
}

/// The egress params of one page request.
pub fn page_params(after: Option<&str>) -> Value {
    let mut params = serde_json::json!({"fields": FIELDS, "limit": PAGE_LIMIT.to_string()});
    if let Some(after) = after {
        params["after"] = after.into();
    }
    params
}

/// What inbox knows of a template a send names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// The WABA has no template of that name and language (as last synced).
    Unknown,
    /// Known, in a status Meta refuses to send (PENDING, REJECTED, PAUSED, DISABLED, ...).
    NotApproved {
        status: String,
    },
    Approved,
    /// The channel's WABA is not known here (a number connected before templates were synced,
    /// whose channel event named no WABA): nothing to check against, so Meta decides and a
    /// refusal comes back explained (132001).
    Unchecked,
}

impl Approval {
    /// Only APPROVED is sendable: Meta answers 132001/132015/132016 to anything else.
    pub fn of_status(status: &str) -> Self {
        if status.eq_ignore_ascii_case("APPROVED") {
            Self::Approved
        } else {
            Self::NotApproved {
                status: status.to_ascii_uppercase(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_gives_its_templates_and_the_next_cursor() {
        let page = parse_page(&json!({
            "data": [
                {"id": "111", "name": "order_update", "language": "en_US", "status": "APPROVED",
                 "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi {{1}}"}]},
                {"id": 222, "name": "promo", "language": "pt_BR", "status": "rejected", "category": "marketing"},
                {"id": "333", "language": "en_US", "status": "APPROVED"}
            ],
            "paging": {"cursors": {"before": "b", "after": "MjIy"}, "next": "https://graph/x?after=MjIy"}
        }))
        .unwrap();
        assert_eq!(page.next.as_deref(), Some("MjIy"));
        assert_eq!(page.templates.len(), 2, "the nameless one is skipped");
        assert_eq!(
            page.templates[0].components_json,
            r#"[{"text":"Hi {{1}}","type":"BODY"}]"#
        );
        assert_eq!(
            page.templates[1],
            Listed {
                id: "222".into(),
                name: "promo".into(),
                language: "pt_BR".into(),
                status: "REJECTED".into(),
                category: "MARKETING".into(),
                components_json: "[]".into(),
            }
        );
    }

    #[test]
    fn the_last_page_has_no_next_even_with_a_cursor() {
        let page =
            parse_page(&json!({"data": [], "paging": {"cursors": {"before": "a", "after": "b"}}})).unwrap();
        assert_eq!(page.next, None);
        assert_eq!(parse_page(&json!({"data": []})).unwrap().next, None);
        assert_eq!(
            parse_page(&json!({"error": {}})),
            Err(MalformedPage("no data array"))
        );
    }

    #[test]
    fn page_params_carry_the_cursor() {
        assert_eq!(page_params(None), json!({"fields": FIELDS, "limit": "100"}));
        assert_eq!(page_params(Some("X"))["after"], "X");
    }

    #[test]
    fn only_approved_is_sendable() {
        assert_eq!(Approval::of_status("APPROVED"), Approval::Approved);
        assert_eq!(
            Approval::of_status("paused"),
            Approval::NotApproved {
                status: "PAUSED".into()
            }
        );
        assert!(matches!(
            Approval::of_status("PENDING"),
            Approval::NotApproved { .. }
        ));
    }
}
