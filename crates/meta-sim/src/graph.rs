//! Reserved for the Graph API surface (an axum server playing `graph.facebook.com`).
//!
//! Planned shape, so the webhook side does not need reshaping when it lands:
//! - `graph::router(state: GraphState) -> axum::Router` with one file per endpoint group:
//!   `send_api` (Messenger/Instagram `/{v}/me/messages`, WhatsApp `/{v}/{phone-number-id}/messages`),
//!   `oauth` (`/{v}/oauth/access_token`, `debug_token`), `subscriptions` (`subscribed_apps`),
//!   `publishing` (Page posts, IG containers), `handover` (thread control).
//! - `GraphState` owns the simulated world (accounts from [`crate::demo`], tokens, threads,
//!   messaging windows) and a [`crate::webhooks::WebhookSender`], so a Send API call can
//!   answer synchronously and then emit its echo / WhatsApp statuses through the same
//!   builders and signing code as everything else.
//! - Errors use Meta's envelope `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`
//!   (meta-platform.md §8) from one `GraphError` type, mapped to HTTP in exactly one place.
