//! Status and assignment: UpdateConversation, reopening by the customer and by the snooze's time,
//! auto-assignment by round robin under a cap, and the events that announce each change.

use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use scifer_proto::{
    events::v1::{ChannelKind, InboxEvent, inbox_event::Kind},
    inbox::v1::{
        AssignmentSettings, Conversation, ConversationStatus, GetAssignmentSettingsRequest,
        ListConversationsRequest, SetAgentAvailabilityRequest, UpdateAssignmentSettingsRequest,
        UpdateConversationRequest,
    },
};
use scifer_test_support::wait_until;
use tonic::{Code, Status};

use crate::helpers::*;

const PAGE: &str = "PAGE_1";

pub async fn update(app: &TestApp, ws: &str, req: UpdateConversationRequest) -> Result<Conversation, Status> {
    app.grpc()
        .await
        .update_conversation(with_workspace(ws, req))
        .await
        .map(|r| r.into_inner())
}

fn status(id: &str, status: ConversationStatus) -> UpdateConversationRequest {
    UpdateConversationRequest {
        conversation_id: id.into(),
        status: status as i32,
        ..Default::default()
    }
}

fn assign(id: &str, agent: &str) -> UpdateConversationRequest {
    UpdateConversationRequest {
        conversation_id: id.into(),
        assignee_id: Some(agent.into()),
        ..Default::default()
    }
}

fn snooze(id: &str, until_ms: i64) -> UpdateConversationRequest {
    UpdateConversationRequest {
        snoozed_until: Some(prost_types::Timestamp {
            seconds: until_ms.div_euclid(1000),
            nanos: (until_ms.rem_euclid(1000) * 1_000_000) as i32,
        }),
        ..status(id, ConversationStatus::Snoozed)
    }
}

