//! Conversation Routing (the Handover Protocol's successor, meta-platform.md §4):
//! `POST /{v}/{page-id|me}/pass_thread_control`, `take_thread_control`,
//! `request_thread_control`, `release_thread_control` and `GET …/thread_owner`, over a per-thread
//! owner (our app, another app such as the Page Inbox, or idle).
//!
//! Who is notified follows the Handover Protocol docs: `pass_thread_control` goes to the app
//! receiving control, `take_thread_control` to the app losing it, `request_thread_control` to
//! the owner, release notifies nobody. So our own calls produce no webhook to us; other apps'
//! moves (played with [`GraphSim::pass_thread_control_as`] and friends) do. Whether Conversation
//! Routing also notifies the acting app is UNCERTAIN.

use serde_json::{Value, json};

use super::errors::GraphError;
use super::outbox::Chain;
use super::request::{GraphRequest, Reply};
use super::threads::{Channel, ThreadKey};
use super::world::{Auth, Node, TokenKind, World};
use super::{GraphSim, ThreadControlCall, must};
use crate::webhooks::messaging::{Handover, MessagingEvent};
use crate::webhooks::{instagram, messenger};

impl World {
    /// The thread of `customer` on `object_id`: a Page (Messenger, or Instagram when the
    /// customer is an IGSID of the Page's linked account) or an Instagram account.
    pub(crate) fn messaging_thread(&self, object_id: &str, customer: &str) -> Option<(ThreadKey, Channel)> {
        if self.ig(object_id).is_some() {
            return Some((ThreadKey::new(object_id, customer), Channel::Instagram));
        }
        let page = self.page(object_id)?;
        match (&page.instagram, self.ig_of_igsid(customer)) {
            (Some(ig), Some(of)) if ig == of => Some((ThreadKey::new(ig, customer), Channel::Instagram)),
            _ => Some((ThreadKey::new(object_id, customer), Channel::Messenger)),
        }
    }

    fn handover_event(
        &mut self,
        key: &ThreadKey,
        channel: Channel,
        event: &Handover,
        metadata: Option<&str>,
    ) {
        let e: MessagingEvent = match channel {
            Channel::Instagram => instagram::handover(&key.account, &key.customer, event, metadata),
            Channel::Messenger | Channel::WhatsApp => {
                messenger::handover(&key.account, &key.customer, event, metadata)
            }
        };
        let e = e.timestamp_ms(self.now_ms());
        let delay = self.outbox.timing.first;
        self.schedule(Chain::single(delay, e.into_delivery()));
    }

    /// Another app passes the thread to `target`; we hear of it when `target` is us.
    pub(crate) fn pass_as(
        &mut self,
        key: &ThreadKey,
        channel: Channel,
        target: &str,
        metadata: Option<&str>,
    ) {
        let thread = self.threads.entry(channel, key);
        let previous = thread.owner.replace(target.to_owned());
        if target == self.config.app_id {
            let e = Handover::Pass {
                previous_owner_app_id: previous,
                new_owner_app_id: target.to_owned(),
            };
            self.handover_event(key, channel, &e, metadata);
        }
    }

    /// Another app takes the thread; we hear of it when we owned it.
    pub(crate) fn take_as(
        &mut self,
        key: &ThreadKey,
        channel: Channel,
        app_id: &str,
        metadata: Option<&str>,
    ) {
        let thread = self.threads.entry(channel, key);
        let previous = thread.owner.replace(app_id.to_owned());
        if previous.as_deref() == Some(self.config.app_id.as_str()) {
            let e = Handover::Take {
                previous_owner_app_id: previous,
                new_owner_app_id: app_id.to_owned(),
            };
            self.handover_event(key, channel, &e, metadata);
        }
    }
}

fn app_id_param(body: &Value, name: &str) -> Option<String> {
    match body.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The thread a handover call is about, after the token and permission checks.
fn target_thread(
    world: &World,
    auth: &Auth,
    req: &GraphRequest,
    node: &Node,
    recipient: &str,
) -> Result<(ThreadKey, Channel), GraphError> {
    let Node::Page(page_id) = node else {
        return Err(GraphError::unsupported(&req.method, node.id()));
    };
    if auth.kind != TokenKind::Page {
        return Err(GraphError::page_token_required());
    }
    if auth.page_id.as_deref() != Some(page_id.as_str()) {
        return Err(GraphError::permissions_error());
    }
    let (key, channel) = world
        .messaging_thread(page_id, recipient)
        .ok_or_else(|| GraphError::unsupported(&req.method, page_id))?;
    let scope = match channel {
        Channel::Instagram => "instagram_manage_messages",
        Channel::Messenger | Channel::WhatsApp => "pages_messaging",
    };
    if !auth.has(scope) {
        return Err(GraphError::messaging_permission(scope));
    }
    Ok((key, channel))
}

/// `POST /{v}/{page-id}/{pass,take,request,release}_thread_control`.
pub fn control(
    world: &mut World,
    auth: &Auth,
    req: &GraphRequest,
    node: &Node,
    action: &str,
) -> Result<Reply, GraphError> {
    let body = req.body_object();
    let recipient = body
        .get("recipient")
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| GraphError::missing_param("recipient"))?
        .to_owned();
    let (key, channel) = target_thread(world, auth, req, node, &recipient)?;
    let ours = world.config.app_id.clone();
    let owner = world.threads.get(&key).and_then(|t| t.owner.clone());
    let owned_by_other = owner.as_deref().is_some_and(|o| o != ours);
    let mut target_app_id = None;
    match action {
        "pass_thread_control" => {
            let target = app_id_param(&body, "target_app_id")
                .ok_or_else(|| GraphError::missing_param("target_app_id"))?;
            if owned_by_other {
                return Err(GraphError::not_thread_owner());
            }
            if target == ours {
                return Err(GraphError::invalid_param(
                    "Param target_app_id must be an app other than the caller",
                ));
            }
            // The target app is notified, not us.
            world.threads.entry(channel, &key).owner = Some(target.clone());
            target_app_id = Some(target);
        }
        "take_thread_control" => {
            world.threads.entry(channel, &key).owner = Some(ours);
        }
        // The owner may act on the request or ignore it; nothing changes here.
        "request_thread_control" => {}
        "release_thread_control" => {
            if owned_by_other {
                return Err(GraphError::not_thread_owner());
            }
            world.threads.entry(channel, &key).owner = None;
        }
        other => return Err(GraphError::unsupported(&req.method, other)),
    }
    world.thread_control.push(ThreadControlCall {
        page_id: node.id().to_owned(),
        action: action.to_owned(),
        recipient,
        target_app_id,
        metadata: body.get("metadata").and_then(Value::as_str).map(str::to_owned),
    });
    Ok(Reply::Json(json!({"success": true})))
}

