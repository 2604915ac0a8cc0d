//! The real browser client: headless Chromium (Debian's, driven by playwright-core from
//! `tests/browser/run.mjs`) loads the Connect-ES page from another origin, lists the conversations,
//! receives a live message over `WatchInbox` and renders a refused call's status code.
//!
//! Needs `make browser-deps` (tests/browser/install-deps.sh). `SCIFER_BROWSER_TESTS=0` skips it;
//! anything else missing is a failure.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use scifer_meta_sim::{
    demo::{self, DEMO_CUSTOMERS},
    webhooks::{
        SendMode,
        messaging::now_ms,
        whatsapp::{Contact, Message},
    },
};
use scifer_proto::{gateway::v1::ListConversationsRequest, inbox::v1 as inbox};
use scifer_test_support::{wait_until, workspace_root};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};

use crate::helpers::Stack;

/// The page's origin. run.mjs serves the page on a free loopback port and maps this host to it in
/// Chromium (`--host-resolver-rules`), so the gateway's `CORS_ALLOWED_ORIGINS` can name one fixed
/// origin. The Stack's gateway must list it.
pub const PAGE_ORIGIN: &str = "http://inbox-app.scifer.test";

/// What the page's permission check asks for, and the codes it may render: a well-formed workspace
/// the signed-in user is not a member of answers NotFound, exactly as a missing one.
const FORBIDDEN_WORKSPACE: &str = "someone-elses-workspace";
const EXPECTED_ERROR: &str = "NotFound";

const CHROMIUM: &str = "/usr/bin/chromium";
/// From spawning node to READY_FOR_LIVE: build (about 3 s), Chromium start, page and stream.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// From the webhook to node's exit (run.mjs bounds each of its steps itself).
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

fn browser_dir() -> PathBuf {
    workspace_root().join("tests/browser")
}

/// `Err(why)` when something `make browser-deps` installs is missing.
fn check_deps(dir: &Path) -> Result<(), String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(CHROMIUM.to_string());
    }
    for tool in [
        "playwright-core",
        ".bin/buf",
        ".bin/protoc-gen-es",
        ".bin/esbuild",
        ".bin/tsc",
    ] {
        let path = dir.join("node_modules").join(tool);
        if !path.exists() {
            missing.push(path.display().to_string());
        }
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_or(true, |o| !o.status.success())
    {
        missing.push("node on PATH".to_string());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing: {}", missing.join(", ")))
    }
}

/// A browser sends a preflight before each cross-origin gRPC-web call; check the gateway answers it
/// for `PAGE_ORIGIN`, so that a missing allow-list entry fails here and not as a browser timeout.
async fn assert_cors_allows_page(stack: &Stack) {
    let response = reqwest::Client::new()
        .request(
            reqwest::Method::OPTIONS,
            format!(
                "{}/scifer.gateway.v1.InboxApi/ListConversations",
                stack.gateway_url
            ),
        )
        .header("origin", PAGE_ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,x-user-agent",
        )
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("CORS preflight to the gateway");
    let allowed = response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(
        allowed.as_deref(),
        Some(PAGE_ORIGIN),
        "the Stack's gateway does not allow the page's origin {PAGE_ORIGIN} (preflight answered {} \
         with access-control-allow-origin {allowed:?}); helpers.rs must start the gateway with \
         (\"CORS_ALLOWED_ORIGINS\", crate::browser::PAGE_ORIGIN.to_string())",
        response.status()
    );
}

/// One WhatsApp text from `customer`, sent as Meta would, signed.
async fn send_whatsapp_text(stack: &Stack, customer: &demo::DemoCustomer, id: &str, text: &str) {
    let delivery = demo::demo_business()
        .inbound(
            &Contact::new(customer.wa_id, customer.name),
            Message::text(customer.wa_id, text)
                .id(id)
                .timestamp_s(now_ms() / 1000),
        )
        .into_item()
        .into_delivery();
    let outcome = stack
        .sender()
        .send(&stack.webhook_url, &delivery, &SendMode::Valid)
        .await
        .unwrap();
    assert_eq!(outcome.status, 200, "webhook refused: {}", outcome.body);
}

/// Kills run.mjs (and so its Chromium, which exits with Playwright's pipe) if the test panics.
struct Node(Child);

