//! Typed identifiers shared across services, parsed once where they enter (a request, metadata, a
//! bus event) so that the rest of the code cannot confuse them or receive a malformed one.

use std::fmt;

/// A workspace id that is safe to use as one NATS subject token and as a gRPC metadata value.
///
/// The id reaches the bus as `<prefix>.inbox.<workspace>.>`, so a '.', '*' or '>' would let a
/// caller widen the subscription to other workspaces; the rule is stricter than that (ASCII
/// letters, digits, '-' and '_') so that nothing else surprising (whitespace, control characters,
/// non-ASCII) travels into subjects, metadata or logs either.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspaceId(String);

/// Longest accepted id: short enough to bound what a caller can put into subjects and logs.
pub const MAX_WORKSPACE_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWorkspaceId {
    #[error("workspace_id is required")]
    Empty,
    #[error("workspace_id must be at most {MAX_WORKSPACE_ID_LEN} characters")]
    TooLong,
    #[error("workspace_id may contain only ASCII letters, digits, '-' and '_'")]
    BadCharacter,
}

impl WorkspaceId {
    pub fn parse(raw: &str) -> Result<Self, InvalidWorkspaceId> {
        if raw.is_empty() {
            return Err(InvalidWorkspaceId::Empty);
        }
        if raw.len() > MAX_WORKSPACE_ID_LEN {
            return Err(InvalidWorkspaceId::TooLong);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(InvalidWorkspaceId::BadCharacter);
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_single_subject_tokens_are_accepted() {
        for ok in ["ws1", "WS_1", "0190a5e4-7c3b-7d2e-9f00-1234567890ab", "a"] {
            assert_eq!(WorkspaceId::parse(ok).unwrap().as_str(), ok);
        }
        let longest = "a".repeat(MAX_WORKSPACE_ID_LEN);
        assert!(WorkspaceId::parse(&longest).is_ok());
    }

    #[test]
    fn ids_that_could_widen_a_subject_or_break_metadata_are_refused() {
        assert_eq!(WorkspaceId::parse(""), Err(InvalidWorkspaceId::Empty));
        assert_eq!(
            WorkspaceId::parse(&"a".repeat(MAX_WORKSPACE_ID_LEN + 1)),
            Err(InvalidWorkspaceId::TooLong)
        );
        for bad in [
            "a.b", "*", ">", "ws 1", " ws1", "ws1\n", "ws\t1", "wé", "a/b", "a\0",
        ] {
            assert_eq!(
                WorkspaceId::parse(bad),
                Err(InvalidWorkspaceId::BadCharacter),
                "{bad:?} accepted"
            );
        }
    }
}
