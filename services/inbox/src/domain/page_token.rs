//! Keyset pagination. A page token is an opaque encoding of the sort key of the last item returned,
//! `(timestamp_ms, id)`; callers must not build or parse it, so it is hex of a versioned string.

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid page token")]
pub struct InvalidPageToken;

const VERSION: &str = "v1";

impl Cursor {
    pub fn encode(&self) -> String {
        hex::encode(format!("{VERSION}|{}|{}", self.at_ms, self.id))
    }

    /// `Ok(None)` for the empty token (the first page).
    pub fn decode(token: &str) -> Result<Option<Self>, InvalidPageToken> {
        if token.is_empty() {
            return Ok(None);
        }
        let bytes = hex::decode(token).map_err(|_| InvalidPageToken)?;
        let text = String::from_utf8(bytes).map_err(|_| InvalidPageToken)?;
        let mut parts = text.splitn(3, '|');
        let (Some(VERSION), Some(at), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidPageToken);
        };
        let at_ms = at.parse().map_err(|_| InvalidPageToken)?;
        if id.is_empty() {
            return Err(InvalidPageToken);
        }
        Ok(Some(Self {
            at_ms,
            id: id.to_string(),
        }))
    }
}

/// A requested page size: 0 or negative means the default, anything above the maximum is capped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u64);

impl PageSize {
    pub fn from_request(requested: i32) -> Self {
        match u64::try_from(requested) {
            Ok(0) | Err(_) => Self(DEFAULT_PAGE_SIZE),
            Ok(n) => Self(n.min(MAX_PAGE_SIZE)),
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            at_ms: 1_767_225_600_000,
            id: "0190-abc".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), Some(c));
        assert_eq!(Cursor::decode("").unwrap(), None);
        for bad in [
            "zz",
            &hex::encode("v2|1|x"),
            &hex::encode("v1|x|y"),
            &hex::encode("v1|1|"),
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn page_sizes_default_and_cap() {
        assert_eq!(PageSize::from_request(0).get(), 50);
        assert_eq!(PageSize::from_request(-3).get(), 50);
        assert_eq!(PageSize::from_request(7).get(), 7);
        assert_eq!(PageSize::from_request(10_000).get(), 200);
    }
}
