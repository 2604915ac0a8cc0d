//! Outgoing email: the pluggable [`Mailer`] the invitation flow sends through. [`LogMailer`]
//! (development, no `SMTP_URL`) only logs that a message would have gone to an address;
//! [`SmtpMailer`] (lettre over tokio, TLS through rustls with the ring provider) delivers it.
//! Neither logs a message body: the invitation token travels in the body only.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor, message::Mailbox,
    message::header::ContentType,
};

use crate::domain::{Email, InvitationToken, Role};

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
}

#[tonic::async_trait]
impl Mailer for SmtpMailer {
    async fn send_invitation(&self, email: &InvitationEmail) -> Result<(), MailError> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(email.to.as_str().parse()?)
            .subject(email.subject())
            .header(ContentType::TEXT_PLAIN)
            .body(email.body())?;
        self.transport.send(message).await?;
        tracing::info!(invitation_id = %email.invitation_id, "invitation email delivered to the SMTP relay");
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
    fn smtp_urls_and_the_sender_are_checked_up_front() {
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "Scifer <no-reply@example.test>").is_ok());
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "not an address").is_err());
        assert!(SmtpMailer::new("ftp://x", "no-reply@example.test").is_err());
    }
}
