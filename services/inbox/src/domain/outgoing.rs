//! What an agent, a rule or the AI composed, checked and turned into the Send API body of its
//! channel (meta-platform.md §3.1, §3.3). Pure: the send path adds the recipient and the gate's
//! messaging type.

use serde_json::{Value, json};

/// A composed message, before it is addressed.
#[derive(Debug, Clone, PartialEq)]
pub enum Outgoing {
    Text {
        text: String,
        quick_replies: Vec<QuickReply>,
    },
    Attachment {
        kind: AttachmentKind,
        url: String,
        caption: String,
        filename: String,
    },
    Template {
        name: String,
        language: String,
        body_parameters: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReply {
    pub title: String,
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentKind {
    Image,
    Audio,
    Video,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Messenger,
    Instagram,
    WhatsApp,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("a message needs text, one attachment or a template")]
    Empty,
    #[error("send text and an attachment as separate messages (Meta takes one or the other)")]
    TextAndAttachment,
    #[error("send one attachment per message")]
    SeveralAttachments,
    #[error("a template is sent on its own, without text or attachments")]
    TemplateWithContent,
    #[error("templates exist on WhatsApp only")]
    TemplateOffWhatsApp,
    #[error("template name and language are required")]
    TemplateIncomplete,
    #[error("text is longer than {0} characters, the channel's limit")]
    TooLong(usize),
    #[error("at most {0} quick replies on this channel")]
    TooManyQuickReplies(usize),
    #[error("a quick reply needs a title of at most {0} characters and a payload")]
    BadQuickReply(usize),
    #[error("attachment type must be image, audio, video or file")]
    AttachmentKind,
    #[error("attachment url must be an absolute https URL")]
    AttachmentUrl,
}

impl AttachmentKind {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "image" => Ok(Self::Image),
            "audio" => Ok(Self::Audio),
            "video" => Ok(Self::Video),
            "file" | "document" => Ok(Self::File),
            _ => Err(Invalid::AttachmentKind),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::File => "file",
        }
    }
}

/// Text limits: Messenger 2000 characters, Instagram 1000, WhatsApp 4096 (meta-platform.md §3).
pub fn text_limit(channel: Channel) -> usize {
    match channel {
        Channel::Messenger => 2000,
        Channel::Instagram => 1000,
        Channel::WhatsApp => 4096,
    }
}

/// Quick replies: 13 on Messenger/Instagram; WhatsApp reply buttons: 3.
fn quick_reply_limits(channel: Channel) -> (usize, usize) {
    match channel {
        Channel::WhatsApp => (3, 20),
        _ => (13, 20),
    }
}

impl Outgoing {
    /// Builds and checks a composed message from the request's parts.
    pub fn compose(
        channel: Channel,
        text: &str,
        quick_replies: Vec<QuickReply>,
        attachments: Vec<(String, String, String, String)>,
        template: Option<(String, String, Vec<String>)>,
    ) -> Result<Self, Invalid> {
        let text = text.trim();
        if let Some((name, language, body_parameters)) = template {
            if channel != Channel::WhatsApp {
                return Err(Invalid::TemplateOffWhatsApp);
            }
            if !text.is_empty() || !attachments.is_empty() || !quick_replies.is_empty() {
                return Err(Invalid::TemplateWithContent);
            }
            if name.trim().is_empty() || language.trim().is_empty() {
                return Err(Invalid::TemplateIncomplete);
            }
            return Ok(Self::Template {
                name,
                language,
                body_parameters,
            });
        }
        match (text.is_empty(), attachments.len()) {
            (true, 0) => Err(Invalid::Empty),
            (false, 0) => {
                let limit = text_limit(channel);
                if text.chars().count() > limit {
                    return Err(Invalid::TooLong(limit));
                }
                let (max, title_max) = quick_reply_limits(channel);
                if quick_replies.len() > max {
                    return Err(Invalid::TooManyQuickReplies(max));
                }
                if quick_replies.iter().any(|q| {
                    q.title.trim().is_empty() || q.title.chars().count() > title_max || q.payload.is_empty()
                }) {
                    return Err(Invalid::BadQuickReply(title_max));
                }
                Ok(Self::Text {
                    text: text.to_string(),
                    quick_replies,
                })
            }
            (false, _) => Err(Invalid::TextAndAttachment),
            (true, 1) => {
                let Some((kind, url, caption, filename)) = attachments.into_iter().next() else {
                    return Err(Invalid::Empty);
                };
                let parsed = url::Url::parse(&url).map_err(|_| Invalid::AttachmentUrl)?;
                if parsed.scheme() != "https" && !is_local(&parsed) {
                    return Err(Invalid::AttachmentUrl);
                }
                Ok(Self::Attachment {
                    kind: AttachmentKind::parse(&kind)?,
                    url,
                    caption,
                    filename,
                })
            }
            (true, _) => Err(Invalid::SeveralAttachments),
        }
    }

