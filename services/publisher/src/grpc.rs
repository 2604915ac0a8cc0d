use scifer_proto::publisher::v1::{
    GetInfoRequest, GetInfoResponse, publisher_service_server::PublisherService,
};
use tonic::{Request, Response, Status};

pub struct Publisher;

#[tonic::async_trait]
impl PublisherService for Publisher {
    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        Ok(Response::new(GetInfoResponse {
            service: "publisher".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }
}
