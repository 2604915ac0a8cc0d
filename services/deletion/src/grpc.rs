use scifer_proto::deletion::v1::{GetInfoRequest, GetInfoResponse, deletion_service_server::DeletionService};
use tonic::{Request, Response, Status};

pub struct Deletion;

#[tonic::async_trait]
impl DeletionService for Deletion {
    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        Ok(Response::new(GetInfoResponse {
            service: "deletion".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }
}
