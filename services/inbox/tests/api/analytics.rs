//! Issue 5, inbox analytics: a scripted history (customer messages on the bus with Meta's times,
//! replies, assignment and status changes through the RPCs at pinned times) and every figure
//! checked exactly, per workspace, channel and agent, across a day boundary of a non-UTC zone.

use chrono::TimeZone;
use scifer_proto::{
    events::v1::ChannelKind,
    inbox::v1::{
        AnalyticsGroupBy, Author, AuthorKind, ConversationStatus, DurationStats, GetInboxAnalyticsRequest,
        GetInboxAnalyticsResponse, InboxAnalyticsRow, SendMessageRequest, UpdateConversationRequest,
        send_message_response,
    },
    tokenvault::v1::graph_failure,
};
use tonic::Code;

use crate::{
    helpers::*,
    send::{Scripted, VaultDouble},
};

const MIN: i64 = 60_000;

/// 2026-01-05 at `h:m` UTC.
fn at(h: u32, m: u32) -> i64 {
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 5, h, m, 0)
        .unwrap()
        .timestamp_millis()
}

async fn report(
    app: &TestApp,
    ws: &str,
    zone: &str,
    group_by: AnalyticsGroupBy,
) -> Result<GetInboxAnalyticsResponse, tonic::Status> {
    app.grpc()
        .await
        .get_inbox_analytics(with_workspace(
            ws,
            GetInboxAnalyticsRequest {
                from_day: "2026-01-05".into(),
                to_day: "2026-01-06".into(),
                time_zone: zone.into(),
                group_by: group_by as i32,
            },
        ))
        .await
        .map(|r| r.into_inner())
}

/// A row's figures in one comparable line.
#[derive(Debug, PartialEq)]
struct Figures {
    day: String,
    group: String,
    opened: i64,
    resolved: i64,
    messages_in: i64,
    /// total, humans, automation, AI
    out: (i64, i64, i64, i64),
    /// count, median, p90
    first_response: (i64, i64, i64),
    resolution: (i64, i64, i64),
    failed: Vec<(String, i64)>,
    handoffs: i64,
}

fn stats(s: Option<DurationStats>) -> (i64, i64, i64) {
    let s = s.unwrap_or_default();
    (s.count, s.median_ms, s.p90_ms)
}

fn figures(rows: &[InboxAnalyticsRow]) -> Vec<Figures> {
    rows.iter()
        .map(|r| {
            let mut failed: Vec<(String, i64)> =
                r.messages_failed.iter().map(|(k, v)| (k.clone(), *v)).collect();
            failed.sort();
            Figures {
                day: r.day.clone(),
                group: r.group.clone(),
                opened: r.conversations_opened,
                resolved: r.conversations_resolved,
                messages_in: r.messages_in,
                out: (
                    r.messages_out,
                    r.replies_by_humans,
                    r.replies_by_automation,
                    r.replies_by_ai,
                ),
                first_response: stats(r.first_response),
                resolution: stats(r.resolution),
                failed,
                handoffs: r.handoffs,
            }
        })
        .collect()
}

fn zero(day: &str, group: &str) -> Figures {
    Figures {
        day: day.into(),
        group: group.into(),
        opened: 0,
        resolved: 0,
        messages_in: 0,
        out: (0, 0, 0, 0),
        first_response: (0, 0, 0),
        resolution: (0, 0, 0),
        failed: vec![],
        handoffs: 0,
    }
}

/// One send refused by Meta as `recipient_unavailable` (code 551).
fn unavailable() -> Vec<(String, i64)> {
    vec![("recipient_unavailable".to_string(), 1)]
}

struct Script<'a> {
    app: &'a TestApp,
    ws: String,
    messages: i64,
}

