//! Labels, internal notes, canned responses, read markers, search and contacts through the gateway:
//! who may call what, and what reaches inbox (the recording double) with the caller in metadata and
//! their name in renders.

use scifer_proto::{
    gateway::v1::{
        AddNoteRequest, CreateCannedResponseRequest, DeleteCannedResponseRequest, ListCannedResponsesRequest,
        MarkReadRequest, RenderCannedResponseRequest, SearchMessagesRequest, UpdateCannedResponseRequest,
        UpdateLabelsRequest,
    },
    inbox::v1::{self as inbox, MessageDirection},
};
use tonic::Code;

use crate::{
    helpers::{InboxRequest, TestApp, spawn_app},
    inbox_workflow::team,
};

fn last(app: &TestApp) -> InboxRequest {
    app.inbox.requests().pop().expect("a call reached inbox").request
}

fn labels(workspace: &str) -> UpdateLabelsRequest {
    UpdateLabelsRequest {
        workspace_id: workspace.into(),
        labels: Some(inbox::UpdateLabelsRequest {
            conversation_id: "c1".into(),
            add: vec!["vip".into()],
            remove: vec!["new".into()],
        }),
    }
}

fn note(workspace: &str) -> AddNoteRequest {
    AddNoteRequest {
        workspace_id: workspace.into(),
        note: Some(inbox::AddNoteRequest {
            conversation_id: "c1".into(),
            text: "Called them back.".into(),
        }),
    }
}

