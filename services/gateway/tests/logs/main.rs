//! Log capture in a test binary of its own: it installs a process-wide subscriber that records
//! everything, which the API tests' subscriber would otherwise be.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The API tests' harness; this binary uses only part of it.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod capture;
