//! The window rules: who may send what to a conversation, and until when.
//!
//! Sources: reference/meta-platform.md §3.2 (Messenger / Instagram windows and tags) and §3.3
//! (WhatsApp customer-service window).
//!
//! Boundaries: every window is half-open, `[start, start + length)`. A message at exactly
//! `start + length` is outside: with the customer's last message at 10:00, a reply at 09:59:59 the
//! next day is inside the standard window and one at 10:00:00 is not. Meta does not document its
//! rounding, so we close early rather than late: a send we refuse one second too soon is visible
//! in the composer, a send Meta rejects after we called it allowed is the bug this crate exists to
//! prevent.
//!
//! Clock skew: a customer timestamp later than `now` is treated as `now`, so a skewed webhook can
//! neither close a window early nor keep it open for longer than its full length.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

/// The messaging product a conversation lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    Messenger,
    Instagram,
    WhatsApp,
}

/// Who wrote the message. Only [`AuthorKind::Human`] may ever use the HUMAN_AGENT tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorKind {
    /// A person typing in the composer.
    Human,
    /// A rule-based automation (canned replies, workflows, auto-responders).
    Automation,
    /// A message written by a model, even if a human clicked "send" on a suggestion without
    /// editing it: what counts for Meta's policy is who wrote it.
    Ai,
}

/// What kind of send this is, as far as the windows care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// Anything that is not a template or a sender action: text, media, interactive messages,
    /// quick replies, reactions.
    FreeForm,
    /// A WhatsApp message template; `approved` is whether Meta approved the chosen template (the
    /// caller knows, this crate does no I/O). Messenger and Instagram have no templates.
    Template { approved: bool },
    /// `typing_on` / `typing_off` / `mark_seen` on Messenger and Instagram, read receipts and
    /// typing indicators on WhatsApp. Allowed only inside the standard window and never tagged.
    SenderAction,
}

/// Whether the message answers the customer or is sent on the business's own initiative. Inside
/// the Messenger / Instagram standard window this picks `RESPONSE` or `UPDATE`; elsewhere it does
/// not change the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intent {
    Reply,
    Proactive,
}

/// What the gate needs to know about a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conversation {
    pub channel: ChannelKind,
    /// When the customer last wrote (their last inbound message or interaction such as a
    /// postback). `None` when they never did: the conversation is business-initiated.
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// When the customer came in through a Click-to-Messenger / Click-to-Direct ad (the referral
    /// on their first message). Extends the Messenger / Instagram standard window to
    /// [`Policy::ad_referral_window`]; ignored on WhatsApp, where the 72 h free entry point is a
    /// pricing rule, not a send rule. The referral is itself a customer interaction, so it opens
    /// the window even if `last_customer_message_at` was not recorded.
    pub ad_referral_at: Option<DateTime<Utc>>,
}

/// The rule parameters, with Meta's documented values as defaults. Fields exist because parts of
/// the rules are marked UNCERTAIN in reference/meta-platform.md or depend on the app's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Messenger / Instagram standard messaging window after the customer's last message.
    /// Default 24 h.
    pub standard_window: Duration,
    /// How long after the customer's last message a human agent may still reply with the
    /// HUMAN_AGENT tag. Default 7 days.
    pub human_agent_window: Duration,
    /// How long the window opened by a Click-to-Messenger / Click-to-Direct ad lasts. Meta says
    /// "up to 7 days" (policy update, Sep 2026), which may turn out to be shorter for some ads;
    /// lower it if Meta starts rejecting. Default 7 days.
    pub ad_referral_window: Duration,
    /// Whether the Messenger app has the Human Agent feature (App Review). Without it a tagged
    /// send fails with 10 / 2018065. Default true.
    pub human_agent_enabled_messenger: bool,
    /// The same for Instagram, which is reviewed separately. Default true.
    pub human_agent_enabled_instagram: bool,
    /// WhatsApp customer-service window after the customer's last message. Default 24 h.
    pub whatsapp_window: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            standard_window: Duration::hours(24),
            human_agent_window: Duration::days(7),
            ad_referral_window: Duration::days(7),
            human_agent_enabled_messenger: true,
            human_agent_enabled_instagram: true,
            whatsapp_window: Duration::hours(24),
        }
    }
}

