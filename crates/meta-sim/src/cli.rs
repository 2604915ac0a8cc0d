//! Command-line parsing for the `scifer-meta-sim` binary (hand-written: no clap in the
//! workspace, and the surface is four subcommands).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::demo::{DEMO_APP_ID, DEMO_CUSTOMERS, PokeKind};
use crate::secret::AppSecret;
use crate::webhooks::{Encoding, SendMode};

/// Env var holding the app secret.
pub const ENV_APP_SECRET: &str = "META_APP_SECRET";
/// Env var holding the app id (the Graph simulator's `client_id`).
pub const ENV_APP_ID: &str = "META_APP_ID";
/// Env var holding the verify token.
pub const ENV_VERIFY_TOKEN: &str = "META_VERIFY_TOKEN";

/// Usage text.
pub const USAGE: &str = "\
scifer-meta-sim: an offline stand-in for Meta's webhooks and Graph API

USAGE:
  scifer-meta-sim demo   --webhook-url URL [--interval-ms N] [--count N] [--app-secret S]
                         [--graph-addr ADDR [--app-id ID]]
  scifer-meta-sim graph  --addr ADDR [--app-id ID] [--app-secret S]
  scifer-meta-sim send   --webhook-url URL --kind KIND [--text T] [--customer N] [--mode MODE]
                         [--retry] [--app-secret S]
  scifer-meta-sim verify --webhook-url URL [--verify-token T] [--challenge C]

demo plays webhook traffic; with --graph-addr it also serves the Graph API (OAuth dialog and
tokens, debug_token, me/accounts, subscribed_apps, WhatsApp, Send APIs) over the demo world on
ADDR (e.g. 127.0.0.1:9090) until stopped. graph serves only the Graph API. Point a client's
Graph base URL (and Facebook dialog URL) at http://ADDR; steer failures with POSTs to
http://ADDR/_sim/... (invalidate_token, throttle, set_usage, revoke_scope, drop_subscription,
dialog_denies, advance_clock, embedded_signup_code).

The app secret comes from META_APP_SECRET, the app id from META_APP_ID (default: the demo
app) and the verify token from META_VERIFY_TOKEN; the flags override them.

KIND: messenger-text messenger-image messenger-postback messenger-echo instagram-text
      instagram-comment feed-comment whatsapp-text whatsapp-image whatsapp-failed unknown-object
MODE: valid tampered-signature tampered-body wrong-secret missing-signature sha1-only
      reserialized oversized
";

/// `demo` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoArgs {
    /// Where to POST.
    pub webhook_url: String,
    /// Signing secret.
    pub app_secret: AppSecret,
    /// Pause between POSTs.
    pub interval_ms: u64,
    /// Stop after this many POSTs.
    pub count: Option<u64>,
    /// Also serve the Graph API here.
    pub graph_addr: Option<SocketAddr>,
    /// The Graph simulator's app id.
    pub app_id: String,
}

/// `graph` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphArgs {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The simulated app's id.
    pub app_id: String,
    /// The simulated app's secret.
    pub app_secret: AppSecret,
}

/// `send` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendArgs {
    /// Where to POST.
    pub webhook_url: String,
    /// Signing secret.
    pub app_secret: AppSecret,
    /// What to send.
    pub kind: PokeKind,
    /// Message text.
    pub text: String,
    /// Index into [`DEMO_CUSTOMERS`].
    pub customer: usize,
    /// Signature/body mode.
    pub mode: SendMode,
    /// Retry like Meta (compressed) instead of a single POST.
    pub retry: bool,
}

/// `verify` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyArgs {
    /// The callback URL.
    pub webhook_url: String,
    /// `hub.verify_token`.
    pub verify_token: String,
    /// `hub.challenge`; random when absent.
    pub challenge: Option<String>,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Play the demo world.
    Demo(DemoArgs),
    /// Serve the Graph API over the demo world.
    Graph(GraphArgs),
    /// One manual delivery.
    Send(SendArgs),
    /// The GET handshake.
    Verify(VerifyArgs),
    /// Print usage.
    Help,
}

/// A command line we cannot run; the message is for the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}\n\n{USAGE}")]
pub struct CliError(String);

