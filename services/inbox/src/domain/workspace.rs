//! Workspace ids name NATS subjects (`<prefix>.inbox.<workspace>.<kind>`), so they are parsed once at
//! the edge (channel events, gRPC metadata) and cannot carry subject syntax.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspaceId(String);

#[derive(Debug, thiserror::Error)]
#[error("workspace id must be 1-128 characters of letters, digits, '-' or '_'")]
pub struct InvalidWorkspaceId;

impl WorkspaceId {
    pub fn parse(raw: &str) -> Result<Self, InvalidWorkspaceId> {
        let valid = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err(InvalidWorkspaceId)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_syntax_is_refused() {
        assert!(WorkspaceId::parse("0190b7e2-7c1d-7000-8000-000000000001").is_ok());
        for bad in ["", "a.b", "a*", "a>", "a b", &"x".repeat(129)] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
