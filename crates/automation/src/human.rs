//! Detecting a customer who asks for a person, in English, German, French, Spanish and
//! Portuguese.
//!
//! A cheap word heuristic, not a classifier: it leans towards handing off (a needless handoff
//! costs an agent a glance; a missed one leaves an annoyed customer with a bot). The message is
//! lowercased, stripped of accents and split into words; it asks for a person when a
//! person-word ("agent", "Mitarbeiter", "conseiller", "persona", "atendente", ...) appears
//! - in a message made only of such words, request words and filler ("Agent please!"),
//! - next to a request verb, with only filler between ("can I talk to a real person",
//!   "mit einem Mitarbeiter sprechen"), or
//! - with an adjective saying the person is real ("live agent", "echten Menschen",
//!   "pessoa de verdade").
//!
//! Decided negatives: "human resources", "human rights" and the like name a thing, not a person;
//! "my travel agent" is someone else's agent ("travel" is neither filler nor a request, so it
//! breaks the pattern); French "personne" counts only after "une", "la" or "vraie", since alone
//! it means "nobody" ("personne ne répond"). Negation is not understood: "I don't want a human"
//! hands off, which errs on the safe side.

const PERSON_WORDS: &[&str] = &[
    // en
    "agent",
    "agents",
    "human",
    "humans",
    "person",
    "representative",
    "rep",
    "operator",
    "someone",
    "somebody",
    // de
    "mensch",
    "menschen",
    "mitarbeiter",
    "mitarbeiterin",
    "berater",
    "beraterin",
    "kundenberater",
    "sachbearbeiter",
    "ansprechpartner",
    "jemand",
    "jemandem",
    // fr ("quelqu" is what is left of "quelqu'un")
    "humain",
    "conseiller",
    "conseillere",
    "operateur",
    "operatrice",
    "personne",
    "quelqu",
    "interlocuteur",
    // es
    "humano",
    "persona",
    "agente",
    "asesor",
    "asesora",
    "representante",
    "operador",
    "operadora",
    "alguien",
    "ejecutivo",
    // pt
    "pessoa",
    "atendente",
    "alguem",
];

const REQUEST_WORDS: &[&str] = &[
    // en
    "talk",
    "speak",
    "chat",
    "connect",
    "transfer",
    "want",
    "need",
    "get",
    "reach",
    "contact",
    "give",
    // de
    "sprechen",
    "reden",
    "verbinden",
    "verbunden",
    "chatten",
    "will",
    "mochte",
    "moechte",
    "brauche",
    "hatte",
    "haette",
    "kontaktieren",
    // fr
    "parler",
    "discuter",
    "joindre",
    "contacter",
    "veux",
    "voudrais",
    "souhaite",
    "souhaiterais",
    "besoin",
    "passer",
    "passez",
    "mettre",
    "mettez",
    // es
    "hablar",
    "comunicar",
    "comunicarme",
    "contactar",
    "quiero",
    "quisiera",
    "necesito",
    "pasame",
    "pasar",
    "pase",
    "chatear",
    "atienda",
    // pt
    "falar",
    "conversar",
    "quero",
    "queria",
    "gostaria",
    "preciso",
    "contatar",
    "chamar",
    "passa",
    "atenda",
];

/// Words saying the person is a real one.
const REAL_WORDS: &[&str] = &[
    "real",
    "live",
    "actual",
    "echt",
    "echte",
    "echten",
    "echter",
    "echtem",
    "richtigen",
    "vrai",
    "vraie",
    "verdad",
    "verdadera",
    "verdadero",
    "verdade",
    "verdadeira",
    "verdadeiro",
];