impl Node {
    /// SIGTERM first: run.mjs then closes Chromium itself.
    async fn stop(&mut self) {
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            if tokio::time::timeout(Duration::from_secs(5), self.0.wait())
                .await
                .is_ok()
            {
                return;
            }
        }
        let _ = self.0.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_another_origin_lists_conversations_sees_a_live_message_and_a_refusal() {
    if std::env::var("SCIFER_BROWSER_TESTS").is_ok_and(|v| v == "0") {
        eprintln!("skipped: SCIFER_BROWSER_TESTS=0");
        return;
    }
    let dir = browser_dir();
    if let Err(why) = check_deps(&dir) {
        panic!(
            "the browser test cannot run: {why}. Run `make browser-deps` (tests/browser/install-deps.sh), \
             or set SCIFER_BROWSER_TESTS=0 to skip it"
        );
    }

    let stack = Stack::start().await;
    assert_cors_allows_page(&stack).await;

    // One conversation before the page opens, so that the list has something to render.
    let customer = &DEMO_CUSTOMERS[2];
    let run = uuid::Uuid::new_v4().simple().to_string();
    send_whatsapp_text(
        &stack,
        customer,
        &format!("wamid.browser.{run}.1"),
        customer.lines[0],
    )
    .await;
    let listed = wait_until(Duration::from_secs(15), || async {
        stack
            .grpc_web_client()
            .list_conversations(ListConversationsRequest {
                workspace_id: stack.workspace.clone(),
                query: Some(inbox::ListConversationsRequest::default()),
            })
            .await
            .is_ok_and(|r| !r.into_inner().conversations.is_empty())
    })
    .await;
    assert!(
        listed.is_ok(),
        "the seeded conversation never showed\n{}",
        stack.logs()
    );

    let live_text = format!("live to the browser {}", &run[..12]);
    let mut command = Command::new("node");
    command
        .arg(dir.join("run.mjs"))
        .args(["--gateway", &stack.gateway_url])
        .args(["--workspace", &stack.workspace])
        .args(["--live-text", &live_text])
        .args(["--origin", PAGE_ORIGIN])
        .args(["--forbidden-workspace", FORBIDDEN_WORKSPACE])
        .args(["--expect-error", EXPECTED_ERROR])
        .args(["--expect-contact", customer.name])
        // The session travels in the environment, not argv, which `ps` shows.
        .env("SCIFER_SESSION_TOKEN", &stack.token)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut node = Node(command.spawn().expect("spawn node tests/browser/run.mjs"));

    // stdout line by line (READY_FOR_LIVE is the cue); stderr whole, for the failure message.
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    let mut stdout = BufReader::new(node.0.stdout.take().unwrap()).lines();
    let stdout_task = tokio::spawn(async move {
        while let Ok(Some(line)) = stdout.next_line().await {
            let _ = lines_tx.send(line);
        }
    });
    let mut stderr = node.0.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut seen = Vec::new();

    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.recv().await {
            let is_ready = line == "READY_FOR_LIVE";
            seen.push(line);
            if is_ready {
                return true;
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        node.stop().await;
        let stderr = stderr_task.await.unwrap_or_default();
        panic!(
            "run.mjs never printed READY_FOR_LIVE ({})\nstdout:\n{}\nstderr:\n{stderr}\n{}",
            if ready.is_err() { "timed out" } else { "it exited" },
            seen.join("\n"),
            stack.logs()
        );
    }

    send_whatsapp_text(&stack, customer, &format!("wamid.browser.{run}.2"), &live_text).await;

    let status = tokio::time::timeout(FINISH_TIMEOUT, node.0.wait()).await;
    if status.is_err() {
        node.stop().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), stdout_task).await;
    while let Ok(line) = lines.try_recv() {
        seen.push(line);
    }
    let stderr = tokio::time::timeout(Duration::from_secs(5), stderr_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let ok = matches!(status, Ok(Ok(s)) if s.success());
    assert!(
        ok,
        "run.mjs failed ({status:?})\nstdout:\n{}\nstderr:\n{stderr}\n{}",
        seen.join("\n"),
        stack.logs()
    );
    assert!(
        seen.iter().any(|l| l == "BROWSER_OK"),
        "stdout:\n{}",
        seen.join("\n")
    );
    // Shown with --nocapture: where the screenshot is, and the refusal as rendered.
    for line in seen.iter().filter(|l| !l.is_empty()) {
        println!("browser: {line}");
    }
}