async fn settings(app: &TestApp, ws: &str, auto_assign: bool, cap: i32) -> AssignmentSettings {
    app.grpc()
        .await
        .update_assignment_settings(with_workspace(
            ws,
            UpdateAssignmentSettingsRequest {
                auto_assign,
                max_open_per_agent: cap,
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn available(app: &TestApp, ws: &str, agent: &str, available: bool) {
    let got = app
        .grpc()
        .await
        .set_agent_availability(with_workspace(
            ws,
            SetAgentAvailabilityRequest {
                agent_id: agent.into(),
                available,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((got.agent_id.as_str(), got.available), (agent, available));
}

/// The conversation of `contact` (by its external id).
async fn of(app: &TestApp, ws: &str, contact: &str) -> Conversation {
    app.conversations(ws)
        .await
        .into_iter()
        .find(|c| c.contact.as_ref().is_some_and(|k| k.external_id == contact))
        .unwrap_or_else(|| panic!("no conversation of {contact}"))
}

async fn conversation_updated(sub: &mut scifer_events::async_nats::Subscriber) -> Conversation {
    loop {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("no ConversationUpdated in time")
            .expect("subscription ended");
        let event = InboxEvent::decode(msg.payload.as_ref()).unwrap();
        if let Some(Kind::ConversationUpdated(u)) = event.kind {
            return u.conversation.unwrap();
        }
    }
}

#[tokio::test]
async fn status_assignee_and_team_are_stored_listed_and_announced() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A", "PSID_B"], now_ms()).await;
    let a = of(&app, &ws, "PSID_A").await;
    assert_eq!((a.assignee_id.as_str(), a.team_id.as_str()), ("", ""));
    let mut sub = app
        .client
        .subscribe(app.bus.inbox_event(&ws, "conversation_updated"))
        .await
        .unwrap();
    app.client.flush().await.unwrap();

    let updated = update(
        &app,
        &ws,
        UpdateConversationRequest {
            team_id: Some("billing".into()),
            ..assign(&a.id, "agent-1")
        },
    )
    .await
    .unwrap();
    assert_eq!(updated.assignee_id, "agent-1");
    assert_eq!(updated.team_id, "billing");
    assert_eq!(updated.status, ConversationStatus::Open as i32);
    assert_eq!(updated.contact.as_ref().unwrap().external_id, "PSID_A");
    let announced = conversation_updated(&mut sub).await;
    assert_eq!(announced, updated, "the event carries the conversation as stored");

    let pending = update(&app, &ws, status(&a.id, ConversationStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.status, ConversationStatus::Pending as i32);
    assert_eq!(
        pending.assignee_id, "agent-1",
        "a status change keeps the assignee"
    );
    assert_eq!(
        conversation_updated(&mut sub).await.status,
        ConversationStatus::Pending as i32
    );

    // The list filters: by assignee, unassigned, team, status.
    let list = |req: ListConversationsRequest| {
        let app = &app;
        let ws = &ws;
        async move {
            app.list(ws, req)
                .await
                .conversations
                .into_iter()
                .map(|c| c.contact.unwrap().external_id)
                .collect::<Vec<_>>()
        }
    };
    let mine = list(ListConversationsRequest {
        assignee_id: "agent-1".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(mine, ["PSID_A"]);
    let unassigned = list(ListConversationsRequest {
        unassigned: true,
        ..Default::default()
    })
    .await;
    assert_eq!(unassigned, ["PSID_B"]);
    let team = list(ListConversationsRequest {
        team_id: "billing".into(),
        ..Default::default()
    })
    .await;
    assert_eq!(team, ["PSID_A"]);
    let open = list(ListConversationsRequest {
        status: ConversationStatus::Open as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(open, ["PSID_B"]);

    // Unassigning and leaving the team: empty values; an unchanged call announces nothing new.
    let cleared = update(
        &app,
        &ws,
        UpdateConversationRequest {
            team_id: Some(String::new()),
            ..assign(&a.id, "")
        },
    )
    .await
    .unwrap();
    assert_eq!((cleared.assignee_id.as_str(), cleared.team_id.as_str()), ("", ""));
    assert_eq!(conversation_updated(&mut sub).await.assignee_id, "");
    let same = update(&app, &ws, assign(&a.id, "")).await.unwrap();
    assert_eq!(same, cleared);
    let quiet = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
    assert!(
        quiet.is_err(),
        "an unchanged conversation was announced: {quiet:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn requests_are_checked_and_scoped_to_the_workspace() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms()).await;
    let id = of(&app, &ws, "PSID_A").await.id;
    let now = now_ms();
    let cases = [
        (status(&id, ConversationStatus::Snoozed), Code::InvalidArgument),
        (snooze(&id, now - 1_000), Code::InvalidArgument),
        (
            UpdateConversationRequest {
                snoozed_until: snooze(&id, now + 60_000).snoozed_until,
                ..status(&id, ConversationStatus::Resolved)
            },
            Code::InvalidArgument,
        ),
        (
            UpdateConversationRequest {
                status: 42,
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (assign(&id, "agent.1"), Code::InvalidArgument),
        (assign("no-such-conversation", "agent-1"), Code::NotFound),
    ];
    for (req, code) in cases {
        let got = update(&app, &ws, req.clone()).await.unwrap_err();
        assert_eq!(got.code(), code, "{req:?}: {got:?}");
    }
    // Another workspace cannot see or change it.
    let other = update(&app, &workspace(), assign(&id, "agent-1"))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::NotFound);
    assert_eq!(of(&app, &ws, "PSID_A").await.assignee_id, "");
    app.stop().await;
}

#[tokio::test]
async fn the_gateways_guard_lets_agents_take_and_release_but_not_reassign() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms()).await;
    let id = of(&app, &ws, "PSID_A").await.id;
    // What the gateway sends for agent `guard` asking to assign `to`.
    let guarded = |to: &str, guard: &str| UpdateConversationRequest {
        assignee_guard: guard.into(),
        ..assign(&id, to)
    };

    // agent-1 takes the unassigned conversation.
    let taken = update(&app, &ws, guarded("agent-1", "agent-1")).await.unwrap();
    assert_eq!(taken.assignee_id, "agent-1");
    // agent-2 may neither take it over nor give it away; agent-1 may not hand it to agent-2.
    for (to, guard) in [("agent-2", "agent-2"), ("", "agent-2"), ("agent-2", "agent-1")] {
        let refused = update(&app, &ws, guarded(to, guard)).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::PermissionDenied,
            "{to:?} by {guard}: {refused:?}"
        );
    }
    assert_eq!(of(&app, &ws, "PSID_A").await.assignee_id, "agent-1");
    // The guard does not stop status changes.
    let resolved = update(
        &app,
        &ws,
        UpdateConversationRequest {
            assignee_guard: "agent-2".into(),
            ..status(&id, ConversationStatus::Resolved)
        },
    )
    .await
    .unwrap();
    assert_eq!(resolved.status, ConversationStatus::Resolved as i32);
    // agent-1 releases it; an admin's call (no guard) reassigns freely.
    let released = update(&app, &ws, guarded("", "agent-1")).await.unwrap();
    assert_eq!(released.assignee_id, "");
    let admin = update(&app, &ws, assign(&id, "agent-2")).await.unwrap();
    assert_eq!(admin.assignee_id, "agent-2");
    app.stop().await;
}

#[tokio::test]
async fn a_customer_message_reopens_a_resolved_conversation_and_keeps_its_assignee() {
    let app = spawn_app().await;
    let start = now_ms() - 60_000;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], start).await;
    let before = of(&app, &ws, "PSID_A").await;
    update(&app, &ws, assign(&before.id, "agent-1")).await.unwrap();
    update(&app, &ws, status(&before.id, ConversationStatus::Resolved))
        .await
        .unwrap();
    // Our own reply (an echo from another app) does not reopen it.
    app.publish_meta(&echo(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_echo",
        "Anything else?",
        start + 10_000,
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;
    assert_eq!(
        of(&app, &ws, "PSID_A").await.status,
        ConversationStatus::Resolved as i32
    );

    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_again",
        "Actually, one more thing",
        start + 20_000,
    ))
    .await;
    app.wait_for_messages(&ws, 3).await;
    let all = app.conversations(&ws).await;
    assert_eq!(all.len(), 1, "the same conversation, not a new one: {all:?}");
    let after = &all[0];
    assert_eq!(after.id, before.id);
    assert_eq!(after.status, ConversationStatus::Open as i32);
    assert_eq!(after.assignee_id, "agent-1");
    assert_eq!(after.message_count, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_snoozed_conversation_reopens_when_its_time_comes_or_the_customer_writes() {
    let app = spawn_app_with(&[("SNOOZE_CHECK_MS", "100")]).await;
    let start = now_ms() - 60_000;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A", "PSID_B"], start).await;
    let (a, b) = (of(&app, &ws, "PSID_A").await.id, of(&app, &ws, "PSID_B").await.id);
    let mut sub = app
        .client
        .subscribe(app.bus.inbox_event(&ws, "conversation_updated"))
        .await
        .unwrap();
    app.client.flush().await.unwrap();

    // A: snoozed for an hour, but the customer writes again.
    let hour = now_ms() + 3_600_000;
    let snoozed = update(&app, &ws, snooze(&a, hour)).await.unwrap();
    assert_eq!(snoozed.status, ConversationStatus::Snoozed as i32);
    assert_eq!(
        snoozed.snoozed_until.as_ref().unwrap().seconds,
        hour.div_euclid(1000)
    );
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "PSID_A",
        "m_a_again",
        "Hello?",
        start + 30_000,
    ))
    .await;
    app.wait_for_messages(&ws, 3).await;
    let a_now = of(&app, &ws, "PSID_A").await;
    assert_eq!(a_now.status, ConversationStatus::Open as i32);
    assert_eq!(a_now.snoozed_until, None);

    // B: snoozed for a second; the periodic wake-up reopens it and announces it.
    update(&app, &ws, snooze(&b, now_ms() + 1_000)).await.unwrap();
    let reopened = wait_until(WAIT, || async {
        of(&app, &ws, "PSID_B").await.status == ConversationStatus::Open as i32
    })
    .await;
    assert!(reopened.is_ok(), "{:?}", of(&app, &ws, "PSID_B").await);
    let mut last = conversation_updated(&mut sub).await;
    while !(last.id == b && last.status == ConversationStatus::Open as i32) {
        last = conversation_updated(&mut sub).await;
    }
    assert_eq!(last.snoozed_until, None);
    // Nothing else is due.
    assert_eq!(app.engine.wake_snoozed(now_ms()).await.unwrap(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_due_snooze_is_woken_by_the_engine_at_its_time_and_not_before() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms()).await;
    let id = of(&app, &ws, "PSID_A").await.id;
    let until = now_ms() + 3_600_000;
    update(&app, &ws, snooze(&id, until)).await.unwrap();
    assert_eq!(app.engine.wake_snoozed(until - 1).await.unwrap(), 0);
    assert_eq!(
        of(&app, &ws, "PSID_A").await.status,
        ConversationStatus::Snoozed as i32
    );
    assert_eq!(app.engine.wake_snoozed(until).await.unwrap(), 1);
    assert_eq!(
        of(&app, &ws, "PSID_A").await.status,
        ConversationStatus::Open as i32
    );
    app.stop().await;
}

#[tokio::test]
async fn auto_assignment_takes_turns_among_available_agents_under_the_cap() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, PAGE))
        .await;
    let got = settings(&app, &ws, true, 1).await;
    assert!(got.auto_assign);
    assert_eq!(got.max_open_per_agent, 1);
    available(&app, &ws, "agent-b", true).await;
    available(&app, &ws, "agent-a", true).await;
    available(&app, &ws, "agent-c", false).await;

    let start = now_ms() - 60_000;
    let mut sent = 0;
    let mut customer = |contact: &str| {
        sent += 1;
        inbound(
            ChannelKind::Messenger,
            PAGE,
            contact,
            &format!("m_{contact}_{sent}"),
            "Hi",
            start + sent * 1_000,
        )
    };
    for contact in ["C1", "C2", "C3"] {
        app.publish_meta(&customer(contact)).await;
    }
    app.wait_for_messages(&ws, 3).await;
    // Round robin by id, and nobody over the cap of one: the third waits.
    assert_eq!(of(&app, &ws, "C1").await.assignee_id, "agent-a");
    assert_eq!(of(&app, &ws, "C2").await.assignee_id, "agent-b");
    assert_eq!(of(&app, &ws, "C3").await.assignee_id, "");
    let counts = app
        .grpc()
        .await
        .get_assignment_settings(with_workspace(&ws, GetAssignmentSettingsRequest {}))
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<_> = counts
        .agents
        .iter()
        .map(|a| (a.agent_id.as_str(), a.available, a.open_assigned))
        .collect();
    assert_eq!(
        counts,
        [("agent-a", true, 1), ("agent-b", true, 1), ("agent-c", false, 0)]
    );

    // Resolving frees agent-a; the next new conversation goes to them.
    let c1 = of(&app, &ws, "C1").await.id;
    update(&app, &ws, status(&c1, ConversationStatus::Resolved))
        .await
        .unwrap();
    app.publish_meta(&customer("C4")).await;
    app.wait_for_messages(&ws, 4).await;
    assert_eq!(of(&app, &ws, "C4").await.assignee_id, "agent-a");

    // A reopened unassigned conversation is assigned like a new one once there is room.
    let c3 = of(&app, &ws, "C3").await.id;
    update(&app, &ws, status(&c3, ConversationStatus::Resolved))
        .await
        .unwrap();
    available(&app, &ws, "agent-c", true).await;
    app.publish_meta(&customer("C3")).await;
    app.wait_for_messages(&ws, 5).await;
    let c3 = of(&app, &ws, "C3").await;
    assert_eq!(c3.status, ConversationStatus::Open as i32);
    assert_eq!(c3.assignee_id, "agent-c");
    app.stop().await;
}

#[tokio::test]
async fn without_auto_assignment_conversations_stay_unassigned() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, PAGE))
        .await;
    available(&app, &ws, "agent-a", true).await;
    // Settings exist, but off.
    let got = settings(&app, &ws, false, 0).await;
    assert!(!got.auto_assign);
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        PAGE,
        "C1",
        "m_1",
        "Hi",
        now_ms(),
    ))
    .await;
    app.wait_for_messages(&ws, 1).await;
    assert_eq!(of(&app, &ws, "C1").await.assignee_id, "");
    let refused = app
        .grpc()
        .await
        .update_assignment_settings(with_workspace(
            &ws,
            UpdateAssignmentSettingsRequest {
                auto_assign: true,
                max_open_per_agent: -1,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    app.stop().await;
}

/// The consumers write conversation rows back from their batch's copy; an RPC that changed the
/// row in the middle of a batch would be overwritten. So the RPC waits for the engine's write
/// lock, which a batch holds from its first read to its commit.
#[tokio::test]
async fn an_update_waits_for_a_batch_in_flight() {
    let app = spawn_app().await;
    let ws = workspace_with_customers(&app, PAGE, &["PSID_A"], now_ms()).await;
    let id = of(&app, &ws, "PSID_A").await.id;

    let batch = app.engine.lock_writes().await;
    let call = {
        let (grpc, ws, id) = (app.grpc().await, ws.clone(), id.clone());
        tokio::spawn(async move {
            let mut grpc = grpc;
            grpc.update_conversation(with_workspace(&ws, assign(&id, "agent-1")))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the update did not wait for the batch");
    assert_eq!(of(&app, &ws, "PSID_A").await.assignee_id, "");
    drop(batch);
    let done = tokio::time::timeout(WAIT, call).await.unwrap().unwrap().unwrap();
    assert_eq!(done.into_inner().assignee_id, "agent-1");
    app.stop().await;
}
