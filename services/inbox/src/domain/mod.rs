//! Pure rules of the inbox: no I/O, so every rule is unit-tested on its own.

pub mod assignment;
pub mod attributes;
pub mod canned;
pub mod delivery;
pub mod edit;
pub mod label;
pub mod outgoing;
pub mod page_token;
pub mod reactions;
pub mod search;
pub mod workspace;
// Issue 5: WhatsApp template sync, inbox analytics.
pub mod analytics;
pub mod template;

pub use assignment::AgentId;
pub use delivery::DeliveryState;
pub use page_token::{Cursor, InvalidPageToken, PageSize};
pub use reactions::{ReactionEntry, Reactions};
pub use workspace::{InvalidWorkspaceId, WorkspaceId};

/// A short text shown in conversation lists: the message text, or the kind of its first attachment.
pub fn preview(text: &str, first_attachment_type: Option<&str>) -> String {
    const MAX_CHARS: usize = 120;
    if !text.is_empty() {
        return text.chars().take(MAX_CHARS).collect();
    }
    match first_attachment_type {
        Some(kind) if !kind.is_empty() => format!("[{kind}]"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_prefers_text_then_attachment_kind() {
        assert_eq!(preview("hi", Some("image")), "hi");
        assert_eq!(preview("", Some("image")), "[image]");
        assert_eq!(preview("", None), "");
        assert_eq!(preview(&"é".repeat(500), None).chars().count(), 120);
    }
}
