use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("webhook-ingest", |shutdown| async move {
        let config: webhook_ingest::Config = scifer_plumbing::config::load()?;
        webhook_ingest::Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