impl Policy {
    /// Whether a human agent may use the HUMAN_AGENT tag on this channel (never on WhatsApp,
    /// which has no tags).
    pub fn human_agent_enabled(&self, channel: ChannelKind) -> bool {
        match channel {
            ChannelKind::Messenger => self.human_agent_enabled_messenger,
            ChannelKind::Instagram => self.human_agent_enabled_instagram,
            ChannelKind::WhatsApp => false,
        }
    }
}

/// One send the caller wants to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendRequest {
    pub author: AuthorKind,
    pub content: Content,
    pub intent: Intent,
}

/// How a Messenger / Instagram message must be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessagingType {
    /// `messaging_type=RESPONSE`: a reply inside the standard window.
    Response,
    /// `messaging_type=UPDATE`: proactive, inside the standard window.
    Update,
    /// `messaging_type=MESSAGE_TAG` with `tag=HUMAN_AGENT`: a human's reply after the standard
    /// window, within the human agent window.
    HumanAgentTag,
}

impl MessagingType {
    /// The Send API fields: (`messaging_type`, `tag`).
    pub fn as_meta(&self) -> (&'static str, Option<&'static str>) {
        match self {
            MessagingType::Response => ("RESPONSE", None),
            MessagingType::Update => ("UPDATE", None),
            MessagingType::HumanAgentTag => ("MESSAGE_TAG", Some("HUMAN_AGENT")),
        }
    }
}

/// The send may go out, this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Allowed {
    /// What to put in `messaging_type` / `tag`. `None` on WhatsApp (no such field) and for sender
    /// actions, which Meta takes without a `messaging_type`.
    pub messaging_type: Option<MessagingType>,
    /// Until when this kind of send stays allowed (exclusive). `None` when no window applies
    /// (approved WhatsApp templates). Asking again at this instant tells what comes next (for a
    /// human on Messenger: the HUMAN_AGENT stage).
    pub window_closes_at: Option<DateTime<Utc>>,
}

/// Why a send was refused. Exhaustive on purpose: a new reason must be handled by every caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// The customer never wrote, and nothing of this kind can start a conversation.
    NoCustomerMessage,
    /// The window for this send has closed and nothing else applies to this author.
    WindowClosed,
    /// A human would have used HUMAN_AGENT, but that window has closed too.
    HumanAgentWindowClosed,
    /// A human could reply with HUMAN_AGENT, but the channel lacks the Human Agent feature.
    HumanAgentNotEnabled,
    /// Past the standard window only a human may reply (HUMAN_AGENT); automation and AI never.
    HumanAgentTagForbiddenForAutomation,
    /// WhatsApp, outside the customer-service window (or the customer never wrote): free-form is
    /// refused, an approved template is needed.
    TemplateRequired,
    /// A WhatsApp template that Meta has not approved.
    TemplateNotApproved,
    /// A template on Messenger / Instagram, which have none.
    TemplatesNotSupported,
}

impl RefusalReason {
    /// Every reason, for callers that render or document them all.
    pub const ALL: [RefusalReason; 8] = [
        RefusalReason::NoCustomerMessage,
        RefusalReason::WindowClosed,
        RefusalReason::HumanAgentWindowClosed,
        RefusalReason::HumanAgentNotEnabled,
        RefusalReason::HumanAgentTagForbiddenForAutomation,
        RefusalReason::TemplateRequired,
        RefusalReason::TemplateNotApproved,
        RefusalReason::TemplatesNotSupported,
    ];

