use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("gateway", |shutdown| async move {
        let config: gateway::Config = scifer_plumbing::config::load()?;
        gateway::Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
