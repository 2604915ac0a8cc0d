use std::process::ExitCode;

use scifer_proto::tokenvault::v1::token_vault_service_server::TokenVaultServiceServer;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("token-vault", |shutdown| async move {
        let config = scifer_plumbing::config::load()?;
        token_vault::build(config)
            .await?
            .run_until_stopped(TokenVaultServiceServer::new(token_vault::TokenVault), shutdown)
            .await
    })
    .await
}
