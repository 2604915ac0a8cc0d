//! The catalogue of audited actions. An action is a dotted lowercase name, `<area>.<verb>`; the
//! store accepts any well-formed name (so a service can add one before the gateway knows it), but
//! every action Scifer emits is listed here so that filters and tests have one place to look.

/// A successful sign-in (actor: the user; outcome success).
pub const AUTH_LOGIN: &str = "auth.login";
/// A refused sign-in: wrong password, unknown account, rate-limited (outcome failure or denied).
pub const AUTH_LOGIN_FAILED: &str = "auth.login_failed";
/// A session ended by logout, password change or an admin (target: the session id, never the token).
pub const AUTH_SESSION_REVOKED: &str = "auth.session_revoked";
/// An account was created by sign-up (actor and target: the new account). A refused sign-up for an
/// email that already has an account names it by its SHA-256 only (outcome failure).
pub const ACCOUNT_CREATED: &str = "account.created";
/// An account's settings changed (today: the display name; target: the account).
pub const ACCOUNT_UPDATED: &str = "account.updated";
/// An account's login email changed after the password was re-checked; the account's other
/// sessions are revoked with it. Never the address in clear (target: the account).
pub const ACCOUNT_EMAIL_CHANGED: &str = "account.email_changed";
/// A call refused by a permission check: a role below the call's, or a workspace the caller is not a
/// member of (outcome DENIED).
pub const ACCESS_DENIED: &str = "access.denied";
/// A member was invited (target: the invitation id; never the invitation token).
pub const MEMBER_INVITED: &str = "member.invited";
/// A member's role changed (detail: `old -> new`).
pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
pub const MEMBER_REMOVED: &str = "member.removed";
pub const CHANNEL_CONNECTED: &str = "channel.connected";
pub const CHANNEL_DISCONNECTED: &str = "channel.disconnected";
/// Meta refused a channel's token (code 190, a lost permission): the channel waits for an admin
/// to reconnect it (actor: system; detail: the machine-readable reason).
pub const CHANNEL_NEEDS_REAUTH: &str = "channel.needs_reauth";
/// The health check found the app's webhook subscription gone and subscribed again.
pub const CHANNEL_RESUBSCRIBED: &str = "channel.resubscribed";
/// A workspace's data key was rotated (a new version; tokens are re-sealed in the background).
pub const KEYS_ROTATED: &str = "keys.rotated";
/// A service used a stored channel token (target: the channel; never the token).
pub const TOKEN_USED: &str = "token.used";
pub const MESSAGE_SENT: &str = "message.sent";
/// An AI reply suggestion was asked for (target: the conversation; detail: model and confidence,
/// never the text).
pub const AI_SUGGESTED: &str = "ai.suggested";
/// An admin created, changed or deleted an automation rule (target: the rule).
pub const AUTOMATION_RULE_CREATED: &str = "automation.rule_created";
pub const AUTOMATION_RULE_UPDATED: &str = "automation.rule_updated";
pub const AUTOMATION_RULE_DELETED: &str = "automation.rule_deleted";
/// Business hours, away message, limits or the webhook secret changed (never the secret itself).
pub const AUTOMATION_SETTINGS_UPDATED: &str = "automation.settings_updated";
/// A rule's webhook call failed (target: the conversation; detail: the rule and why).
pub const AUTOMATION_WEBHOOK_FAILED: &str = "automation.webhook_failed";
/// A conversation went from automation to a human, or back (target: the conversation).
pub const CONVERSATION_HANDED_OFF: &str = "conversation.handed_off";
pub const CONVERSATION_HANDED_BACK: &str = "conversation.handed_back";
pub const POST_APPROVED: &str = "post.approved";
pub const POST_PUBLISHED: &str = "post.published";
pub const DATA_DELETION_REQUESTED: &str = "data.deletion_requested";
pub const DATA_DELETION_COMPLETED: &str = "data.deletion_completed";
pub const DATA_EXPORT_REQUESTED: &str = "data.export_requested";
pub const DATA_EXPORT_COMPLETED: &str = "data.export_completed";

/// Every action above.
pub const ALL: &[&str] = &[
    AUTH_LOGIN,
    AUTH_LOGIN_FAILED,
    AUTH_SESSION_REVOKED,
    ACCOUNT_CREATED,
    ACCOUNT_UPDATED,
    ACCOUNT_EMAIL_CHANGED,
    ACCESS_DENIED,
    MEMBER_INVITED,
    MEMBER_ROLE_CHANGED,
    MEMBER_REMOVED,
    CHANNEL_CONNECTED,
    CHANNEL_DISCONNECTED,
    CHANNEL_NEEDS_REAUTH,
    CHANNEL_RESUBSCRIBED,
    KEYS_ROTATED,
    TOKEN_USED,
    MESSAGE_SENT,
    AI_SUGGESTED,
    AUTOMATION_RULE_CREATED,
    AUTOMATION_RULE_UPDATED,
    AUTOMATION_RULE_DELETED,
    AUTOMATION_SETTINGS_UPDATED,
    AUTOMATION_WEBHOOK_FAILED,
    CONVERSATION_HANDED_OFF,
    CONVERSATION_HANDED_BACK,
    POST_APPROVED,
    POST_PUBLISHED,
    DATA_DELETION_REQUESTED,
    DATA_DELETION_COMPLETED,
    DATA_EXPORT_REQUESTED,
    DATA_EXPORT_COMPLETED,
];

/// Longest accepted action name.
pub const MAX_ACTION_LEN: usize = 64;

/// Whether `action` is a well-formed action name: at least two non-empty dot-separated parts of
/// lowercase ASCII letters, digits and '_'.
pub fn is_well_formed(action: &str) -> bool {
    action.len() <= MAX_ACTION_LEN
        && action.split('.').count() >= 2
        && action.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_well_formed_and_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for action in ALL {
            assert!(is_well_formed(action), "{action}");
            assert!(seen.insert(action), "{action} listed twice");
        }
        assert_eq!(ALL.len(), 31);
    }

    #[test]
    fn malformed_actions_are_refused() {
        for bad in [
            "",
            "login",
            "auth.",
            ".login",
            "Auth.login",
            "auth..login",
            "auth.log in",
            "auth.*",
        ] {
            assert!(!is_well_formed(bad), "{bad:?} accepted");
        }
        assert!(!is_well_formed(&format!("a.{}", "b".repeat(MAX_ACTION_LEN))));
    }
}
