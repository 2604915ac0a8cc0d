//! What the gateway itself records in the audit log: sign-ups, logins and failed logins, logouts,
//! name, email and password changes (account-level, in [`GLOBAL_WORKSPACE`]'s chain), member changes,
//! messages members sent and AI suggestions they asked for (in the workspace's chain) and the
//! auth layer's refusals.
//!
//! Recording is best effort: the action has already happened (or been refused) when its event is
//! published, so a bus failure is logged at error level and the caller's answer stays the same.
//! No field ever holds a password, a session token or an invitation token; failed logins for an
//! email without an account name it by [`email_digest`] only.

use ring::digest;
use scifer_audit::{Actor, Audit, AuditEmitter, GLOBAL_WORKSPACE, Outcome};
use scifer_ids::{InvalidWorkspaceId, WorkspaceId};

pub use scifer_audit::action::ACCESS_DENIED;

pub use scifer_audit::action::AI_SUGGESTED;

/// The target kind of a failed login for an email without an account: the id is [`email_digest`].
pub const EMAIL_SHA256: &str = "email_sha256";

/// The gateway's emitter, with the global chain's id parsed once.
#[derive(Clone)]
pub struct Auditor {
    emitter: AuditEmitter,
    global: WorkspaceId,
}

impl Auditor {
    pub fn new(emitter: AuditEmitter) -> Result<Self, InvalidWorkspaceId> {
        Ok(Self {
            emitter,
            global: WorkspaceId::parse(GLOBAL_WORKSPACE)?,
        })
    }

    /// An account-level event (the global chain).
    pub fn account_event(&self, actor: Actor, action: &str, outcome: Outcome) -> Audit {
        Audit::new(&self.global, actor, action, outcome)
    }

    /// An account-level event (global chain) to fill in and `.record()`.
    pub fn account(&self, actor: Actor, action: &str, outcome: Outcome) -> AccountEvent<'_> {
        AccountEvent {
            auditor: self,
            audit: self.account_event(actor, action, outcome),
        }
    }

    /// Publishes `audit` and waits for the bus to store it; failures are logged, not returned.
    pub async fn record(&self, audit: Audit) {
        if let Err(error) = self.emitter.emit(audit).await {
            tracing::error!(error = %scifer_plumbing::error_chain(&error), "an audit event was not recorded");
        }
    }
}

/// An account-level audit event being built; [`AccountEvent::record`] publishes it.
pub struct AccountEvent<'a> {
    auditor: &'a Auditor,
    audit: Audit,
}

impl AccountEvent<'_> {
    pub fn target(self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            audit: self.audit.target(kind, id),
            ..self
        }
    }

    pub fn detail(self, detail: impl Into<String>) -> Self {
        Self {
            audit: self.audit.detail(detail),
            ..self
        }
    }

    pub async fn record(self) {
        self.auditor.record(self.audit).await;
    }
}

/// The lowercase hex SHA-256 of the trimmed, lowercased `email`: stable for one address, so
/// repeated attempts on it can be grouped, without the address itself in the log. It is a
/// pseudonym, not anonymisation: anyone holding a candidate address can hash it and compare.
pub fn email_digest(email: &str) -> String {
    let normalised = email.trim().to_lowercase();
    hex::encode(digest::digest(&digest::SHA256, normalised.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_digest_ignores_case_and_surrounding_space() {
        let digest = email_digest("Alice@Example.test ");
        assert_eq!(digest, email_digest("alice@example.test"));
        assert_eq!(digest.len(), 64);
        assert!(!digest.contains("alice"));
    }
}
