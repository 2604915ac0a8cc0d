//! Parsed account and workspace values and the pure rules about them (no I/O).

mod app_url;
mod credentials;
mod reauth;
mod token;
mod watch_scope;

pub use app_url::{AppUrl, InvalidUrl, check_redirect_uri};
pub use credentials::{HashError, Password, PasswordHasher};
pub use reauth::{ReauthReason, display_name, kind_label};
pub use token::{InvitationToken, SessionToken, TokenHash};
pub use watch_scope::{WatchScope, timestamp, typing_event};

use scifer_proto::gateway::v1 as proto;

/// Why a value from a request was refused; the text is written for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);

/// An email address as the account's login: trimmed and lowercased, so `Ana@X.test` and
/// `ana@x.test` are one account. Only the shape is checked; nothing here proves the address works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(Invalid("email is required"));
        }
        // RFC 5321's limit on a path.
        if email.len() > 254 {
            return Err(Invalid("email is too long"));
        }
        let shape_ok = match email.split_once('@') {
            Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
            None => false,
        };
        if !shape_ok || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid("email is not a valid address"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name (of a person or a workspace): trimmed, non-empty, at most 200 characters, no
/// control characters (they would travel into logs and other people's screens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str, field: &'static Field) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid(field.required));
        }
        if name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Invalid(field.malformed));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The messages for one name field.
pub struct Field {
    required: &'static str,
    malformed: &'static str,
}

pub const PERSON_NAME: Field = Field {
    required: "name is required",
    malformed: "name must be at most 200 characters without control characters",
};
pub const WORKSPACE_NAME: Field = Field {
    required: "workspace name is required",
    malformed: "workspace name must be at most 200 characters without control characters",
};

/// A member's role in a workspace; each includes what the ones before it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Agent,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Agent, Role::Admin, Role::Owner];

    /// The value stored in `memberships.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn from_stored(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == value)
    }

    pub fn from_proto(value: i32) -> Result<Self, Invalid> {
        match proto::Role::try_from(value) {
            Ok(proto::Role::Viewer) => Ok(Role::Viewer),
            Ok(proto::Role::Agent) => Ok(Role::Agent),
            Ok(proto::Role::Admin) => Ok(Role::Admin),
            Ok(proto::Role::Owner) => Ok(Role::Owner),
            Ok(proto::Role::Unspecified) | Err(_) => Err(Invalid("role is required")),
        }
    }

    pub fn to_proto(self) -> proto::Role {
        match self {
            Role::Viewer => proto::Role::Viewer,
            Role::Agent => proto::Role::Agent,
            Role::Admin => proto::Role::Admin,
            Role::Owner => proto::Role::Owner,
        }
    }
}

/// Why a change to a membership is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipRule {
    /// Only owners grant, change or remove the owner role.
    OwnerRoleIsOwners,
    /// A workspace always keeps at least one owner.
    LastOwner,
}

/// Whether `actor` may move a member from `from` (None: not a member yet) to `to` (None: removed),
/// given how many owners the workspace has. The permission table has already required admin.
pub fn check_membership_change(
    actor: Role,
    from: Option<Role>,
    to: Option<Role>,
    owners: u64,
) -> Result<(), MembershipRule> {
    let touches_owner = from == Some(Role::Owner) || to == Some(Role::Owner);
    if touches_owner && actor != Role::Owner {
        return Err(MembershipRule::OwnerRoleIsOwners);
    }
    if from == Some(Role::Owner) && to != Some(Role::Owner) && owners <= 1 {
        return Err(MembershipRule::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Ana@Example.TEST ").unwrap().as_str(),
            "ana@example.test"
        );
        for bad in ["", "ana", "@x.test", "ana@", "a b@x.test", "a@b@c", "a\n@x.test"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse(&format!("{}@x.test", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(Name::parse(" Ana ", &PERSON_NAME).unwrap().as_str(), "Ana");
        assert_eq!(Name::parse("  ", &PERSON_NAME), Err(Invalid("name is required")));
        assert!(Name::parse(&"a".repeat(201), &WORKSPACE_NAME).is_err());
        assert!(Name::parse("a\u{7}", &WORKSPACE_NAME).is_err());
    }

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Viewer < Role::Agent && Role::Agent < Role::Admin && Role::Admin < Role::Owner);
        for role in Role::ALL {
            assert_eq!(Role::from_stored(role.as_str()), Some(role));
            assert_eq!(Role::from_proto(role.to_proto() as i32), Ok(role));
        }
        assert!(Role::from_proto(0).is_err());
        assert!(Role::from_proto(99).is_err());
    }

    #[test]
    fn only_owners_touch_the_owner_role_and_the_last_owner_stays() {
        use MembershipRule::*;
        use Role::*;
        assert_eq!(check_membership_change(Admin, None, Some(Agent), 1), Ok(()));
        assert_eq!(
            check_membership_change(Admin, Some(Agent), Some(Admin), 1),
            Ok(())
        );
        assert_eq!(
            check_membership_change(Admin, None, Some(Owner), 1),
            Err(OwnerRoleIsOwners)
        );
        assert_eq!(
            check_membership_change(Admin, Some(Owner), None, 2),
            Err(OwnerRoleIsOwners)
        );
        assert_eq!(
            check_membership_change(Owner, Some(Owner), Some(Admin), 1),
            Err(LastOwner)
        );
        assert_eq!(
            check_membership_change(Owner, Some(Owner), None, 1),
            Err(LastOwner)
        );
        assert_eq!(check_membership_change(Owner, Some(Owner), None, 2), Ok(()));
        assert_eq!(check_membership_change(Owner, None, Some(Owner), 1), Ok(()));
    }
}
