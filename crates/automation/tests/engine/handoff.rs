use scifer_automation::{HandlerKind, HandoffEvent, accept_ai_reply, next_handler};

#[test]
fn every_handoff_transition() {
    use HandlerKind::{Automation, Human};
    use HandoffEvent::*;
    let cases = [
        (Automation, RuleHandOff, Human),
        (Automation, CustomerAskedForHuman, Human),
        (Automation, LowAiConfidence, Human),
        (Automation, AgentTookOver, Human),
        (Automation, AgentHandedBack, Automation),
        (Human, RuleHandOff, Human),
        (Human, CustomerAskedForHuman, Human),
        (Human, LowAiConfidence, Human),
        (Human, AgentTookOver, Human),
        (Human, AgentHandedBack, Automation),
    ];
    for (current, event, expected) in cases {
        assert_eq!(next_handler(current, event), expected, "{current:?} + {event:?}");
    }
}

#[test]
fn ai_replies_need_at_least_the_rules_confidence() {
    let cases = [
        (0.8, 0.8, true),
        (0.8, 0.81, true),
        (0.8, 0.79, false),
        (0.0, 0.0, true),
        (1.0, 0.999, false),
        (0.8, f32::NAN, false),
        (f32::NAN, 0.9, false),
    ];
    for (min, confidence, accepted) in cases {
        assert_eq!(
            accept_ai_reply(min, confidence),
            accepted,
            "{min} vs {confidence}"
        );
    }
}
