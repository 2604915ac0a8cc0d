//! Why a channel needs reconnecting, from token-vault's `state_reason`, in words for the admins
//! who get the alert. The vault writes `token_invalid:<subcode>`, `expired`,
//! `missing_scope:<scope>` or `permission:<code>`; anything else still gets an alert, with a
//! general reason.

use scifer_proto::events::v1::ChannelKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReauthReason {
    /// Meta no longer accepts the token (error 190), with its subcode when given.
    TokenInvalid(Option<u32>),
    Expired,
    /// A permission the app needs was removed; the scope when it looks like one.
    MissingScope(Option<String>),
    /// Meta refused a call for lack of permission (codes 10, 200-299).
    Permission(Option<u32>),
    Unknown,
}

impl ReauthReason {
    pub fn parse(raw: &str) -> Self {
        let (kind, detail) = raw.trim().split_once(':').unwrap_or((raw.trim(), ""));
        let number = detail.trim().parse::<u32>().ok();
        match kind {
            // 463: Meta's subcode for an expired session.
            "token_invalid" if number == Some(463) => Self::Expired,
            "token_invalid" => Self::TokenInvalid(number),
            "expired" => Self::Expired,
            "missing_scope" => Self::MissingScope(scope(detail)),
            "permission" => Self::Permission(number),
            _ => Self::Unknown,
        }
    }

    /// Completes "It stopped working because ...".
    pub fn plain_words(&self) -> String {
        match self {
            Self::Expired => "its access to Meta expired.".into(),
            Self::TokenInvalid(Some(458)) => {
                "Meta no longer accepts its access: the Facebook account that connected it removed \
                 Scifer's access."
                    .into()
            }
            Self::TokenInvalid(Some(459 | 464)) => {
                "Meta no longer accepts its access: the Facebook account that connected it must log \
                 in to Facebook to confirm it."
                    .into()
            }
            Self::TokenInvalid(Some(460)) => {
                "Meta no longer accepts its access: the password of the Facebook account that \
                 connected it was changed."
                    .into()
            }
            Self::TokenInvalid(_) => {
                "Meta no longer accepts its access (the token is no longer valid).".into()
            }
            Self::MissingScope(Some(scope)) => {
                format!("a permission Scifer needs was removed ({scope}).")
            }
            Self::MissingScope(None) => "a permission Scifer needs was removed.".into(),
            Self::Permission(Some(code)) => {
                format!("Meta refused a request because a permission was removed (Meta error {code}).")
            }
            Self::Permission(None) => "Meta refused a request because a permission was removed.".into(),
            Self::Unknown => "Meta no longer accepts its connection.".into(),
        }
    }
}

/// A permission name as Meta spells them (`pages_messaging`); anything else is left out of the
/// email rather than quoted.
fn scope(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let valid = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    valid.then(|| raw.to_string())
}

/// The product name of a channel kind, as admins know it.
pub fn kind_label(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Messenger => "Messenger",
        ChannelKind::Instagram => "Instagram",
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Unspecified => "Meta",
    }
}

/// A channel's display name for an email: no control characters (a line break would reach the
/// subject), at most 200 characters, and the account id when the name is empty.
pub fn display_name(name: &str, account_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
            .trim()
            .to_string()
    };
    let name = clean(name);
    if !name.is_empty() {
        return name;
    }
    let account = clean(account_id);
    if account.is_empty() {
        "a channel".into()
    } else {
        account
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vaults_reasons_are_told_apart() {
        assert_eq!(
            ReauthReason::parse("token_invalid:460"),
            ReauthReason::TokenInvalid(Some(460))
        );
        assert_eq!(
            ReauthReason::parse("token_invalid"),
            ReauthReason::TokenInvalid(None)
        );
        assert_eq!(ReauthReason::parse("token_invalid:463"), ReauthReason::Expired);
        assert_eq!(ReauthReason::parse("expired"), ReauthReason::Expired);
        assert_eq!(
            ReauthReason::parse("missing_scope:pages_messaging"),
            ReauthReason::MissingScope(Some("pages_messaging".into()))
        );
        assert_eq!(
            ReauthReason::parse("missing_scope:<script>"),
            ReauthReason::MissingScope(None)
        );
        assert_eq!(
            ReauthReason::parse("permission:200"),
            ReauthReason::Permission(Some(200))
        );
        assert_eq!(ReauthReason::parse(""), ReauthReason::Unknown);
        assert_eq!(ReauthReason::parse("something_new:1"), ReauthReason::Unknown);
    }

    #[test]
    fn every_reason_reads_as_words() {
        assert!(ReauthReason::Expired.plain_words().contains("expired"));
        assert!(
            ReauthReason::TokenInvalid(Some(460))
                .plain_words()
                .contains("password")
        );
        assert!(
            ReauthReason::TokenInvalid(Some(1))
                .plain_words()
                .contains("no longer valid")
        );
        assert!(
            ReauthReason::MissingScope(Some("pages_messaging".into()))
                .plain_words()
                .contains("permission Scifer needs was removed (pages_messaging)")
        );
        assert!(
            ReauthReason::Permission(Some(200))
                .plain_words()
                .contains("error 200")
        );
    }

    #[test]
    fn display_names_lose_control_characters_and_fall_back_to_the_account() {
        assert_eq!(display_name("Acme\r\nBcc: x", "1"), "AcmeBcc: x");
        assert_eq!(display_name("  ", "1784"), "1784");
        assert_eq!(display_name("", ""), "a channel");
        assert_eq!(display_name(&"x".repeat(300), "").len(), 200);
    }
}