#[tokio::test]
async fn agents_label_and_note_as_themselves_and_viewers_may_not() {
    let app = spawn_app().await;
    let team = team(&app).await;

    let mut viewer = app.inbox_client(Some(&team.viewer.token));
    let refused = viewer.update_labels(labels(&team.workspace)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = viewer.add_note(note(&team.workspace)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(app.inbox.calls(), 0);

    let mut agent = app.inbox_client(Some(&team.agent.token));
    let labelled = agent
        .update_labels(labels(&team.workspace))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(labelled.labels, ["vip"]);
    assert_eq!(
        last(&app),
        InboxRequest::UpdateLabels(labels(&team.workspace).labels.unwrap())
    );
    let noted = agent.add_note(note(&team.workspace)).await.unwrap().into_inner();
    assert_eq!(noted.direction, MessageDirection::Note as i32);
    let call = app.inbox.requests().pop().unwrap();
    assert_eq!(
        call.request,
        InboxRequest::AddNote(note(&team.workspace).note.unwrap())
    );
    // Inbox takes the note's author from here.
    assert_eq!(
        call.metadata.get(gateway::ACTOR_METADATA).unwrap(),
        format!("user:{}", team.agent.user_id).as_str()
    );
    assert_eq!(
        call.metadata.get(gateway::WORKSPACE_METADATA).unwrap(),
        team.workspace.as_str()
    );
}

#[tokio::test]
async fn members_read_and_render_canned_responses_admins_write_them() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let ws = team.workspace.clone();

    let listed = app
        .inbox_client(Some(&team.viewer.token))
        .list_canned_responses(ListCannedResponsesRequest {
            workspace_id: ws.clone(),
            query: "/ho".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.canned_responses[0].short_code, "hours");
    assert_eq!(
        last(&app),
        InboxRequest::ListCannedResponses(inbox::ListCannedResponsesRequest { query: "/ho".into() })
    );

    // The caller's own name fills {{agent.name}}.
    let rendered = app
        .inbox_client(Some(&team.agent.token))
        .render_canned_response(RenderCannedResponseRequest {
            workspace_id: ws.clone(),
            canned_response_id: "cr-1".into(),
            conversation_id: "c1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rendered.text, "Hi, agent here.");
    assert_eq!(
        last(&app),
        InboxRequest::RenderCannedResponse(inbox::RenderCannedResponseRequest {
            canned_response_id: "cr-1".into(),
            conversation_id: "c1".into(),
            agent_name: "agent".into(),
        })
    );

    let create = CreateCannedResponseRequest {
        workspace_id: ws.clone(),
        canned_response: Some(inbox::CreateCannedResponseRequest {
            short_code: "thanks".into(),
            content: "Thank you, {{contact.first_name|there}}!".into(),
        }),
    };
    let update = UpdateCannedResponseRequest {
        workspace_id: ws.clone(),
        canned_response: Some(inbox::UpdateCannedResponseRequest {
            id: "cr-1".into(),
            short_code: "hours".into(),
            content: "We open at 9.".into(),
        }),
    };
    let delete = DeleteCannedResponseRequest {
        workspace_id: ws.clone(),
        id: "cr-1".into(),
    };
    let before = app.inbox.calls();
    let mut agent = app.inbox_client(Some(&team.agent.token));
    assert_eq!(
        agent
            .create_canned_response(create.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        agent
            .update_canned_response(update.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        agent
            .delete_canned_response(delete.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(app.inbox.calls(), before, "an agent's write reached inbox");

    let mut admin = app.inbox_client(Some(&team.admin.token));
    let created = admin
        .create_canned_response(create.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.short_code, "thanks");
    assert_eq!(
        last(&app),
        InboxRequest::CreateCannedResponse(create.canned_response.unwrap())
    );
    admin.update_canned_response(update.clone()).await.unwrap();
    assert_eq!(
        last(&app),
        InboxRequest::UpdateCannedResponse(update.canned_response.unwrap())
    );
    admin.delete_canned_response(delete).await.unwrap();
    assert_eq!(
        last(&app),
        InboxRequest::DeleteCannedResponse(inbox::DeleteCannedResponseRequest { id: "cr-1".into() })
    );
    // Inbox's NOT_FOUND passes through.
    let missing = admin
        .delete_canned_response(DeleteCannedResponseRequest {
            workspace_id: ws,
            id: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn members_search_and_agents_mark_read_as_themselves() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let ws = team.workspace.clone();

    let found = app
        .inbox_client(Some(&team.viewer.token))
        .search_messages(SearchMessagesRequest {
            workspace_id: ws.clone(),
            query: "order".into(),
            limit: 5,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.hits[0].message.as_ref().unwrap().text, "order");
    let call = app.inbox.requests().pop().unwrap();
    assert_eq!(
        call.request,
        InboxRequest::SearchMessages(inbox::SearchMessagesRequest {
            query: "order".into(),
            limit: 5,
        })
    );
    // Inbox counts unread messages for this user.
    assert_eq!(
        call.metadata.get(gateway::ACTOR_METADATA).unwrap(),
        format!("user:{}", team.viewer.user_id).as_str()
    );

    let mark = MarkReadRequest {
        workspace_id: ws.clone(),
        conversation_id: "c1".into(),
        up_to_message_id: "m1".into(),
    };
    let refused = app
        .inbox_client(Some(&team.viewer.token))
        .mark_read(mark.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let marked = app
        .inbox_client(Some(&team.agent.token))
        .mark_read(mark)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(marked.unread_count, 0);
    let call = app.inbox.requests().pop().unwrap();
    assert_eq!(
        call.request,
        InboxRequest::MarkRead(inbox::MarkReadRequest {
            conversation_id: "c1".into(),
            up_to_message_id: "m1".into(),
        })
    );
    assert_eq!(
        call.metadata.get(gateway::ACTOR_METADATA).unwrap(),
        format!("user:{}", team.agent.user_id).as_str()
    );
}

#[tokio::test]
async fn members_read_contacts_and_agents_update_and_merge_them() {
    use scifer_proto::gateway::v1::{GetContactRequest, MergeContactsRequest, UpdateContactRequest};

    let app = spawn_app().await;
    let team = team(&app).await;
    let ws = team.workspace.clone();

    let profile = app
        .inbox_client(Some(&team.viewer.token))
        .get_contact(GetContactRequest {
            workspace_id: ws.clone(),
            contact_id: "k1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.contact.unwrap().display_name, "Ana");
    assert_eq!(
        last(&app),
        InboxRequest::GetContact(inbox::GetContactRequest {
            contact_id: "k1".into()
        })
    );

    let update = UpdateContactRequest {
        workspace_id: ws.clone(),
        contact: Some(inbox::UpdateContactRequest {
            contact_id: "k1".into(),
            display_name: Some("Ana Souza".into()),
            set_attributes: [("plan".to_string(), "gold".to_string())].into(),
            remove_attributes: vec!["city".into()],
        }),
    };
    let merge = MergeContactsRequest {
        workspace_id: ws.clone(),
        contact_id: "k1".into(),
        other_contact_id: "k2".into(),
    };
    let mut viewer = app.inbox_client(Some(&team.viewer.token));
    let calls = app.inbox.calls();
    assert_eq!(
        viewer.update_contact(update.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(
        viewer.merge_contacts(merge.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(app.inbox.calls(), calls);

    let mut agent = app.inbox_client(Some(&team.agent.token));
    let renamed = agent.update_contact(update.clone()).await.unwrap().into_inner();
    assert_eq!(renamed.contact.unwrap().display_name, "Ana Souza");
    assert_eq!(last(&app), InboxRequest::UpdateContact(update.contact.unwrap()));
    let merged = agent.merge_contacts(merge).await.unwrap().into_inner();
    assert_eq!(merged.linked[0].id, "k2");
    assert_eq!(
        last(&app),
        InboxRequest::MergeContacts(inbox::MergeContactsRequest {
            contact_id: "k1".into(),
            other_contact_id: "k2".into(),
        })
    );
    let missing = agent
        .merge_contacts(MergeContactsRequest {
            workspace_id: ws,
            contact_id: "k404".into(),
            other_contact_id: "k1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}
