//! The real browser client: headless Chromium (Debian's, driven by playwright-core from
//! `tests/browser/run.mjs`) loads the Connect-ES page from another origin and is used through its
//! forms and buttons: sign up (SignUp, then Logout), log in (Login; no workspace yet), then, once
//! this test has added the new account to the Stack's workspace as a viewer, open that workspace,
//! list its conversations, receive a live message over `WatchInbox`, and render two refusals with
//! their real status codes: another workspace (`NotFound (5)`) and an admin-only call as a viewer
//! (`PermissionDenied (7)`). The page keeps its session in memory and sends it as a bearer.
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
use scifer_proto::{
    gateway::v1::{
        AddMemberRequest, ListConversationsRequest, Role, workspace_api_client::WorkspaceApiClient,
    },
    inbox::v1 as inbox,
};
use scifer_test_support::{grpc_web_channel, wait_until, workspace_root};
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

/// What the page's first permission check asks for, and the code it must render: a well-formed
/// workspace the signed-in user is not a member of answers NotFound, exactly as a missing one.
const FORBIDDEN_WORKSPACE: &str = "someone-elses-workspace";
const EXPECTED_ERROR: &str = "NotFound";
/// The browser user's role in the Stack's workspace, and what its AddMember there must render.
const BROWSER_ROLE: Role = Role::Viewer;
const EXPECTED_ROLE: &str = "viewer";
const EXPECTED_ADMIN_ERROR: &str = "PermissionDenied";

const CHROMIUM: &str = "/usr/bin/chromium";
/// From spawning node to SIGNED_IN: build (about 3 s), Chromium start, sign-up and login.
const SIGNED_IN_TIMEOUT: Duration = Duration::from_secs(90);
/// From SIGNED_IN to READY_FOR_LIVE: the workspace listed and opened, the list and the stream.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
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
            "authorization,content-type,x-grpc-web,x-user-agent",
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

/// Adds the account the browser signed up with to the Stack's workspace, as its owner would.
async fn add_browser_user(stack: &Stack, email: &str) {
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {}", stack.token).parse().unwrap();
    let channel = tonic::service::interceptor::InterceptedService::new(
        grpc_web_channel(),
        move |mut request: tonic::Request<()>| {
            request.metadata_mut().insert("authorization", bearer.clone());
            Ok(request)
        },
    );
    let member = WorkspaceApiClient::with_origin(channel, stack.gateway_url.parse().unwrap())
        .add_member(AddMemberRequest {
            workspace_id: stack.workspace.clone(),
            email: email.to_string(),
            role: BROWSER_ROLE as i32,
            can_approve_posts: false,
        })
        .await
        .unwrap_or_else(|e| panic!("add {email} to the Stack's workspace: {e}\n{}", stack.logs()))
        .into_inner();
    assert_eq!(member.email, email);
    assert_eq!(member.role, BROWSER_ROLE as i32);
}

/// The next stdout line `accept` returns something for, within `timeout`; every line goes to `seen`.
/// `Err` says why not: "timed out" or "it exited".
async fn next_line<T>(
    lines: &mut mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    timeout: Duration,
    accept: impl Fn(&str) -> Option<T>,
) -> Result<T, &'static str> {
    let found = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.recv().await {
            let found = accept(&line);
            seen.push(line);
            if found.is_some() {
                return found;
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err("it exited"),
        Err(_) => Err("timed out"),
    }
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
async fn a_browser_on_another_origin_signs_up_logs_in_and_sees_its_inbox_live_and_its_refusals() {
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
        .args(["--expect-admin-error", EXPECTED_ADMIN_ERROR])
        .args(["--expect-role", EXPECTED_ROLE])
        .args(["--expect-contact", customer.name])
        // The page signs up and logs in itself: no session of the Stack's reaches the browser.
        .env_remove("SCIFER_SESSION_TOKEN")
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

    // The browser has signed up and logged in (and sees no workspace): add it to the Stack's.
    let email = next_line(&mut lines, &mut seen, SIGNED_IN_TIMEOUT, |line| {
        line.strip_prefix("SIGNED_IN ").map(str::to_string)
    })
    .await;
    let email = match email {
        Ok(email) => email,
        Err(why) => {
            node.stop().await;
            let stderr = stderr_task.await.unwrap_or_default();
            panic!(
                "run.mjs never printed SIGNED_IN ({why})\nstdout:\n{}\nstderr:\n{stderr}\n{}",
                seen.join("\n"),
                stack.logs()
            );
        }
    };
    add_browser_user(&stack, &email).await;

    let ready = next_line(&mut lines, &mut seen, READY_TIMEOUT, |line| {
        (line == "READY_FOR_LIVE").then_some(())
    })
    .await;
    if let Err(why) = ready {
        node.stop().await;
        let stderr = stderr_task.await.unwrap_or_default();
        panic!(
            "run.mjs never printed READY_FOR_LIVE ({why})\nstdout:\n{}\nstderr:\n{stderr}\n{}",
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
    // The refusals as the page rendered them, with the status codes the gateway sent.
    for (prefix, rendered) in [
        ("PERMISSION_ERROR ", "NotFound (5)"),
        ("ADMIN_ERROR ", "PermissionDenied (7)"),
    ] {
        assert!(
            seen.iter()
                .any(|l| l.strip_prefix(prefix).is_some_and(|t| t.starts_with(rendered))),
            "no {prefix}{rendered}… line\nstdout:\n{}",
            seen.join("\n")
        );
    }
    // Shown with --nocapture: where the screenshot is, and the refusals as rendered.
    for line in seen.iter().filter(|l| !l.is_empty()) {
        println!("browser: {line}");
    }
}
