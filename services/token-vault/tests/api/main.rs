//! The skeleton serves its gRPC service, the standard health service and HTTP health, and stops
//! cleanly when its shutdown token is cancelled.

use scifer_plumbing::CancellationToken;
use scifer_proto::tokenvault::v1::{GetInfoRequest, token_vault_service_client::TokenVaultServiceClient};
use token_vault::{Application, Config};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn serves_info_and_health_then_stops_on_shutdown() {
    scifer_plumbing::install_crypto_provider();
    let config: Config =
        scifer_plumbing::config::load_from(None, [("GRPC_ADDR".to_string(), "127.0.0.1:0".to_string())])
            .unwrap();
    let app = Application::build(config).await.unwrap();
    let addr = app.grpc_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let url = format!("http://{addr}");
    let mut client = TokenVaultServiceClient::connect(url.clone()).await.unwrap();
    let info = client.get_info(GetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.service, "token-vault");

    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let ready = reqwest::get(format!("{url}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);

    shutdown.cancel();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "did not stop cleanly: {stopped:?}"
    );
}
