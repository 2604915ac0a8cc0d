use std::{
    future::Future,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A free loopback port. Binding port 0 and releasing it leaves a tiny window in which another
/// process could take the port; tests that spawn binaries accept that in exchange for knowing the
/// address up front.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `check` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("condition not met within {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A built service binary under the workspace's target dir (`cargo build --bins` first; `make test`
/// does). Honours `CARGO_TARGET_DIR`.
pub fn binary_path(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::workspace_root().join("target"));
    let profile = std::env::var("SCIFER_BIN_PROFILE").unwrap_or_else(|_| "debug".into());
    target.join(profile).join(name)
}

/// A running service binary, killed on drop. Its output goes to a log file kept in the temp dir
/// (printed when a test asks for it, e.g. on failure).
pub struct ServiceProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServiceProcess {
    /// Starts `name` with `env` (on top of a clean environment holding only PATH and RUST_LOG) and
    /// waits until `health_url` answers 200.
    pub async fn start(name: &str, env: &[(&str, String)], health_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let binary = binary_path(name);
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for key in ["PATH", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(v) = std::env::var(key) {
                command.env(key, v);
            }
        }
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); build the binaries first",
                binary.display()
            )
        });
        let process = Self {
            name: name.to_string(),
            child: Some(child),
            log,
            _dir: dir,
        };
        let url = health_url.to_string();
        let ready = wait_until(Duration::from_secs(60), || {
            let url = url.clone();
            async move { reqwest_ok(&url).await }
        })
        .await;
        if ready.is_err() {
            panic!(
                "{} did not become healthy at {health_url}; its log:\n{}",
                process.name,
                process.log_text()
            );
        }
        process
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: the process gets no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for a graceful exit; returns whether it exited in time
    /// with status 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn reqwest_ok(url: &str) -> bool {
    scifer_plumbing::install_crypto_provider();
    let Ok(client) = reqwest::Client::builder().timeout(Duration::from_secs(1)).build() else {
        return false;
    };
    client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}
