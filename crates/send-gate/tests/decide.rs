//! The gate's decisions, spelled out by hand from reference/meta-platform.md §3.2 / §3.3.

use chrono::{DateTime, Duration, Utc};
use scifer_send_gate::{
    Allowed, Alternative, AuthorKind, ChannelKind, Content, Conversation, Decision, Intent, MessagingType,
    Policy, Refusal, RefusalReason, SendRequest, decide, free_text_status,
};

use AuthorKind::{Ai, Automation, Human};
use ChannelKind::{Instagram, Messenger, WhatsApp};
use Intent::{Proactive, Reply};

/// The customer's last message in most cases: 2026-03-01T12:00:00Z.
fn t0() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + Duration::seconds(1_772_366_400)
}

fn hours(h: i64) -> DateTime<Utc> {
    t0() + Duration::hours(h)
}

const FREE: Content = Content::FreeForm;
const APPROVED: Content = Content::Template { approved: true };
const UNAPPROVED: Content = Content::Template { approved: false };
const ACTION: Content = Content::SenderAction;

/// Where `now` stands relative to the customer's last message (at `t0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// The customer never wrote.
    Never,
    /// 23 h after.
    Inside,
    /// Exactly 24 h after.
    At24h,
    /// 3 days after.
    Between,
    /// Exactly 7 days after.
    At7d,
    /// 8 days after.
    After7d,
    /// 3 days after a first message that came through a click-to-message ad.
    AdExtended,
}

impl Pos {
    fn setup(self, channel: ChannelKind) -> (Conversation, DateTime<Utc>) {
        let (last, ad, now) = match self {
            Pos::Never => (None, None, hours(0)),
            Pos::Inside => (Some(t0()), None, hours(23)),
            Pos::At24h => (Some(t0()), None, hours(24)),
            Pos::Between => (Some(t0()), None, hours(72)),
            Pos::At7d => (Some(t0()), None, hours(168)),
            Pos::After7d => (Some(t0()), None, hours(192)),
            Pos::AdExtended => (Some(t0()), Some(t0()), hours(72)),
        };
        let conversation = Conversation {
            channel,
            last_customer_message_at: last,
            ad_referral_at: ad,
        };
        (conversation, now)
    }
}

/// Expected outcome; times are hours after `t0`.
#[derive(Debug, Clone, Copy)]
enum Exp {
    Ok(Option<MessagingType>, Option<i64>),
    No(RefusalReason, Option<Alt>),
}

#[derive(Debug, Clone, Copy)]
enum Alt {
    HumanAgentUntil(i64),
    Template,
}

impl Exp {
    fn decision(self, conversation: &Conversation) -> Decision {
        match self {
            Exp::Ok(messaging_type, closes) => Decision::Allowed(Allowed {
                messaging_type,
                window_closes_at: closes.map(hours),
            }),
            Exp::No(reason, alt) => Decision::Refused(Refusal {
                reason,
                last_customer_message_at: conversation.last_customer_message_at,
                alternative: alt.map(|a| match a {
                    Alt::HumanAgentUntil(h) => Alternative::HumanAgentUntil(hours(h)),
                    Alt::Template => Alternative::Template,
                }),
            }),
        }
    }
}

struct Row {
    channels: &'static [ChannelKind],
    positions: &'static [Pos],
    authors: &'static [AuthorKind],
    contents: &'static [Content],
    intents: &'static [Intent],
    expected: Exp,
}

const fn row(
    channels: &'static [ChannelKind],
    positions: &'static [Pos],
    authors: &'static [AuthorKind],
    contents: &'static [Content],
    intents: &'static [Intent],
    expected: Exp,
) -> Row {
    Row {
        channels,
        positions,
        authors,
        contents,
        intents,
        expected,
    }
}

