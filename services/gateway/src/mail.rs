//! Outgoing email: the pluggable [`Mailer`] that invitations and channel alerts are sent through.
//! [`LogMailer`] (development, no `SMTP_URL`) only logs that a message would have gone to an
//! address; [`SmtpMailer`] (lettre over tokio, TLS through rustls with the ring provider) delivers
//! it. Neither logs a message body: the invitation token travels in the body only.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox,
    message::header::ContentType,
};

use crate::domain::{Email, InvitationToken, ReauthReason, Role};

/// How long one SMTP delivery may take, connecting included.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// What an invitation email says. `Debug` hides the token (see [`InvitationToken`]).
#[derive(Debug)]
pub struct InvitationEmail {
    pub invitation_id: String,
    pub to: Email,
    pub workspace_name: String,
    pub inviter_name: String,
    pub role: Role,
    pub token: InvitationToken,
    pub valid_for: Duration,
}

impl InvitationEmail {
    pub fn subject(&self) -> String {
        format!("You are invited to {} on Scifer", self.workspace_name)
    }

    /// The plain-text body, the only place the token appears.
    pub fn body(&self) -> String {
        let days = (self.valid_for.as_secs() / 86_400).max(1);
        format!(
            "{inviter} invited you to join the workspace \"{workspace}\" on Scifer as {role}.\r\n\
             \r\n\
             Sign in (or sign up) with this email address, then accept the invitation with this \
             code:\r\n\
             \r\n\
             {token}\r\n\
             \r\n\
             The code works once and expires in {days} day(s). If you did not expect this \
             invitation, ignore this email.\r\n",
            inviter = self.inviter_name,
            workspace = self.workspace_name,
            role = self.role.as_str(),
            token = self.token.expose(),
        )
    }
}

/// What a "reconnect your channel" email says, to one admin or owner of the channel's workspace.
#[derive(Debug, Clone)]
pub struct ChannelAlertEmail {
    /// The `ChannelEvent` that caused it.
    pub event_id: String,
    pub to: Email,
    pub workspace_name: String,
    /// "Instagram", "Messenger", "WhatsApp".
    pub kind: &'static str,
    /// The channel's display name, without control characters.
    pub channel_name: String,
    pub reason: ReauthReason,
    pub reconnect_link: String,
}

impl ChannelAlertEmail {
    pub fn subject(&self) -> String {
        format!(
            "Reconnect {} channel \"{}\" in {} on Scifer",
            self.kind, self.channel_name, self.workspace_name
        )
    }

    pub fn body(&self) -> String {
        format!(
            "The {kind} channel \"{channel}\" of the workspace \"{workspace}\" on Scifer stopped \
             working: {reason}\r\n\
             \r\n\
             Until it is reconnected, Scifer cannot receive or send its messages. Reconnect it \
             here:\r\n\
             \r\n\
             {link}\r\n\
             \r\n\
             You receive this email as an admin or owner of the workspace.\r\n",
            kind = self.kind,
            channel = self.channel_name,
            workspace = self.workspace_name,
            reason = self.reason.plain_words(),
            link = self.reconnect_link,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP delivery failed: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends the gateway's emails.
#[tonic::async_trait]
pub trait Mailer: Send + Sync {
    async fn send_invitation(&self, email: &InvitationEmail) -> Result<(), MailError>;
    async fn send_channel_alert(&self, email: &ChannelAlertEmail) -> Result<(), MailError>;
}

/// Development: logs that an invitation was sent, to whom, never with its token.
pub struct LogMailer;

#[tonic::async_trait]
impl Mailer for LogMailer {
    async fn send_invitation(&self, email: &InvitationEmail) -> Result<(), MailError> {
        tracing::info!(
            to = email.to.as_str(),
            invitation_id = %email.invitation_id,
            "invitation email sent (SMTP_URL is not set: logged, not delivered; the token is not logged)"
        );
        Ok(())
    }

    async fn send_channel_alert(&self, email: &ChannelAlertEmail) -> Result<(), MailError> {
        tracing::info!(
            to = email.to.as_str(),
            event_id = %email.event_id,
            link = %email.reconnect_link,
            "channel alert email sent (SMTP_URL is not set: logged, not delivered)"
        );
        Ok(())
    }
}

/// Delivers through an SMTP relay.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `url` as lettre reads it: `smtp://host:port` (plain), `smtp://host?tls=required`
    /// (STARTTLS), `smtps://host` (implicit TLS), with optional `user:password@`.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self {
            transport,
            from: from.parse()?,
        })
    }

    async fn deliver(&self, to: &Email, subject: String, body: String) -> Result<(), MailError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.as_str().parse()?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

#[tonic::async_trait]
impl Mailer for SmtpMailer {
    async fn send_invitation(&self, email: &InvitationEmail) -> Result<(), MailError> {
        self.deliver(&email.to, email.subject(), email.body()).await?;
        tracing::info!(invitation_id = %email.invitation_id, "invitation email delivered to the SMTP relay");
        Ok(())
    }

    async fn send_channel_alert(&self, email: &ChannelAlertEmail) -> Result<(), MailError> {
        self.deliver(&email.to, email.subject(), email.body()).await?;
        tracing::info!(event_id = %email.event_id, "channel alert email delivered to the SMTP relay");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;

    use super::*;

    #[test]
    fn the_body_carries_the_token_and_debug_does_not() {
        let token = InvitationToken::generate(&SystemRandom::new()).unwrap();
        let raw = token.expose().to_string();
        let email = InvitationEmail {
            invitation_id: "i1".into(),
            to: Email::parse("bo@example.test").unwrap(),
            workspace_name: "Acme".into(),
            inviter_name: "Ana".into(),
            role: Role::Agent,
            token,
            valid_for: Duration::from_secs(7 * 86_400),
        };
        assert!(email.body().contains(&raw));
        assert!(email.body().contains("7 day(s)"));
        assert!(!format!("{email:?}").contains(&raw));
    }

    #[test]
    fn a_channel_alert_names_the_channel_the_reason_and_the_link() {
        let email = ChannelAlertEmail {
            event_id: "e1".into(),
            to: Email::parse("ana@example.test").unwrap(),
            workspace_name: "Acme".into(),
            kind: "Instagram",
            channel_name: "Acme Shop".into(),
            reason: ReauthReason::Expired,
            reconnect_link: "https://app.test/workspaces/w/channels?reconnect=c".into(),
        };
        assert_eq!(
            email.subject(),
            "Reconnect Instagram channel \"Acme Shop\" in Acme on Scifer"
        );
        let body = email.body();
        assert!(body.contains("\"Acme Shop\""), "{body}");
        assert!(body.contains("expired"), "{body}");
        assert!(
            body.contains("\r\nhttps://app.test/workspaces/w/channels?reconnect=c\r\n"),
            "the link stands on a line of its own: {body}"
        );
    }

    #[test]
    fn smtp_urls_and_the_sender_are_checked_up_front() {
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "Scifer <no-reply@example.test>").is_ok());
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "not an address").is_err());
        assert!(SmtpMailer::new("ftp://x", "no-reply@example.test").is_err());
    }
}
