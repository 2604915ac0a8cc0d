//! `scifer.gateway.v1.InboxApi`: what frontends call. The auth layer has checked that the caller is
//! a member of the request's workspace with a role the permission table allows; every RPC acts on
//! the workspace of that membership and names the caller to inbox. Sends and retries are sent as
//! the caller (author HUMAN, their user id) and recorded in the workspace's audit chain.

use futures::{StreamExt, stream::BoxStream};
use scifer_audit::{Actor as AuditActor, Audit, Outcome, action};
use scifer_proto::{
    events::v1::InboxEvent,
    gateway::v1::{
        CheckSendRequest, GetConversationRequest, ListConversationsRequest, RetryMessageRequest,
        SendMessageRequest, WatchInboxRequest, inbox_api_server,
    },
    inbox::v1::{
        self as inbox, DeliveryStatus, GetConversationResponse, ListConversationsResponse, SendCheck,
        SendMessageResponse, send_message_response,
    },
};
use tonic::{Request, Response, Status};

use std::sync::Arc;

use crate::{
    audit::Auditor,
    auth::{Actor, Authenticator},
    inbox::InboxClient,
    watch::{Check, Watcher},
};

pub struct InboxApi {
    inbox: InboxClient,
    watcher: Watcher,
    /// Re-checks a watcher's session and membership while its stream is open.
    auth: Arc<Authenticator>,
    auditor: Auditor,
}

impl InboxApi {
    pub fn new(inbox: InboxClient, watcher: Watcher, auth: Arc<Authenticator>, auditor: Auditor) -> Self {
        Self {
            inbox,
            watcher,
            auth,
            auditor,
        }
    }

    /// Records a send or retry in the workspace's chain, when it produced a message (see
    /// [`sent`]).
    async fn record_sent(&self, actor: &Actor, response: &SendMessageResponse) -> Result<(), Status> {
        let Some(sent) = sent(response) else {
            return Ok(());
        };
        let workspace = &actor.membership()?.workspace;
        let audit = Audit::new(
            workspace,
            AuditActor::user(&actor.user_id),
            action::MESSAGE_SENT,
            sent.outcome,
        )
        .target("message", sent.message_id)
        .detail(sent.detail);
        self.auditor.record(audit).await;
        Ok(())
    }
}

/// What `message.sent` records of a send or retry.
#[derive(Debug, PartialEq, Eq)]
struct Sent<'a> {
    message_id: &'a str,
    outcome: Outcome,
    detail: &'a str,
}

/// The record of an answer that is a message: a success unless Meta's answer left it FAILED (the
/// detail is then inbox's reason code, e.g. `recipient_unavailable`). None for a refusal: the send
/// gate sent nothing, and the log keeps to actions that reached Meta. An answer replayed for a
/// repeated idempotency key is recorded again: the gateway cannot tell it from the first.
fn sent(response: &SendMessageResponse) -> Option<Sent<'_>> {
    let message = match &response.result {
        Some(send_message_response::Result::Message(message)) => message,
        Some(send_message_response::Result::Refusal(_)) | None => return None,
    };
    Some(if message.status() == DeliveryStatus::Failed {
        Sent {
            message_id: &message.id,
            outcome: Outcome::Failure,
            detail: &message.failure_reason,
        }
    } else {
        Sent {
            message_id: &message.id,
            outcome: Outcome::Success,
            detail: "",
        }
    })
}

#[tonic::async_trait]
impl inbox_api_server::InboxApi for InboxApi {
    async fn list_conversations(
        &self,
        request: Request<ListConversationsRequest>,
    ) -> Result<Response<ListConversationsResponse>, Status> {
        let actor = Actor::of(&request)?;
        // An absent query means inbox's defaults (first page, every channel and status).
        let query = request.into_inner().query.unwrap_or_default();
        let response = self.inbox.list_conversations(&actor, query).await?;
        Ok(Response::new(response))
    }