const PAGES: &[ChannelKind] = &[Messenger, Instagram];
const WA: &[ChannelKind] = &[WhatsApp];
const ALL_CHANNELS: &[ChannelKind] = &[Messenger, Instagram, WhatsApp];
const ALL_POS: &[Pos] = &[
    Pos::Never,
    Pos::Inside,
    Pos::At24h,
    Pos::Between,
    Pos::At7d,
    Pos::After7d,
    Pos::AdExtended,
];
const ANYONE: &[AuthorKind] = &[Human, Automation, Ai];
const BOTS: &[AuthorKind] = &[Automation, Ai];
const ALL_CONTENTS: &[Content] = &[FREE, APPROVED, UNAPPROVED, ACTION];
const ANY_INTENT: &[Intent] = &[Reply, Proactive];

use Exp::{No, Ok};
use MessagingType::{HumanAgentTag, Response, Update};
use RefusalReason::*;

/// Default policy. Every (channel, position, author, content, intent) is covered by exactly one
/// row; `every_combination_matches_its_row` checks both.
const TABLE: &[Row] = &[
    // ---- Messenger / Instagram ----
    row(
        PAGES,
        ALL_POS,
        ANYONE,
        &[APPROVED, UNAPPROVED],
        ANY_INTENT,
        No(TemplatesNotSupported, None),
    ),
    row(
        PAGES,
        &[Pos::Never],
        ANYONE,
        &[FREE, ACTION],
        ANY_INTENT,
        No(NoCustomerMessage, None),
    ),
    row(
        PAGES,
        &[Pos::Inside],
        ANYONE,
        &[FREE],
        &[Reply],
        Ok(Some(Response), Some(24)),
    ),
    row(
        PAGES,
        &[Pos::Inside],
        ANYONE,
        &[FREE],
        &[Proactive],
        Ok(Some(Update), Some(24)),
    ),
    row(
        PAGES,
        &[Pos::Inside],
        ANYONE,
        &[ACTION],
        ANY_INTENT,
        Ok(None, Some(24)),
    ),
    row(
        PAGES,
        &[Pos::At24h, Pos::Between],
        &[Human],
        &[FREE],
        ANY_INTENT,
        Ok(Some(HumanAgentTag), Some(168)),
    ),
    row(
        PAGES,
        &[Pos::At24h, Pos::Between],
        BOTS,
        &[FREE],
        ANY_INTENT,
        No(
            HumanAgentTagForbiddenForAutomation,
            Some(Alt::HumanAgentUntil(168)),
        ),
    ),
    row(
        PAGES,
        &[Pos::At24h, Pos::Between],
        ANYONE,
        &[ACTION],
        ANY_INTENT,
        No(WindowClosed, None),
    ),
    row(
        PAGES,
        &[Pos::At7d, Pos::After7d],
        &[Human],
        &[FREE],
        ANY_INTENT,
        No(HumanAgentWindowClosed, None),
    ),
    row(
        PAGES,
        &[Pos::At7d, Pos::After7d],
        BOTS,
        &[FREE],
        ANY_INTENT,
        No(WindowClosed, None),
    ),
    row(
        PAGES,
        &[Pos::At7d, Pos::After7d],
        ANYONE,
        &[ACTION],
        ANY_INTENT,
        No(WindowClosed, None),
    ),
    row(
        PAGES,
        &[Pos::AdExtended],
        ANYONE,
        &[FREE],
        &[Reply],
        Ok(Some(Response), Some(168)),
    ),
    row(
        PAGES,
        &[Pos::AdExtended],
        ANYONE,
        &[FREE],
        &[Proactive],
        Ok(Some(Update), Some(168)),
    ),
    row(
        PAGES,
        &[Pos::AdExtended],
        ANYONE,
        &[ACTION],
        ANY_INTENT,
        Ok(None, Some(168)),
    ),
    // ---- WhatsApp ----
    row(WA, ALL_POS, ANYONE, &[APPROVED], ANY_INTENT, Ok(None, None)),
    row(
        WA,
        ALL_POS,
        ANYONE,
        &[UNAPPROVED],
        ANY_INTENT,
        No(TemplateNotApproved, Some(Alt::Template)),
    ),
    row(
        WA,
        &[Pos::Never],
        ANYONE,
        &[FREE],
        ANY_INTENT,
        No(TemplateRequired, Some(Alt::Template)),
    ),
    row(
        WA,
        &[Pos::Never],
        ANYONE,
        &[ACTION],
        ANY_INTENT,
        No(NoCustomerMessage, None),
    ),
    row(
        WA,
        &[Pos::Inside],
        ANYONE,
        &[FREE, ACTION],
        ANY_INTENT,
        Ok(None, Some(24)),
    ),
    // The ad referral does not extend the WhatsApp window.
    row(
        WA,
        &[Pos::At24h, Pos::Between, Pos::At7d, Pos::After7d, Pos::AdExtended],
        ANYONE,
        &[FREE],
        ANY_INTENT,
        No(TemplateRequired, Some(Alt::Template)),
    ),
    row(
        WA,
        &[Pos::At24h, Pos::Between, Pos::At7d, Pos::After7d, Pos::AdExtended],
        ANYONE,
        &[ACTION],
        ANY_INTENT,
        No(WindowClosed, None),
    ),
];