fn err(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

const FLAGS_WITH_VALUE: &[&str] = &[
    "--webhook-url",
    "--interval-ms",
    "--count",
    "--app-secret",
    "--kind",
    "--text",
    "--customer",
    "--mode",
    "--verify-token",
    "--challenge",
    "--addr",
    "--graph-addr",
    "--app-id",
];
const SWITCHES: &[&str] = &["--retry"];

/// Parse `args` (without the program name); `env` looks up environment variables so tests do
/// not have to mutate the process environment.
pub fn parse<I, E>(args: I, env: E) -> Result<Command, CliError>
where
    I: IntoIterator<Item = String>,
    E: Fn(&str) -> Option<String>,
{
    let mut args = args.into_iter();
    let Some(sub) = args.next() else {
        return Ok(Command::Help);
    };
    if matches!(sub.as_str(), "-h" | "--help" | "help") {
        return Ok(Command::Help);
    }
    let mut flags: HashMap<String, String> = HashMap::new();
    while let Some(arg) = args.next() {
        if matches!(arg.as_str(), "-h" | "--help") {
            return Ok(Command::Help);
        }
        // Accept both `--flag value` and `--flag=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if SWITCHES.contains(&name.as_str()) {
            flags.insert(name, "true".into());
        } else if FLAGS_WITH_VALUE.contains(&name.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => args.next().ok_or_else(|| err(format!("{name} needs a value")))?,
            };
            flags.insert(name, value);
        } else {
            return Err(err(format!("unknown argument `{name}`")));
        }
    }
    let take = |flags: &mut HashMap<String, String>, name: &str| flags.remove(name);
    let url = |flags: &mut HashMap<String, String>| {
        take(flags, "--webhook-url").ok_or_else(|| err("--webhook-url is required"))
    };
    let secret = |flags: &mut HashMap<String, String>| {
        take(flags, "--app-secret")
            .or_else(|| env(ENV_APP_SECRET))
            .filter(|s| !s.is_empty())
            .map(AppSecret::new)
            .ok_or_else(|| {
                err(format!(
                    "no app secret: set {ENV_APP_SECRET} or pass --app-secret"
                ))
            })
    };
    let app_id = |flags: &mut HashMap<String, String>| {
        take(flags, "--app-id")
            .or_else(|| env(ENV_APP_ID))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEMO_APP_ID.to_string())
    };
    let addr = |flags: &mut HashMap<String, String>, name: &str| -> Result<Option<SocketAddr>, CliError> {
        take(flags, name)
            .map(|v| {
                v.parse::<SocketAddr>()
                    .map_err(|_| err(format!("{name} must be an address such as 127.0.0.1:9090")))
            })
            .transpose()
    };
    let number = |flags: &mut HashMap<String, String>, name: &str| -> Result<Option<u64>, CliError> {
        take(flags, name)
            .map(|v| {
                v.parse::<u64>()
                    .map_err(|_| err(format!("{name} must be a non-negative integer")))
            })
            .transpose()
    };

    let cmd = match sub.as_str() {
        "demo" => Command::Demo(DemoArgs {
            webhook_url: url(&mut flags)?,
            app_secret: secret(&mut flags)?,
            interval_ms: number(&mut flags, "--interval-ms")?.unwrap_or(1000),
            count: number(&mut flags, "--count")?,
            graph_addr: addr(&mut flags, "--graph-addr")?,
            app_id: app_id(&mut flags),
        }),
        "graph" => Command::Graph(GraphArgs {
            addr: addr(&mut flags, "--addr")?.ok_or_else(|| err("--addr is required"))?,
            app_id: app_id(&mut flags),
            app_secret: secret(&mut flags)?,
        }),
        "send" => {
            let kind_name = take(&mut flags, "--kind").ok_or_else(|| err("--kind is required"))?;
            let kind =
                PokeKind::parse(&kind_name).ok_or_else(|| err(format!("unknown --kind `{kind_name}`")))?;
            let customer = number(&mut flags, "--customer")?.unwrap_or(0);
            let customer = usize::try_from(customer)
                .ok()
                .filter(|c| *c < DEMO_CUSTOMERS.len())
                .ok_or_else(|| err(format!("--customer must be below {}", DEMO_CUSTOMERS.len())))?;
            let mode = match take(&mut flags, "--mode") {
                Some(m) => parse_mode(&m)?,
                None => SendMode::Valid,
            };
            Command::Send(SendArgs {
                webhook_url: url(&mut flags)?,
                app_secret: secret(&mut flags)?,
                kind,
                text: take(&mut flags, "--text").unwrap_or_else(|| "Hello from the Meta simulator 👋".into()),
                customer,
                mode,
                retry: take(&mut flags, "--retry").is_some(),
            })
        }
        "verify" => Command::Verify(VerifyArgs {
            webhook_url: url(&mut flags)?,
            verify_token: take(&mut flags, "--verify-token")
                .or_else(|| env(ENV_VERIFY_TOKEN))
                .ok_or_else(|| {
                    err(format!(
                        "no verify token: set {ENV_VERIFY_TOKEN} or pass --verify-token"
                    ))
                })?,
            challenge: take(&mut flags, "--challenge"),
        }),
        other => return Err(err(format!("unknown subcommand `{other}`"))),
    };
    // Flags that exist but do not belong to this subcommand are a mistake worth reporting.
    if let Some(extra) = flags.keys().next() {
        return Err(err(format!("`{extra}` does not apply to `{sub}`")));
    }
    Ok(cmd)
}

