//! The privacy policy's "tokens are stored encrypted": no plaintext token in the database, the
//! logs, the bus or any answer.

use scifer_proto::tokenvault::v1::{CheckChannelRequest, ListChannelsRequest};
use sea_orm::{ConnectionTrait, Statement};

use crate::helpers::*;

/// Every byte the vault's tables hold, as one lossy string per row.
async fn dump(store: &sea_orm::DatabaseConnection) -> Vec<u8> {
    let backend = store.get_database_backend();
    let mut all = Vec::new();
    for (table, cols) in [
        ("tokens", "id, workspace_id, channel_id, kind, sealed"),
        (
            "channels",
            "id, workspace_id, account_id, display_name, state_reason, scopes",
        ),
        ("data_keys", "workspace_id, wrapped"),
        (
            "connect_sessions",
            "id, state_hash, redirect_uri, user_token_sealed",
        ),
        ("outbox", "subject, msg_id, payload"),
    ] {
        let rows = store
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT {cols} FROM {table}"),
            ))
            .await
            .unwrap();
        for row in rows {
            for col in cols.split(", ") {
                if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>>("", col) {
                    all.extend(bytes);
                } else if let Ok(text) = row.try_get::<String>("", col) {
                    all.extend(text.into_bytes());
                }
            }
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_token_appears_in_the_database_logs_events_or_answers() {
    let vault = TestVault::start().await;
    let page = vault.connect_demo_page().await.channels[0].clone();
    let wa = vault.connect_whatsapp(WORKSPACE).await.channels[0].clone();
    crate::egress::send_text(&vault, &page.channel_id).await.unwrap();
    // An error path and a health check too: both handle the token.
    vault.sim.invalidate_token(&vault.whatsapp_token, 460);
    let mut gw = vault.client("gateway").await;
    let checked = gw
        .check_channel(CheckChannelRequest {
            workspace_id: WORKSPACE.into(),
            channel_id: wa.channel_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let listed = gw
        .list_channels(ListChannelsRequest {
            workspace_id: WORKSPACE.into(),
        })
        .await
        .unwrap()
        .into_inner();

    let mut canaries = vault.sim.issued_tokens();
    canaries.push(vault.whatsapp_token.clone());
    assert!(
        canaries.len() >= 3,
        "user, page and system-user tokens were issued"
    );
    let stored = dump(&vault.store().await).await;
    assert!(!stored.is_empty());
    let log = vault.log();
    assert!(log.contains("token-vault"), "the log was captured");
    let events = format!(
        "{:?}{:?}",
        vault.channel_events().await,
        vault.audit_events().await
    );
    let answers = format!("{checked:?}{listed:?}");
    for token in &canaries {
        assert!(!contains(&stored, token), "a token is stored in clear");
        assert!(!log.contains(token.as_str()), "a token is in the log");
        assert!(!events.contains(token.as_str()), "a token is on the bus");
        assert!(!answers.contains(token.as_str()), "a token is in an answer");
    }
}
