//! `changes[]` of Pages (`feed`) and Instagram accounts (`comments`, `live_comments`, `mentions`).

use scifer_proto::events::v1::{FeedChange, meta_event::Kind};
use serde_json::Value;

use super::{Channel, Origin, Sink, ids, parse_item, secs_to_ms};
use crate::webhook::{Change, FeedValue, IgCommentValue, IgMentionValue};

/// `entry_time_s` is `entry.time`, which is in seconds for `changes[]` deliveries.
pub(super) fn split_change(
    sink: &mut Sink<'_>,
    channel: Channel,
    account_id: &str,
    entry_time_s: Option<i64>,
    item: &Value,
) {
    let prefix = channel.prefix();
    let change = match parse_item::<Change>(item, "change") {
        Ok(change) => change,
        Err(reason) => {
            sink.unhandled(prefix, account_id, "", &reason, item);
            return;
        }
    };
    let Some(field) = change.field.as_deref() else {
        sink.unhandled(prefix, account_id, "", "change without a field", item);
        return;
    };
    let origin = Origin {
        channel,
        account_id,
        business_account_id: "",
        standby: false,
    };
    let mapped = match (channel, field) {
        (Channel::Messenger, "feed") => feed(&change.value),
        (Channel::Instagram, "comments" | "live_comments") => ig_comment(&change.value),
        (Channel::Instagram, "mentions") => ig_mention(&change.value),
        _ => {
            let reason = format!("unhandled {:?} change field {field:?}", sink.object);
            sink.unhandled(prefix, account_id, field, &reason, item);
            return;
        }
    };
    let Some(mut event) = mapped else {
        let reason = format!("{field} change value is not an object");
        sink.unhandled(prefix, account_id, field, &reason, item);
        return;
    };
    event.field = field.to_owned();
    if event.created_at_ms == 0 {
        event.created_at_ms = entry_time_s.map(secs_to_ms).unwrap_or(0);
    }
    let verb = if event.verb.is_empty() {
        "-"
    } else {
        event.verb.as_str()
    };
    let discriminator = ids::short_hash(&change.value);
    let event_id = origin.event_id("change", &[field, &event.object_id, verb, &discriminator], item);
    sink.event(&origin, event_id, item, Kind::Change(event));
}

fn feed(value: &Value) -> Option<FeedChange> {
    let v = parse_item::<FeedValue>(value, "value").ok()?;
    // The most specific id names the changed object: a comment on a post is the comment.
    let object_id = v
        .comment_id
        .or(v.post_id)
        .or(v.photo_id)
        .or(v.video_id)
        .or(v.share_id)
        .unwrap_or_default();
    let from = v.from.unwrap_or_default();
    Some(FeedChange {
        field: String::new(),
        item: v.item.unwrap_or_default(),
        verb: v.verb.unwrap_or_default(),
        object_id,
        parent_id: v.parent_id.unwrap_or_default(),
        from_id: from.id.unwrap_or_default(),
        from_name: from.name.unwrap_or_default(),
        text: v.message.unwrap_or_default(),
        created_at_ms: v.created_time.map(secs_to_ms).unwrap_or(0),
    })
}

/// Instagram sends neither `item`, `verb` nor a creation time: `item` is set to `comment` (what
/// these fields always describe) and the time comes from `entry.time`. A top-level comment's
/// parent is its media, mirroring Page feed where a comment's parent is the post.
fn ig_comment(value: &Value) -> Option<FeedChange> {
    let v = parse_item::<IgCommentValue>(value, "value").ok()?;
    let from = v.from.unwrap_or_default();
    Some(FeedChange {
        item: "comment".to_owned(),
        object_id: v.id.unwrap_or_default(),
        parent_id: v.parent_id.or(v.media.and_then(|m| m.id)).unwrap_or_default(),
        from_id: from.id.unwrap_or_default(),
        from_name: from.username.unwrap_or_default(),
        text: v.text.unwrap_or_default(),
        ..FeedChange::default()
    })
}

/// A mention in a comment names the comment (parent: the media); a mention in a caption names
/// the media.
fn ig_mention(value: &Value) -> Option<FeedChange> {
    let v = parse_item::<IgMentionValue>(value, "value").ok()?;
    let (object_id, parent_id) = match (v.comment_id, v.media_id) {
        (Some(comment), media) => (comment, media.unwrap_or_default()),
        (None, Some(media)) => (media, String::new()),
        (None, None) => (String::new(), String::new()),
    };
    Some(FeedChange {
        object_id,
        parent_id,
        ..FeedChange::default()
    })
}
