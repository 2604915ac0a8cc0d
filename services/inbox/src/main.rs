use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("inbox", |shutdown| async move {
        let config: inbox::Config = scifer_plumbing::config::load()?;
        inbox::Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
