use std::process::ExitCode;

use scifer_proto::publisher::v1::publisher_service_server::PublisherServiceServer;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("publisher", |shutdown| async move {
        let config = scifer_plumbing::config::load()?;
        publisher::build(config)
            .await?
            .run_until_stopped(PublisherServiceServer::new(publisher::Publisher), shutdown)
            .await
    })
    .await
}
