//! URLs from the configuration that end up in front of users: the frontend's base URL (links in
//! emails) and the Facebook Login redirect. Checked once at startup.

use scifer_ids::WorkspaceId;

/// Why a configured URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} {value:?} must be an absolute http(s) URL{extra}")]
pub struct InvalidUrl {
    setting: &'static str,
    value: String,
    extra: &'static str,
}

/// An absolute `http` or `https` URL with a host.
fn check_http(setting: &'static str, raw: &str) -> Result<http::Uri, InvalidUrl> {
    let invalid = |extra| InvalidUrl {
        setting,
        value: raw.to_string(),
        extra,
    };
    let uri: http::Uri = raw.parse().map_err(|_| invalid(""))?;
    let http = matches!(uri.scheme_str(), Some("http" | "https"));
    if !http || uri.host().is_none_or(str::is_empty) {
        return Err(invalid(""));
    }
    Ok(uri)
}

/// The frontend's base URL (`PUBLIC_APP_URL`), without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUrl(String);

impl AppUrl {
    pub fn parse(raw: &str) -> Result<Self, InvalidUrl> {
        let trimmed = raw.trim().trim_end_matches('/');
        let uri = check_http("PUBLIC_APP_URL", trimmed)?;
        // Paths are appended to it: a query or a fragment would swallow them.
        if uri.query().is_some() || trimmed.contains('#') {
            return Err(InvalidUrl {
                setting: "PUBLIC_APP_URL",
                value: raw.to_string(),
                extra: " without a query or fragment",
            });
        }
        Ok(Self(trimmed.to_string()))
    }

    /// The page where an admin reconnects `channel_id`.
    pub fn reconnect_link(&self, workspace: &WorkspaceId, channel_id: &str) -> String {
        format!(
            "{}/workspaces/{}/channels?reconnect={}",
            self.0,
            workspace.as_str(),
            percent_encode(channel_id)
        )
    }
}

/// The Facebook Login redirect (`META_OAUTH_REDIRECT_URI`), passed to token-vault as is.
pub fn check_redirect_uri(raw: &str) -> Result<(), InvalidUrl> {
    check_http("META_OAUTH_REDIRECT_URI", raw).map(|_| ())
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a channel id is one query
/// value whatever it holds. (A workspace id is letters, digits, `-` and `_` by construction.)
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reconnect_link_joins_base_workspace_and_encoded_channel() {
        let app = AppUrl::parse("https://app.acme.test/").unwrap();
        let ws = WorkspaceId::parse("ws-1").unwrap();
        assert_eq!(
            app.reconnect_link(&ws, "ch-1"),
            "https://app.acme.test/workspaces/ws-1/channels?reconnect=ch-1"
        );
        assert_eq!(
            app.reconnect_link(&ws, "a b&c=d/é"),
            "https://app.acme.test/workspaces/ws-1/channels?reconnect=a%20b%26c%3Dd%2F%C3%A9"
        );
        let under_path = AppUrl::parse("http://localhost:5173/scifer").unwrap();
        assert_eq!(
            under_path.reconnect_link(&ws, "c"),
            "http://localhost:5173/scifer/workspaces/ws-1/channels?reconnect=c"
        );
    }

    #[test]
    fn only_absolute_http_urls_are_accepted() {
        for bad in [
            "",
            "app.acme.test",
            "/channels",
            "ftp://acme.test",
            "https://acme.test/?x=1",
        ] {
            assert!(AppUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_redirect_uri("https://app.acme.test/channels/callback").is_ok());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("").is_err());
    }
}
