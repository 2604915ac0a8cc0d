use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("publisher", |shutdown| async move {
        let config: publisher::Config = scifer_plumbing::config::load()?;
        publisher::Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
