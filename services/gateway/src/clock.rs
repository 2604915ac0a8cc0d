//! The time the gateway's rules use (session expiry, the login-failure window). System time in
//! production; tests use an adjustable clock to move past an expiry without waiting for it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Added to system time; None in production.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// System time plus an offset that [`Clock::advance`] moves forward. For tests.
    pub fn adjustable() -> Self {
        Self {
            offset_ms: Some(Arc::new(AtomicI64::new(0))),
        }
    }

    /// Moves an adjustable clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset_ms {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            offset.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let offset = self.offset_ms.as_ref().map_or(0, |o| o.load(Ordering::SeqCst));
        chrono::Utc::now().timestamp_millis().saturating_add(offset)
    }
}

/// A duration in milliseconds, saturating (configured durations can be absurdly large).
pub fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
