//! Contact profiles: a name the team sets (kept over Meta's), custom attributes (also in canned
//! responses), and one person across channels.

use std::collections::HashMap;

use futures::StreamExt;
use prost::Message as _;
use scifer_proto::{
    events::v1::{ChannelKind, InboxEvent, MetaEvent, inbox_event, meta_event::Kind},
    inbox::v1::{
        ContactProfile, Conversation, GetContactRequest, MergeContactsRequest, RenderCannedResponseRequest,
        UpdateContactRequest,
    },
};
use tonic::{Code, Status};

use crate::helpers::*;

fn named(mut event: MetaEvent, name: &str) -> MetaEvent {
    if let Some(Kind::Message(m)) = &mut event.kind {
        m.contact_name = name.into();
    }
    event
}

async fn get(app: &TestApp, ws: &str, id: &str) -> Result<ContactProfile, Status> {
    app.grpc()
        .await
        .get_contact(with_workspace(
            ws,
            GetContactRequest {
                contact_id: id.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn update(app: &TestApp, ws: &str, req: UpdateContactRequest) -> Result<ContactProfile, Status> {
    app.grpc()
        .await
        .update_contact(with_workspace(ws, req))
        .await
        .map(|r| r.into_inner())
}

async fn merge(app: &TestApp, ws: &str, a: &str, b: &str) -> Result<ContactProfile, Status> {
    app.grpc()
        .await
        .merge_contacts(with_workspace(
            ws,
            MergeContactsRequest {
                contact_id: a.into(),
                other_contact_id: b.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn contact_of(app: &TestApp, ws: &str, external_id: &str) -> String {
    app.conversations(ws)
        .await
        .into_iter()
        .filter_map(|c| c.contact)
        .find(|c| c.external_id == external_id)
        .unwrap_or_else(|| panic!("no contact {external_id}"))
        .id
}

#[tokio::test]
async fn the_team_renames_a_contact_over_metas_name_and_keeps_attributes() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE_1"))
        .await;
    let t0 = now_ms() - 60_000;
    let say = |mid: &str, name: &str, at: i64| {
        named(
            inbound(ChannelKind::Messenger, "PAGE_1", "PSID_ANA", mid, "Hi", at),
            name,
        )
    };
    app.publish_meta(&say("m_1", "Ana", t0)).await;
    app.wait_for_messages(&ws, 1).await;
    let id = contact_of(&app, &ws, "PSID_ANA").await;

    let profile = get(&app, &ws, &id).await.unwrap();
    let contact = profile.contact.clone().unwrap();
    assert_eq!(
        (contact.display_name.as_str(), contact.channel_id.as_str()),
        ("Ana", "ch")
    );
    assert_eq!(contact.person_id, id, "its own person until merged");
    assert_eq!(profile.channel_kind, ChannelKind::Messenger as i32);
    assert!(profile.custom_attributes.is_empty() && profile.linked.is_empty());
    assert!(!profile.display_name_locked);

    let mut sub = app
        .client
        .subscribe(app.bus.inbox_event(&ws, "conversation_updated"))
        .await
        .unwrap();
    app.client.flush().await.unwrap();
    let renamed = update(
        &app,
        &ws,
        UpdateContactRequest {
            contact_id: id.clone(),
            display_name: Some(" Ana Souza (VIP) ".into()),
            set_attributes: attrs(&[("Plan", "gold"), ("city", "Lyon")]),
            remove_attributes: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(renamed.contact.unwrap().display_name, "Ana Souza (VIP)");
    assert_eq!(
        renamed.custom_attributes,
        attrs(&[("plan", "gold"), ("city", "Lyon")])
    );
    assert!(renamed.display_name_locked);
    // The conversation list hears of the new name.
    let msg = tokio::time::timeout(WAIT, sub.next()).await.unwrap().unwrap();
    let Some(inbox_event::Kind::ConversationUpdated(u)) =
        InboxEvent::decode(msg.payload.as_ref()).unwrap().kind
    else {
        panic!("not a ConversationUpdated")
    };
    let announced: Conversation = u.conversation.unwrap();
    assert_eq!(announced.contact.unwrap().display_name, "Ana Souza (VIP)");

    // Meta's profile name no longer overwrites the team's.
    app.publish_meta(&say("m_2", "Ana", t0 + 1_000)).await;
    app.wait_for_messages(&ws, 2).await;
    let kept = get(&app, &ws, &id).await.unwrap();
    assert_eq!(kept.contact.unwrap().display_name, "Ana Souza (VIP)");

    // Attributes fill canned responses.
    let canned = crate::canned::create(&app, &ws, "plan", "Your plan: {{contact.custom.plan|none}}.")
        .await
        .unwrap();
    let conversation = app.conversations(&ws).await.remove(0).id;
    let rendered = app
        .grpc()
        .await
        .render_canned_response(with_workspace(
            &ws,
            RenderCannedResponseRequest {
                canned_response_id: canned.id,
                conversation_id: conversation,
                agent_name: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rendered.text, "Your plan: gold.");

    // An empty name hands it back to Meta; an empty value removes an attribute.
    let handed_back = update(
        &app,
        &ws,
        UpdateContactRequest {
            contact_id: id.clone(),
            display_name: Some(String::new()),
            set_attributes: attrs(&[("plan", "")]),
            remove_attributes: vec!["CITY".into()],
        },
    )
    .await
    .unwrap();
    assert!(handed_back.custom_attributes.is_empty());
    assert!(!handed_back.display_name_locked);
    app.publish_meta(&say("m_3", "Ana M.", t0 + 2_000)).await;
    app.wait_for_messages(&ws, 3).await;
    assert_eq!(
        get(&app, &ws, &id).await.unwrap().contact.unwrap().display_name,
        "Ana M."
    );

    let invalid = update(
        &app,
        &ws,
        UpdateContactRequest {
            contact_id: id.clone(),
            set_attributes: attrs(&[("two words", "x")]),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let elsewhere = get(&app, &workspace(), &id).await.unwrap_err();
    assert_eq!(elsewhere.code(), Code::NotFound);
    let unknown = get(&app, &ws, "no-such-contact").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn merged_contacts_are_one_person_and_keep_their_conversations_per_channel() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch-fb", ChannelKind::Messenger, "PAGE_1"))
        .await;
    app.publish_channel(&connected(&ws, "ch-wa", ChannelKind::Whatsapp, "PHONE_1"))
        .await;
    app.publish_channel(&connected(&ws, "ch-ig", ChannelKind::Instagram, "IG_1"))
        .await;
    let t0 = now_ms() - 60_000;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_1",
        "PSID",
        "m_fb",
        "hi",
        t0,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Whatsapp,
        "PHONE_1",
        "5511999990000",
        "wamid.1",
        "hi again",
        t0 + 1_000,
    ))
    .await;
    app.publish_meta(&inbound(
        ChannelKind::Instagram,
        "IG_1",
        "IGSID",
        "m_ig",
        "yo",
        t0 + 2_000,
    ))
    .await;
    app.wait_for_messages(&ws, 3).await;
    let fb = contact_of(&app, &ws, "PSID").await;
    let wa = contact_of(&app, &ws, "5511999990000").await;
    let ig = contact_of(&app, &ws, "IGSID").await;

    let merged = merge(&app, &ws, &fb, &wa).await.unwrap();
    assert_eq!(merged.contact.as_ref().unwrap().person_id, fb);
    let linked: Vec<(&str, &str)> = merged
        .linked
        .iter()
        .map(|c| (c.id.as_str(), c.channel_id.as_str()))
        .collect();
    assert_eq!(linked, [(wa.as_str(), "ch-wa")]);
    let other_side = get(&app, &ws, &wa).await.unwrap();
    assert_eq!(other_side.contact.unwrap().person_id, fb);
    assert_eq!(other_side.linked[0].id, fb);
    assert_eq!(other_side.channel_kind, ChannelKind::Whatsapp as i32);
    // Merging again changes nothing.
    assert_eq!(merge(&app, &ws, &wa, &fb).await.unwrap().linked.len(), 1);

    // Conversations stay one per channel, each showing the person.
    let conversations = app.conversations(&ws).await;
    assert_eq!(conversations.len(), 3);
    for c in &conversations {
        let contact = c.contact.as_ref().unwrap();
        let want = if contact.id == ig { &ig } else { &fb };
        assert_eq!(&contact.person_id, want, "{c:?}");
    }

    // Instagram joins: the whole group takes its person.
    let all = merge(&app, &ws, &ig, &wa).await.unwrap();
    let mut linked: Vec<String> = all.linked.iter().map(|c| c.id.clone()).collect();
    linked.sort();
    let mut want = vec![fb.clone(), wa.clone()];
    want.sort();
    assert_eq!(linked, want);
    assert_eq!(get(&app, &ws, &fb).await.unwrap().contact.unwrap().person_id, ig);
    assert_eq!(get(&app, &ws, &fb).await.unwrap().linked.len(), 2);

    let itself = merge(&app, &ws, &fb, &fb).await.unwrap_err();
    assert_eq!(itself.code(), Code::InvalidArgument);
    let stranger_ws = workspace_with_customers(&app, "PAGE_2", &["PSID_X"], t0).await;
    let stranger = contact_of(&app, &stranger_ws, "PSID_X").await;
    let across = merge(&app, &ws, &fb, &stranger).await.unwrap_err();
    assert_eq!(across.code(), Code::NotFound, "contacts of another workspace");
    app.stop().await;
}
