use chrono::TimeDelta;
use scifer_automation::{Action, HandlerKind, Limits, Origin, SkipReason, Trigger};

use crate::{Fixture, at, office_hours, planned, reply, rule};

fn away() -> Action {
    reply("We are closed, {{contact.name|there}}.")
}

/// Saturday noon in Berlin, closed since Friday 17:00 (15:00 UTC), with the away message.
fn closed_with_away() -> Fixture {
    Fixture {
        hours: Some(office_hours()),
        ..Fixture::closed()
    }
}

#[test]
fn a_message_while_closed_gets_the_away_message_first() {
    let plan = closed_with_away().evaluate(&[rule(
        "closed",
        Trigger::OutsideBusinessHours,
        vec![],
        vec![reply("A human will answer on Monday")],
    )]);
    assert_eq!(
        planned(&plan),
        vec![
            ("away".to_string(), away()),
            ("closed".to_string(), reply("A human will answer on Monday")),
        ]
    );
}

#[test]
fn the_away_message_goes_out_once_per_closed_period() {
    let friday_close = at("2025-06-13T15:00:00Z");
    // (last away message, sent again?)
    let cases = [
        (None, true),
        // Sent in this closed period, at its very start or later.
        (Some(friday_close), false),
        (Some(at("2025-06-14T09:00:00Z")), false),
        // Sent during the previous closed period (Thursday night) or while open.
        (Some(at("2025-06-12T20:00:00Z")), true),
        (Some(friday_close - TimeDelta::seconds(1)), true),
    ];
    for (last_away, sent) in cases {
        let fixture = Fixture {
            last_away,
            ..closed_with_away()
        };
        let plan = fixture.evaluate(&[]);
        if sent {
            assert_eq!(
                planned(&plan),
                vec![("away".to_string(), away())],
                "{last_away:?}"
            );
            assert!(plan.skipped.is_empty());
        } else {
            assert!(plan.actions.is_empty(), "{last_away:?}");
            assert_eq!(plan.skipped[0].origin, Origin::AwayMessage);
            assert_eq!(plan.skipped[0].reason, SkipReason::AwayMessageAlreadySent);
        }
    }
}

#[test]
fn no_away_message_while_open_or_without_one_or_without_hours() {
    let open = Fixture {
        hours: Some(office_hours()),
        ..Fixture::default()
    };
    let without_message = Fixture::closed();
    let without_hours = Fixture::default();
    for fixture in [open, without_message, without_hours] {
        let plan = fixture.evaluate(&[]);
        assert!(plan.actions.is_empty() && plan.skipped.is_empty(), "{plan:?}");
    }
}

#[test]
fn the_away_message_goes_out_even_while_a_human_handles_the_conversation() {
    let fixture = Fixture {
        handler: HandlerKind::Human,
        ..closed_with_away()
    };
    assert_eq!(
        planned(&fixture.evaluate(&[])),
        vec![("away".to_string(), away())]
    );
}

#[test]
fn the_away_message_counts_towards_the_rate_limit() {
    let fixture = Fixture {
        limits: Limits {
            max_replies_per_conversation: 1,
            per: TimeDelta::minutes(10),
        },
        ..closed_with_away()
    };
    let plan = fixture.evaluate(&[rule("r", Trigger::MessageReceived, vec![], vec![reply("hi")])]);
    assert_eq!(planned(&plan), vec![("away".to_string(), away())]);
    assert_eq!(plan.skipped[0].reason, SkipReason::RateLimited);

    let limited = Fixture {
        recent_replies: vec![fixture.now],
        ..fixture
    };
    let plan = limited.evaluate(&[]);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.skipped[0].origin, Origin::AwayMessage);
    assert_eq!(plan.skipped[0].reason, SkipReason::RateLimited);
}

#[test]
fn only_a_received_message_gets_the_away_message() {
    let fixture = Fixture {
        trigger: scifer_automation::TriggerEvent::ConversationCreated,
        ..closed_with_away()
    };
    assert!(fixture.evaluate(&[]).actions.is_empty());
}