    /// Stable, machine-readable snake_case code (API responses, metrics, i18n keys).
    pub fn code(&self) -> &'static str {
        match self {
            RefusalReason::NoCustomerMessage => "no_customer_message",
            RefusalReason::WindowClosed => "window_closed",
            RefusalReason::HumanAgentWindowClosed => "human_agent_window_closed",
            RefusalReason::HumanAgentNotEnabled => "human_agent_not_enabled",
            RefusalReason::HumanAgentTagForbiddenForAutomation => "human_agent_tag_forbidden_for_automation",
            RefusalReason::TemplateRequired => "template_required",
            RefusalReason::TemplateNotApproved => "template_not_approved",
            RefusalReason::TemplatesNotSupported => "templates_not_supported",
        }
    }

    /// One sentence for the composer. Window lengths are left out because they are policy; the
    /// UI has [`Refusal::last_customer_message_at`] and the [`Alternative`] for the dates.
    pub fn explain(&self) -> &'static str {
        match self {
            RefusalReason::NoCustomerMessage => {
                "The customer has not written in this conversation yet, so nothing can be sent until they do."
            }
            RefusalReason::WindowClosed => {
                "The messaging window has closed; nothing can be sent until the customer writes again."
            }
            RefusalReason::HumanAgentWindowClosed => {
                "Too much time has passed since the customer's last message even for a human agent reply; wait for the customer to write again."
            }
            RefusalReason::HumanAgentNotEnabled => {
                "The messaging window has closed and this channel is not approved for Meta's Human Agent feature, so no reply can be sent until the customer writes again."
            }
            RefusalReason::HumanAgentTagForbiddenForAutomation => {
                "The messaging window has closed; only a human agent may still reply, never an automation or AI."
            }
            RefusalReason::TemplateRequired => {
                "Outside WhatsApp's customer service window only an approved message template can be sent."
            }
            RefusalReason::TemplateNotApproved => {
                "This WhatsApp template is not approved by Meta, so it cannot be sent; choose an approved template."
            }
            RefusalReason::TemplatesNotSupported => {
                "Messenger and Instagram do not support message templates; send a regular message instead."
            }
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.explain())
    }
}

/// What would still work after a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alternative {
    /// A human agent can reply (HUMAN_AGENT tag) until this instant (exclusive).
    HumanAgentUntil(DateTime<Utc>),
    /// An approved WhatsApp template can be sent.
    Template,
}

/// The send must not go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Refusal {
    pub reason: RefusalReason,
    /// When the customer last wrote, for the UI (as stored on the conversation).
    pub last_customer_message_at: Option<DateTime<Utc>>,
    /// What would still work, if anything.
    pub alternative: Option<Alternative>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.reason, f)
    }
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    Allowed(Allowed),
    Refused(Refusal),
}

impl Decision {
    pub fn allowed(&self) -> Option<&Allowed> {
        match self {
            Decision::Allowed(a) => Some(a),
            Decision::Refused(_) => None,
        }
    }

    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Decision::Allowed(_) => None,
            Decision::Refused(r) => Some(r),
        }
    }
}

/// Decide whether `request` may be sent to `conversation` at `now`, and how. Pure: the same
/// inputs always give the same answer.
pub fn decide(
    policy: &Policy,
    conversation: &Conversation,
    request: &SendRequest,
    now: DateTime<Utc>,
) -> Decision {
    match conversation.channel {
        ChannelKind::Messenger | ChannelKind::Instagram => decide_page(policy, conversation, request, now),
        ChannelKind::WhatsApp => decide_whatsapp(policy, conversation, request, now),
    }
}

/// The composer's question: can this author send free text now, and until when (and how)? The
/// answer for a free-form reply; ask again at [`Allowed::window_closes_at`] for the next stage.
pub fn free_text_status(
    policy: &Policy,
    conversation: &Conversation,
    author: AuthorKind,
    now: DateTime<Utc>,
) -> Decision {
    let request = SendRequest {
        author,
        content: Content::FreeForm,
        intent: Intent::Reply,
    };
    decide(policy, conversation, &request, now)
}