fn parse_mode(s: &str) -> Result<SendMode, CliError> {
    Ok(match s {
        "valid" => SendMode::Valid,
        "tampered-signature" => SendMode::TamperedSignature,
        "tampered-body" => SendMode::TamperedBody,
        "wrong-secret" => SendMode::WrongSecret,
        "missing-signature" => SendMode::MissingSignature,
        "sha1-only" => SendMode::Sha1Only,
        "reserialized" => SendMode::Reserialized(Encoding::RAW_UTF8),
        "oversized" => SendMode::Oversized {
            total_bytes: crate::webhooks::sender::WHATSAPP_MAX_PAYLOAD_BYTES + 1,
        },
        other => return Err(err(format!("unknown --mode `{other}`"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    fn env_with_secret(k: &str) -> Option<String> {
        match k {
            ENV_APP_SECRET => Some("from-env".into()),
            ENV_VERIFY_TOKEN => Some("tok".into()),
            _ => None,
        }
    }

    #[test]
    fn demo_uses_env_secret_and_defaults() {
        let cmd = parse(args("demo --webhook-url http://x/y"), env_with_secret).unwrap();
        assert_eq!(
            cmd,
            Command::Demo(DemoArgs {
                webhook_url: "http://x/y".into(),
                app_secret: AppSecret::new("from-env"),
                interval_ms: 1000,
                count: None,
                graph_addr: None,
                app_id: DEMO_APP_ID.to_string(),
            })
        );
    }

    #[test]
    fn flags_override_env_and_accept_equals() {
        let cmd = parse(
            args("demo --webhook-url=http://x --app-secret s2 --count 3 --interval-ms=10"),
            env_with_secret,
        )
        .unwrap();
        let Command::Demo(d) = cmd else { panic!("not demo") };
        assert_eq!(d.app_secret, AppSecret::new("s2"));
        assert_eq!(d.count, Some(3));
        assert_eq!(d.interval_ms, 10);
    }

    #[test]
    fn graph_command_and_demo_graph_addr() {
        let cmd = parse(args("graph --addr 127.0.0.1:9090 --app-id 42"), env_with_secret).unwrap();
        assert_eq!(
            cmd,
            Command::Graph(GraphArgs {
                addr: "127.0.0.1:9090".parse().unwrap(),
                app_id: "42".into(),
                app_secret: AppSecret::new("from-env"),
            })
        );
        let Command::Demo(d) = parse(
            args("demo --webhook-url http://x --graph-addr 127.0.0.1:0"),
            |k| match k {
                ENV_APP_ID => Some("77".into()),
                other => env_with_secret(other),
            },
        )
        .unwrap() else {
            panic!("not demo")
        };
        assert_eq!(d.graph_addr, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(d.app_id, "77");
        assert!(
            parse(args("graph"), env_with_secret)
                .unwrap_err()
                .0
                .contains("--addr")
        );
        assert!(parse(args("graph --addr nope"), env_with_secret).is_err());
        assert!(parse(args("graph --addr 127.0.0.1:1 --webhook-url u"), env_with_secret).is_err());
    }

    #[test]
    fn send_parses_kind_mode_and_customer() {
        let cmd = parse(
            args("send --webhook-url http://x --kind whatsapp-text --text hi --mode sha1-only --customer 2 --retry"),
            env_with_secret,
        )
        .unwrap();
        let Command::Send(s) = cmd else { panic!("not send") };
        assert_eq!(s.kind, PokeKind::WhatsappText);
        assert_eq!(s.mode, SendMode::Sha1Only);
        assert_eq!(s.customer, 2);
        assert_eq!(s.text, "hi");
        assert!(s.retry);
    }

    #[test]
    fn verify_takes_token_from_env() {
        let cmd = parse(
            args("verify --webhook-url http://x --challenge 42"),
            env_with_secret,
        )
        .unwrap();
        assert_eq!(
            cmd,
            Command::Verify(VerifyArgs {
                webhook_url: "http://x".into(),
                verify_token: "tok".into(),
                challenge: Some("42".into())
            })
        );
    }

    #[test]
    fn errors_are_reported() {
        let none = |_: &str| None;
        assert!(
            parse(args("demo --webhook-url http://x"), none)
                .unwrap_err()
                .0
                .contains(ENV_APP_SECRET)
        );
        assert!(
            parse(args("demo"), env_with_secret)
                .unwrap_err()
                .0
                .contains("--webhook-url")
        );
        assert!(parse(args("send --webhook-url u --kind nope"), env_with_secret).is_err());
        assert!(
            parse(
                args("send --webhook-url u --kind messenger-text --customer 99"),
                env_with_secret
            )
            .is_err()
        );
        assert!(
            parse(
                args("demo --webhook-url u --kind messenger-text"),
                env_with_secret
            )
            .is_err()
        );
        assert!(parse(args("demo --webhook-url u --count x"), env_with_secret).is_err());
        assert!(parse(args("frobnicate"), env_with_secret).is_err());
        assert!(parse(args("demo --webhook-url"), env_with_secret).is_err());
        assert_eq!(parse(Vec::new(), none), Ok(Command::Help));
        assert_eq!(parse(args("demo --help"), none), Ok(Command::Help));
    }

    #[test]
    fn cli_error_never_contains_the_secret() {
        let e = parse(args("demo --app-secret hunter2 --bogus"), env_with_secret).unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
    }
}
