//! Page feed changes (`object = page`, `changes[].field = feed`); `entry.time` in seconds.

use serde_json::json;

use super::delivery::{Item, object};
use crate::ids;

/// A comment on a Page post.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct FeedComment {
    /// Page id (`entry[].id`).
    pub page_id: String,
    /// Post id, `PAGEID_POSTID`.
    pub post_id: String,
    /// Comment id, `POSTID_COMMENTID`.
    pub comment_id: String,
    /// Parent: the post, or a comment for replies.
    pub parent_id: String,
    /// Commenter id.
    pub from_id: String,
    /// Commenter name.
    pub from_name: String,
    /// Comment text.
    pub message: String,
    /// `verb`: `add`, `edited`, `remove`, `hide`, `unhide`.
    pub verb: String,
    /// `created_time` and `entry.time`, Unix seconds.
    pub created_time_s: i64,
}

impl FeedComment {
    /// A new comment on `post_id` (pass a full `PAGEID_POSTID`).
    pub fn new(page_id: &str, post_id: &str, from_id: &str, from_name: &str, message: &str) -> Self {
        let post_suffix = post_id.rsplit('_').next().unwrap_or(post_id);
        Self {
            page_id: page_id.to_owned(),
            post_id: post_id.to_owned(),
            comment_id: format!("{post_suffix}_{}", ids::numeric_id()),
            parent_id: post_id.to_owned(),
            from_id: from_id.to_owned(),
            from_name: from_name.to_owned(),
            message: message.to_owned(),
            verb: "add".to_owned(),
            created_time_s: chrono::Utc::now().timestamp(),
        }
    }

    /// Pin the comment id.
    pub fn comment_id(mut self, id: impl Into<String>) -> Self {
        self.comment_id = id.into();
        self
    }

    /// Change the verb (`edited`, `remove`, ...).
    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = verb.to_owned();
        self
    }

    /// Pin `created_time` (seconds).
    pub fn created_time_s(mut self, t: i64) -> Self {
        self.created_time_s = t;
        self
    }

    /// As a `changes[]` item.
    pub fn into_item(self) -> Item {
        let value = json!({
            "item": "comment",
            "verb": self.verb,
            "post_id": self.post_id,
            "comment_id": self.comment_id,
            "parent_id": self.parent_id,
            "from": { "id": self.from_id, "name": self.from_name },
            "message": self.message,
            "created_time": self.created_time_s,
            "post": {
                "id": self.post_id,
                "status_type": "added_photos",
                "is_published": true,
                "permalink_url": format!("https://www.facebook.com/{}", self.post_id),
            },
        });
        Item::change(object::PAGE, self.page_id, "feed", value).with_entry_time(Some(self.created_time_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_comment_shape() {
        let v = FeedComment::new("111", "111_222", "999", "Jane Doe", "Love this!")
            .created_time_s(1_767_225_600)
            .into_item()
            .into_delivery()
            .to_value();
        assert_eq!(v["object"], "page");
        assert_eq!(v["entry"][0]["time"], 1_767_225_600);
        let val = &v["entry"][0]["changes"][0]["value"];
        assert_eq!(v["entry"][0]["changes"][0]["field"], "feed");
        assert_eq!(val["item"], "comment");
        assert_eq!(val["verb"], "add");
        assert!(val["comment_id"].as_str().unwrap().starts_with("222_"));
        assert_eq!(val["created_time"], 1_767_225_600);
        assert_eq!(val["from"]["name"], "Jane Doe");
    }
}
