//! The `fields` parameter with Graph's field-expansion syntax:
//! `id,name,instagram_business_account{id,username}` (modifiers such as `.limit(5)` are
//! accepted and ignored).

use super::errors::GraphError;

/// One requested field, with its sub-selection when expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// `{...}` contents.
    pub sub: Option<Vec<Field>>,
}

impl Field {
    /// A plain field.
    pub fn plain(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            sub: None,
        }
    }
}

/// Plain fields from names.
pub fn plain(names: &[&str]) -> Vec<Field> {
    names.iter().map(|n| Field::plain(n)).collect()
}

/// Parse a `fields` value.
pub fn parse(input: &str) -> Result<Vec<Field>, GraphError> {
    let chars: Vec<char> = input.chars().collect();
    let mut pos = 0;
    let fields = parse_list(&chars, &mut pos, input)?;
    skip_ws(&chars, &mut pos);
    if pos != chars.len() {
        return Err(syntax(input, pos, "end of string"));
    }
    Ok(fields)
}

fn syntax(input: &str, pos: usize, expected: &str) -> GraphError {
    GraphError::invalid_param(format!(
        "Syntax error \"Expected {expected}.\" at character {pos}: {input}"
    ))
}

fn skip_ws(chars: &[char], pos: &mut usize) {
    while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
        *pos += 1;
    }
}

fn ident(chars: &[char], pos: &mut usize) -> String {
    let start = *pos;
    while chars
        .get(*pos)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
    {
        *pos += 1;
    }
    chars[start..*pos].iter().collect()
}

fn parse_list(chars: &[char], pos: &mut usize, input: &str) -> Result<Vec<Field>, GraphError> {
    let mut out = Vec::new();
    loop {
        skip_ws(chars, pos);
        let name = ident(chars, pos);
        if name.is_empty() {
            return Err(syntax(input, *pos, "field name"));
        }
        // `.limit(10)`, `.as(alias)`…: skipped.
        while chars.get(*pos) == Some(&'.') {
            *pos += 1;
            if ident(chars, pos).is_empty() || chars.get(*pos) != Some(&'(') {
                return Err(syntax(input, *pos, "modifier"));
            }
            while chars.get(*pos).is_some_and(|c| *c != ')') {
                *pos += 1;
            }
            if chars.get(*pos) != Some(&')') {
                return Err(syntax(input, *pos, "\")\""));
            }
            *pos += 1;
        }
        skip_ws(chars, pos);
        let sub = if chars.get(*pos) == Some(&'{') {
            *pos += 1;
            let sub = parse_list(chars, pos, input)?;
            skip_ws(chars, pos);
            if chars.get(*pos) != Some(&'}') {
                return Err(syntax(input, *pos, "\"}\""));
            }
            *pos += 1;
            Some(sub)
        } else {
            None
        };
        out.push(Field { name, sub });
        skip_ws(chars, pos);
        if chars.get(*pos) == Some(&',') {
            *pos += 1;
        } else {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_expansion_and_modifiers() {
        let f = parse("id, name,instagram_business_account{id,username},posts.limit(5){id}").unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f[1], Field::plain("name"));
        assert_eq!(f[2].sub, Some(plain(&["id", "username"])));
        assert_eq!(f[3].name, "posts");
        assert_eq!(f[3].sub, Some(plain(&["id"])));
    }

    #[test]
    fn rejects_broken_syntax() {
        for bad in ["", "id,", "a{b", "a}b", "a.limit(3"] {
            assert_eq!(parse(bad).unwrap_err().code, 100, "{bad}");
        }
    }
}
