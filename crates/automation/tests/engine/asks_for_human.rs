use scifer_automation::asks_for_human;

#[test]
fn requests_for_a_person_in_five_languages() {
    let positives = [
        // en
        "agent",
        "HUMAN!!!",
        "Representative please",
        "operator",
        "Can I talk to a real person?",
        "I want to speak with an agent",
        "get me a human",
        "Please connect me with a customer service representative",
        "I need to talk to someone",
        "live agent",
        "this bot is useless, I need a human",
        // de
        "Mitarbeiter bitte",
        "Ich möchte mit einem Mitarbeiter sprechen",
        "Kann ich bitte mit einem echten Menschen reden?",
        "Bitte verbinden Sie mich mit einem Berater",
        // fr
        "Je voudrais parler à un conseiller",
        "Je veux parler à une vraie personne",
        "un humain s'il vous plaît",
        "Passez-moi un agent svp",
        // es
        "Quiero hablar con un agente",
        "Necesito hablar con una persona real",
        "¿Puedo hablar con un humano?",
        "asesor por favor",
        // pt
        "Quero falar com um atendente",
        "Gostaria de falar com uma pessoa de verdade",
        "atendimento humano por favor",
        "Preciso falar com alguém",
    ];
    for text in positives {
        assert!(asks_for_human(text), "should ask for a person: {text:?}");
    }
}

#[test]
fn other_messages_do_not_ask_for_a_person() {
    let negatives = [
        "",
        "hello",
        "What are your opening hours?",
        // A department, not a request for a person.
        "I work in human resources",
        "Who is the human resources contact for my contract?",
        "Can I speak to human resources?",
        "Human rights matter",
        // Someone else's agent.
        "My travel agent booked the wrong flight",
        "I need to reach my travel agent",
        "I'm a human",
        "The delivery person left the package at the door",
        "Das ist eine nette Person",
        "Wie lange dauert der Versand?",
        // French "personne" alone means "nobody".
        "Personne ne répond au téléphone",
        "Personne.",
        "Quiero saber el precio del envío",
        "Eu preciso de ajuda com meu pedido",
        "personal data request",
    ];
    for text in negatives {
        assert!(!asks_for_human(text), "should not ask for a person: {text:?}");
    }
}
