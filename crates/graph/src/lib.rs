//! Meta Graph API client for the token vault: versioned calls with the token in the
//! `Authorization` header and an `appsecret_proof`, typed OAuth/asset calls, Meta's error envelope
//! decoded and classified, and rate-limit tracking that slows down before the limit and stops
//! calling a throttled bucket.
//!
//! Wire formats: `reference/meta-platform.md` §3, §6, §8 and §9.

mod client;
mod config;
mod error;
mod secret;
mod types;
mod usage;

pub use client::{GraphClient, GraphRequest, GraphResponse, MAX_BODY_BYTES, MAX_PAGES, MediaDownload};
pub use config::{DEFAULT_THROTTLE_THRESHOLD_PCT, DEFAULT_TIMEOUT, DEFAULT_VERSION, GraphConfig};
pub use error::{ErrorKind, GraphError, MetaError, classify};
pub use secret::{AppSecret, Token};
pub use types::{
    GranularScope, InstagramAccount, IssuedToken, PageAccount, PhoneNumber, TokenInfo, TokenType,
};
pub use usage::{
    AppUsage, BucUsage, BucketSnapshot, Clock, ManualClock, SystemClock, ThrottleScope, UsagePolicy,
    UsageSnapshot, UsageTracker, delay_for, is_bucket_throttle, parse_app_usage, parse_buc_usage,
    throttle_scope,
};
