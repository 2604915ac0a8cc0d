//! One error type for the whole binary: a message with the cause chain flattened into it. It does not
//! implement `std::error::Error`, which is what lets `?` convert any error into it.

use std::fmt;

pub struct BenchError(String);

pub type Result<T> = std::result::Result<T, BenchError>;

impl BenchError {
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl<E: std::error::Error> From<E> for BenchError {
    fn from(e: E) -> Self {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            let line = cause.to_string();
            // Many errors already repeat their source in their own message.
            if !text.contains(&line) {
                text.push_str(": ");
                text.push_str(&line);
            }
            source = cause.source();
        }
        Self(text)
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// `main` prints the error with `Debug`; show the message, not a struct dump.
impl fmt::Debug for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