/// `GET /{v}/{page-id}/thread_owner?recipient=PSID`. An idle thread answers `{"data":[]}`
/// (UNCERTAIN).
pub fn owner(world: &World, auth: &Auth, req: &GraphRequest, node: &Node) -> Result<Reply, GraphError> {
    let recipient = req.require("recipient")?;
    let (key, _) = target_thread(world, auth, req, node, recipient)?;
    let data = match world.threads.get(&key).and_then(|t| t.owner.clone()) {
        Some(app_id) => json!([{"thread_owner": {"app_id": app_id}}]),
        None => json!([]),
    };
    Ok(Reply::Json(json!({ "data": data })))
}

fn thread(w: &World, object_id: &str, customer_id: &str, what: &str) -> (ThreadKey, Channel) {
    must(
        w.messaging_thread(object_id, customer_id)
            .ok_or_else(|| super::WorldError::Unknown {
                what: "page or instagram account",
                id: object_id.to_owned(),
            }),
        what,
    )
}

impl GraphSim {
    /// Make `app_id` own the thread of `customer_id` on a Page (or its Instagram account), or
    /// make it idle with `None`, without any webhook. While another app owns it, our sends
    /// fail (10/2018300) and the inbound helpers deliver the customer's messages on `standby`.
    ///
    /// # Panics
    /// When `page_id` is neither a Page nor an Instagram account.
    pub fn set_thread_owner(&self, page_id: &str, customer_id: &str, app_id: Option<&str>) {
        let mut w = self.lock();
        let (key, channel) = thread(&w, page_id, customer_id, "set_thread_owner");
        w.threads.entry(channel, &key).owner = app_id.map(str::to_owned);
    }

    /// The app owning the thread; `None` = idle.
    pub fn thread_owner(&self, page_id: &str, customer_id: &str) -> Option<String> {
        let w = self.lock();
        let (key, _) = w.messaging_thread(page_id, customer_id)?;
        w.threads.get(&key).and_then(|t| t.owner.clone())
    }

    /// Another app (`app_id`, e.g. the Page Inbox, [`super::PAGE_INBOX_APP_ID`]) passes the
    /// thread to `target_app_id`; when that is our app, a `pass_thread_control` webhook follows
    /// (its `previous_owner_app_id` is the thread's actual previous owner, null when idle).
    ///
    /// # Panics
    /// When `page_id` is neither a Page nor an Instagram account.
    pub fn pass_thread_control_as(
        &self,
        app_id: &str,
        page_id: &str,
        customer_id: &str,
        target_app_id: &str,
        metadata: Option<&str>,
    ) {
        {
            let mut w = self.lock();
            let (key, channel) = thread(&w, page_id, customer_id, "pass_thread_control_as");
            tracing::debug!(app_id, "another app passes thread control");
            w.pass_as(&key, channel, target_app_id, metadata);
        }
        self.flush_webhooks();
    }

    /// Another app takes the thread; when we owned it, a `take_thread_control` webhook follows.
    ///
    /// # Panics
    /// When `page_id` is neither a Page nor an Instagram account.
    pub fn take_thread_control_as(
        &self,
        app_id: &str,
        page_id: &str,
        customer_id: &str,
        metadata: Option<&str>,
    ) {
        {
            let mut w = self.lock();
            let (key, channel) = thread(&w, page_id, customer_id, "take_thread_control_as");
            w.take_as(&key, channel, app_id, metadata);
        }
        self.flush_webhooks();
    }

    /// Another app asks for the thread; when we own it, a `request_thread_control` webhook
    /// follows (ownership does not change).
    ///
    /// # Panics
    /// When `page_id` is neither a Page nor an Instagram account.
    pub fn request_thread_control_as(
        &self,
        app_id: &str,
        page_id: &str,
        customer_id: &str,
        metadata: Option<&str>,
    ) {
        {
            let mut w = self.lock();
            let (key, channel) = thread(&w, page_id, customer_id, "request_thread_control_as");
            let owner = w.threads.get(&key).and_then(|t| t.owner.clone());
            if owner.as_deref() == Some(w.config.app_id.as_str()) {
                let e = Handover::Request {
                    requested_owner_app_id: app_id.to_owned(),
                };
                w.handover_event(&key, channel, &e, metadata);
            }
        }
        self.flush_webhooks();
    }
}
