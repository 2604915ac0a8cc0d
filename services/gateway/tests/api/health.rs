//! The standard gRPC health service over native gRPC on the public port.

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::spawn_app;

#[tokio::test]
async fn native_grpc_health_check_is_serving_overall_and_for_the_api() {
    let app = spawn_app().await;
    let mut health = HealthClient::new(app.native_channel().await);
    for service in ["", "scifer.gateway.v1.InboxApi", "scifer.gateway.v1.ChannelApi"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}
