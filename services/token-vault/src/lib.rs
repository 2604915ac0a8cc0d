//! token-vault: the only holder of channel tokens and the only caller of Meta's Graph API.
//!
//! - connects Pages, Instagram accounts and WhatsApp numbers ([`connect`]), checking each token
//!   with debug_token and subscribing the app to the account's webhooks;
//! - seals every token with AES-256-GCM under its workspace's data key, itself wrapped under a
//!   configured KEK ([`keys`], `scifer-vault-crypto`), and rotates keys in the background
//!   ([`rotation`]);
//! - performs named Graph actions for inbox and publisher without ever handing out a token
//!   ([`egress`]); 190 and permission errors put the channel in NEEDS_REAUTH;
//! - checks connections periodically ([`health`]) and disconnects them ([`disconnect`]);
//! - announces channel changes and audit records through a transactional outbox ([`outbox`]).

pub mod config;
pub mod connect;
pub mod disconnect;
pub mod domain;
pub mod egress;
pub mod error;
pub mod grpc;
pub mod health;
pub mod keys;
pub mod media;
pub mod outbox;
pub mod rotation;
pub mod startup;
pub mod store;
pub mod vault;

pub use config::Config;
pub use grpc::TokenVault;
pub use startup::{Application, StartupError};

/// Where it listens unless `GRPC_ADDR` says otherwise.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:9084";
