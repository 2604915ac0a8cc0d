//! The skeleton answers its gRPC service, reports healthy and stops cleanly on shutdown.

use scifer_proto::publisher::v1::{
    GetInfoRequest, publisher_service_client::PublisherServiceClient,
    publisher_service_server::PublisherServiceServer,
};

#[tokio::test]
async fn serves_info_and_health_then_stops_on_shutdown() {
    let app =
        scifer_test_support::start_skeleton("publisher", PublisherServiceServer::new(publisher::Publisher))
            .await;
    let mut client = PublisherServiceClient::connect(app.url.clone()).await.unwrap();
    let info = client.get_info(GetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.service, "publisher");
    app.assert_healthy().await;
    app.stop().await;
}
