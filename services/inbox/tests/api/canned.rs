//! Canned responses: kept per workspace under a unique short code, searched, and rendered for a
//! conversation with its contact's and channel's values and the agent's name.

use scifer_proto::{
    events::v1::{ChannelKind, meta_event::Kind},
    inbox::v1::{
        CannedResponse, CreateCannedResponseRequest, DeleteCannedResponseRequest, ListCannedResponsesRequest,
        RenderCannedResponseRequest, RenderCannedResponseResponse, UpdateCannedResponseRequest,
    },
};
use tonic::{Code, Status};

use crate::helpers::*;

pub async fn create(
    app: &TestApp,
    ws: &str,
    short_code: &str,
    content: &str,
) -> Result<CannedResponse, Status> {
    app.grpc()
        .await
        .create_canned_response(with_workspace(
            ws,
            CreateCannedResponseRequest {
                short_code: short_code.into(),
                content: content.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

async fn list(app: &TestApp, ws: &str, query: &str) -> Vec<String> {
    app.grpc()
        .await
        .list_canned_responses(with_workspace(
            ws,
            ListCannedResponsesRequest { query: query.into() },
        ))
        .await
        .unwrap()
        .into_inner()
        .canned_responses
        .into_iter()
        .map(|c| c.short_code)
        .collect()
}

async fn render(
    app: &TestApp,
    ws: &str,
    canned: &str,
    conversation: &str,
    agent: &str,
) -> Result<RenderCannedResponseResponse, Status> {
    app.grpc()
        .await
        .render_canned_response(with_workspace(
            ws,
            RenderCannedResponseRequest {
                canned_response_id: canned.into(),
                conversation_id: conversation.into(),
                agent_name: agent.into(),
            },
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn canned_responses_are_kept_per_workspace_under_unique_short_codes() {
    let app = spawn_app().await;
    let (ws, other) = (workspace(), workspace());
    let hours = create(&app, &ws, " /Hours ", "We're open 8-13 on Sundays.")
        .await
        .unwrap();
    assert_eq!(hours.short_code, "hours");
    assert_eq!(hours.content, "We're open 8-13 on Sundays.");
    create(&app, &ws, "address", "Rue Haute 12, Brussels.")
        .await
        .unwrap();
    create(&app, &ws, "promo", "50% off with code SUN_DAY")
        .await
        .unwrap();
    // The same short code in another workspace is another response.
    create(&app, &other, "hours", "Always open.").await.unwrap();

    assert_eq!(list(&app, &ws, "").await, ["address", "hours", "promo"]);
    assert_eq!(list(&app, &ws, "/ho").await, ["hours"], "by short code prefix");
    assert_eq!(list(&app, &ws, "BRUSSELS").await, ["address"], "by text");
    assert_eq!(list(&app, &ws, "50%").await, ["promo"]);
    assert!(
        list(&app, &ws, "%").await == ["promo"],
        "wildcards match themselves"
    );
    assert!(list(&app, &ws, "_").await == ["promo"]);
    assert_eq!(list(&app, &other, "").await, ["hours"]);

    let duplicate = create(&app, &ws, "HOURS", "again").await.unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    for (code, content) in [
        ("two words", "text"),
        ("ok", "   "),
        ("ok", "Hi {{contact.email}}"),
    ] {
        let invalid = create(&app, &ws, code, content).await.unwrap_err();
        assert_eq!(invalid.code(), Code::InvalidArgument, "{code:?} {content:?}");
    }

    let mut grpc = app.grpc().await;
    let updated = grpc
        .update_canned_response(with_workspace(
            &ws,
            UpdateCannedResponseRequest {
                id: hours.id.clone(),
                short_code: "sunday".into(),
                content: "Sundays: 8-13.".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.short_code.as_str(), updated.content.as_str()),
        ("sunday", "Sundays: 8-13.")
    );
    let clash = grpc
        .update_canned_response(with_workspace(
            &ws,
            UpdateCannedResponseRequest {
                id: hours.id.clone(),
                short_code: "address".into(),
                content: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(clash.code(), Code::AlreadyExists);
    // Another workspace can neither change nor delete it.
    let foreign = grpc
        .update_canned_response(with_workspace(
            &other,
            UpdateCannedResponseRequest {
                id: hours.id.clone(),
                short_code: "mine".into(),
                content: "x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let delete = |ws: &str| with_workspace(ws, DeleteCannedResponseRequest { id: hours.id.clone() });
    let foreign = grpc.delete_canned_response(delete(&other)).await.unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    grpc.delete_canned_response(delete(&ws)).await.unwrap();
    assert_eq!(list(&app, &ws, "").await, ["address", "promo"]);
    let again = grpc.delete_canned_response(delete(&ws)).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn rendering_fills_the_contact_business_and_agent_for_a_conversation() {
    let app = spawn_app().await;
    let ws = workspace();
    app.publish_channel(&connected(&ws, "ch", ChannelKind::Messenger, "PAGE_1"))
        .await;
    let mut named = inbound(
        ChannelKind::Messenger,
        "PAGE_1",
        "PSID_ANA",
        "m_1",
        "Hi",
        now_ms(),
    );
    if let Some(Kind::Message(m)) = &mut named.kind {
        m.contact_name = "Ana Souza".into();
    }
    app.publish_meta(&named).await;
    app.publish_meta(&inbound(
        ChannelKind::Messenger,
        "PAGE_1",
        "PSID_NONAME",
        "m_2",
        "Hi",
        now_ms(),
    ))
    .await;
    app.wait_for_messages(&ws, 2).await;
    let conversations = app.conversations(&ws).await;
    let id_of = |psid: &str| {
        conversations
            .iter()
            .find(|c| c.contact.as_ref().unwrap().external_id == psid)
            .unwrap()
            .id
            .clone()
    };
    let greeting = create(
        &app,
        &ws,
        "hi",
        "Hi {{ contact.first_name | there }}, {{agent.first_name}} from {{business.name}} here. \
         — {{agent.name}} ({{contact.name}})",
    )
    .await
    .unwrap();

    let ana = render(&app, &ws, &greeting.id, &id_of("PSID_ANA"), "Bruno Lima")
        .await
        .unwrap();
    assert_eq!(
        ana.text,
        "Hi Ana, Bruno from PAGE_1 page here. — Bruno Lima (Ana Souza)"
    );
    assert!(ana.missing.is_empty());

    let nameless = render(&app, &ws, &greeting.id, &id_of("PSID_NONAME"), "")
        .await
        .unwrap();
    assert_eq!(nameless.text, "Hi there,  from PAGE_1 page here. —  ()");
    assert_eq!(
        nameless.missing,
        ["agent.first_name", "agent.name", "contact.name"]
    );

    let other = workspace();
    let foreign = render(&app, &other, &greeting.id, &id_of("PSID_ANA"), "x")
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let no_conversation = render(&app, &ws, &greeting.id, "nope", "x").await.unwrap_err();
    assert_eq!(no_conversation.code(), Code::NotFound);
    app.stop().await;
}
