use scifer_automation::{Trigger, TriggerEvent, idle_thresholds};

use crate::{Fixture, planned, reply, rule};

#[derive(Clone, Copy)]
enum Hours {
    None,
    Open,
    Closed,
}

#[test]
fn each_trigger_fires_only_on_its_event() {
    use Hours::*;
    use Trigger as T;
    use TriggerEvent as E;
    let cases = [
        (T::MessageReceived, E::MessageReceived, None, true),
        (T::MessageReceived, E::MessageReceived, Open, true),
        (T::MessageReceived, E::MessageReceived, Closed, true),
        (T::MessageReceived, E::ConversationCreated, None, false),
        (
            T::MessageReceived,
            E::ConversationIdle { minutes: 5 },
            None,
            false,
        ),
        (T::ConversationCreated, E::ConversationCreated, None, true),
        (T::ConversationCreated, E::MessageReceived, None, false),
        (
            T::ConversationIdle { minutes: 30 },
            E::ConversationIdle { minutes: 30 },
            None,
            true,
        ),
        (
            T::ConversationIdle { minutes: 30 },
            E::ConversationIdle { minutes: 29 },
            None,
            false,
        ),
        (
            T::ConversationIdle { minutes: 30 },
            E::ConversationIdle { minutes: 31 },
            None,
            false,
        ),
        (
            T::ConversationIdle { minutes: 30 },
            E::MessageReceived,
            None,
            false,
        ),
        (T::OutsideBusinessHours, E::MessageReceived, Closed, true),
        (T::OutsideBusinessHours, E::MessageReceived, Open, false),
        // No business hours configured means always open.
        (T::OutsideBusinessHours, E::MessageReceived, None, false),
        (T::OutsideBusinessHours, E::ConversationCreated, Closed, false),
        (
            T::OutsideBusinessHours,
            E::ConversationIdle { minutes: 30 },
            Closed,
            false,
        ),
    ];
    for (trigger, event, hours, fires) in cases {
        let mut fixture = match hours {
            None => Fixture::default(),
            Open => Fixture {
                hours: Fixture::closed().hours,
                ..Fixture::default()
            },
            Closed => Fixture::closed(),
        };
        fixture.trigger = event;
        let plan = fixture.evaluate(&[rule("r", trigger, vec![], vec![reply("hi")])]);
        let fired = planned(&plan) == vec![("r".to_string(), reply("hi"))];
        assert_eq!(fired, fires, "{trigger:?} on {event:?}: {plan:?}");
        if !fires {
            // A rule whose trigger does not match is not reported as skipped either.
            assert!(plan.actions.is_empty() && plan.skipped.is_empty(), "{plan:?}");
        }
    }
}

#[test]
fn idle_thresholds_are_distinct_sorted_and_of_enabled_rules() {
    let mut disabled = rule("d", Trigger::ConversationIdle { minutes: 5 }, vec![], vec![]);
    disabled.enabled = false;
    let rules = [
        rule("a", Trigger::ConversationIdle { minutes: 60 }, vec![], vec![]),
        rule("b", Trigger::ConversationIdle { minutes: 15 }, vec![], vec![]),
        rule("c", Trigger::ConversationIdle { minutes: 60 }, vec![], vec![]),
        rule("m", Trigger::MessageReceived, vec![], vec![]),
        disabled,
    ];
    assert_eq!(idle_thresholds(&rules), vec![15, 60]);
}
