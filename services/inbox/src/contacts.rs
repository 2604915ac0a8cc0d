//! Contact profiles: `GetContact`, `UpdateContact` (a name the team sets, custom attributes) and
//! `MergeContacts` (one person on several channels).
//!
//! A contact belongs to one channel (Meta's ids are per Page, Instagram account or number), and
//! so do its conversations. The same person writing on Messenger and WhatsApp is two contacts;
//! merging them gives both one `person_id` (the first one's), which the profile uses to list the
//! person's other contacts. Nothing moves: conversations stay on their channel, where replies
//! must go out, and a disconnect still deletes exactly its channel's contacts.
//!
//! The consumers write a contact's display name back from their batch's copy (Meta's profile
//! name), so a rename holds the engine's write lock like conversation changes do, and sets
//! `name_locked` so later batches keep the team's name.

use scifer_proto::inbox::v1::{
    ContactProfile, GetContactRequest, MergeContactsRequest, UpdateContactRequest,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use crate::{
    consumer::Engine,
    convert,
    domain::{WorkspaceId, attributes},
    error::InboxError,
    store::entity::{channel, contact, conversation},
    views,
};

/// Contacts one person may have (one per channel, in practice a handful).
const MAX_LINKED: u64 = 50;
/// Conversations of a changed contact announced at once.
const MAX_ANNOUNCED: u64 = 50;

pub struct Contacts {
    db: DatabaseConnection,
    engine: std::sync::Arc<Engine>,
}

async fn find(db: &impl ConnectionTrait, ws: &WorkspaceId, id: &str) -> Result<contact::Model, InboxError> {
    contact::Entity::find_by_id(id.to_string())
        .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
        .one(db)
        .await?
        .ok_or(InboxError::ContactNotFound)
}

impl Contacts {
    pub fn new(db: DatabaseConnection, engine: std::sync::Arc<Engine>) -> Self {
        Self { db, engine }
    }

    pub async fn get(&self, ws: &WorkspaceId, req: GetContactRequest) -> Result<ContactProfile, InboxError> {
        let c = find(&self.db, ws, &req.contact_id).await?;
        Ok(self.profile(ws, &c).await?)
    }

    pub async fn update(
        &self,
        ws: &WorkspaceId,
        req: UpdateContactRequest,
    ) -> Result<ContactProfile, InboxError> {
        let invalid = |e: attributes::InvalidAttributes| InboxError::Invalid(e.0);
        let name = req
            .display_name
            .as_deref()
            .map(attributes::display_name)
            .transpose()
            .map_err(invalid)?;
        let (before, after) = {
            let _writer = self.engine.lock_writes().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            let current = find(&txn, ws, &req.contact_id).await?;
            let mut next = current.clone();
            match name {
                None => {}
                // Handed back to Meta: its next profile name replaces this one.
                Some(None) => next.name_locked = false,
                Some(Some(name)) => {
                    next.display_name = name;
                    next.name_locked = true;
                }
            }
            let attrs = attributes::apply(
                attributes::from_json(&current.custom_attributes_json),
                &req.set_attributes,
                &req.remove_attributes,
            )
            .map_err(invalid)?;
            next.custom_attributes_json = attributes::to_json(&attrs);
            if next != current {
                contact::Entity::update_many()
                    .col_expr(
                        contact::Column::DisplayName,
                        Expr::value(next.display_name.clone()),
                    )
                    .col_expr(contact::Column::NameLocked, Expr::value(next.name_locked))
                    .col_expr(
                        contact::Column::CustomAttributesJson,
                        Expr::value(next.custom_attributes_json.clone()),
                    )
                    .filter(contact::Column::Id.eq(next.id.as_str()))
                    .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
            }
            (current, next)
        };
        if before.display_name != after.display_name {
            self.announce(ws, std::slice::from_ref(&after.id)).await?;
        }
        Ok(self.profile(ws, &after).await?)
    }

    pub async fn merge(
        &self,
        ws: &WorkspaceId,
        req: MergeContactsRequest,
    ) -> Result<ContactProfile, InboxError> {
        if req.contact_id == req.other_contact_id {
            return Err(InboxError::Invalid(
                "a contact cannot be merged with itself".into(),
            ));
        }
        let (merged, changed) = {
            let _writer = self.engine.lock_writes().await;
            let txn = scifer_db::begin_write(&self.db).await?;
            let this = find(&txn, ws, &req.contact_id).await?;
            let other = find(&txn, ws, &req.other_contact_id).await?;
            let person = this.person().to_string();
            let theirs = other.person().to_string();
            let mut changed = Vec::new();
            if person != theirs {
                // The other contact and everyone already linked to it join this one's person.
                let joining = Condition::any()
                    .add(contact::Column::Id.eq(other.id.as_str()))
                    .add(contact::Column::PersonId.eq(theirs.as_str()));
                changed = contact::Entity::find()
                    .select_only()
                    .column(contact::Column::Id)
                    .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
                    .filter(joining.clone())
                    .into_tuple::<String>()
                    .all(&txn)
                    .await?;
                contact::Entity::update_many()
                    .col_expr(contact::Column::PersonId, Expr::value(person.clone()))
                    .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
                    .filter(
                        Condition::any()
                            .add(joining)
                            .add(contact::Column::Id.eq(this.id.as_str())),
                    )
                    .exec(&txn)
                    .await?;
                changed.push(this.id.clone());
                txn.commit().await?;
            }
            (
                contact::Model {
                    person_id: person,
                    ..this
                },
                changed,
            )
        };
        // The person id is part of every conversation's contact.
        if !changed.is_empty() {
            self.announce(ws, &changed).await?;
        }
        Ok(self.profile(ws, &merged).await?)
    }

    async fn profile(&self, ws: &WorkspaceId, c: &contact::Model) -> Result<ContactProfile, DbErr> {
        let kind = channel::Entity::find_by_id(c.channel_id.clone())
            .filter(channel::Column::WorkspaceId.eq(ws.as_str()))
            .one(&self.db)
            .await?
            .map(|ch| ch.kind)
            .unwrap_or_default();
        let linked = if c.person_id.is_empty() {
            Vec::new()
        } else {
            contact::Entity::find()
                .filter(contact::Column::WorkspaceId.eq(ws.as_str()))
                .filter(contact::Column::PersonId.eq(c.person_id.as_str()))
                .filter(contact::Column::Id.ne(c.id.as_str()))
                .order_by_asc(contact::Column::CreatedAtMs)
                .limit(MAX_LINKED)
                .all(&self.db)
                .await?
        };
        Ok(ContactProfile {
            contact: Some(convert::contact(c)),
            channel_kind: kind,
            custom_attributes: attributes::from_json(&c.custom_attributes_json)
                .into_iter()
                .collect(),
            linked: linked.iter().map(convert::contact).collect(),
            created_at: Some(convert::timestamp(c.created_at_ms)),
            display_name_locked: c.name_locked,
        })
    }

    /// Announces the conversations of `contact_ids` (their contact changed).
    async fn announce(&self, ws: &WorkspaceId, contact_ids: &[String]) -> Result<(), DbErr> {
        let rows = conversation::Entity::find()
            .filter(conversation::Column::WorkspaceId.eq(ws.as_str()))
            .filter(conversation::Column::ContactId.is_in(contact_ids.iter().cloned()))
            .filter(conversation::Column::MessageCount.gt(0))
            .limit(MAX_ANNOUNCED)
            .all(&self.db)
            .await?;
        let emissions = views::conversations(&self.db, ws, &rows)
            .await?
            .into_iter()
            .map(|v| views::conversation_updated(ws.as_str(), v))
            .collect();
        self.engine.announce(emissions).await;
        Ok(())
    }
}
