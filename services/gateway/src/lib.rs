//! gateway: the public edge that browser frontends and other clients reach. One port serves
//! `scifer.gateway.v1.AccountApi`, `WorkspaceApi`, `InboxApi`, `ChannelApi` and `AuditApi` over
//! native gRPC (h2c) and gRPC-web (HTTP/1.1), the standard gRPC health and reflection services, and
//! `/healthz` / `/readyz`, all behind one CORS layer.
//!
//! Accounts, sessions, workspaces and memberships live in the gateway's own store. Every call
//! passes one auth layer ([`permissions`] is its table): SignUp and Login are public; everything
//! else needs `authorization: Bearer <session token>`; workspace-scoped calls also need membership
//! of the request's `workspace_id` with a high enough role, and a workspace the caller is not a
//! member of answers NOT_FOUND like one that does not exist. Members are added by email with
//! `AddMember`, a stand-in until invitations by email exist.
//!
//! Reads are forwarded to the inbox service with the authenticated workspace in
//! `x-scifer-workspace-id` and the actor (`user:<id>`) in `x-scifer-actor`. `SendMessage` and
//! `RetryMessage` (agents and above) are forwarded the same way with the caller as the author
//! (HUMAN, their user id), whatever the client wrote; `CheckSend` (any member) asks for a HUMAN
//! author. Inbox's answer, a refusal included, passes through unchanged. `WatchInbox` streams
//! the workspace's `InboxEvent`s straight from the bus, and re-checks the caller's session and
//! membership while it is open: a logout, expiry or removal ends the stream with UNAUTHENTICATED or
//! NOT_FOUND at the next check.
//!
//! The team workflow is forwarded the same way, with what the table cannot see checked in the
//! handler: agents change a conversation's status and take or release it (inbox enforces that with
//! the `assignee_guard` the gateway sets to the caller), admins assign any member with the agent
//! role or above, or a team, and set others' availability; labels, notes, read markers and contact
//! edits are for agents, canned responses are read by everyone (rendered with the caller's name)
//! and written by admins, search is a read. `SuggestReply` (agents) returns the AI provider's draft
//! without sending it and records `ai.suggested` in the workspace's chain.
//!
//! `ChannelApi` (listing: any member; connecting and disconnecting: admins and owners) is forwarded
//! to token-vault with the authenticated workspace and user in the request and the gateway's service
//! identity (`x-scifer-service: gateway`, its credential as the bearer) in metadata. The durable
//! consumer `gateway-channel-alerts` emails every admin and owner once per needs-reauth
//! `ChannelEvent`, with the reason in words and a link to reconnect.
//!
//! Settings (environment, or `SCIFER_CONFIG_FILE`):
//! - `LISTEN_ADDR` (127.0.0.1:8080), `INBOX_URL` (http://127.0.0.1:9082), `INBOX_TIMEOUT_MS` (5000),
//!   `INBOX_SEND_TIMEOUT_MS` (20000: sends wait for Meta, suggestions for the AI provider),
//!   `CORS_ALLOWED_ORIGINS` (comma-separated; empty);
//! - `DATABASE_URL` (`sqlite://gateway.sqlite`; `postgres://...` in production), a secret;
//! - `SESSION_TTL_HOURS` (336, i.e. 14 days): sessions end this long after login, used or not;
//! - `LOGIN_MAX_FAILURES_PER_ACCOUNT` (5) and `LOGIN_MAX_FAILURES_PER_ADDRESS` (20): failed logins
//!   per email and per client address within 15 minutes, after which Login answers
//!   RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` (and the delay in the message) until the
//!   window ends;
//! - `TRUST_FORWARDED_FOR` (false): take the client address from the first `x-forwarded-for` hop;
//!   set it only behind a proxy that overwrites that header;
//! - `WATCH_RECHECK_SECS` (5, at least 1): how often an open WatchInbox re-checks its caller;
//! - `TOKEN_VAULT_URL` (http://127.0.0.1:9084), `TOKEN_VAULT_TIMEOUT_MS` (20000) and
//!   `TOKEN_VAULT_CREDENTIAL`, a secret without a default: unset, ChannelApi answers
//!   FAILED_PRECONDITION;
//! - `META_OAUTH_REDIRECT_URI` (`http://localhost:5173/channels/callback`): where Meta sends the
//!   browser back after Facebook Login; `PUBLIC_APP_URL` (`http://localhost:5173`): the frontend,
//!   for links in emails;
//! - `SMTP_URL` (unset: emails are logged, not sent), `MAIL_FROM` and `INVITATION_TTL_HOURS` (168);
//! - the common `NATS_URL`, `BUS_PREFIX`, `SHUTDOWN_GRACE_SECS`.
//!
//! The audit log lives in the gateway's database too (`scifer-audit`'s schema, in this migrator): a
//! consumer of the AUDIT stream stores every service's audit events, hash-chained per workspace,
//! and `AuditApi` (admins and owners) lists, exports and verifies a workspace's chain. The gateway
//! records sign-ups, logins, failed logins, logouts and name, email and password changes in the
//! global chain
//! (`scifer_audit::GLOBAL_WORKSPACE`), member changes and messages sent or retried
//! (`message.sent`, a failure when Meta refused it; not the send gate's refusals) in the
//! workspace's chain, and every refusal
//! of the auth layer (`access.denied`, outcome DENIED) in the workspace's chain, or the global one
//! when the workspace does not exist.
//!
//! Passwords are hashed with Argon2id (19 MiB, 2 passes, 1 lane; at least 12 characters); session
//! tokens are 32 random bytes, hex-encoded, and only their SHA-256 is stored. Neither is logged.

mod accounts;
mod alerts;
mod audit;
mod audit_api;
mod auth;
mod channels;
mod clock;
mod config;
mod cors;
mod domain;
mod error;
mod grpc;
mod inbox;
pub mod mail;
pub mod permissions;
mod startup;
mod store;
mod upstream;
mod vault;
mod watch;
mod workspaces;

pub use alerts::{DURABLE_NAME as CHANNEL_ALERTS_CONSUMER, MAX_DELIVERIES as CHANNEL_ALERT_MAX_DELIVERIES};
pub use clock::Clock;
pub use config::{Config, LOGIN_WINDOW};
pub use domain::Role;
pub use error::GatewayError;
pub use inbox::{ACTOR_METADATA, WORKSPACE_METADATA};
pub use scifer_ids::{InvalidWorkspaceId, WorkspaceId};
pub use startup::{Application, StartupError};
pub use watch::{ActiveWatches, WATCH_BUFFER};
