//! The minimal receiver webhook-ingest is measured against: verify `X-Hub-Signature-256`, publish
//! the raw body to JetStream with a `Nats-Msg-Id`, await the PubAck, answer 200. Nothing else: no
//! JSON parse, no tracing, no splitting.
//!
//! It runs on its own two-worker tokio runtime in its own threads (named `bench-rx`), so it competes
//! with the driver for the CPUs the way a separate process would, and its CPU time can be read from
//! `/proc/self/task`.

use std::{net::SocketAddr, sync::Arc, thread::JoinHandle};

use async_nats::{Subject, jetstream::message::PublishMessage};
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use bytes::Bytes;
use ring::hmac;
use scifer_events::{Bus, StreamKind};
use scifer_proto::events::v1::ChannelKind;
use tokio::sync::oneshot;

use crate::{
    bodies::APP_SECRET,
    error::{BenchError, Result},
};

/// The receiver's runtime threads carry this name (at most 15 bytes: Linux truncates `comm`).
pub const THREAD_NAME: &str = "bench-rx";
pub const PATH: &str = "/webhooks/meta";

struct Receiver {
    key: hmac::Key,
    js: async_nats::jetstream::Context,
    subject: Subject,
}

pub struct MinimalReceiver {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MinimalReceiver {
    /// Starts the receiver on 127.0.0.1:0, publishing into `bus`'s INGEST stream.
    pub async fn start(nats_url: &str, bus: Bus) -> Result<Self> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let nats_url = nats_url.to_string();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(THREAD_NAME)
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(serve(nats_url, bus, ready_tx, stop_rx)),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                    }
                }
            })?;
        let addr = ready_rx
            .await
            .map_err(|_| BenchError::msg("minimal receiver thread ended before it was ready"))??;
        Ok(Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    /// Stops the server and joins its thread.
    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

async fn serve(
    nats_url: String,
    bus: Bus,
    ready: oneshot::Sender<Result<SocketAddr>>,
    stop: oneshot::Receiver<()>,
) {
    let setup = async {
        let client = scifer_events::connect(&nats_url).await?;
        let js = async_nats::jetstream::new(client);
        bus.ensure_default_stream(&js, StreamKind::Ingest).await?;
        let state = Arc::new(Receiver {
            key: hmac::Key::new(hmac::HMAC_SHA256, APP_SECRET.as_bytes()),
            js,
            subject: Subject::from(bus.ingest_raw(Some(ChannelKind::Messenger))),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let app = Router::new().route(PATH, post(receive)).with_state(state);
        Ok::<_, BenchError>((listener, app))
    };
    match setup.await {
        Ok((listener, app)) => {
            let addr = match listener.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    let _ = ready.send(Err(e.into()));
                    return;
                }
            };
            let _ = ready.send(Ok(addr));
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
        }
        Err(e) => {
            let _ = ready.send(Err(e));
        }
    }
}

async fn receive(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(digest) = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return StatusCode::UNAUTHORIZED;
    };
    let mut mac = [0u8; 32];
    if hex::decode_to_slice(digest, &mut mac).is_err() || hmac::verify(&rx.key, &body, &mac).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    // The digest is unique per body, so it serves as the dedup id.
    let publish = PublishMessage::build().message_id(digest).payload(body);
    match rx.js.send_publish(rx.subject.clone(), publish).await {
        Ok(ack) => match ack.await {
            Ok(_) => StatusCode::OK,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        },
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
