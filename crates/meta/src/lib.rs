//! Meta webhook domain logic for Messenger, Instagram and WhatsApp: pure functions, no I/O.
//!
//! The ingest path uses it in this order: [`signature::verify_sha256`] on the raw body,
//! [`split::peek_object`] to reject non-JSON before storing, and later
//! [`split::split_delivery`] to turn the stored body into one bus event per item.

pub mod signature;
pub mod split;
pub mod webhook;

pub use signature::{InvalidSignature, SignatureError, sign_sha256, verify_sha256, verify_token_matches};
pub use split::{MalformedDelivery, Split, peek_object, split_delivery};
