//! inbox's one token-vault client: sends, thread control, template sync, history sync and media
//! fetches all go through it, as service `inbox` with its `TOKEN_VAULT_CREDENTIAL`.

use std::time::Duration;

use scifer_plumbing::service_identity::{Identify, ServiceCredential, identified_channel};
use scifer_proto::tokenvault::v1::token_vault_service_client::TokenVaultServiceClient;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

/// The name inbox calls token-vault as.
pub const SERVICE_NAME: &str = "inbox";

pub type VaultClient = TokenVaultServiceClient<InterceptedService<Channel, Identify>>;

/// None when no credential is configured: sending is refused and the workers skip what needs the
/// vault; reading the inbox works.
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
