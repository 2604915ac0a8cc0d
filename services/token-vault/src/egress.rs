//! Graph egress: a calling service names a channel and an action; the vault plans the request,
//! attaches the channel's token, calls Graph, classifies Meta's answer, puts the channel in
//! NEEDS_REAUTH on a token or permission error, and audits the use of the token.

use scifer_audit::{Actor, ActorKind, Audit, Outcome, action};
use scifer_graph::{ErrorKind, GraphError, GraphRequest};
use scifer_ids::WorkspaceId;
use scifer_proto::{
    events::v1::ChannelState,
    tokenvault::v1::{EgressAction, GraphFailure, OnBehalfOf, egress_response, graph_failure::Kind},
};

use crate::{
    domain::{egress, state},
    error::VaultError,
    vault::Vault,
};

/// The audit actor for a call: whoever the caller acts for, or the caller itself.
pub(crate) fn actor(on_behalf: Option<&OnBehalfOf>, caller: &str) -> Actor {
    match on_behalf.and_then(|a| ActorKind::parse(&a.kind).map(|k| (k, a.id.clone()))) {
        Some((kind, id)) => Actor { kind, id },
        None => Actor {
            kind: ActorKind::Service,
            id: caller.to_string(),
        },
    }
}

fn failure_kind(kind: ErrorKind) -> Kind {
    match kind {
        ErrorKind::TokenInvalid => Kind::TokenInvalid,
        ErrorKind::Permission => Kind::Permission,
        ErrorKind::Throttled => Kind::Throttled,
        ErrorKind::Transient => Kind::Transient,
        ErrorKind::InvalidRequest => Kind::InvalidRequest,
        ErrorKind::Policy => Kind::Policy,
        ErrorKind::Duplicate => Kind::Duplicate,
        ErrorKind::Other => Kind::Other,
    }
}

/// Meta's or the transport's failure as the caller sees it.
fn to_failure(e: &GraphError) -> GraphFailure {
    match e {
        GraphError::Meta(m) => GraphFailure {
            kind: failure_kind(m.kind) as i32,
            code: m.code,
            subcode: m.subcode.unwrap_or_default(),
            message: m.message.clone(),
            fbtrace_id: m.fbtrace_id.clone().unwrap_or_default(),
            retry_after_ms: m.retry_after.map(|d| d.as_millis() as i64).unwrap_or_default(),
            http_status: u32::from(m.http_status),
        },
        GraphError::Throttled { retry_after, .. } => GraphFailure {
            kind: Kind::Throttled as i32,
            message: "rate limit reached; the vault holds calls for this bucket until Meta allows them again"
                .into(),
            retry_after_ms: retry_after.as_millis() as i64,
            ..Default::default()
        },
        other => GraphFailure {
            kind: Kind::Transient as i32,
            message: other.to_string(),
            retry_after_ms: 1000,
            ..Default::default()
        },
    }
}

pub struct EgressCall<'a> {
    pub workspace: &'a WorkspaceId,
    pub channel_id: &'a str,
    pub action: EgressAction,
    pub params_json: &'a str,
    pub on_behalf: Option<&'a OnBehalfOf>,
    pub caller: &'a str,
}

impl Vault {
    /// Makes a planned Graph call with a channel's token.
    pub(crate) async fn graph_call(
        &self,
        planned: egress::Planned,
        token: &scifer_graph::Token,
    ) -> Result<scifer_graph::GraphResponse, GraphError> {
        self.graph
            .call(
                GraphRequest {
                    method: planned.method,
                    path: &planned.path,
                    query: planned.query.iter().map(|(k, v)| (*k, v.clone())).collect(),
                    body: planned.body,
                    business_object: Some(&planned.business_object),
                },
                token,
            )
            .await
    }

    pub async fn egress(&self, call: EgressCall<'_>) -> Result<egress_response::Outcome, VaultError> {
        let ch = self.channel(&self.db, call.workspace, call.channel_id).await?;
        match ChannelState::try_from(ch.state) {
            Ok(ChannelState::Connected) => {}
            Ok(ChannelState::NeedsReauth) => return Err(VaultError::NeedsReauth(ch.state_reason.clone())),
            _ => return Err(VaultError::ChannelNotFound),
        }
        let params: serde_json::Value = if call.params_json.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_json::from_str(call.params_json)
                .map_err(|e| VaultError::InvalidArgument(format!("params_json is not JSON: {e}")))?
        };
        let planned = egress::plan(call.action, crate::vault::target(&ch), params)?;
        let token = self.token_of(&self.db, &ch).await?;
        let result = self.graph_call(planned, &token).await;
        drop(token);

        let (outcome, detail, answer) = match result {
            Ok(response) => (
                Outcome::Success,
                format!("caller={} action={}", call.caller, call.action.as_str_name()),
                egress_response::Outcome::ResultJson(response.body.to_string()),
            ),
            Err(e) => {
                let failure = to_failure(&e);
                if let GraphError::Meta(m) = &e
                    && let Some(reason) = state::reauth_reason(m)
                {
                    self.mark_needs_reauth(&ch, &reason).await?;
                }
                (
                    Outcome::Failure,
                    format!(
                        "caller={} action={} error={} code={}",
                        call.caller,
                        call.action.as_str_name(),
                        Kind::try_from(failure.kind)
                            .map(|k| k.as_str_name())
                            .unwrap_or("?"),
                        failure.code
                    ),
                    egress_response::Outcome::Failure(failure),
                )
            }
        };
        self.record(
            &self.db,
            Audit::new(
                call.workspace,
                actor(call.on_behalf, call.caller),
                action::TOKEN_USED,
                outcome,
            )
            .target("channel", &ch.id)
            .detail(detail),
        )
        .await?;
        self.published();
        Ok(answer)
    }
}