impl Script<'_> {
    async fn customer(&mut self, account: &str, contact: &str, mid: &str, at_ms: i64) {
        self.app
            .publish_meta(&inbound(
                ChannelKind::Messenger,
                account,
                contact,
                mid,
                "hi",
                at_ms,
            ))
            .await;
        self.messages += 1;
        self.app.wait_for_messages(&self.ws, self.messages).await;
    }

    async fn reply(
        &mut self,
        conversation: &str,
        key: &str,
        kind: AuthorKind,
        author: &str,
        at_ms: i64,
    ) -> String {
        self.app.engine.clock().pin(at_ms);
        let sent = self
            .app
            .grpc()
            .await
            .send_message(with_workspace(
                &self.ws,
                SendMessageRequest {
                    conversation_id: conversation.into(),
                    idempotency_key: key.into(),
                    author: Some(Author {
                        kind: kind as i32,
                        id: author.into(),
                    }),
                    text: format!("reply {key}"),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let Some(send_message_response::Result::Message(m)) = sent.result else {
            panic!("not sent: {sent:?}");
        };
        // Meta's answer is applied by the consumer; it counts the message in its conversation.
        self.messages += 1;
        self.app.wait_for_messages(&self.ws, self.messages).await;
        m.failure_reason
    }

    async fn update(&self, req: UpdateConversationRequest, at_ms: i64) {
        self.app.engine.clock().pin(at_ms);
        self.app
            .grpc()
            .await
            .update_conversation(with_workspace(&self.ws, req))
            .await
            .unwrap();
    }

    async fn conversation_of(&self, contact_channel: &str) -> String {
        self.app
            .conversations(&self.ws)
            .await
            .into_iter()
            .find(|c| c.channel_id == contact_channel)
            .unwrap()
            .id
    }
}

fn assign(id: &str, agent: &str) -> UpdateConversationRequest {
    UpdateConversationRequest {
        conversation_id: id.into(),
        assignee_id: Some(agent.into()),
        ..Default::default()
    }
}

fn resolve(id: &str) -> UpdateConversationRequest {
    UpdateConversationRequest {
        conversation_id: id.into(),
        status: ConversationStatus::Resolved as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_scripted_history_gives_exact_figures_per_day_channel_and_agent() {
    let vault = VaultDouble::start(vec![
        Scripted::Sent("m_out_1"),
        Scripted::Sent("m_out_2"),
        Scripted::Sent("m_out_3"),
        Scripted::Meta {
            code: 551,
            subcode: 1545041,
            kind: graph_failure::Kind::InvalidRequest,
        },
        Scripted::Sent("m_out_5"),
    ])
    .await;
    let app = spawn_app_with_vault(&vault).await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-A", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_channel(&connected(&ws, "ch-B", ChannelKind::Messenger, "PAGE_B"))
        .await;
    let mut s = Script {
        app: &app,
        ws: ws.clone(),
        messages: 0,
    };

    // Conversation 1 on channel A: opened by the customer at 10:00, taken by agent-1, answered
    // by them at 10:02 (first response 2 min), by a rule at 10:05, resolved at 10:10 (10 min).
    s.customer("PAGE_A", "PSID_1", "m_in_1", at(10, 0)).await;
    let c1 = s.conversation_of("ch-A").await;
    s.update(assign(&c1, "agent-1"), at(10, 1)).await;
    s.reply(&c1, "r1", AuthorKind::Human, "agent-1", at(10, 2)).await;
    s.customer("PAGE_A", "PSID_1", "m_in_2", at(10, 3)).await;
    s.reply(&c1, "r2", AuthorKind::Automation, "rule-1", at(10, 5))
        .await;
    s.update(resolve(&c1), at(10, 10)).await;

    // Conversation 2 on channel B, nobody assigned: opened at 10:20, an AI reply at 10:30 (first
    // response 10 min), agent-2's reply fails at Meta at 10:31, resolved at 16:00 UTC, which is
    // already the 6th in Tokyo (5 h 40 min).
    s.customer("PAGE_B", "PSID_2", "m_in_3", at(10, 20)).await;
    let c2 = s.conversation_of("ch-B").await;
    s.reply(&c2, "r3", AuthorKind::Ai, "ai-1", at(10, 30)).await;
    let reason = s.reply(&c2, "r4", AuthorKind::Human, "agent-2", at(10, 31)).await;
    assert_eq!(reason, "recipient_unavailable");
    s.update(resolve(&c2), at(16, 0)).await;

    // The customer of conversation 1 comes back at 16:30 (reopened, still agent-1's), answered
    // at 16:45 (15 min); handed off to agent-2 at 16:50.
    s.customer("PAGE_A", "PSID_1", "m_in_4", at(16, 30)).await;
    s.reply(&c1, "r5", AuthorKind::Human, "agent-1", at(16, 45)).await;
    let handoff = || async {
        let txn = sea_orm::TransactionTrait::begin(&app.store).await.unwrap();
        inbox::analytics::record_handoff(
            &txn,
            &inbox::domain::WorkspaceId::parse(&ws).unwrap(),
            &c1,
            "ch-A",
            "agent-2",
            at(16, 50),
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
    };
    handoff().await;

    let expected_utc = vec![Figures {
        opened: 3,
        resolved: 2,
        messages_in: 4,
        out: (4, 2, 1, 1),
        first_response: (3, 10 * MIN, 15 * MIN),
        resolution: (2, 10 * MIN, 340 * MIN),
        failed: unavailable(),
        handoffs: 1,
        ..zero("2026-01-05", "")
    }];
    let utc = report(&app, &ws, "", AnalyticsGroupBy::Workspace).await.unwrap();
    assert_eq!(utc.time_zone, "UTC");
    assert_eq!(figures(&utc.rows), expected_utc);

    // Tokyo is UTC+9: everything from 15:00 UTC on is the 6th there.
    let expected_tokyo = vec![
        Figures {
            opened: 2,
            resolved: 1,
            messages_in: 3,
            out: (3, 1, 1, 1),
            first_response: (2, 2 * MIN, 10 * MIN),
            resolution: (1, 10 * MIN, 10 * MIN),
            failed: unavailable(),
            ..zero("2026-01-05", "")
        },
        Figures {
            opened: 1,
            resolved: 1,
            messages_in: 1,
            out: (1, 1, 0, 0),
            first_response: (1, 15 * MIN, 15 * MIN),
            resolution: (1, 340 * MIN, 340 * MIN),
            handoffs: 1,
            ..zero("2026-01-06", "")
        },
    ];
    let tokyo = report(&app, &ws, "Asia/Tokyo", AnalyticsGroupBy::Workspace)
        .await
        .unwrap();
    assert_eq!(tokyo.time_zone, "Asia/Tokyo");
    assert_eq!(figures(&tokyo.rows), expected_tokyo);

    let by_channel = report(&app, &ws, "Asia/Tokyo", AnalyticsGroupBy::Channel)
        .await
        .unwrap();
    assert_eq!(
        figures(&by_channel.rows),
        vec![
            Figures {
                opened: 1,
                resolved: 1,
                messages_in: 2,
                out: (2, 1, 1, 0),
                first_response: (1, 2 * MIN, 2 * MIN),
                resolution: (1, 10 * MIN, 10 * MIN),
                ..zero("2026-01-05", "ch-A")
            },
            Figures {
                opened: 1,
                messages_in: 1,
                out: (1, 0, 0, 1),
                first_response: (1, 10 * MIN, 10 * MIN),
                failed: unavailable(),
                ..zero("2026-01-05", "ch-B")
            },
            Figures {
                opened: 1,
                messages_in: 1,
                out: (1, 1, 0, 0),
                first_response: (1, 15 * MIN, 15 * MIN),
                handoffs: 1,
                ..zero("2026-01-06", "ch-A")
            },
            Figures {
                resolved: 1,
                resolution: (1, 340 * MIN, 340 * MIN),
                ..zero("2026-01-06", "ch-B")
            },
        ]
    );

    // By agent: the assignee at the time of each fact; a person's own replies and failures are
    // theirs; nobody ("") before conversation 1 was taken and for all of conversation 2.
    let by_agent = report(&app, &ws, "Asia/Tokyo", AnalyticsGroupBy::Agent)
        .await
        .unwrap();
    assert_eq!(
        figures(&by_agent.rows),
        vec![
            Figures {
                opened: 2,
                messages_in: 2,
                out: (1, 0, 0, 1),
                first_response: (1, 10 * MIN, 10 * MIN),
                ..zero("2026-01-05", "")
            },
            Figures {
                resolved: 1,
                messages_in: 1,
                out: (2, 1, 1, 0),
                first_response: (1, 2 * MIN, 2 * MIN),
                resolution: (1, 10 * MIN, 10 * MIN),
                ..zero("2026-01-05", "agent-1")
            },
            Figures {
                failed: unavailable(),
                ..zero("2026-01-05", "agent-2")
            },
            Figures {
                resolved: 1,
                resolution: (1, 340 * MIN, 340 * MIN),
                ..zero("2026-01-06", "")
            },
            Figures {
                opened: 1,
                messages_in: 1,
                out: (1, 1, 0, 0),
                first_response: (1, 15 * MIN, 15 * MIN),
                ..zero("2026-01-06", "agent-1")
            },
            Figures {
                handoffs: 1,
                ..zero("2026-01-06", "agent-2")
            },
        ]
    );

    // Replays count nothing twice: Meta resending a message under a new envelope, the bus
    // redelivering an event, a handoff recorded again.
    let mut resent = inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID_1",
        "m_in_1",
        "hi",
        at(10, 0),
    );
    resent.event_id = "msg:m_in_1:resent".into();
    app.publish_meta(&resent).await;
    app.publish_meta_as(
        &inbound(
            ChannelKind::Messenger,
            "PAGE_B",
            "PSID_2",
            "m_in_3",
            "hi",
            at(10, 20),
        ),
        "later-redelivery",
    )
    .await;
    handoff().await;
    app.wait_consumer_caught_up(inbox::META_CONSUMER, scifer_events::StreamKind::Meta)
        .await;
    let again = report(&app, &ws, "", AnalyticsGroupBy::Workspace).await.unwrap();
    assert_eq!(figures(&again.rows), expected_utc);

    // Another workspace sees none of it.
    let other = report(&app, &workspace(), "", AnalyticsGroupBy::Workspace)
        .await
        .unwrap();
    assert!(other.rows.is_empty());
}

#[tokio::test]
async fn bad_ranges_are_invalid_arguments() {
    let app = spawn_app().await;
    let ws = workspace();
    for (from, to, zone) in [
        ("2026-01-05", "2026-01-04", ""),
        ("5 Jan", "2026-01-06", ""),
        ("2026-01-05", "2026-01-06", "Mars/Olympus"),
        ("2024-01-01", "2026-01-01", ""),
    ] {
        let err = app
            .grpc()
            .await
            .get_inbox_analytics(with_workspace(
                &ws,
                GetInboxAnalyticsRequest {
                    from_day: from.into(),
                    to_day: to.into(),
                    time_zone: zone.into(),
                    group_by: AnalyticsGroupBy::Channel as i32,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{from} {to} {zone}: {err:?}");
    }
    let unscoped = app
        .grpc()
        .await
        .get_inbox_analytics(tonic::Request::new(GetInboxAnalyticsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(unscoped.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_disconnect_takes_the_channels_figures_and_templates_with_it() {
    use scifer_proto::events::v1::ChannelState;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    let vault = VaultDouble::start(vec![Scripted::WhatsAppSent("wamid.X")]).await;
    vault.serve_templates(vec![crate::templates::listed("order_update", "APPROVED")]);
    let app = spawn_app_with_vault(&vault).await;
    let (ws, _conv) = crate::templates::whatsapp_conversation(&app, "PHONE_1", MIN).await;
    app.publish_channel(&connected(&ws, "ch-A", ChannelKind::Messenger, "PAGE_A"))
        .await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_A",
        "PSID_1",
        "m_a",
        "hi",
        now_ms(),
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;
    let facts = |channel: &'static str| {
        let store = app.store.clone();
        async move {
            inbox::store::entity::analytics_fact::Entity::find()
                .filter(inbox::store::entity::analytics_fact::Column::ChannelId.eq(channel))
                .count(&store)
                .await
                .unwrap()
        }
    };
    // Opened and one message in, on each channel.
    assert_eq!((facts("ch-PHONE_1").await, facts("ch-A").await), (2, 2));

    let mut gone = channel(
        &ws,
        "ch-PHONE_1",
        ChannelKind::Whatsapp,
        "PHONE_1",
        ChannelState::Disconnected,
        2,
    );
    gone.parent_account_id = crate::templates::WABA.into();
    app.publish_channel(&gone).await;
    let erased = scifer_test_support::wait_until(WAIT, || async { facts("ch-PHONE_1").await == 0 }).await;
    assert!(erased.is_ok(), "the channel's facts stay");
    assert_eq!(facts("ch-A").await, 2, "other channels keep theirs");
    let templates = inbox::store::entity::whatsapp_template::Entity::find()
        .count(&app.store)
        .await
        .unwrap();
    assert_eq!(templates, 0, "the WABA's last number took its templates along");
    let cycles = inbox::store::entity::analytics_cycle::Entity::find()
        .filter(inbox::store::entity::analytics_cycle::Column::ChannelId.eq("ch-PHONE_1"))
        .count(&app.store)
        .await
        .unwrap();
    assert_eq!(cycles, 0);
}
