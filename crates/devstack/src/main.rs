//! `make run`. Starts, in order: a private nats-server with JetStream (unless `NATS_URL` is given),
//! the Meta simulator's Graph API in this process (unless `META_GRAPH_URL` points at a real Graph
//! API), the six services with SQLite stores under `.data/`, then signs the demo owner in and
//! connects the demo Page, its Instagram account and the demo WhatsApp number through the gateway
//! and token-vault, as an admin would in the browser; last the simulator's webhook demo, whose
//! customers write to those channels. Ctrl-c stops everything gracefully.

mod demo;
mod secrets;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use scifer_meta_sim::{
    AppSecret,
    demo::DEMO_APP_ID,
    graph::{GraphSim, GraphSimConfig},
};
use scifer_plumbing::CancellationToken;
use tokio::{
    process::{Child, Command},
    task::JoinHandle,
};

use crate::secrets::DevSecrets;

/// Not 4222: a machine may already run a NATS there for something else.
const DEFAULT_NATS_PORT: u16 = 42224;
/// The simulated `graph.facebook.com` and `www.facebook.com` (one server plays both).
const DEFAULT_GRAPH_ADDR: &str = "127.0.0.1:8090";

#[derive(Debug, thiserror::Error)]
enum DevError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot start {name}: {source}")]
    Spawn { name: String, source: std::io::Error },
    #[error("{0} did not become healthy in time; see its output above")]
    Unhealthy(String),
    #[error("{0} exited unexpectedly; see its output above")]
    Exited(String),
    #[error("devstack secrets: {0}")]
    Secrets(#[from] secrets::SecretsError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

struct Service {
    name: &'static str,
    health: String,
    env: Vec<(&'static str, String)>,
}

/// Where Meta is: the simulator in this process, or the real Graph API.
struct Meta {
    graph_url: String,
    dialog_url: String,
    app_id: String,
    app_secret: String,
    simulator: Option<Simulator>,
}

struct Simulator {
    sim: GraphSim,
    addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

impl Meta {
    /// The simulator unless `META_GRAPH_URL` is set. Against real Meta the app's id and secret
    /// must come from the environment: there is no default secret outside the simulator.
    async fn start() -> Result<Self, DevError> {
        if let Some(graph_url) = env_opt("META_GRAPH_URL") {
            let required = |key: &str| {
                env_opt(key).ok_or_else(|| {
                    DevError::Setup(format!("META_GRAPH_URL is set (real Meta): set {key} too"))
                })
            };
            return Ok(Self {
                graph_url,
                dialog_url: env_or("META_DIALOG_URL", "https://www.facebook.com"),
                app_id: required("META_APP_ID")?,
                app_secret: required("META_APP_SECRET")?,
                simulator: None,
            });
        }
        // The webhook demo signs with the same app secret, and Meta echoes the same app id.
        let app_id = DEMO_APP_ID.to_string();
        let app_secret = env_or("META_APP_SECRET", "demo-app-secret");
        let sim = GraphSim::with_demo_world(GraphSimConfig::new(
            app_id.clone(),
            AppSecret::new(app_secret.clone()),
        ));
        let wanted = env_or("SCIFER_DEV_GRAPH_ADDR", DEFAULT_GRAPH_ADDR);
        let listener = tokio::net::TcpListener::bind(&wanted).await.map_err(|e| {
            DevError::Setup(format!(
                "the Graph simulator cannot listen on {wanted} ({e}); set SCIFER_DEV_GRAPH_ADDR"
            ))
        })?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (sim, stop) = (sim.clone(), stop.clone());
            async move { sim.serve(listener, stop.cancelled_owned()).await }
        });
        let url = format!("http://{addr}");
        Ok(Self {
            graph_url: url.clone(),
            dialog_url: url,
            app_id,
            app_secret,
            simulator: Some(Simulator {
                sim,
                addr,
                task,
                stop,
            }),
        })
    }

    async fn stop(self) {
        if let Some(simulator) = self.simulator {
            simulator.stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), simulator.task).await;
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    scifer_plumbing::install_crypto_provider();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make run: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn env_opt(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

fn env_or(key: &str, default: &str) -> String {
    env_opt(key).unwrap_or_else(|| default.to_string())
}

async fn run() -> Result<(), DevError> {
    let root = workspace_root();
    let data = root.join(env_or("SCIFER_DATA_DIR", ".data"));
    std::fs::create_dir_all(&data)?;
    let data = data.canonicalize()?;
    let bin_dir = root.join("target").join(env_or("SCIFER_BIN_PROFILE", "debug"));
    let (secrets, secrets_path) = DevSecrets::load_or_create(&data)?;

    // Demo values: a real deployment sets its own through the environment.
    let verify_token = env_or("META_VERIFY_TOKEN", "demo-verify-token");
    let bus_prefix = env_or("BUS_PREFIX", "scifer");
    let app_url = env_or("PUBLIC_APP_URL", "http://localhost:5173");
    // Where Meta sends the browser back after Facebook Login: the frontend's callback page. The
    // gateway asks for it and the vault accepts only it.
    let redirect_uri = env_or("META_OAUTH_REDIRECT_URI", &format!("{app_url}/channels/callback"));

    let mut children: Vec<(String, Child)> = Vec::new();
    let nats_url = match env_opt("NATS_URL") {
        Some(url) => url,
        None => {
            let port: u16 = env_or("SCIFER_DEV_NATS_PORT", &DEFAULT_NATS_PORT.to_string())
                .parse()
                .map_err(|_| DevError::Setup("SCIFER_DEV_NATS_PORT must be a port number".into()))?;
            children.push(("nats-server".into(), start_nats(&data, port)?));
            let url = format!("nats://127.0.0.1:{port}");
            if let Err(e) = wait_tcp(&format!("127.0.0.1:{port}"), "nats-server").await {
                stop_all(&mut children).await;
                return Err(e);
            }
            url
        }
    };
    let meta = match Meta::start().await {
        Ok(meta) => meta,
        Err(e) => {
            stop_all(&mut children).await;
            return Err(e);
        }
    };

    let db = |name: &str| format!("sqlite://{}", data.join(format!("{name}.sqlite")).display());
    let common = vec![
        ("NATS_URL", nats_url.clone()),
        ("BUS_PREFIX", bus_prefix.clone()),
        ("LOG_FORMAT", env_or("LOG_FORMAT", "text")),
        (
            "RUST_LOG",
            env_or("RUST_LOG", scifer_plumbing::telemetry::DEFAULT_FILTER),
        ),
    ];
    let with = |extra: Vec<(&'static str, String)>| {
        let mut env = common.clone();
        env.extend(extra);
        env
    };
    let gateway_addr = env_or("GATEWAY_ADDR", "127.0.0.1:8080");
    let ingest_addr = env_or("WEBHOOK_INGEST_ADDR", "127.0.0.1:8081");
    let vault_addr = "127.0.0.1:9084";
    // Started in this order, stopped in the reverse one: token-vault is up before the gateway
    // forwards to it, and the gateway stops before the services it calls.
    let services = vec![
        Service {
            name: "inbox",
            health: "http://127.0.0.1:9082/healthz".into(),
            env: with(vec![
                ("GRPC_ADDR", "127.0.0.1:9082".into()),
                ("DATABASE_URL", db("inbox")),
                // Replies go out through token-vault's Graph egress.
                ("TOKEN_VAULT_URL", format!("http://{vault_addr}")),
                ("TOKEN_VAULT_CREDENTIAL", secrets.credential("inbox")),
            ]),
        },
        Service {
            name: "webhook-ingest",
            health: format!("http://{ingest_addr}/healthz"),
            env: with(vec![
                ("LISTEN_ADDR", ingest_addr.clone()),
                ("ADMIN_ADDR", "127.0.0.1:9081".into()),
                ("META_APP_SECRET", meta.app_secret.clone()),
                ("META_VERIFY_TOKEN", verify_token.clone()),
            ]),
        },
        Service {
            name: "token-vault",
            health: format!("http://{vault_addr}/healthz"),
            env: with(vec![
                ("GRPC_ADDR", vault_addr.into()),
                ("DATABASE_URL", db("token-vault")),
                // Kept in .data/ with the database: a new KEK could not open the sealed tokens.
                ("VAULT_KEKS", secrets.vault_keks().to_string()),
                ("SERVICE_CREDENTIALS", secrets.vault_service_credentials()),
                ("META_GRAPH_URL", meta.graph_url.clone()),
                ("META_DIALOG_URL", meta.dialog_url.clone()),
                ("META_APP_ID", meta.app_id.clone()),
                ("META_APP_SECRET", meta.app_secret.clone()),
                ("CONNECT_REDIRECT_URIS", redirect_uri.clone()),
            ]),
        },
        Service {
            name: "gateway",
            health: format!("http://{gateway_addr}/healthz"),
            env: with(vec![
                ("LISTEN_ADDR", gateway_addr.clone()),
                ("DATABASE_URL", db("gateway")),
                ("INBOX_URL", "http://127.0.0.1:9082".into()),
                ("TOKEN_VAULT_URL", format!("http://{vault_addr}")),
                ("TOKEN_VAULT_CREDENTIAL", secrets.credential("gateway")),
                ("META_OAUTH_REDIRECT_URI", redirect_uri.clone()),
                ("PUBLIC_APP_URL", app_url.clone()),
                ("CORS_ALLOWED_ORIGINS", env_or("CORS_ALLOWED_ORIGINS", &app_url)),
            ]),
        },
        Service {
            name: "publisher",
            health: "http://127.0.0.1:9083/healthz".into(),
            env: with(vec![("GRPC_ADDR", "127.0.0.1:9083".into())]),
        },
        Service {
            name: "deletion",
            health: "http://127.0.0.1:9085/healthz".into(),
            env: with(vec![("GRPC_ADDR", "127.0.0.1:9085".into())]),
        },
    ];

    let started = async {
        start_all(&bin_dir, &services, &mut children).await?;
        let login = demo::login(&gateway_addr).await?;
        let connected = match &meta.simulator {
            Some(simulator) => {
                // Meta answers sends with echoes, receipts and statuses: they come back as webhooks.
                simulator
                    .sim
                    .set_webhook_target(
                        format!("http://{ingest_addr}/webhooks/meta"),
                        AppSecret::new(meta.app_secret.clone()),
                    )
                    .map_err(|e| DevError::Setup(format!("the simulator cannot send webhooks: {e}")))?;
                let token = simulator.sim.demo_system_user_token().ok_or_else(|| {
                    DevError::Setup("the Graph simulator's demo world has no system-user token".into())
                })?;
                demo::connect_channels(&login, &token).await?
            }
            None => Vec::new(),
        };
        Ok::<_, DevError>((login, connected))
    }
    .await;
    let (login, connected) = match started {
        Ok(started) => started,
        Err(e) => {
            stop_all(&mut children).await;
            meta.stop().await;
            return Err(e);
        }
    };

    if meta.simulator.is_some() {
        let sim = Command::new(bin_dir.join("scifer-meta-sim"))
            .args([
                "demo",
                "--webhook-url",
                &format!("http://{ingest_addr}/webhooks/meta"),
            ])
            .env("META_APP_SECRET", &meta.app_secret)
            .env("RUST_LOG", env_or("RUST_LOG", "info"))
            .kill_on_drop(true)
            // Own process group: ctrl-c in the terminal reaches only us, and we stop the services
            // in order (producers first, the broker last) instead of all at once.
            .process_group(0)
            .spawn();
        match sim {
            Ok(sim) => children.push(("scifer-meta-sim".into(), sim)),
            Err(source) => {
                stop_all(&mut children).await;
                meta.stop().await;
                return Err(DevError::Spawn {
                    name: "scifer-meta-sim".into(),
                    source,
                });
            }
        }
    }

    println!();
    println!("Scifer is running (data in {}):", data.display());
    println!("  gateway (gRPC + gRPC-web)  http://{gateway_addr}");
    println!(
        "    demo login {} / {}, workspace id {}",
        demo::DEMO_EMAIL,
        demo::DEMO_PASSWORD,
        login.workspace_id
    );
    println!("  webhook-ingest (Meta)      http://{ingest_addr}/webhooks/meta");
    println!("  ingest admin (gRPC)        http://127.0.0.1:9081");
    println!("  inbox (gRPC, internal)     http://127.0.0.1:9082");
    println!("  token-vault (gRPC, internal)  http://{vault_addr}");
    println!(
        "    service credentials (e.g. `operator` for key rotation) in {}",
        secrets_path.display()
    );
    println!("  publisher / deletion       http://127.0.0.1:9083 / 9085");
    println!("  NATS                       {nats_url}");
    match &meta.simulator {
        Some(simulator) => {
            println!(
                "  Meta simulator             Graph API and Login dialog http://{} (steer it under /_sim/);",
                simulator.addr
            );
            println!("                             demo customers are writing in");
            println!("  connected through token-vault:");
            for channel in &connected {
                println!("    {}", demo::describe(channel));
            }
        }
        None => {
            println!(
                "  Meta Graph API             {} (simulator not started)",
                meta.graph_url
            );
            println!("    connect channels with ChannelApi; Meta sends the browser back to {redirect_uri}");
        }
    }
    println!("Press ctrl-c to stop.");

    let graph_task = meta.simulator.as_ref().map(|s| &s.task);
    let stopped_by = wait_for_stop(&mut children, graph_task).await;
    stop_all(&mut children).await;
    meta.stop().await;
    match stopped_by {
        None => Ok(()),
        Some(name) => Err(DevError::Exited(name)),
    }
}

/// Waits for ctrl-c or SIGTERM (None), or for a child or the in-process Graph simulator to end on
/// its own (Some(its name)).
async fn wait_for_stop(
    children: &mut [(String, Child)],
    graph: Option<&JoinHandle<std::io::Result<()>>>,
) -> Option<String> {
    let shutdown = scifer_plumbing::shutdown::on_signals();
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(name.clone());
            }
        }
        if graph.is_some_and(JoinHandle::is_finished) {
            return Some("the Graph simulator".into());
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn start_all(
    bin_dir: &Path,
    services: &[Service],
    children: &mut Vec<(String, Child)>,
) -> Result<(), DevError> {
    for service in services {
        let child = Command::new(bin_dir.join(service.name))
            .envs(service.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|source| DevError::Spawn {
                name: service.name.into(),
                source,
            })?;
        children.push((service.name.into(), child));
        wait_http(&service.health, service.name).await?;
    }
    Ok(())
}

/// SIGTERM in reverse start order, so producers stop before the consumers and the broker.
async fn stop_all(children: &mut Vec<(String, Child)>) {
    while let Some((name, mut child)) = children.pop() {
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(25), child.wait())
            .await
            .is_err()
        {
            eprintln!("{name} did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}

fn start_nats(data: &Path, port: u16) -> Result<Child, DevError> {
    let binary = std::env::var("SCIFER_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let config = data.join("nats.conf");
    // Raw webhook deliveries of up to 3 MiB go on the bus whole, over NATS's 1 MB default.
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{ store_dir: {:?} }}\n",
            data.join("nats").display().to_string()
        ),
    )?;
    Command::new(&binary)
        .arg("-c")
        .arg(&config)
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|source| DevError::Spawn { name: binary, source })
}

async fn wait_http(url: &str, name: &str) -> Result<(), DevError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .map_err(|e| DevError::Setup(e.to_string()))?;
    for _ in 0..300 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(DevError::Unhealthy(name.into()))
}

async fn wait_tcp(addr: &str, name: &str) -> Result<(), DevError> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(DevError::Unhealthy(name.into()))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
