//! The skeleton answers its gRPC service, reports healthy and stops cleanly on shutdown.

use scifer_proto::deletion::v1::{
    GetInfoRequest, deletion_service_client::DeletionServiceClient,
    deletion_service_server::DeletionServiceServer,
};

#[tokio::test]
async fn serves_info_and_health_then_stops_on_shutdown() {
    let app =
        scifer_test_support::start_skeleton("deletion", DeletionServiceServer::new(deletion::Deletion)).await;
    let mut client = DeletionServiceClient::connect(app.url.clone()).await.unwrap();
    let info = client.get_info(GetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.service, "deletion");
    app.assert_healthy().await;
    app.stop().await;
}
