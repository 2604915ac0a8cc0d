//! `make run`. Starts, in order: a private nats-server with JetStream (unless `NATS_URL` is given),
//! the six services with SQLite stores under `.data/`, publishes the demo workspace's channels on the
//! bus (token-vault will own that once it connects real channels), and the Meta simulator in demo
//! mode (unless `META_GRAPH_URL` points at a real Graph API). Ctrl-c stops everything gracefully.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use scifer_events::{Bus, Publisher, StreamKind};
use scifer_meta_sim::demo;
use scifer_proto::events::v1::{ChannelEvent, ChannelKind, ChannelState};
use tokio::process::{Child, Command};

/// The demo account `make run` signs up (or logs in to, when `.data/` already has it). A local demo
/// login, printed on start; real deployments create their own accounts.
const DEMO_EMAIL: &str = "demo@scifer.local";
const DEMO_PASSWORD: &str = "scifer-demo-password";
const DEMO_WORKSPACE_NAME: &str = "Demo Bakery";
/// Not 4222: a machine may already run a NATS there for something else.
const DEFAULT_NATS_PORT: u16 = 42224;

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
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

struct Service {
    name: &'static str,
    health: String,
    env: Vec<(&'static str, String)>,
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

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

async fn run() -> Result<(), DevError> {
    let root = workspace_root();
    let data = root.join(env_or("SCIFER_DATA_DIR", ".data"));
    std::fs::create_dir_all(&data)?;
    let data = data.canonicalize()?;
    let bin_dir = root.join("target").join(env_or("SCIFER_BIN_PROFILE", "debug"));

    // Demo values: a real deployment sets its own through the environment.
    let app_secret = env_or("META_APP_SECRET", "demo-app-secret");
    let verify_token = env_or("META_VERIFY_TOKEN", "demo-verify-token");
    let graph_url = std::env::var("META_GRAPH_URL").ok().filter(|v| !v.is_empty());
    let bus_prefix = env_or("BUS_PREFIX", "scifer");

    let mut children: Vec<(String, Child)> = Vec::new();
    let nats_url = match std::env::var("NATS_URL").ok().filter(|v| !v.is_empty()) {
        Some(url) => url,
        None => {
            let port: u16 = env_or("SCIFER_DEV_NATS_PORT", &DEFAULT_NATS_PORT.to_string())
                .parse()
                .map_err(|_| DevError::Setup("SCIFER_DEV_NATS_PORT must be a port number".into()))?;
            children.push(("nats-server".into(), start_nats(&data, port)?));
            let url = format!("nats://127.0.0.1:{port}");
            wait_tcp(&format!("127.0.0.1:{port}"), "nats-server").await?;
            url
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
    let services = vec![
        Service {
            name: "inbox",
            health: "http://127.0.0.1:9082/healthz".into(),
            env: with(vec![
                ("GRPC_ADDR", "127.0.0.1:9082".into()),
                ("DATABASE_URL", db("inbox")),
            ]),
        },
        Service {
            name: "webhook-ingest",
            health: format!("http://{ingest_addr}/healthz"),
            env: with(vec![
                ("LISTEN_ADDR", ingest_addr.clone()),
                ("ADMIN_ADDR", "127.0.0.1:9081".into()),
                ("META_APP_SECRET", app_secret.clone()),
                ("META_VERIFY_TOKEN", verify_token.clone()),
            ]),
        },
        Service {
            name: "gateway",
            health: format!("http://{gateway_addr}/healthz"),
            env: with(vec![
                ("LISTEN_ADDR", gateway_addr.clone()),
                ("INBOX_URL", "http://127.0.0.1:9082".into()),
                (
                    "CORS_ALLOWED_ORIGINS",
                    env_or("CORS_ALLOWED_ORIGINS", "http://localhost:5173"),
                ),
            ]),
        },
        Service {
            name: "publisher",
            health: "http://127.0.0.1:9083/healthz".into(),
            env: with(vec![("GRPC_ADDR", "127.0.0.1:9083".into())]),
        },
        Service {
            name: "token-vault",
            health: "http://127.0.0.1:9084/healthz".into(),
            env: with(vec![("GRPC_ADDR", "127.0.0.1:9084".into())]),
        },
        Service {
            name: "deletion",
            health: "http://127.0.0.1:9085/healthz".into(),
            env: with(vec![("GRPC_ADDR", "127.0.0.1:9085".into())]),
        },
    ];

    let result = start_all(&bin_dir, &services, &mut children).await;
    let result = match result {
        Ok(()) => match demo_workspace(&gateway_addr).await {
            Ok(workspace) => seed_demo_channels(&nats_url, &bus_prefix, &workspace)
                .await
                .map(|()| workspace),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let workspace = match result {
        Ok(workspace) => workspace,
        Err(e) => {
            stop_all(&mut children).await;
            return Err(e);
        }
    };

    if graph_url.is_none() {
        let sim = Command::new(bin_dir.join("scifer-meta-sim"))
            .args([
                "demo",
                "--webhook-url",
                &format!("http://{ingest_addr}/webhooks/meta"),
            ])
            .env("META_APP_SECRET", &app_secret)
            .env("RUST_LOG", env_or("RUST_LOG", "info"))
            .kill_on_drop(true)
            // Own process group: ctrl-c in the terminal reaches only us, and we stop the services
            // in order (producers first, the broker last) instead of all at once.
            .process_group(0)
            .spawn()
            .map_err(|source| DevError::Spawn {
                name: "scifer-meta-sim".into(),
                source,
            })?;
        children.push(("scifer-meta-sim".into(), sim));
    }

    println!();
    println!("Scifer is running (data in {}):", data.display());
    println!("  gateway (gRPC + gRPC-web)  http://{gateway_addr}");
    println!("    demo login {DEMO_EMAIL} / {DEMO_PASSWORD}, workspace id {workspace}");
    println!("  webhook-ingest (Meta)      http://{ingest_addr}/webhooks/meta");
    println!("  ingest admin (gRPC)        http://127.0.0.1:9081");
    println!("  inbox (gRPC, internal)     http://127.0.0.1:9082");
    println!("  publisher / token-vault / deletion  http://127.0.0.1:9083 / 9084 / 9085");
    println!("  NATS                       {nats_url}");
    match &graph_url {
        None => println!("  Meta simulator             demo mode: customers are writing in"),
        Some(url) => println!("  Meta Graph API             {url} (simulator not started)"),
    }
    println!("Press ctrl-c to stop.");

    let stopped_by = wait_for_stop(&mut children).await;
    stop_all(&mut children).await;
    match stopped_by {
        None => Ok(()),
        Some(name) => Err(DevError::Exited(name)),
    }
}

/// Waits for ctrl-c or SIGTERM (None), or for a child to exit on its own (Some(its name)).
async fn wait_for_stop(children: &mut [(String, Child)]) -> Option<String> {
    let shutdown = scifer_plumbing::shutdown::on_signals();
    loop {
        for (name, child) in children.iter_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(name.clone());
            }
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

async fn seed_demo_channels(nats_url: &str, prefix: &str, workspace: &str) -> Result<(), DevError> {
    let setup = |e: &dyn std::fmt::Display| DevError::Setup(format!("seeding demo channels: {e}"));
    let client = scifer_events::connect(nats_url).await.map_err(|e| setup(&e))?;
    let js = scifer_events::async_nats::jetstream::new(client);
    let bus = Bus::new(prefix).map_err(|e| setup(&e))?;
    bus.ensure_default_stream(&js, StreamKind::Channels)
        .await
        .map_err(|e| setup(&e))?;
    let publisher = Publisher::new(js);
    let channels = [
        (
            "demo-messenger",
            ChannelKind::Messenger,
            demo::DEMO_PAGE_ID,
            demo::DEMO_PAGE_NAME,
        ),
        (
            "demo-instagram",
            ChannelKind::Instagram,
            demo::DEMO_IG_ACCOUNT_ID,
            demo::DEMO_IG_USERNAME,
        ),
        (
            "demo-whatsapp",
            ChannelKind::Whatsapp,
            demo::DEMO_PHONE_NUMBER_ID,
            demo::DEMO_DISPLAY_PHONE_NUMBER,
        ),
    ];
    let now = std::time::SystemTime::now();
    for (channel_id, kind, account_id, name) in channels {
        let event = ChannelEvent {
            state_reason: String::new(),
            parent_account_id: String::new(),
            event_id: format!("{workspace}-{channel_id}:v1"),
            workspace_id: workspace.into(),
            channel_id: format!("{workspace}-{channel_id}"),
            kind: kind as i32,
            account_id: account_id.into(),
            display_name: name.into(),
            state: ChannelState::Connected as i32,
            version: 1,
            at: Some(prost_types::Timestamp::from(now)),
        };
        publisher
            .publish(
                bus.channel_event(ChannelState::Connected),
                &event.event_id,
                &event,
            )
            .await
            .map_err(|e| setup(&e))?;
    }
    Ok(())
}

/// Signs the demo account up (or logs in), and creates its workspace unless it has one: the same
/// calls a new user's browser makes.
async fn demo_workspace(gateway_addr: &str) -> Result<String, DevError> {
    use scifer_proto::gateway::v1::{
        CreateWorkspaceRequest, ListWorkspacesRequest, LoginRequest, SignUpRequest,
        account_api_client::AccountApiClient, workspace_api_client::WorkspaceApiClient,
    };
    let setup = |e: &dyn std::fmt::Display| DevError::Setup(format!("creating the demo account: {e}"));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{gateway_addr}"))
        .map_err(|e| setup(&e))?
        .connect()
        .await
        .map_err(|e| setup(&e))?;
    let mut accounts = AccountApiClient::new(channel.clone());
    let signed_up = accounts
        .sign_up(SignUpRequest {
            email: DEMO_EMAIL.into(),
            password: DEMO_PASSWORD.into(),
            name: "Demo Owner".into(),
        })
        .await;
    let session = match signed_up {
        Ok(session) => session.into_inner(),
        Err(status) if status.code() == tonic::Code::AlreadyExists => accounts
            .login(LoginRequest {
                email: DEMO_EMAIL.into(),
                password: DEMO_PASSWORD.into(),
            })
            .await
            .map_err(|e| setup(&e))?
            .into_inner(),
        Err(status) => return Err(setup(&status)),
    };
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", session.session_token)
        .parse()
        .map_err(|e| setup(&e))?;
    let mut workspaces = WorkspaceApiClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        req.metadata_mut().insert("authorization", bearer.clone());
        Ok(req)
    });
    let existing = workspaces
        .list_workspaces(ListWorkspacesRequest {})
        .await
        .map_err(|e| setup(&e))?
        .into_inner()
        .workspaces;
    if let Some(found) = existing.into_iter().find(|w| w.name == DEMO_WORKSPACE_NAME) {
        return Ok(found.workspace_id);
    }
    Ok(workspaces
        .create_workspace(CreateWorkspaceRequest {
            name: DEMO_WORKSPACE_NAME.into(),
        })
        .await
        .map_err(|e| setup(&e))?
        .into_inner()
        .workspace_id)
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
