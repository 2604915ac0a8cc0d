//! Meta's redelivery: retry immediately, then less and less often, until a cap (36 h for
//! generic Graph webhooks, 7 days for WhatsApp), after which the update is dropped.

use std::time::Duration;

use tokio::time::Instant;

use super::delivery::Delivery;
use super::sender::{SendMode, SendOutcome, WebhookSender};

const HOUR: Duration = Duration::from_secs(3600);

/// When to try again after a failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before attempt 2, 3, ...; attempts = `delays.len() + 1` at most.
    pub delays: Vec<Duration>,
    /// Stop when the next delay would take the total scheduled waiting past this. Counted on
    /// the schedule, not the wall clock, so slow answers do not eat the last retry and tests
    /// stay deterministic.
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn none() -> Self {
        Self {
            delays: Vec::new(),
            give_up_after: Duration::ZERO,
        }
    }

    /// Exactly these delays (tests pass millisecond schedules).
    pub fn fixed(delays: Vec<Duration>) -> Self {
        let give_up_after = delays.iter().sum();
        Self {
            delays,
            give_up_after,
        }
    }

    /// An immediate retry, then `first`, `first*factor`, `first*factor²`, ... until the total
    /// reaches `give_up_after` (the last delay is shortened to land exactly on the cap).
    pub fn backoff(first: Duration, factor: u32, give_up_after: Duration) -> Self {
        let mut delays = vec![Duration::ZERO];
        let mut total = Duration::ZERO;
        let mut next = first.max(Duration::from_millis(1));
        while total < give_up_after {
            let d = next.min(give_up_after - total);
            delays.push(d);
            total += d;
            next = next.saturating_mul(factor.max(1));
        }
        Self {
            delays,
            give_up_after,
        }
    }

    /// Generic Graph webhooks (feed, comments, Messenger): up to 36 hours.
    pub fn meta_generic() -> Self {
        Self::backoff(Duration::from_secs(60), 4, 36 * HOUR)
    }

    /// WhatsApp Cloud API: up to 7 days.
    pub fn meta_whatsapp() -> Self {
        Self::backoff(Duration::from_secs(60), 4, 7 * 24 * HOUR)
    }

    /// The real policy for a delivery's `object`.
    pub fn meta_for(delivery: &Delivery) -> Self {
        if delivery.object == super::delivery::object::WHATSAPP {
            Self::meta_whatsapp()
        } else {
            Self::meta_generic()
        }
    }
}

/// One try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based.
    pub number: u32,
    /// Time since the first attempt started.
    pub started_after: Duration,
    /// The receiver's answer, or the transport error's text (connection refused, timeout).
    pub result: Result<SendOutcome, String>,
}

/// What [`WebhookSender::deliver_with_retry`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryReport {
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
}

impl RetryReport {
    /// Whether some attempt got a `200`.
    pub fn delivered(&self) -> bool {
        self.attempts
            .last()
            .is_some_and(|a| a.result.as_ref().is_ok_and(SendOutcome::accepted))
    }

    /// The statuses seen (`None` for transport errors), handy in assertions.
    pub fn statuses(&self) -> Vec<Option<u16>> {
        self.attempts
            .iter()
            .map(|a| a.result.as_ref().ok().map(|o| o.status.as_u16()))
            .collect()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl WebhookSender {
    /// POST `delivery` until a `200`, retrying on any other status or transport error per
    /// `policy`. The same bytes and signature are resent each time, as Meta does.
    pub async fn deliver_with_retry(
        &self,
        url: &str,
        delivery: &Delivery,
        mode: &SendMode,
        policy: &RetryPolicy,
    ) -> RetryReport {
        let req = self.prepare(delivery, mode);
        let start = Instant::now();
        let mut attempts = Vec::new();
        let mut delays = policy.delays.iter();
        let mut number = 1;
        let mut waited = Duration::ZERO;
        loop {
            let started_after = start.elapsed();
            let result = self.send_prepared(url, &req).await.map_err(|e| error_chain(&e));
            let ok = result.as_ref().is_ok_and(SendOutcome::accepted);
            match &result {
                Ok(o) if ok => tracing::debug!(url, attempt = number, status = %o.status, "webhook accepted"),
                Ok(o) => tracing::warn!(url, attempt = number, status = %o.status, "webhook refused"),
                Err(e) => tracing::warn!(url, attempt = number, error = %e, "webhook not delivered"),
            }
            attempts.push(Attempt {
                number,
                started_after,
                result,
            });
            if ok {
                break;
            }
            let Some(delay) = delays.next() else { break };
            waited = waited.saturating_add(*delay);
            if waited > policy.give_up_after {
                break;
            }
            tokio::time::sleep(*delay).await;
            number += 1;
        }
        RetryReport { attempts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_immediately_and_caps() {
        let p = RetryPolicy::meta_generic();
        assert_eq!(p.delays[0], Duration::ZERO);
        assert_eq!(p.delays[1], Duration::from_secs(60));
        assert!(
            p.delays
                .windows(2)
                .skip(1)
                .take(p.delays.len() - 3)
                .all(|w| w[1] > w[0])
        );
        assert_eq!(p.delays.iter().sum::<Duration>(), 36 * HOUR);
        let wa = RetryPolicy::meta_whatsapp();
        assert_eq!(wa.delays.iter().sum::<Duration>(), 7 * 24 * HOUR);
        assert_eq!(wa.give_up_after, 7 * 24 * HOUR);
    }

    #[test]
    fn fixed_sums_its_delays() {
        let p = RetryPolicy::fixed(vec![Duration::from_millis(5), Duration::from_millis(10)]);
        assert_eq!(p.give_up_after, Duration::from_millis(15));
        assert!(RetryPolicy::none().delays.is_empty());
    }
}
