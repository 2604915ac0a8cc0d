//! How Meta's answers change a channel's state.

use scifer_graph::{ErrorKind, MetaError};

/// Why a channel needs reconnecting, as stored and announced (`ChannelEvent.state_reason`).
/// Machine-readable on purpose: the gateway turns it into words.
pub fn reauth_reason(error: &MetaError) -> Option<String> {
    match error.kind {
        ErrorKind::TokenInvalid => Some(match error.subcode {
            Some(sub) => format!("token_invalid:{sub}"),
            None => "token_invalid".to_string(),
        }),
        // A plain permission error means the token lost a permission. With a subcode it is about
        // one conversation (another app owns the thread, the person blocks the Page...), not the
        // channel: the channel stays connected.
        ErrorKind::Permission if error.subcode.is_none() => Some(format!("permission:{}", error.code)),
        _ => None,
    }
}

pub fn missing_scope_reason(scope: &str) -> String {
    format!("missing_scope:{scope}")
}

/// debug_token said the token is no longer valid.
pub fn invalid_token_reason(error: Option<(i64, Option<i64>)>) -> String {
    match error {
        Some((_, Some(sub))) => format!("token_invalid:{sub}"),
        _ => "token_invalid".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn meta(kind: ErrorKind, code: i64, subcode: Option<i64>) -> MetaError {
        MetaError {
            kind,
            code,
            subcode,
            message: String::new(),
            error_type: None,
            is_transient: false,
            fbtrace_id: None,
            http_status: 400,
            retry_after: None::<Duration>,
        }
    }

    #[test]
    fn only_token_and_plain_permission_errors_need_a_reconnect() {
        assert_eq!(
            reauth_reason(&meta(ErrorKind::TokenInvalid, 190, Some(460))).as_deref(),
            Some("token_invalid:460")
        );
        assert_eq!(
            reauth_reason(&meta(ErrorKind::Permission, 200, None)).as_deref(),
            Some("permission:200")
        );
        // Another app owns the thread (a guess of the simulator), a window error: conversation-level.
        assert_eq!(
            reauth_reason(&meta(ErrorKind::Permission, 10, Some(2018300))),
            None
        );
        assert_eq!(reauth_reason(&meta(ErrorKind::Policy, 10, Some(2018278))), None);
        assert_eq!(reauth_reason(&meta(ErrorKind::Throttled, 32, None)), None);
    }
}
