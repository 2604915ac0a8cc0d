//! CORS for browsers on other origins, and plain HTTP/1.1 routes next to gRPC-web on one port.

use reqwest::{Method, StatusCode, header};

use crate::helpers::{ALLOWED_ORIGIN, spawn_app};

const LIST_PATH: &str = "/scifer.gateway.v1.InboxApi/ListConversations";

async fn preflight(url: &str, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, url)
        .header(header::ORIGIN, origin)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,x-grpc-web,x-user-agent,authorization",
        )
        .send()
        .await
        .unwrap()
}

fn header_list(response: &reqwest::Response, name: header::HeaderName) -> String {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_gets_the_allow_headers() {
    let app = spawn_app().await;
    let response = preflight(&format!("{}{LIST_PATH}", app.url()), ALLOWED_ORIGIN).await;
    assert!(response.status().is_success(), "{response:?}");
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    let methods = header_list(&response, header::ACCESS_CONTROL_ALLOW_METHODS);
    assert!(methods.contains("post"), "{methods}");
    let headers = header_list(&response, header::ACCESS_CONTROL_ALLOW_HEADERS);
    for needed in [
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "authorization",
        "grpc-timeout",
    ] {
        assert!(headers.contains(needed), "{needed} not allowed: {headers}");
    }
}

/// Browsers read `grpc-status` of an error (trailers-only) response from the HTTP headers, and
/// only when the response exposes them; this is a gRPC-web call exactly as a browser sends it.
#[tokio::test]
async fn grpc_web_responses_to_an_allowed_origin_expose_grpc_status() {
    let app = spawn_app().await;
    // A gRPC-web frame: flag 0, big-endian length, then ListConversationsRequest with
    // workspace_id "*" (field 1, length 1), sent without a session, which the gateway refuses.
    let message = [0x0a, 0x01, b'*'];
    let mut body = vec![0u8];
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(&message);
    let response = reqwest::Client::new()
        .post(format!("{}{LIST_PATH}", app.url()))
        .header(header::ORIGIN, ALLOWED_ORIGIN)
        .header(header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        ALLOWED_ORIGIN
    );
    assert_eq!(
        response.headers()["grpc-status"],
        "16",
        "UNAUTHENTICATED in the headers"
    );
    let exposed = header_list(&response, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    for needed in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(needed), "{needed} not exposed: {exposed}");
    }
}

#[tokio::test]
async fn an_unlisted_origin_gets_no_allow_origin() {
    let app = spawn_app().await;
    let response = preflight(&format!("{}{LIST_PATH}", app.url()), "https://evil.test").await;
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{response:?}"
    );
}

/// A GrpcWebLayer around the whole router would answer these with 400 (pitfall P5).
#[tokio::test]
async fn healthz_and_readyz_answer_plain_http1_next_to_grpc_web() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(format!("{}{path}", app.url())).await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}