    async fn get_conversation(
        &self,
        request: Request<GetConversationRequest>,
    ) -> Result<Response<GetConversationResponse>, Status> {
        let actor = Actor::of(&request)?;
        // Inbox validates the query (a missing conversation id is its INVALID_ARGUMENT).
        let query = request.into_inner().query.unwrap_or_default();
        let response = self.inbox.get_conversation(&actor, query).await?;
        Ok(Response::new(response))
    }

    type WatchInboxStream = BoxStream<'static, Result<InboxEvent, Status>>;

    async fn watch_inbox(
        &self,
        request: Request<WatchInboxRequest>,
    ) -> Result<Response<Self::WatchInboxStream>, Status> {
        let actor = Actor::of(&request)?;
        let workspace = actor.membership()?.workspace.clone();
        let auth = self.auth.clone();
        let check: Check = Box::new(move || {
            let (auth, actor) = (auth.clone(), actor.clone());
            Box::pin(async move { auth.still_allowed(&actor).await })
        });
        let events = self.watcher.watch(&workspace, check).await?;
        Ok(Response::new(
            events.map(|item| item.map_err(Status::from)).boxed(),
        ))
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let actor = Actor::of(&request)?;
        // Inbox validates the message (a missing one lacks its conversation id and idempotency
        // key: its INVALID_ARGUMENT). [`InboxClient`] replaces the author with the caller.
        let message = request.into_inner().message.unwrap_or_default();
        let response = self.inbox.send_message(&actor, message).await?;
        self.record_sent(&actor, &response).await?;
        Ok(Response::new(response))
    }

    async fn check_send(&self, request: Request<CheckSendRequest>) -> Result<Response<SendCheck>, Status> {
        let actor = Actor::of(&request)?;
        let query = inbox::CheckSendRequest {
            conversation_id: request.into_inner().conversation_id,
            // Set by [`InboxClient`] from the caller.
            author: inbox::AuthorKind::Unspecified as i32,
        };
        Ok(Response::new(self.inbox.check_send(&actor, query).await?))
    }

    async fn retry_message(
        &self,
        request: Request<RetryMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let actor = Actor::of(&request)?;
        let retry = inbox::RetryMessageRequest {
            message_id: request.into_inner().message_id,
            // Set by [`InboxClient`] from the caller.
            author: None,
        };
        let response = self.inbox.retry_message(&actor, retry).await?;
        self.record_sent(&actor, &response).await?;
        Ok(Response::new(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(message: inbox::Message) -> SendMessageResponse {
        SendMessageResponse {
            result: Some(send_message_response::Result::Message(message)),
        }
    }

    #[test]
    fn a_sent_or_pending_message_is_a_success_on_the_message() {
        for status in [DeliveryStatus::Sent, DeliveryStatus::Pending] {
            let response = answer(inbox::Message {
                id: "m-1".into(),
                status: status as i32,
                ..Default::default()
            });
            let want = Sent {
                message_id: "m-1",
                outcome: Outcome::Success,
                detail: "",
            };
            assert_eq!(sent(&response), Some(want), "{status:?}");
        }
    }

    #[test]
    fn a_failed_message_is_a_failure_with_inboxs_reason() {
        let response = answer(inbox::Message {
            id: "m-1".into(),
            status: DeliveryStatus::Failed as i32,
            failure_reason: "recipient_unavailable".into(),
            error_message: "(#551) This person isn't available right now.".into(),
            ..Default::default()
        });
        let want = Sent {
            message_id: "m-1",
            outcome: Outcome::Failure,
            detail: "recipient_unavailable",
        };
        assert_eq!(sent(&response), Some(want));
    }

    #[test]
    fn a_refusal_or_an_empty_answer_is_not_recorded() {
        let refused = SendMessageResponse {
            result: Some(send_message_response::Result::Refusal(inbox::SendRefusal {
                reason: "window_closed".into(),
                ..Default::default()
            })),
        };
        assert_eq!(sent(&refused), None);
        assert_eq!(sent(&SendMessageResponse::default()), None);
    }
}
