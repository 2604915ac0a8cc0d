//! Conversation labels (`vip`, `billing`, `follow-up`): lowercase letters, digits, '-' and '_',
//! as Chatwoot's; case is folded so `VIP` and `vip` are one label.

pub const MAX_LABEL_CHARS: usize = 50;
/// Labels one conversation may carry.
pub const MAX_LABELS_PER_CONVERSATION: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label(String);

#[derive(Debug, thiserror::Error)]
#[error("a label must be 1-{MAX_LABEL_CHARS} letters, digits, '-' or '_' (got {0:?})")]
pub struct InvalidLabel(pub String);

impl Label {
    pub fn parse(raw: &str) -> Result<Self, InvalidLabel> {
        let label = raw.trim().to_lowercase();
        let valid = !label.is_empty()
            && label.len() <= MAX_LABEL_CHARS
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(label))
        } else {
            Err(InvalidLabel(raw.chars().take(MAX_LABEL_CHARS + 10).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_folded_and_checked() {
        assert_eq!(Label::parse(" VIP ").unwrap().as_str(), "vip");
        assert_eq!(Label::parse("follow-up_2").unwrap().as_str(), "follow-up_2");
        for bad in ["", " ", "two words", "a%b", "ção", &"x".repeat(51)] {
            assert!(Label::parse(bad).is_err(), "{bad:?}");
        }
    }
}
