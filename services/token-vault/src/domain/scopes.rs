//! The permissions each channel needs and the webhook fields the app subscribes to, per kind.

use scifer_proto::events::v1::ChannelKind;

/// Scopes the Facebook Login dialog asks for: enough to list Pages, message on them and on their
/// Instagram accounts, manage webhooks, and publish posts.
pub const LOGIN_SCOPES: &[&str] = &[
    "pages_show_list",
    "pages_messaging",
    "pages_manage_metadata",
    "pages_read_engagement",
    "pages_manage_posts",
    "instagram_basic",
    "instagram_manage_messages",
    "instagram_manage_comments",
    "instagram_content_publish",
    "business_management",
];

/// What the long-lived user token must carry for the Page list to mean anything.
pub const USER_TOKEN_SCOPES: &[&str] = &["pages_show_list", "pages_messaging", "pages_manage_metadata"];

/// Scopes a channel cannot work without; losing one puts the channel in NEEDS_REAUTH.
pub fn required(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::Messenger => &["pages_messaging", "pages_manage_metadata"],
        ChannelKind::Instagram => &[
            "instagram_basic",
            "instagram_manage_messages",
            "pages_manage_metadata",
        ],
        ChannelKind::Whatsapp => &["whatsapp_business_messaging", "whatsapp_business_management"],
        ChannelKind::Unspecified => &[],
    }
}

/// The first required scope missing from `granted`, if any.
pub fn first_missing<'a>(kind: ChannelKind, granted: &[String]) -> Option<&'a str>
where
    'static: 'a,
{
    required(kind)
        .iter()
        .find(|s| !granted.iter().any(|g| g == *s))
        .copied()
}

/// The Page webhook fields webhook-ingest consumes (Messenger and Page-linked Instagram).
pub const PAGE_FIELDS: &[&str] = &[
    "messages",
    "messaging_postbacks",
    "message_echoes",
    "message_reads",
    "message_deliveries",
    "message_reactions",
    "messaging_handovers",
    "standby",
    "feed",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_required_scope_is_named() {
        let granted = vec!["pages_messaging".to_string()];
        assert_eq!(
            first_missing(ChannelKind::Messenger, &granted),
            Some("pages_manage_metadata")
        );
        let all: Vec<String> = required(ChannelKind::Whatsapp)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(first_missing(ChannelKind::Whatsapp, &all), None);
    }

    #[test]
    fn the_login_dialog_asks_for_every_required_scope_of_pages_and_instagram() {
        for kind in [ChannelKind::Messenger, ChannelKind::Instagram] {
            for s in required(kind) {
                assert!(LOGIN_SCOPES.contains(s), "{s}");
            }
        }
    }
}
