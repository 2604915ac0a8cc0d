use std::process::ExitCode;

use scifer_proto::deletion::v1::deletion_service_server::DeletionServiceServer;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("deletion", |shutdown| async move {
        let config = scifer_plumbing::config::load()?;
        deletion::build(config)
            .await?
            .run_until_stopped(DeletionServiceServer::new(deletion::Deletion), shutdown)
            .await
    })
    .await
}