    /// The text stored and shown for the message.
    pub fn display_text(&self) -> String {
        match self {
            Self::Text { text, .. } => text.clone(),
            Self::Attachment { caption, .. } => caption.clone(),
            Self::Template {
                name,
                body_parameters,
                ..
            } if body_parameters.is_empty() => format!("[template {name}]"),
            Self::Template {
                name,
                body_parameters,
                ..
            } => {
                format!("[template {name}: {}]", body_parameters.join(", "))
            }
        }
    }

    /// The Send API body for `recipient` (PSID, IGSID or WhatsApp id). `messaging` is the gate's
    /// `messaging_type` and tag (Messenger/Instagram only); `reference` comes back in the echo
    /// (`metadata`) or the WhatsApp statuses (`biz_opaque_callback_data`).
    pub fn body(
        &self,
        channel: Channel,
        recipient: &str,
        messaging: Option<(&str, Option<&str>)>,
        reference: &str,
    ) -> Value {
        match channel {
            Channel::Messenger | Channel::Instagram => {
                let message = match self {
                    Self::Text { text, quick_replies } => {
                        let mut m = json!({ "text": text, "metadata": reference });
                        if !quick_replies.is_empty() {
                            m["quick_replies"] = quick_replies
                                .iter()
                                .map(|q| json!({"content_type": "text", "title": q.title, "payload": q.payload}))
                                .collect();
                        }
                        m
                    }
                    Self::Attachment { kind, url, .. } => json!({
                        "attachment": {"type": kind.as_str(), "payload": {"url": url, "is_reusable": true}},
                        "metadata": reference,
                    }),
                    // compose() refuses templates off WhatsApp.
                    Self::Template { .. } => json!({ "text": self.display_text(), "metadata": reference }),
                };
                let mut body = json!({ "recipient": {"id": recipient}, "message": message });
                if let Some((messaging_type, tag)) = messaging {
                    body["messaging_type"] = json!(messaging_type);
                    if let Some(tag) = tag {
                        body["tag"] = json!(tag);
                    }
                }
                body
            }
            Channel::WhatsApp => {
                let mut body = json!({
                    "recipient_type": "individual",
                    "to": recipient,
                    "biz_opaque_callback_data": reference,
                });
                match self {
                    Self::Text { text, quick_replies } if quick_replies.is_empty() => {
                        body["type"] = json!("text");
                        body["text"] = json!({"body": text, "preview_url": false});
                    }
                    Self::Text { text, quick_replies } => {
                        body["type"] = json!("interactive");
                        body["interactive"] = json!({
                            "type": "button",
                            "body": {"text": text},
                            "action": {"buttons": quick_replies.iter().map(|q| json!({
                                "type": "reply", "reply": {"id": q.payload, "title": q.title}
                            })).collect::<Vec<_>>()},
                        });
                    }
                    Self::Attachment {
                        kind,
                        url,
                        caption,
                        filename,
                    } => {
                        let kind = match kind {
                            AttachmentKind::File => "document",
                            other => other.as_str(),
                        };
                        let mut media = json!({"link": url});
                        if !caption.is_empty() && kind != "audio" {
                            media["caption"] = json!(caption);
                        }
                        if !filename.is_empty() && kind == "document" {
                            media["filename"] = json!(filename);
                        }
                        body["type"] = json!(kind);
                        body[kind] = media;
                    }
                    Self::Template {
                        name,
                        language,
                        body_parameters,
                    } => {
                        let mut template = json!({"name": name, "language": {"code": language}});
                        if !body_parameters.is_empty() {
                            template["components"] = json!([{
                                "type": "body",
                                "parameters": body_parameters.iter().map(|p| json!({"type": "text", "text": p})).collect::<Vec<_>>(),
                            }]);
                        }
                        body["type"] = json!("template");
                        body["template"] = template;
                    }
                }
                body
            }
        }
    }
}

