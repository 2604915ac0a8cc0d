//! LIKE patterns from what people type: `%`, `_` and the escape character itself match only
//! themselves (the patterns are used with `ESCAPE '\'`), so a search for `50%` finds "50%".

const ESCAPE: char = '\\';

fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | ESCAPE) {
            out.push(ESCAPE);
        }
        out.push(c);
    }
    out
}

/// Matches values containing `text`.
pub fn contains(text: &str) -> String {
    format!("%{}%", escaped(text))
}

/// Matches values starting with `text`.
pub fn starts_with(text: &str) -> String {
    format!("{}%", escaped(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_escaped() {
        assert_eq!(contains("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(starts_with("a_b"), "a\\_b%");
        assert_eq!(contains("plain"), "%plain%");
    }
}