/// Messenger and Instagram (§3.2).
fn decide_page(
    policy: &Policy,
    conversation: &Conversation,
    request: &SendRequest,
    now: DateTime<Utc>,
) -> Decision {
    let refuse = |reason, alternative| refused(conversation, reason, alternative);
    let sender_action = match request.content {
        Content::Template { .. } => return refuse(RefusalReason::TemplatesNotSupported, None),
        Content::FreeForm => false,
        Content::SenderAction => true,
    };

    let last_message = conversation.last_customer_message_at.map(|t| t.min(now));
    let ad_referral = conversation.ad_referral_at.map(|t| t.min(now));
    // `Option` orders `None` first, so this is the later of the two, or `None` if both are.
    let Some(last_contact) = last_message.max(ad_referral) else {
        return refuse(RefusalReason::NoCustomerMessage, None);
    };

    let mut standard_end = plus(last_contact, policy.standard_window);
    if let Some(ad) = ad_referral {
        standard_end = standard_end.max(plus(ad, policy.ad_referral_window));
    }
    if now < standard_end {
        let messaging_type = match (sender_action, request.intent) {
            (true, _) => None,
            (false, Intent::Reply) => Some(MessagingType::Response),
            (false, Intent::Proactive) => Some(MessagingType::Update),
        };
        return Decision::Allowed(Allowed {
            messaging_type,
            window_closes_at: Some(standard_end),
        });
    }
    if sender_action {
        return refuse(RefusalReason::WindowClosed, None);
    }

    // Past the standard window: only HUMAN_AGENT, only for a human, only if the app has it.
    let human_agent_end = plus(last_contact, policy.human_agent_window);
    let human_agent_open = now < human_agent_end;
    let enabled = policy.human_agent_enabled(conversation.channel);
    match (request.author, enabled, human_agent_open) {
        (AuthorKind::Human, true, true) => Decision::Allowed(Allowed {
            messaging_type: Some(MessagingType::HumanAgentTag),
            window_closes_at: Some(human_agent_end),
        }),
        (AuthorKind::Human, false, true) => refuse(RefusalReason::HumanAgentNotEnabled, None),
        (AuthorKind::Human, true, false) => refuse(RefusalReason::HumanAgentWindowClosed, None),
        (AuthorKind::Automation | AuthorKind::Ai, true, true) => refuse(
            RefusalReason::HumanAgentTagForbiddenForAutomation,
            Some(Alternative::HumanAgentUntil(human_agent_end)),
        ),
        // Nobody can send: naming Human Agent would suggest that something could.
        (AuthorKind::Human, false, false)
        | (AuthorKind::Automation | AuthorKind::Ai, false, _)
        | (AuthorKind::Automation | AuthorKind::Ai, true, false) => refuse(RefusalReason::WindowClosed, None),
    }
}

/// WhatsApp (§3.3). The author and the intent do not matter: there are no tags.
fn decide_whatsapp(
    policy: &Policy,
    conversation: &Conversation,
    request: &SendRequest,
    now: DateTime<Utc>,
) -> Decision {
    let refuse = |reason, alternative| refused(conversation, reason, alternative);
    let window_closes_at = conversation
        .last_customer_message_at
        .map(|t| plus(t.min(now), policy.whatsapp_window))
        .filter(|end| now < *end);
    match (request.content, window_closes_at) {
        (Content::Template { approved: true }, _) => Decision::Allowed(Allowed {
            messaging_type: None,
            window_closes_at: None,
        }),
        (Content::Template { approved: false }, _) => {
            refuse(RefusalReason::TemplateNotApproved, Some(Alternative::Template))
        }
        (Content::FreeForm | Content::SenderAction, Some(end)) => Decision::Allowed(Allowed {
            messaging_type: None,
            window_closes_at: Some(end),
        }),
        (Content::FreeForm, None) => refuse(RefusalReason::TemplateRequired, Some(Alternative::Template)),
        (Content::SenderAction, None) => match conversation.last_customer_message_at {
            None => refuse(RefusalReason::NoCustomerMessage, None),
            Some(_) => refuse(RefusalReason::WindowClosed, None),
        },
    }
}

fn refused(conversation: &Conversation, reason: RefusalReason, alternative: Option<Alternative>) -> Decision {
    Decision::Refused(Refusal {
        reason,
        last_customer_message_at: conversation.last_customer_message_at,
        alternative,
    })
}

/// `t + d`, saturating instead of panicking on an absurd policy.
fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(if d < Duration::zero() {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}
