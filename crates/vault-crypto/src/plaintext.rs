use zeroize::{Zeroize, Zeroizing};

/// Plaintext secret bytes (an access token), zeroized on drop.
///
/// Deliberately implements neither `Debug`, `Display` nor `Clone` (a compile-time guard in
/// `lib.rs` keeps it that way for the first two): the only way to see the bytes is to call
/// [`Plaintext::expose`] or one of its siblings, which makes every use greppable.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Takes ownership of `bytes`; the whole allocation is zeroized when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Takes ownership of the string's buffer without copying it.
    pub fn from_string(s: String) -> Self {
        Self::new(s.into_bytes())
    }

    pub(crate) fn from_zeroizing(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as UTF-8, or `None` if they are not UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Moves the bytes (without copying) into a zeroizing `String`; `None` if they are not
    /// UTF-8, in which case the bytes are zeroized before returning.
    pub fn into_string(self) -> Option<Zeroizing<String>> {
        let Self(mut bytes) = self;
        // Take the Vec out, leaving an empty one behind in the Zeroizing wrapper.
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Some(Zeroizing::new(s)),
            Err(err) => {
                err.into_bytes().zeroize();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn string_accessors() {
        let p = Plaintext::from_string("EAAB-tøken".to_owned());
        assert_eq!(p.expose(), "EAAB-tøken".as_bytes());
        assert_eq!(p.expose_str(), Some("EAAB-tøken"));
        assert_eq!(p.into_string().unwrap().as_str(), "EAAB-tøken");
    }

    #[test]
    fn non_utf8_has_no_string_view() {
        let p = Plaintext::new(vec![0x66, 0xff, 0x6f]);
        assert_eq!(p.expose(), &[0x66, 0xff, 0x6f]);
        assert_eq!(p.expose_str(), None);
        assert!(p.into_string().is_none());
    }
}
