//! Who may call what: the one table, by fully-qualified gRPC path. The auth layer
//! ([`crate::auth`]) looks every call up here before any handler runs; a path missing from the
//! table is refused, so a new RPC is closed until someone decides who may call it (and the
//! permission-matrix test fails until then).

use crate::domain::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a session (sign-up and login).
    Public,
    /// Any valid session; the call acts on the caller's own account or workspace list.
    Authenticated,
    /// A valid session whose user is a member of the request's `workspace_id` (field 1 of the
    /// request message) with at least this role.
    Workspace(Role),
}

/// Every RPC the gateway serves.
pub const TABLE: &[(&str, Access)] = &[
    ("/scifer.gateway.v1.AccountApi/SignUp", Access::Public),
    ("/scifer.gateway.v1.AccountApi/Login", Access::Public),
    ("/scifer.gateway.v1.AccountApi/Logout", Access::Authenticated),
    ("/scifer.gateway.v1.AccountApi/GetAccount", Access::Authenticated),
    (
        "/scifer.gateway.v1.AccountApi/ChangePassword",
        Access::Authenticated,
    ),
    (
        "/scifer.gateway.v1.AccountApi/UpdateAccount",
        Access::Authenticated,
    ),
    ("/scifer.gateway.v1.AccountApi/ChangeEmail", Access::Authenticated),
    // The invitation is for the caller's own email; the token says which workspace.
    (
        "/scifer.gateway.v1.AccountApi/AcceptInvitation",
        Access::Authenticated,
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/CreateWorkspace",
        Access::Authenticated,
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/ListWorkspaces",
        Access::Authenticated,
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/ListMembers",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/AddMember",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/ChangeRole",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/RemoveMember",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.WorkspaceApi/InviteMember",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/ListConversations",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/GetConversation",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/WatchInbox",
        Access::Workspace(Role::Viewer),
    ),
    // Replying to customers is for agents and above; viewers read only. Asking whether a reply
    // could go out now is a read: it tells what the conversation already shows (when the customer
    // last wrote), changes nothing, and lets every member's composer show the window.
    // Typing is part of replying; viewers never reply, so they never type.
    (
        "/scifer.gateway.v1.InboxApi/SetTyping",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/SendMessage",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/CheckSend",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/RetryMessage",
        Access::Workspace(Role::Agent),
    ),
    // The team workflow. Agents change a conversation's status and take or release it; assigning
    // another member or a team, and setting another member's availability, is for admins (checked
    // in the handler, which sees the request). Auto-assignment settings are read by everyone and
    // changed by admins.
    (
        "/scifer.gateway.v1.InboxApi/UpdateConversation",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/GetAssignmentSettings",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/UpdateAssignmentSettings",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/SetAgentAvailability",
        Access::Workspace(Role::Agent),
    ),
    // Labels and internal notes are the agents' working tools.
    (
        "/scifer.gateway.v1.InboxApi/UpdateLabels",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/AddNote",
        Access::Workspace(Role::Agent),
    ),
    // Canned responses: every member reads and renders them (rendering reads what the
    // conversation already shows); admins write them.
    (
        "/scifer.gateway.v1.InboxApi/ListCannedResponses",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/RenderCannedResponse",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/CreateCannedResponse",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/UpdateCannedResponse",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/DeleteCannedResponse",
        Access::Workspace(Role::Admin),
    ),
    // Searching is reading; a read marker belongs to the team's working state, as agents keep it.
    (
        "/scifer.gateway.v1.InboxApi/SearchMessages",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/MarkRead",
        Access::Workspace(Role::Agent),
    ),
    // Contact profiles: read by every member, kept up to date by agents (as in Chatwoot, where
    // agents edit and merge contacts).
    (
        "/scifer.gateway.v1.InboxApi/GetContact",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/UpdateContact",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/MergeContacts",
        Access::Workspace(Role::Agent),
    ),
    // A draft for someone who can send it; it also hands the conversation to a third party.
    (
        "/scifer.gateway.v1.InboxApi/SuggestReply",
        Access::Workspace(Role::Agent),
    ),
    // Automation and handoff (issue 5): every member reads rules and settings, admins manage
    // them; any agent hands a conversation off or back.
    (
        "/scifer.gateway.v1.InboxApi/ListRules",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/CreateRule",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/UpdateRule",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/DeleteRule",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/GetAutomationSettings",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/UpdateAutomationSettings",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.InboxApi/HandOff",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/HandBack",
        Access::Workspace(Role::Agent),
    ),
    // History, gaps and media: reading, like the conversations they belong to.
    (
        "/scifer.gateway.v1.InboxApi/GetChannelSync",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.InboxApi/GetMedia",
        Access::Workspace(Role::Viewer),
    ),
    // Issue 5: templates are what agents send; reports compare members, so they are the admins'.
    (
        "/scifer.gateway.v1.InboxApi/ListTemplates",
        Access::Workspace(Role::Agent),
    ),
    (
        "/scifer.gateway.v1.InboxApi/GetInboxAnalytics",
        Access::Workspace(Role::Admin),
    ),
    // Every member sees which channels the workspace has; connecting and disconnecting them is for
    // admins and owners.
    (
        "/scifer.gateway.v1.ChannelApi/ListChannels",
        Access::Workspace(Role::Viewer),
    ),
    (
        "/scifer.gateway.v1.ChannelApi/StartConnect",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.ChannelApi/CompleteConnect",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.ChannelApi/ConfirmConnect",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.ChannelApi/ConnectWhatsApp",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.ChannelApi/DisconnectChannel",
        Access::Workspace(Role::Admin),
    ),
    // The audit log names who did what to whom: admins and owners only.
    (
        "/scifer.gateway.v1.AuditApi/ListAuditRecords",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.AuditApi/ExportAuditLog",
        Access::Workspace(Role::Admin),
    ),
    (
        "/scifer.gateway.v1.AuditApi/VerifyAuditChain",
        Access::Workspace(Role::Admin),
    ),
];

