use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("deletion", |shutdown| async move {
        let config: deletion::Config = scifer_plumbing::config::load()?;
        deletion::Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
