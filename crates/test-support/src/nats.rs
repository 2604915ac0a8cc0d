use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use crate::{free_port, wait_until, workspace_root};

/// A private nats-server with JetStream on a free loopback port; killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// The nats-server to run: `SCIFER_NATS_SERVER`, else the project's `.venv/bin/nats-server` (what
/// `make` installs), else `nats-server` on PATH, else Debian's `/usr/sbin/nats-server`.
pub fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SCIFER_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let venv = workspace_root().join(".venv/bin/nats-server");
    if venv.exists() {
        return venv;
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("nats-server"))
            .find(|p| p.exists())
    }) {
        return found;
    }
    PathBuf::from("/usr/sbin/nats-server")
}

impl NatsServer {
    /// Starts a server and waits until it accepts connections.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.spawn();
        server.wait_ready().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (as if the broker went down); its store survives for [`NatsServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        self.wait_ready().await;
    }

    fn spawn(&mut self) {
        let config = self.dir.path().join("nats.conf");
        let store = self.dir.path().join("js");
        // max_payload is raised because raw webhook deliveries of up to 3 MiB go on the bus whole.
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:{}\nmax_payload: 8MB\njetstream {{ store_dir: {:?} }}\n",
                self.port,
                store.display().to_string()
            ),
        )
        .expect("write nats config");
        let binary = nats_server_binary();
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (run `make` to install it)",
                    binary.display()
                )
            });
        self.child = Some(child);
    }

    async fn wait_ready(&self) {
        let url = self.url();
        wait_until(Duration::from_secs(10), || {
            let url = url.clone();
            async move { std::net::TcpStream::connect(url.trim_start_matches("nats://")).is_ok() }
        })
        .await
        .expect("nats-server did not start");
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
