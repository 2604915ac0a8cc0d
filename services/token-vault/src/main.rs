use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    scifer_plumbing::run("token-vault", |shutdown| async move {
        let config: token_vault::Config = scifer_plumbing::config::load()?;
        token_vault::Application::build(config)
            .await?
            .run_until_stopped(shutdown)
            .await
    })
    .await
}
