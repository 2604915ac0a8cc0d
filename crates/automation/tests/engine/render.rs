use scifer_automation::{Placeholders, render};

fn vars() -> Placeholders {
    Placeholders {
        contact_name: Some("Zoë Ångström".into()),
        business_name: Some("Café Ünïcode 🍰".into()),
        agent_name: None,
    }
}

#[test]
fn placeholders_render_with_values_fallbacks_and_unknowns() {
    let cases = [
        ("Hi {{contact.name}}!", "Hi Zoë Ångström!"),
        ("{{ business.name }} here", "Café Ünïcode 🍰 here"),
        ("Agent: {{agent.name}}.", "Agent: ."),
        ("Agent: {{agent.name|our team}}.", "Agent: our team."),
        ("{{contact.name | there}}", "Zoë Ångström"),
        // Unknown placeholders stay visible.
        ("Mail {{contact.email}}", "Mail {{contact.email}}"),
        ("{{}}", "{{}}"),
        // An unclosed "{{" is text.
        ("Hi {{contact.name", "Hi {{contact.name"),
        ("{{ {{contact.name}}", "{{ Zoë Ångström"),
        (
            "}} {{contact.name}}{{business.name}}",
            "}} Zoë ÅngströmCafé Ünïcode 🍰",
        ),
        ("Grüße 👋 {{contact.name}} — ✓", "Grüße 👋 Zoë Ångström — ✓"),
        ("", ""),
    ];
    for (template, expected) in cases {
        assert_eq!(render(template, &vars()), expected, "{template:?}");
    }
}

#[test]
fn an_empty_value_counts_as_missing() {
    let vars = Placeholders {
        contact_name: Some(String::new()),
        ..Placeholders::default()
    };
    assert_eq!(render("Hi {{contact.name|there}}", &vars), "Hi there");
}

#[test]
fn values_are_not_expanded_again() {
    let vars = Placeholders {
        contact_name: Some("{{agent.name}}".into()),
        agent_name: Some("Ana".into()),
        ..Placeholders::default()
    };
    assert_eq!(
        render("{{contact.name}} / {{agent.name}}", &vars),
        "{{agent.name}} / Ana"
    );
}

#[test]
fn rendering_never_panics_on_odd_input() {
    let odd = [
        "{",
        "}",
        "{{",
        "}}",
        "{{{",
        "}}}",
        "{{{{}}}}",
        "{{|}}",
        "{{||}}",
        "é{{é}}é",
        "{{🍰",
        "🍰}}",
        "{{contact.name}}}",
        "{{{contact.name}}",
        "{{\u{0}}}",
        "\u{FEFF}{{agent.name}}",
    ];
    for template in odd {
        let out = render(template, &vars());
        // Text outside placeholders survives.
        if !template.contains("{{") {
            assert_eq!(out, template);
        }
    }
    assert_eq!(render("{{{contact.name}}", &vars()), "{Zoë Ångström");
}
