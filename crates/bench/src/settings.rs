//! Run settings: command-line flags (`--duration 3` or `--duration=3`), else `SCIFER_BENCH_*`
//! environment variables, else defaults.

use std::{path::PathBuf, time::Duration};

use crate::error::{BenchError, Result};

pub const USAGE: &str = "\
scifer-bench: load driver for webhook-ingest, the webhook-to-WatchInbox pipeline, agent replies
to the simulated Graph API and the inbox consumer

usage: scifer-bench [flags]
  --phases LIST        subset of jetstream,minimal,ingest,ingest-rx,pipeline,reply,        SCIFER_BENCH_PHASES
                       inbox-consume (all)
  --rounds N           run the phases N times, interleaved; ratios use medians (1)         SCIFER_BENCH_ROUNDS
  --duration SECS      measured seconds per phase (10)                                     SCIFER_BENCH_DURATION
  --warmup SECS        unmeasured warm-up before closed-loop phases (1)                    SCIFER_BENCH_WARMUP
  --connections N      closed-loop HTTP connections (64)                                   SCIFER_BENCH_CONNECTIONS
  --rate N             pipeline open-loop deliveries per second (1000)                     SCIFER_BENCH_RATE
  --reply-rate N       reply open-loop SendMessage calls per second (200)                  SCIFER_BENCH_REPLY_RATE
  --customers N        reply: conversations the sends rotate over (50)                     SCIFER_BENCH_CUSTOMERS
  --events N           inbox-consume: MetaEvents in the backlog (50000)                    SCIFER_BENCH_EVENTS
  --consumer-batch N   inbox-consume: batch size of both consumers (1000)                  SCIFER_BENCH_CONSUMER_BATCH
  --window N           raw JetStream publishes in flight (256)                             SCIFER_BENCH_WINDOW
  --body-bytes N       approximate delivery body size (2048)                               SCIFER_BENCH_BODY_BYTES
  --e2e-timeout SECS   how long a delivery may take to show up on WatchInbox (5)           SCIFER_BENCH_E2E_TIMEOUT
  --output PATH        JSON report (target/bench/latest.json)                              SCIFER_BENCH_OUTPUT

Service binaries come from target/$SCIFER_BIN_PROFILE (debug unless set; `make bench` sets release);
nats-server from $SCIFER_NATS_SERVER, else .venv/bin/nats-server, else PATH.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    JetStream,
    Minimal,
    Ingest,
    /// webhook-ingest with its splitter off: the HTTP hot path alone (diagnostic).
    IngestReceiver,
    Pipeline,
    /// Agent replies through gateway → inbox → token-vault → the simulator's Send API, against
    /// direct calls to the simulator.
    Reply,
    /// inbox draining a MetaEvent backlog into its store, against a bare pull consumer.
    InboxConsume,
}