fn is_local(url: &url::Url) -> bool {
    url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(channel: Channel, t: &str) -> Result<Outgoing, Invalid> {
        Outgoing::compose(channel, t, vec![], vec![], None)
    }

    #[test]
    fn composition_rules() {
        assert_eq!(text(Channel::Messenger, "  "), Err(Invalid::Empty));
        assert_eq!(
            text(Channel::Instagram, &"x".repeat(1001)),
            Err(Invalid::TooLong(1000))
        );
        assert!(
            text(Channel::Messenger, &"é".repeat(2000)).is_ok(),
            "characters, not bytes"
        );
        let attachment = (
            "image".to_string(),
            "https://cdn.example/a.png".to_string(),
            String::new(),
            String::new(),
        );
        assert_eq!(
            Outgoing::compose(Channel::Messenger, "hi", vec![], vec![attachment.clone()], None),
            Err(Invalid::TextAndAttachment)
        );
        assert_eq!(
            Outgoing::compose(
                Channel::Messenger,
                "",
                vec![],
                vec![attachment.clone(), attachment.clone()],
                None
            ),
            Err(Invalid::SeveralAttachments)
        );
        let insecure = (
            "image".to_string(),
            "http://cdn.example/a.png".to_string(),
            String::new(),
            String::new(),
        );
        assert_eq!(
            Outgoing::compose(Channel::Messenger, "", vec![], vec![insecure], None),
            Err(Invalid::AttachmentUrl)
        );
        let template = Some((
            "order_update".to_string(),
            "en_US".to_string(),
            vec!["#77".to_string()],
        ));
        assert_eq!(
            Outgoing::compose(Channel::Messenger, "", vec![], vec![], template.clone()),
            Err(Invalid::TemplateOffWhatsApp)
        );
        assert_eq!(
            Outgoing::compose(Channel::WhatsApp, "hi", vec![], vec![], template.clone()),
            Err(Invalid::TemplateWithContent)
        );
        let four = (0..4)
            .map(|i| QuickReply {
                title: format!("t{i}"),
                payload: format!("p{i}"),
            })
            .collect();
        assert_eq!(
            Outgoing::compose(Channel::WhatsApp, "pick", four, vec![], None),
            Err(Invalid::TooManyQuickReplies(3))
        );
    }

    #[test]
    fn messenger_body_carries_messaging_type_tag_and_our_reference() {
        let m = Outgoing::compose(
            Channel::Messenger,
            "Thanks!",
            vec![QuickReply {
                title: "Yes".into(),
                payload: "Y".into(),
            }],
            vec![],
            None,
        )
        .unwrap();
        let body = m.body(
            Channel::Messenger,
            "PSID",
            Some(("MESSAGE_TAG", Some("HUMAN_AGENT"))),
            "scifer:1",
        );
        assert_eq!(
            body,
            json!({"recipient":{"id":"PSID"},"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT",
                   "message":{"text":"Thanks!","metadata":"scifer:1",
                              "quick_replies":[{"content_type":"text","title":"Yes","payload":"Y"}]}})
        );
    }

    #[test]
    fn whatsapp_bodies_for_text_media_buttons_and_templates() {
        let t = text(Channel::WhatsApp, "Your order shipped.").unwrap();
        assert_eq!(
            t.body(Channel::WhatsApp, "5511", None, "scifer:2"),
            json!({"recipient_type":"individual","to":"5511","biz_opaque_callback_data":"scifer:2",
                   "type":"text","text":{"body":"Your order shipped.","preview_url":false}})
        );
        let doc = Outgoing::compose(
            Channel::WhatsApp,
            "",
            vec![],
            vec![(
                "file".into(),
                "https://cdn.example/r.pdf".into(),
                "Receipt".into(),
                "r.pdf".into(),
            )],
            None,
        )
        .unwrap();
        let body = doc.body(Channel::WhatsApp, "5511", None, "r");
        assert_eq!(body["type"], "document");
        assert_eq!(
            body["document"],
            json!({"link":"https://cdn.example/r.pdf","caption":"Receipt","filename":"r.pdf"})
        );
        let tpl = Outgoing::compose(
            Channel::WhatsApp,
            "",
            vec![],
            vec![],
            Some(("order_update".into(), "en_US".into(), vec!["#77".into()])),
        )
        .unwrap();
        let body = tpl.body(Channel::WhatsApp, "5511", None, "r");
        assert_eq!(
            body["template"],
            json!({"name":"order_update","language":{"code":"en_US"},
                   "components":[{"type":"body","parameters":[{"type":"text","text":"#77"}]}]})
        );
        assert_eq!(tpl.display_text(), "[template order_update: #77]");
        let buttons = Outgoing::compose(
            Channel::WhatsApp,
            "Pick one",
            vec![QuickReply {
                title: "A".into(),
                payload: "a".into(),
            }],
            vec![],
            None,
        )
        .unwrap();
        let body = buttons.body(Channel::WhatsApp, "5511", None, "r");
        assert_eq!(body["type"], "interactive");
        assert_eq!(body["interactive"]["action"]["buttons"][0]["reply"]["id"], "a");
    }
}
