//! scifer-bench: the load driver behind `make bench`. See `settings::USAGE` for the flags and the
//! crate's modules for what each phase measures.

mod bodies;
mod driver;
mod error;
mod lag;
mod minimal;
mod phases;
mod report;
mod settings;
mod sys;

use std::sync::Arc;

use crate::{
    bodies::BodyFactory,
    error::{BenchError, Result},
    phases::Ctx,
    report::Report,
    settings::Command,
};

/// Messenger customers the bodies rotate through (one conversation each in the pipeline).
const CUSTOMERS: usize = 64;

#[tokio::main]
async fn main() -> Result<()> {
    let settings = match settings::parse(std::env::args().skip(1))? {
        Command::Run(settings) => settings,
        Command::Help => {
            println!("{}", settings::USAGE);
            return Ok(());
        }
    };
    scifer_plumbing::install_crypto_provider();
    let nats_binary = scifer_test_support::nats_server_binary();
    if !nats_binary.exists() {
        return Err(BenchError::msg(format!(
            "no nats-server at {} (run `make` or set SCIFER_NATS_SERVER)",
            nats_binary.display()
        )));
    }
    let factory = Arc::new(BodyFactory::new(settings.body_bytes, CUSTOMERS)?);
    let machine = sys::machine_facts();
    let nats = scifer_test_support::NatsServer::start().await;
    let ctx = Ctx {
        nats_url: nats.url(),
        settings: settings.clone(),
        factory: factory.clone(),
    };

    let mut report = Report {
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        settings: settings.clone(),
        machine,
        body_bytes: factory.size_range(),
        phases: Vec::new(),
    };
    // Round-robin over the phases, so machine noise spreads over all of them.
    for round in 1..=settings.rounds {
        for phase in &settings.phases {
            eprintln!(
                "scifer-bench: round {round}/{}, phase {} ...",
                settings.rounds,
                phase.name()
            );
            let outcome = phases::run(*phase, &ctx).await;
            report.phases.push((*phase, round, outcome));
        }
    }
    drop(nats);

    println!("{}", report.render());
    report.write_json(&settings.output)?;
    println!("JSON report: {}", settings.output.display());
    Ok(())
}