impl Phase {
    pub const ALL: [Phase; 7] = [
        Phase::JetStream,
        Phase::Minimal,
        Phase::Ingest,
        Phase::IngestReceiver,
        Phase::Pipeline,
        Phase::Reply,
        Phase::InboxConsume,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::JetStream => "jetstream",
            Phase::Minimal => "minimal",
            Phase::Ingest => "ingest",
            Phase::IngestReceiver => "ingest-rx",
            Phase::Pipeline => "pipeline",
            Phase::Reply => "reply",
            Phase::InboxConsume => "inbox-consume",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Disjoint sequence ranges per phase, so every delivery of the run has its own `mid`.
    pub fn seq_base(self) -> u64 {
        let n = match self {
            Phase::JetStream => 1,
            Phase::Minimal => 2,
            Phase::Ingest => 3,
            Phase::Pipeline => 4,
            Phase::IngestReceiver => 5,
            Phase::Reply => 6,
            Phase::InboxConsume => 7,
        };
        n << 48
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub phases: Vec<Phase>,
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub rate: u32,
    pub reply_rate: u32,
    pub customers: usize,
    pub events: usize,
    pub consumer_batch: usize,
    pub window: usize,
    pub body_bytes: usize,
    pub e2e_timeout: Duration,
    pub output: PathBuf,
}

/// What the command line asked for.
pub enum Command {
    Run(Settings),
    Help,
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(BenchError::msg(format!("unexpected argument {arg:?}\n\n{USAGE}")));
        };
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => {
                let value = args
                    .next()
                    .ok_or_else(|| BenchError::msg(format!("--{flag} needs a value")))?;
                (flag.to_string(), value)
            }
        };
        flags.push((name, value));
    }
    let lookup = |name: &str| -> Option<String> {
        flags
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .or_else(|| {
                let var = format!("SCIFER_BENCH_{}", name.to_ascii_uppercase().replace('-', "_"));
                std::env::var(var).ok().filter(|v| !v.is_empty())
            })
    };
    const KNOWN: [&str; 14] = [
        "phases",
        "rounds",
        "duration",
        "warmup",
        "connections",
        "rate",
        "reply-rate",
        "customers",
        "events",
        "consumer-batch",
        "window",
        "body-bytes",
        "e2e-timeout",
        "output",
    ];
    if let Some((unknown, _)) = flags.iter().find(|(n, _)| !KNOWN.contains(&n.as_str())) {
        return Err(BenchError::msg(format!("unknown flag --{unknown}\n\n{USAGE}")));
    }

    let phases = match lookup("phases") {
        None => Phase::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Phase::parse(s).ok_or_else(|| BenchError::msg(format!("unknown phase {s:?}"))))
            .collect::<Result<Vec<_>>>()?,
    };
    let output = lookup("output").map_or_else(
        || scifer_test_support::workspace_root().join("target/bench/latest.json"),
        PathBuf::from,
    );
    Ok(Command::Run(Settings {
        phases,
        rounds: positive(lookup("rounds"), "rounds", 1)?,
        duration: secs(lookup("duration"), "duration", 10.0)?,
        warmup: secs(lookup("warmup"), "warmup", 1.0)?,
        connections: positive(lookup("connections"), "connections", 64)?,
        rate: u32::try_from(positive(lookup("rate"), "rate", 1000)?)
            .map_err(|_| BenchError::msg("--rate is too large"))?,
        reply_rate: u32::try_from(positive(lookup("reply-rate"), "reply-rate", 200)?)
            .map_err(|_| BenchError::msg("--reply-rate is too large"))?,
        customers: positive(lookup("customers"), "customers", 50)?,
        events: positive(lookup("events"), "events", 50_000)?,
        consumer_batch: positive(lookup("consumer-batch"), "consumer-batch", 1000)?,
        window: positive(lookup("window"), "window", 256)?,
        body_bytes: positive(lookup("body-bytes"), "body-bytes", 2048)?,
        e2e_timeout: secs(lookup("e2e-timeout"), "e2e-timeout", 5.0)?,
        output,
    }))
}

fn secs(value: Option<String>, name: &str, default: f64) -> Result<Duration> {
    let secs = match value {
        None => default,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or_else(|| BenchError::msg(format!("--{name} must be a number of seconds, got {v:?}")))?,
    };
    Ok(Duration::from_secs_f64(secs))
}

fn positive(value: Option<String>, name: &str, default: usize) -> Result<usize> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| BenchError::msg(format!("--{name} must be a positive integer, got {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_override_defaults() {
        let Command::Run(s) = parse(args("--duration 3 --connections=8 --phases minimal,ingest")).unwrap()
        else {
            panic!("expected settings");
        };
        assert_eq!(s.duration, Duration::from_secs(3));
        assert_eq!(s.connections, 8);
        assert_eq!(s.phases, vec![Phase::Minimal, Phase::Ingest]);
        assert_eq!(s.window, 256);
        assert_eq!(s.reply_rate, 200);

        let Command::Run(s) =
            parse(args("--phases reply,inbox-consume --events=1000 --reply-rate 50")).unwrap()
        else {
            panic!("expected settings");
        };
        assert_eq!(s.phases, vec![Phase::Reply, Phase::InboxConsume]);
        assert_eq!((s.events, s.reply_rate), (1000, 50));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(parse(args("--phases nope")).is_err());
        assert!(parse(args("--connections 0")).is_err());
        assert!(parse(args("--frobnicate 1")).is_err());
        assert!(parse(args("stray")).is_err());
        assert!(matches!(parse(args("--help")), Ok(Command::Help)));
    }

    #[test]
    fn phase_ranges_are_disjoint() {
        let mut bases: Vec<u64> = Phase::ALL.iter().map(|p| p.seq_base()).collect();
        bases.sort_unstable();
        assert!(bases.windows(2).all(|w| w[1] - w[0] >= 1 << 48));
    }
}