/// What calling `path` requires; None for a path the table does not know (refuse it).
pub fn required(path: &str) -> Option<Access> {
    TABLE.iter().find(|(p, _)| *p == path).map(|(_, access)| *access)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message as _;
    use prost_types::FileDescriptorSet;

    use super::*;

    /// Every method of every service in `scifer.gateway.v1`, from the compiled descriptors, with
    /// its input type.
    fn gateway_methods() -> Vec<(String, String)> {
        let set = FileDescriptorSet::decode(scifer_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = Vec::new();
        for file in set.file.iter().filter(|f| f.package() == "scifer.gateway.v1") {
            for service in &file.service {
                for method in &service.method {
                    methods.push((
                        format!("/scifer.gateway.v1.{}/{}", service.name(), method.name()),
                        method.input_type().to_string(),
                    ));
                }
            }
        }
        methods
    }

    #[test]
    fn the_table_covers_exactly_the_rpcs_the_descriptors_declare() {
        let declared: BTreeSet<String> = gateway_methods().into_iter().map(|(p, _)| p).collect();
        let table: BTreeSet<String> = TABLE.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(TABLE.len(), table.len(), "a path is listed twice");
        let missing: Vec<_> = declared.difference(&table).collect();
        assert!(missing.is_empty(), "RPCs without a permission entry: {missing:?}");
        let stale: Vec<_> = table.difference(&declared).collect();
        assert!(stale.is_empty(), "entries for RPCs that do not exist: {stale:?}");
    }

    /// The auth layer reads the workspace from field 1 of the request; a workspace-scoped RPC
    /// whose request put something else there would be checked against the wrong workspace.
    #[test]
    fn every_workspace_scoped_request_has_workspace_id_as_field_1() {
        let set = FileDescriptorSet::decode(scifer_proto::FILE_DESCRIPTOR_SET).unwrap();
        for (path, input) in gateway_methods() {
            if !matches!(required(&path), Some(Access::Workspace(_))) {
                continue;
            }
            let name = input.trim_start_matches('.');
            let message = set
                .file
                .iter()
                .flat_map(|f| f.message_type.iter().map(move |m| (f.package(), m)))
                .find(|(package, m)| format!("{package}.{}", m.name()) == name)
                .map(|(_, m)| m)
                .unwrap_or_else(|| panic!("{name} not found"));
            let field = message.field.iter().find(|f| f.number() == 1);
            assert!(
                field.is_some_and(|f| f.name() == "workspace_id"
                    && f.r#type() == prost_types::field_descriptor_proto::Type::String),
                "{path}: field 1 of {name} must be `string workspace_id`"
            );
        }
    }
}
