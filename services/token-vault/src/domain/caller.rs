//! Which authenticated service may call which group of RPCs. Kept as a table so a review sees the
//! whole policy at once; a service not listed for a group is refused with PERMISSION_DENIED.

/// Groups of the vault's RPCs with one policy each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcGroup {
    /// Service info: any authenticated service.
    Info,
    /// Connect, list, check and disconnect channels: the gateway acts for workspace admins, the
    /// deletion service for Meta's deletion callbacks and workspace deletions.
    Manage,
    /// Graph egress with a channel's token: only the services that talk to customers or publish.
    Egress,
    /// Key rotation: operators' tooling.
    Rotation,
}

pub fn allowed(group: RpcGroup, service: &str) -> bool {
    match group {
        RpcGroup::Info => true,
        RpcGroup::Manage => matches!(service, "gateway" | "deletion"),
        RpcGroup::Egress => matches!(service, "inbox" | "publisher"),
        RpcGroup::Rotation => matches!(service, "operator"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inbox_and_publisher_reach_graph_egress() {
        assert!(allowed(RpcGroup::Egress, "inbox"));
        assert!(allowed(RpcGroup::Egress, "publisher"));
        for other in ["gateway", "deletion", "webhook-ingest", "operator", ""] {
            assert!(!allowed(RpcGroup::Egress, other), "{other}");
        }
    }

    #[test]
    fn channel_management_is_for_gateway_and_deletion() {
        assert!(allowed(RpcGroup::Manage, "gateway"));
        assert!(allowed(RpcGroup::Manage, "deletion"));
        assert!(!allowed(RpcGroup::Manage, "inbox"));
        assert!(!allowed(RpcGroup::Rotation, "gateway"));
        assert!(allowed(RpcGroup::Rotation, "operator"));
    }
}
