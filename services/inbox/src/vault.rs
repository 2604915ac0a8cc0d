//! History, gaps and media: the token-vault client the background workers use (the same
//! credential as sending, see [`crate::send`]).

use std::time::Duration;

use scifer_plumbing::service_identity::{Identify, ServiceCredential, identified_channel};
use scifer_proto::tokenvault::v1::token_vault_service_client::TokenVaultServiceClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crate::send::SERVICE_NAME;

pub type VaultClient = TokenVaultServiceClient<InterceptedService<Channel, Identify>>;

/// None when no credential is configured: the workers then skip what needs the vault.
pub fn client(
    url: &str,
    credential: Option<secrecy::SecretString>,
    timeout: Duration,
) -> Result<Option<VaultClient>, scifer_plumbing::service_identity::InvalidUrl> {
    Ok(match credential {
        Some(secret) => Some(TokenVaultServiceClient::new(identified_channel(
            url,
            timeout,
            ServiceCredential::new(SERVICE_NAME, secret),
        )?)),
        None => None,
    })
}
