//! The webhook side of Meta: building event payloads in Meta's shapes, serializing and signing
//! them like Meta, and delivering them (with Meta's retries, duplicates and reordering).

pub mod delivery;
pub mod encode;
pub mod feed;
pub mod instagram;
pub mod messaging;
pub mod messenger;
pub mod retry;
pub mod sender;
pub mod sign;
pub mod unknown;
pub mod verify;
pub mod whatsapp;

pub use delivery::{ComposeError, Delivery, Entry, Item, Slot};
pub use encode::{Encoding, encode};
pub use retry::{Attempt, RetryPolicy, RetryReport};
pub use sender::{PreparedRequest, SendError, SendMode, SendOutcome, WebhookSender};
pub use verify::{VerifyOutcome, verify_subscription, verify_with};
