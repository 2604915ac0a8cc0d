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
        ErrorKind::Permission => Some(format!("permission:{}", error.code)),
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