/// Words that may stand between a request and the person-word without changing the meaning.
const FILLER: &[&str] = &[
    // en
    "a",
    "an",
    "the",
    "to",
    "with",
    "me",
    "my",
    "your",
    "one",
    "some",
    "please",
    "pls",
    "plz",
    "now",
    "just",
    "i",
    "can",
    "could",
    "you",
    "customer",
    "service",
    "support",
    "from",
    "of",
    "like",
    "would",
    "d",
    "let",
    // de
    "ich",
    "mit",
    "einem",
    "einen",
    "einer",
    "ein",
    "eine",
    "dem",
    "den",
    "der",
    "die",
    "bitte",
    "gern",
    "gerne",
    "zu",
    "mich",
    "mir",
    "sie",
    "uns",
    "jetzt",
    "kann",
    "konnte",
    "sofort",
    "mal",
    "doch",
    // fr
    "je",
    "j",
    "un",
    "une",
    "avec",
    "le",
    "la",
    "les",
    "l",
    "de",
    "du",
    "au",
    "des",
    "moi",
    "vous",
    "s",
    "il",
    "plait",
    "svp",
    "en",
    "relation",
    "ai",
    "tout",
    "suite",
    // es
    "yo",
    "con",
    "el",
    "los",
    "las",
    "al",
    "por",
    "favor",
    "que",
    "ser",
    "ahora",
    "puedo",
    // pt
    "eu",
    "com",
    "um",
    "uma",
    "o",
    "os",
    "as",
    "ao",
    "atendimento",
    "agora",
    "posso",
];

/// A person-word followed by one of these names a thing ("human resources").
const THING_AFTER: &[&str] = &[
    "resources",
    "rights",
    "error",
    "nature",
    "trafficking",
    "race",
    "body",
];

/// French "personne" means a person only after one of these.
const PERSONNE_BEFORE: &[&str] = &["une", "la", "vraie", "vrai", "cette", "autre"];

/// How many filler words may separate a request verb from the person-word.
const MAX_GAP: usize = 4;

/// Does the customer ask for a person? A handoff signal independent of rules.
pub fn asks_for_human(text: &str) -> bool {
    let folded = fold(text);
    let words: Vec<&str> = folded.split_whitespace().collect();
    let persons: Vec<usize> = (0..words.len()).filter(|&i| is_person(&words, i)).collect();
    if persons.is_empty() {
        return false;
    }
    let only_request = words.iter().all(|w| {
        PERSON_WORDS.contains(w) || REQUEST_WORDS.contains(w) || REAL_WORDS.contains(w) || FILLER.contains(w)
    });
    only_request
        || persons
            .iter()
            .any(|&i| near_request(&words, i) || called_real(&words, i))
}

fn is_person(words: &[&str], i: usize) -> bool {
    let word = words[i];
    if !PERSON_WORDS.contains(&word) {
        return false;
    }
    let before = i.checked_sub(1).map(|j| words[j]);
    let after = words.get(i + 1).copied();
    if after.is_some_and(|w| THING_AFTER.contains(&w)) {
        return false;
    }
    if word == "personne" {
        return before.is_some_and(|w| PERSONNE_BEFORE.contains(&w));
    }
    true
}

/// A request verb within `MAX_GAP` filler words before or after the person-word.
fn near_request(words: &[&str], i: usize) -> bool {
    let backward = words[..i].iter().rev();
    let forward = words[i + 1..].iter();
    first_non_filler(backward).is_some_and(|w| REQUEST_WORDS.contains(&w))
        || first_non_filler(forward).is_some_and(|w| REQUEST_WORDS.contains(&w))
}

fn first_non_filler<'a>(side: impl Iterator<Item = &'a &'a str>) -> Option<&'a str> {
    side.take(MAX_GAP + 1)
        .find(|w| !FILLER.contains(w) && !REAL_WORDS.contains(w))
        .copied()
}

/// "real person", "persona real", "pessoa de verdade".
fn called_real(words: &[&str], i: usize) -> bool {
    let before = i.checked_sub(1).map(|j| words[j]);
    let after = words.get(i + 1).copied();
    let after_de = match after {
        Some("de") => words.get(i + 2).copied(),
        _ => None,
    };
    [before, after, after_de]
        .into_iter()
        .flatten()
        .any(|w| REAL_WORDS.contains(&w))
}

/// Lowercase, strip the accents these languages use, and turn everything that is not a letter or
/// digit into a space.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ß' => out.push_str("ss"),
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    }
    out
}
