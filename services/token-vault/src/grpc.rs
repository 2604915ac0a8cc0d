use scifer_proto::tokenvault::v1::{
    GetInfoRequest, GetInfoResponse, token_vault_service_server::TokenVaultService,
};
use tonic::{Request, Response, Status};

pub struct TokenVault;

#[tonic::async_trait]
impl TokenVaultService for TokenVault {
    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        Ok(Response::new(GetInfoResponse {
            service: "token-vault".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }
}
