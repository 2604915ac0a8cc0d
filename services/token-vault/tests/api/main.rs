//! The skeleton answers its gRPC service, reports healthy and stops cleanly on shutdown.

use scifer_proto::tokenvault::v1::{
    GetInfoRequest, token_vault_service_client::TokenVaultServiceClient,
    token_vault_service_server::TokenVaultServiceServer,
};

#[tokio::test]
async fn serves_info_and_health_then_stops_on_shutdown() {
    let app = scifer_test_support::start_skeleton(
        "token-vault",
        TokenVaultServiceServer::new(token_vault::TokenVault),
    )
    .await;
    let mut client = TokenVaultServiceClient::connect(app.url.clone()).await.unwrap();
    let info = client.get_info(GetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.service, "token-vault");
    app.assert_healthy().await;
    app.stop().await;
}