#[test]
fn every_combination_matches_its_row() {
    let policy = Policy::default();
    let mut checked = 0;
    for &channel in ALL_CHANNELS {
        for &pos in ALL_POS {
            for &author in ANYONE {
                for &content in ALL_CONTENTS {
                    for &intent in ANY_INTENT {
                        let rows: Vec<&Row> = TABLE
                            .iter()
                            .filter(|r| {
                                r.channels.contains(&channel)
                                    && r.positions.contains(&pos)
                                    && r.authors.contains(&author)
                                    && r.contents.contains(&content)
                                    && r.intents.contains(&intent)
                            })
                            .collect();
                        let case = format!("{channel:?} {pos:?} {author:?} {content:?} {intent:?}");
                        assert_eq!(rows.len(), 1, "{case}: expected exactly one table row");
                        let (conversation, now) = pos.setup(channel);
                        let request = SendRequest {
                            author,
                            content,
                            intent,
                        };
                        let got = decide(&policy, &conversation, &request, now);
                        assert_eq!(got, rows[0].expected.decision(&conversation), "{case}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 3 * 7 * 3 * 4 * 2);
}

fn conv(channel: ChannelKind, last: Option<DateTime<Utc>>, ad: Option<DateTime<Utc>>) -> Conversation {
    Conversation {
        channel,
        last_customer_message_at: last,
        ad_referral_at: ad,
    }
}

fn send(author: AuthorKind, content: Content, intent: Intent) -> SendRequest {
    SendRequest {
        author,
        content,
        intent,
    }
}

fn allowed(messaging_type: Option<MessagingType>, closes: Option<DateTime<Utc>>) -> Decision {
    Decision::Allowed(Allowed {
        messaging_type,
        window_closes_at: closes,
    })
}

fn refused(reason: RefusalReason, last: Option<DateTime<Utc>>, alternative: Option<Alternative>) -> Decision {
    Decision::Refused(Refusal {
        reason,
        last_customer_message_at: last,
        alternative,
    })
}

#[test]
fn standard_window_closes_exactly_at_24h() {
    let p = Policy::default();
    let one_second = Duration::seconds(1);
    for channel in [Messenger, Instagram] {
        let c = conv(channel, Some(t0()), None);
        let bot = send(Automation, FREE, Reply);
        assert_eq!(
            decide(&p, &c, &bot, hours(24) - one_second),
            allowed(Some(Response), Some(hours(24))),
            "{channel:?}"
        );
        assert_eq!(
            decide(&p, &c, &bot, hours(24)),
            refused(
                HumanAgentTagForbiddenForAutomation,
                Some(t0()),
                Some(Alternative::HumanAgentUntil(hours(168)))
            ),
            "{channel:?}"
        );
    }
    let c = conv(WhatsApp, Some(t0()), None);
    let bot = send(Ai, FREE, Reply);
    assert_eq!(
        decide(&p, &c, &bot, hours(24) - one_second),
        allowed(None, Some(hours(24)))
    );
    assert_eq!(
        decide(&p, &c, &bot, hours(24)),
        refused(TemplateRequired, Some(t0()), Some(Alternative::Template))
    );
}

#[test]
fn human_agent_window_closes_exactly_at_7_days() {
    let p = Policy::default();
    let c = conv(Messenger, Some(t0()), None);
    let human = send(Human, FREE, Reply);
    assert_eq!(
        decide(&p, &c, &human, hours(168) - Duration::seconds(1)),
        allowed(Some(HumanAgentTag), Some(hours(168)))
    );
    assert_eq!(
        decide(&p, &c, &human, hours(168)),
        refused(HumanAgentWindowClosed, Some(t0()), None)
    );
}

#[test]
fn customer_message_in_the_future_counts_as_now() {
    let p = Policy::default();
    let now = t0();
    let skewed = now + Duration::hours(2);
    for channel in [Messenger, Instagram] {
        let c = conv(channel, Some(skewed), None);
        assert_eq!(
            decide(&p, &c, &send(Ai, FREE, Reply), now),
            allowed(Some(Response), Some(now + Duration::hours(24))),
            "{channel:?}"
        );
        // Once the stored time is in the past it counts as it is (a later answer may extend
        // the window; an earlier one never promised more than a full window from its `now`).
        assert_eq!(
            decide(&p, &c, &send(Human, FREE, Reply), now + Duration::hours(25)),
            allowed(Some(Response), Some(skewed + Duration::hours(24))),
            "{channel:?}"
        );
    }
    let c = conv(WhatsApp, Some(skewed), None);
    assert_eq!(
        decide(&p, &c, &send(Automation, FREE, Reply), now),
        allowed(None, Some(now + Duration::hours(24)))
    );
    // A future ad referral is clamped the same way.
    let c = conv(Messenger, None, Some(skewed));
    assert_eq!(
        decide(&p, &c, &send(Automation, FREE, Reply), now),
        allowed(Some(Response), Some(now + Duration::days(7)))
    );
}

#[test]
fn ad_referral_window_and_later_messages() {
    let p = Policy::default();
    // Came in through an ad at t0, wrote again two days later.
    let c = conv(Instagram, Some(hours(48)), Some(t0()));
    // Day 4: still inside the ad window (later than the 24 h after the last message).
    assert_eq!(
        decide(&p, &c, &send(Ai, FREE, Reply), hours(96)),
        allowed(Some(Response), Some(hours(168)))
    );
    assert_eq!(
        decide(&p, &c, &send(Ai, FREE, Reply), hours(168) - Duration::seconds(1)),
        allowed(Some(Response), Some(hours(168)))
    );
    // Day 7: the ad window is over; the human agent window runs 7 days from the last message.
    assert_eq!(
        decide(&p, &c, &send(Ai, FREE, Reply), hours(168)),
        refused(
            HumanAgentTagForbiddenForAutomation,
            Some(hours(48)),
            Some(Alternative::HumanAgentUntil(hours(216)))
        )
    );
    assert_eq!(
        decide(&p, &c, &send(Human, FREE, Proactive), hours(168)),
        allowed(Some(HumanAgentTag), Some(hours(216)))
    );
    // A message after the ad window keeps the usual 24 h.
    let c = conv(Messenger, Some(hours(200)), Some(t0()));
    assert_eq!(
        decide(&p, &c, &send(Automation, FREE, Reply), hours(210)),
        allowed(Some(Response), Some(hours(224)))
    );
}

#[test]
fn ad_referral_alone_opens_the_window() {
    let p = Policy::default();
    let c = conv(Messenger, None, Some(t0()));
    assert_eq!(
        decide(&p, &c, &send(Automation, FREE, Proactive), hours(100)),
        allowed(Some(Update), Some(hours(168)))
    );
    assert_eq!(
        decide(&p, &c, &send(Automation, FREE, Reply), hours(168)),
        refused(WindowClosed, None, None)
    );
    // WhatsApp ignores it: still business-initiated.
    let c = conv(WhatsApp, None, Some(t0()));
    assert_eq!(
        decide(&p, &c, &send(Human, FREE, Reply), hours(1)),
        refused(TemplateRequired, None, Some(Alternative::Template))
    );
}

#[test]
fn ad_referral_window_is_configurable() {
    let p = Policy {
        ad_referral_window: Duration::days(3),
        ..Policy::default()
    };
    let c = conv(Messenger, Some(t0()), Some(t0()));
    assert_eq!(
        decide(&p, &c, &send(Ai, FREE, Reply), hours(71)),
        allowed(Some(Response), Some(hours(72)))
    );
    assert_eq!(
        decide(&p, &c, &send(Ai, FREE, Reply), hours(72)),
        refused(
            HumanAgentTagForbiddenForAutomation,
            Some(t0()),
            Some(Alternative::HumanAgentUntil(hours(168)))
        )
    );
}

#[test]
fn other_windows_are_configurable() {
    let p = Policy {
        standard_window: Duration::hours(12),
        human_agent_window: Duration::days(2),
        whatsapp_window: Duration::hours(6),
        ..Policy::default()
    };
    let m = conv(Messenger, Some(t0()), None);
    assert_eq!(
        decide(&p, &m, &send(Human, FREE, Reply), hours(11)),
        allowed(Some(Response), Some(hours(12)))
    );
    assert_eq!(
        decide(&p, &m, &send(Human, FREE, Reply), hours(12)),
        allowed(Some(HumanAgentTag), Some(hours(48)))
    );
    assert_eq!(
        decide(&p, &m, &send(Human, FREE, Reply), hours(48)),
        refused(HumanAgentWindowClosed, Some(t0()), None)
    );
    let w = conv(WhatsApp, Some(t0()), None);
    assert_eq!(
        decide(&p, &w, &send(Human, FREE, Reply), hours(5)),
        allowed(None, Some(hours(6)))
    );
    assert_eq!(
        decide(&p, &w, &send(Human, FREE, Reply), hours(6)),
        refused(TemplateRequired, Some(t0()), Some(Alternative::Template))
    );
}

#[test]
fn default_policy_values() {
    let p = Policy::default();
    assert_eq!(p.standard_window, Duration::hours(24));
    assert_eq!(p.human_agent_window, Duration::days(7));
    assert_eq!(p.ad_referral_window, Duration::days(7));
    assert!(p.human_agent_enabled_messenger);
    assert!(p.human_agent_enabled_instagram);
    assert_eq!(p.whatsapp_window, Duration::hours(24));
    assert!(p.human_agent_enabled(Messenger));
    assert!(p.human_agent_enabled(Instagram));
    assert!(!p.human_agent_enabled(WhatsApp));
}

#[test]
fn human_agent_disabled_per_channel() {
    let messenger_off = Policy {
        human_agent_enabled_messenger: false,
        ..Policy::default()
    };
    let instagram_off = Policy {
        human_agent_enabled_instagram: false,
        ..Policy::default()
    };
    // (policy, channel that is off, channel that is still on)
    for (p, off, on) in [
        (messenger_off, Messenger, Instagram),
        (instagram_off, Instagram, Messenger),
    ] {
        let c_off = conv(off, Some(t0()), None);
        let c_on = conv(on, Some(t0()), None);
        for now in [hours(24), hours(72)] {
            assert_eq!(
                decide(&p, &c_off, &send(Human, FREE, Reply), now),
                refused(HumanAgentNotEnabled, Some(t0()), None),
                "{off:?}"
            );
            for bot in [Automation, Ai] {
                // No alternative to offer: a human can't reply either.
                assert_eq!(
                    decide(&p, &c_off, &send(bot, FREE, Reply), now),
                    refused(WindowClosed, Some(t0()), None),
                    "{off:?} {bot:?}"
                );
            }
            assert_eq!(
                decide(&p, &c_on, &send(Human, FREE, Reply), now),
                allowed(Some(HumanAgentTag), Some(hours(168))),
                "{on:?}"
            );
        }
        // Past 7 days the missing feature is not the reason any more.
        assert_eq!(
            decide(&p, &c_off, &send(Human, FREE, Reply), hours(168)),
            refused(WindowClosed, Some(t0()), None)
        );
        // Inside the standard window nothing changes.
        assert_eq!(
            decide(&p, &c_off, &send(Ai, FREE, Reply), hours(1)),
            allowed(Some(Response), Some(hours(24)))
        );
    }
}

#[test]
fn free_text_status_answers_the_composer() {
    let p = Policy::default();
    let m = conv(Messenger, Some(t0()), None);
    // A human inside the window: free text until 24 h ...
    let now = hours(10);
    let first = free_text_status(&p, &m, Human, now);
    assert_eq!(first, allowed(Some(Response), Some(hours(24))));
    // ... and asking again when it closes gives the HUMAN_AGENT stage.
    assert_eq!(
        free_text_status(&p, &m, Human, hours(24)),
        allowed(Some(HumanAgentTag), Some(hours(168)))
    );
    assert_eq!(
        free_text_status(&p, &m, Human, hours(168)),
        refused(HumanAgentWindowClosed, Some(t0()), None)
    );
    // AI: told that a human could still reply, and until when.
    assert_eq!(
        free_text_status(&p, &m, Ai, hours(30)),
        refused(
            HumanAgentTagForbiddenForAutomation,
            Some(t0()),
            Some(Alternative::HumanAgentUntil(hours(168)))
        )
    );
    // WhatsApp outside the window: send a template.
    let w = conv(WhatsApp, Some(t0()), None);
    assert_eq!(
        free_text_status(&p, &w, Human, hours(30)),
        refused(TemplateRequired, Some(t0()), Some(Alternative::Template))
    );
    assert_eq!(
        free_text_status(&p, &w, Automation, hours(1)),
        allowed(None, Some(hours(24)))
    );
    // Never wrote.
    let ig = conv(Instagram, None, None);
    assert_eq!(
        free_text_status(&p, &ig, Human, hours(0)),
        refused(NoCustomerMessage, None, None)
    );
}

/// Every combination the property tests walk through.
fn all_cases(mut check: impl FnMut(&Policy, &Conversation, &SendRequest, DateTime<Utc>, Decision)) {
    let policies = [
        Policy::default(),
        Policy {
            human_agent_enabled_messenger: false,
            human_agent_enabled_instagram: false,
            ..Policy::default()
        },
        Policy {
            standard_window: Duration::hours(1),
            human_agent_window: Duration::days(30),
            ad_referral_window: Duration::days(10),
            whatsapp_window: Duration::hours(48),
            ..Policy::default()
        },
    ];
    let lasts = [None, Some(t0()), Some(hours(-50))];
    let ads = [None, Some(t0()), Some(hours(-100))];
    // From 2 h before t0 (clock skew) to 40 days after, every 30 min, plus each boundary ± 1 s.
    let mut nows: Vec<DateTime<Utc>> = (-4..=40 * 48).map(|i| t0() + Duration::minutes(30 * i)).collect();
    for h in [24, 48, 72, 168, 240, 720] {
        nows.push(hours(h) - Duration::seconds(1));
        nows.push(hours(h) + Duration::seconds(1));
    }
    for policy in &policies {
        for channel in [Messenger, Instagram, WhatsApp] {
            for last in lasts {
                for ad in ads {
                    let c = conv(channel, last, ad);
                    for &author in ANYONE {
                        for &content in ALL_CONTENTS {
                            for &intent in ANY_INTENT {
                                let r = send(author, content, intent);
                                for &now in &nows {
                                    check(policy, &c, &r, now, decide(policy, &c, &r, now));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn human_agent_tag_is_never_returned_for_automation_or_ai() {
    let mut tagged_for_humans = 0;
    let mut allowed_for_bots = 0;
    all_cases(|_, c, r, now, d| {
        if let Some(a) = d.allowed() {
            if a.messaging_type == Some(HumanAgentTag) {
                assert_eq!(r.author, Human, "{c:?} {r:?} {now}");
                tagged_for_humans += 1;
            } else if r.author != Human {
                allowed_for_bots += 1;
            }
        }
    });
    // The loop must reach both kinds of case, or the property proves nothing.
    assert!(tagged_for_humans > 0);
    assert!(allowed_for_bots > 0);
}

#[test]
fn allowed_decisions_are_consistent() {
    all_cases(|_, c, r, now, d| {
        let Some(a) = d.allowed() else { return };
        if let Some(closes) = a.window_closes_at {
            assert!(closes > now, "{c:?} {r:?} {now}: window already closed");
        }
        match (c.channel, r.content) {
            (WhatsApp, _) => assert_eq!(a.messaging_type, None, "{c:?} {r:?}"),
            (_, Content::Template { .. }) => panic!("template allowed on {c:?}"),
            (_, Content::SenderAction) => assert_eq!(a.messaging_type, None, "{c:?} {r:?}"),
            (_, Content::FreeForm) => assert!(a.messaging_type.is_some(), "{c:?} {r:?}"),
        }
        if matches!(r.content, Content::Template { approved: false }) {
            panic!("unapproved template allowed: {c:?} {now}");
        }
    });
}

#[test]
fn refusals_carry_the_conversations_last_message() {
    all_cases(|_, c, r, now, d| {
        if let Some(refusal) = d.refusal() {
            assert_eq!(
                refusal.last_customer_message_at, c.last_customer_message_at,
                "{r:?} {now}"
            );
        }
    });
}

#[test]
fn free_text_status_is_a_free_form_reply() {
    all_cases(|p, c, r, now, d| {
        if r.content == FREE && r.intent == Reply {
            assert_eq!(free_text_status(p, c, r.author, now), d);
        }
    });
}

#[test]
fn messaging_type_as_meta() {
    assert_eq!(Response.as_meta(), ("RESPONSE", None));
    assert_eq!(Update.as_meta(), ("UPDATE", None));
    assert_eq!(HumanAgentTag.as_meta(), ("MESSAGE_TAG", Some("HUMAN_AGENT")));
}

fn is_snake_case(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[test]
fn refusal_codes_are_unique_snake_case_and_explained() {
    // Exhaustive: a new reason fails to compile here until it gets a position in ALL.
    let position = |r: RefusalReason| match r {
        NoCustomerMessage => 0,
        WindowClosed => 1,
        HumanAgentWindowClosed => 2,
        HumanAgentNotEnabled => 3,
        HumanAgentTagForbiddenForAutomation => 4,
        TemplateRequired => 5,
        TemplateNotApproved => 6,
        TemplatesNotSupported => 7,
    };
    let positions: Vec<usize> = RefusalReason::ALL.iter().map(|&r| position(r)).collect();
    assert_eq!(positions, (0..8).collect::<Vec<_>>());

    let mut codes = std::collections::HashSet::new();
    let mut texts = std::collections::HashSet::new();
    for r in RefusalReason::ALL {
        assert!(is_snake_case(r.code()), "{r:?}: {}", r.code());
        assert!(codes.insert(r.code()), "duplicate code {}", r.code());
        assert!(texts.insert(r.explain()), "duplicate text for {r:?}");
        assert!(r.explain().ends_with('.'), "{r:?}");
        assert!(
            r.explain().chars().next().is_some_and(char::is_uppercase),
            "{r:?}"
        );
        assert_eq!(r.to_string(), r.explain());
    }
    assert_eq!(WindowClosed.code(), "window_closed");
    assert_eq!(
        HumanAgentTagForbiddenForAutomation.code(),
        "human_agent_tag_forbidden_for_automation"
    );
    assert!(!is_snake_case("Window_closed"));
    assert!(!is_snake_case("window__closed"));
}
