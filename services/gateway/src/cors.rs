//! CORS for browser frontends calling over gRPC-web. It wraps everything else on the port, so that
//! preflights are answered before routing and every response (errors included) carries the headers.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

#[derive(Debug, thiserror::Error)]
pub enum InvalidOrigin {
    #[error(
        "CORS_ALLOWED_ORIGINS: {0:?} is not an origin; write scheme://host[:port] with no path or \
         trailing slash (browsers send exactly that)"
    )]
    Malformed(String),
    #[error("CORS_ALLOWED_ORIGINS: '*' is not allowed; list the frontends' origins")]
    Wildcard,
}

/// The CORS layer for an explicit allow-list. Empty entries are ignored (an empty variable parses
/// as one empty entry); an empty list allows no cross-origin calls, while same-origin pages and
/// non-browser clients, which send no preflight, are unaffected.
pub fn layer(origins: &[String]) -> Result<CorsLayer, InvalidOrigin> {
    let mut allowed = Vec::new();
    for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        allowed.push(parse_origin(origin)?);
    }
    Ok(CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
        ])
        // Without these, browsers hide the status of trailers-only (error) responses and every
        // error reaches the app as "missing trailer".
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
        ])
        // Browsers cap this themselves (Chromium at 2 h); it saves a preflight per call.
        .max_age(Duration::from_secs(2 * 3600)))
}

fn parse_origin(origin: &str) -> Result<HeaderValue, InvalidOrigin> {
    if origin == "*" {
        return Err(InvalidOrigin::Wildcard);
    }
    let malformed = || InvalidOrigin::Malformed(origin.to_string());
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(malformed)?;
    let host_ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(malformed());
    }
    HeaderValue::from_str(origin).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn origins_are_accepted_as_browsers_send_them() {
        for ok in [
            "https://app.example.com",
            "http://localhost:5173",
            "http://[::1]:8080",
        ] {
            assert!(layer(&origins(&[ok])).is_ok(), "{ok} refused");
        }
        assert!(
            layer(&origins(&[""])).is_ok(),
            "an empty variable means no origins"
        );
        assert!(layer(&[]).is_ok());
    }

    #[test]
    fn entries_that_would_never_match_or_match_everything_are_refused() {
        for bad in [
            "*",
            "https://app.example.com/",
            "app.example.com",
            "https://a.test/path",
            "ftp://a",
        ] {
            assert!(layer(&origins(&[bad])).is_err(), "{bad} accepted");
        }
    }
}
