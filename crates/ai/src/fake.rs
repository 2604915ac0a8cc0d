//! An OpenAI-compatible fake server for tests (feature `fake`).
//!
//! ```no_run
//! # async fn demo() {
//! use scifer_ai::fake::{FakeOpenAi, Script, Step};
//! let fake = FakeOpenAi::start(Script::new([Step::answer("We open at 8.", 0.9, false)])).await;
//! let base_url = fake.url(); // http://127.0.0.1:<port>/v1
//! # }
//! ```
//!
//! It serves `POST /v1/chat/completions` and answers with the script's steps in order; once the
//! script is used up, the last step repeats. Every request is recorded, including refused ones.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use url::Url;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A well-formed answer: the content is the JSON object the prompt asks for.
    Answer {
        reply: String,
        confidence: f64,
        wants_human: bool,
    },
    /// 200 with this exact message content (non-JSON, fenced JSON, cut-off JSON, …).
    Content(String),
    /// An OpenAI-style error body with this status.
    Error {
        status: u16,
        message: String,
        code: Option<String>,
        retry_after: Option<String>,
    },
    /// This status and body verbatim, as `application/json` (whether or not it is JSON).
    Raw { status: u16, body: String },
    /// Waits, then takes the inner step.
    Delayed { delay: Duration, then: Box<Step> },
}

impl Step {
    pub fn answer(reply: impl Into<String>, confidence: f64, wants_human: bool) -> Step {
        Step::Answer {
            reply: reply.into(),
            confidence,
            wants_human,
        }
    }

    pub fn content(content: impl Into<String>) -> Step {
        Step::Content(content.into())
    }

    pub fn status(status: u16) -> Step {
        Step::Error {
            status,
            message: format!("fake error {status}"),
            code: None,
            retry_after: None,
        }
    }

    /// 429 with a `Retry-After` header.
    pub fn rate_limited(retry_after: impl Into<String>) -> Step {
        Step::Error {
            status: 429,
            message: "Rate limit reached".into(),
            code: Some("rate_limit_exceeded".into()),
            retry_after: Some(retry_after.into()),
        }
    }

    pub fn delayed(self, delay: Duration) -> Step {
        Step::Delayed {
            delay,
            then: Box::new(self),
        }
    }
}

/// What the fake answers, and the key it expects.
#[derive(Debug, Clone, Default)]
pub struct Script {
    steps: Vec<Step>,
    api_key: Option<String>,
}

impl Script {
    /// With no steps, every request gets a generic answer.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Script {
        Script {
            steps: steps.into_iter().collect(),
            api_key: None,
        }
    }

    /// Requests without `Authorization: Bearer <key>` get a 401 (whose message echoes the key
    /// they presented, worse than OpenAI's masked echo, so tests catch leaks).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Script {
        self.api_key = Some(key.into());
        self
    }
}

/// A request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The JSON body, or the raw text as a JSON string when it was not JSON.
    pub body: Value,
    pub authorization: Option<String>,
}

struct Shared {
    script: Script,
    served: AtomicUsize,
    log: Mutex<Vec<Recorded>>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Vec<Recorded>> {
        // A panicking test thread cannot leave the log half-written; keep reading it.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The running fake; stops when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeOpenAi {
    /// Binds `127.0.0.1:0` and serves in a background task.
    ///
    /// # Panics
    /// If no local port can be bound: a broken test environment.
    pub async fn start(script: Script) -> FakeOpenAi {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("fake OpenAI: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake OpenAI: local address");
        let shared = Arc::new(Shared {
            script,
            served: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "fake OpenAI server stopped");
            }
        });
        FakeOpenAi { addr, shared, task }
    }

    /// The API root to put in `AiConfig::base_url`: `http://127.0.0.1:<port>/v1`.
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://{}/v1", self.addr)).expect("a socket address makes a valid URL")
    }

    /// The bodies received so far, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.log().iter().map(|r| r.body.clone()).collect()
    }

    /// Bodies and `Authorization` headers received so far, oldest first.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.log().clone()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn chat_completions(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed = serde_json::from_slice::<Value>(&body);
    let recorded_body = match &parsed {
        Ok(v) => v.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    shared.log().push(Recorded {
        body: recorded_body,
        authorization: authorization.clone(),
    });

    if let Some(key) = &shared.script.api_key
        && authorization.as_deref() != Some(format!("Bearer {key}").as_str())
    {
        let presented = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("");
        return error(
            401,
            &format!("Incorrect API key provided: {presented}."),
            Some("invalid_api_key"),
            None,
        );
    }
    let Ok(request) = parsed else {
        return error(
            400,
            "We could not parse the JSON body of your request.",
            None,
            None,
        );
    };

    let n = shared.served.fetch_add(1, Ordering::SeqCst);
    let step = match shared.script.steps.get(n).or(shared.script.steps.last()) {
        Some(step) => step.clone(),
        None => Step::answer(
            "Thanks for your message! A teammate will reply shortly.",
            0.5,
            false,
        ),
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    respond(step, &model, n).await
}

async fn respond(mut step: Step, model: &str, n: usize) -> Response {
    while let Step::Delayed { delay, then } = step {
        tokio::time::sleep(delay).await;
        step = *then;
    }
    match step {
        Step::Answer {
            reply,
            confidence,
            wants_human,
        } => completion(
            model,
            n,
            &json!({ "reply": reply, "confidence": confidence, "wants_human": wants_human }).to_string(),
        ),
        Step::Content(content) => completion(model, n, &content),
        Step::Error {
            status,
            message,
            code,
            retry_after,
        } => error(status, &message, code.as_deref(), retry_after.as_deref()),
        Step::Raw { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        // The loop above unwrapped every delay.
        Step::Delayed { .. } => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn completion(model: &str, n: usize, content: &str) -> Response {
    let completion_tokens = content.len().div_ceil(4);
    let body = json!({
        "id": format!("chatcmpl-fake-{n}"),
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "refusal": null },
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": completion_tokens,
            "total_tokens": 100 + completion_tokens
        }
    });
    axum::Json(body).into_response()
}

fn error(status: u16, message: &str, code: Option<&str>, retry_after: Option<&str>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = axum::Json(json!({
        "error": { "message": message, "type": kind, "param": null, "code": code }
    }));
    let mut response = (status, body).into_response();
    if let Some(value) = retry_after.and_then(|v| header::HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
