//! AI-suggested replies for the shared inbox.
//!
//! The inbox gathers a conversation's recent messages and the workspace's canned responses into a
//! [`SuggestionRequest`]; a [`SuggestionProvider`] turns it into a [`Suggestion`] for a human agent
//! to review. This crate only drafts: sending (through the send gate), auditing and any automation
//! rule that acts on `confidence` or `wants_human` live in the inbox.
//!
//! [`from_settings`] yields `None` when no provider is configured; the caller then reports the
//! feature as disabled ([`AiError::Disabled`]). With the `fake` feature, [`fake::FakeOpenAi`]
//! serves an OpenAI-compatible endpoint on `127.0.0.1:0` for tests.

mod answer;
mod client;
mod config;
mod error;
#[cfg(feature = "fake")]
pub mod fake;
mod prompt;
mod request;

pub use answer::truncate_for_channel;
pub use client::{OpenAiCompatible, SuggestionProvider};
pub use config::{AiConfig, from_settings};
pub use error::AiError;
pub use request::{
    CannedResponse, Channel, ContextMessage, Speaker, Suggestion, SuggestionRequest, UnknownChannel,
};
