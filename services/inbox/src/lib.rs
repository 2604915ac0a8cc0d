//! inbox: contacts, conversations and messages of each workspace, built from the Meta events on the
//! bus and served to the gateway over gRPC. Disconnecting a channel deletes all of its data (see
//! [`apply`]). Replies go out through the send gate and token-vault ([`send`]).

pub mod apply;
pub mod config;
pub mod consumer;
pub mod convert;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod send;
mod startup;
pub mod store;

pub use config::Config;
pub use startup::{Application, CHANNEL_CONSUMER, META_CONSUMER, StartupError};
