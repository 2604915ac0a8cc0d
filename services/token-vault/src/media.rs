//! WhatsApp media by id: Graph describes the file (`GET /{media-id}`: a short-lived URL, its type,
//! size and SHA-256), and the URL itself needs the channel's token. The vault fetches it and hands
//! the bytes on, so inbox can keep the file without ever holding a token. The token is sent only
//! to the hosts in `MEDIA_URL_HOSTS`, never across a redirect.

use scifer_audit::{Audit, Outcome, action};
use scifer_graph::{GraphError, MediaDownload};
use scifer_ids::WorkspaceId;
use scifer_proto::{
    events::v1::ChannelState,
    tokenvault::v1::{EgressAction, MediaInfo, OnBehalfOf},
};

use crate::{
    domain::{egress, state},
    error::VaultError,
    vault::Vault,
};

/// Whether `url` may receive a channel's token: https to a listed host, or plain http to a
/// listed loopback host (the simulator in tests and `make run`).
pub fn may_receive_token(url: &url::Url, hosts: &[String]) -> bool {
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    let listed = hosts.contains(&host);
    match url.scheme() {
        "https" => listed,
        "http" => listed && matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]"),
        _ => false,
    }
}

impl Vault {
    /// Describes and starts downloading a WhatsApp media file of a channel.
    pub async fn open_media(
        &self,
        workspace: &WorkspaceId,
        channel_id: &str,
        media_id: &str,
        on_behalf: Option<&OnBehalfOf>,
        caller: &str,
    ) -> Result<(MediaInfo, MediaDownload), VaultError> {
        let ch = self.channel(&self.db, workspace, channel_id).await?;
        match ChannelState::try_from(ch.state) {
            Ok(ChannelState::Connected) => {}
            Ok(ChannelState::NeedsReauth) => return Err(VaultError::NeedsReauth(ch.state_reason.clone())),
            _ => return Err(VaultError::ChannelNotFound),
        }
        let planned = egress::plan(
            EgressAction::GetMedia,
            crate::vault::target(&ch),
            serde_json::json!({ "media_id": media_id }),
        )?;
        let token = self.token_of(&self.db, &ch).await?;
        let described = self.graph_call(planned, &token).await;
        let audit = |outcome, detail: String| {
            Audit::new(
                workspace,
                crate::egress::actor(on_behalf, caller),
                action::TOKEN_USED,
                outcome,
            )
            .target("channel", &ch.id)
            .detail(detail)
        };
        let body = match described {
            Ok(response) => response.body,
            Err(e) => {
                if let GraphError::Meta(m) = &e
                    && let Some(reason) = state::reauth_reason(m)
                {
                    self.mark_needs_reauth(&ch, &reason).await?;
                }
                self.record(
                    &self.db,
                    audit(
                        Outcome::Failure,
                        format!("caller={caller} action=FETCH_MEDIA error={e}"),
                    ),
                )
                .await?;
                self.published();
                return Err(crate::connect::graph_failure(e));
            }
        };
        let url = body["url"]
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| VaultError::Meta("Graph described the media without a URL".into()))?;
        if !may_receive_token(&url, &self.media_hosts) {
            tracing::warn!(
                host = url.host_str().unwrap_or(""),
                "media URL on a host not in MEDIA_URL_HOSTS; not fetched"
            );
            return Err(VaultError::Meta(
                "the media URL is on a host the vault does not send tokens to".into(),
            ));
        }
        let info = MediaInfo {
            mime_type: body["mime_type"].as_str().unwrap_or_default().to_string(),
            sha256: body["sha256"].as_str().unwrap_or_default().to_ascii_lowercase(),
            file_size: body["file_size"]
                .as_u64()
                .or_else(|| body["file_size"].as_str().and_then(|s| s.parse().ok()))
                .unwrap_or_default(),
        };
        let download = self
            .graph
            .download_media(url, &token, self.media_max_bytes)
            .await
            .map_err(crate::connect::graph_failure)?;
        self.record(
            &self.db,
            audit(Outcome::Success, format!("caller={caller} action=FETCH_MEDIA")),
        )
        .await?;
        self.published();
        Ok((info, download))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_token_goes_only_to_listed_hosts_over_https_or_to_a_listed_loopback() {
        let hosts = vec!["lookaside.fbsbx.com".to_string(), "127.0.0.1".to_string()];
        let ok = |u: &str| may_receive_token(&url::Url::parse(u).unwrap(), &hosts);
        assert!(ok(
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
        ));
        assert!(ok("http://127.0.0.1:8090/_media/abc"));
        assert!(
            !ok("http://lookaside.fbsbx.com/x"),
            "no token over plain http to the Internet"
        );
        assert!(!ok("https://evil.example/x"));
        assert!(!ok("https://lookaside.fbsbx.com.evil.example/x"));
        assert!(!ok("ftp://lookaside.fbsbx.com/x"));
    }
}
