//! token-vault's API tests: the real binary against a private nats-server, its own database and
//! the Meta simulator's Graph surface.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod connect;
mod disconnect;
mod egress;
mod health;
mod helpers;
mod media;
mod rotation;
mod secrets;
