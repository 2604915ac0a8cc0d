//! The time inbox stamps the team's actions with (status changes, sends). The system clock,
//! except that tests may pin it through [`Clock::pin`] (reached via `Engine::clock`) to script a
//! history with exact times; nothing in production pins it.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, TimeZone, Utc};

/// 0 = follow the system clock.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    pinned_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    pub fn now_ms(&self) -> i64 {
        match self.pinned_ms.load(Ordering::Relaxed) {
            0 => Utc::now().timestamp_millis(),
            pinned => pinned,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.now_ms())
            .single()
            .unwrap_or_else(Utc::now)
    }

    /// Stops time at `at_ms` (Unix ms) for every holder of this clock; 0 lets it run again.
    pub fn pin(&self, at_ms: i64) {
        self.pinned_ms.store(at_ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_stands_still_for_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        assert!((clock.now_ms() - Utc::now().timestamp_millis()).abs() < 5_000);
        clock.pin(1_700_000_000_000);
        assert_eq!(other.now_ms(), 1_700_000_000_000);
        assert_eq!(other.now().timestamp_millis(), 1_700_000_000_000);
        clock.pin(0);
        assert!(other.now_ms() > 1_700_000_000_000);
    }
}
