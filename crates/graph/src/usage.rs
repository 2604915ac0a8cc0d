//! Rate-limit bookkeeping (reference/meta-platform.md §8.2), as pure logic with an injectable
//! clock.
//!
//! Two kinds of bucket: the app (platform limit, `X-App-Usage`) and each business object (Page,
//! Instagram account, WABA: `X-Business-Use-Case-Usage`). The tracker
//! * records the usage percentages every response reports,
//! * slows calls down proportionally once a bucket's usage passes the threshold, and
//! * after a throttling error blocks the bucket (until `estimated_time_to_regain_access`, else an
//!   exponential backoff from one minute with jitter) and refuses calls to it locally, so we
//!   never hot-loop against Meta.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::GraphError;

/// Source of "now". Tests inject a [`ManualClock`].
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        *lock(&self.offset) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *lock(&self.offset)
    }
}

/// Which bucket a throttle applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ThrottleScope {
    /// The whole app: every call is refused.
    App,
    /// One Page / Instagram account / WABA: calls naming it as business object are refused.
    BusinessObject(String),
}

impl std::fmt::Display for ThrottleScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThrottleScope::App => f.write_str("the app"),
            ThrottleScope::BusinessObject(id) => write!(f, "business object {id}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsagePolicy {
    /// Usage percentage from which calls are delayed.
    pub threshold_pct: u32,
    /// Delay at 100 % usage; it grows linearly from zero at the threshold.
    pub max_delay: Duration,
    /// First backoff after a throttling error without `estimated_time_to_regain_access`.
    pub initial_backoff: Duration,
    /// Backoff ceiling (the backoff doubles with each throttle until a call succeeds).
    pub max_backoff: Duration,
}

impl UsagePolicy {
    pub fn new(threshold_pct: u32) -> Self {
        Self {
            threshold_pct,
            max_delay: Duration::from_secs(5),
            initial_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
        }
    }
}

/// `X-App-Usage`: percentages of the app's hourly platform limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppUsage {
    pub call_count: u32,
    pub total_time: u32,
    pub total_cputime: u32,
}

impl AppUsage {
    pub fn pct(&self) -> u32 {
        self.call_count.max(self.total_time).max(self.total_cputime)
    }
}

/// One entry of `X-Business-Use-Case-Usage` for one business object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucUsage {
    /// `pages`, `instagram`, `messenger`, `whatsapp_business_management`, ...
    pub usage_type: String,
    pub call_count: u32,
    pub total_time: u32,
    pub total_cputime: u32,
    /// Minutes until the object is no longer throttled; 0 unless throttled.
    pub estimated_time_to_regain_access: u32,
}

impl BucUsage {
    pub fn pct(&self) -> u32 {
        self.call_count.max(self.total_time).max(self.total_cputime)
    }
}

/// Parse `X-App-Usage: {"call_count":28,"total_time":25,"total_cputime":25}`.
pub fn parse_app_usage(header: &str) -> Option<AppUsage> {
    let v: Value = serde_json::from_str(header).ok()?;
    let obj = v.as_object()?;
    Some(AppUsage {
        call_count: pct_field(obj.get("call_count")),
        total_time: pct_field(obj.get("total_time")),
        total_cputime: pct_field(obj.get("total_cputime")),
    })
}

/// Headers are attacker-sized input as far as memory goes; ignore ids past this many.
const MAX_BUC_OBJECTS_PER_HEADER: usize = 100;
/// Bound on tracked business objects; unblocked entries are evicted first.
const MAX_TRACKED_OBJECTS: usize = 10_000;

/// Parse `X-Business-Use-Case-Usage: {"<id>":[{"type":"pages","call_count":85,...}]}`.
pub fn parse_buc_usage(header: &str) -> Option<BTreeMap<String, Vec<BucUsage>>> {
    let v: Value = serde_json::from_str(header).ok()?;
    let obj = v.as_object()?;
    let mut out = BTreeMap::new();
    for (id, entries) in obj.iter().take(MAX_BUC_OBJECTS_PER_HEADER) {
        let Some(entries) = entries.as_array() else {
            continue;
        };
        let parsed = entries
            .iter()
            .filter_map(Value::as_object)
            .take(16)
            .map(|e| BucUsage {
                usage_type: e
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .chars()
                    .take(64)
                    .collect(),
                call_count: pct_field(e.get("call_count")),
                total_time: pct_field(e.get("total_time")),
                total_cputime: pct_field(e.get("total_cputime")),
                estimated_time_to_regain_access: pct_field(e.get("estimated_time_to_regain_access")),
            })
            .collect();
        out.insert(id.clone(), parsed);
    }
    Some(out)
}

/// Non-negative integer (Meta sends ints; tolerate floats and numeric strings).
fn pct_field(v: Option<&Value>) -> u32 {
    let n = match v {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
        Some(Value::String(s)) => s.parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    };
    if n.is_finite() && n > 0.0 {
        n.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

/// The bucket a throttling error code blocks, or `None` if the code is not a bucket throttle.
/// 4 and 9 are app-wide; 17 (user), 32 (Page), 613 (endpoint) and 800xx (business use case) block
/// the business object the call was made for.
pub fn throttle_scope(code: i64, business_object: Option<&str>) -> Option<ThrottleScope> {
    match code {
        4 | 9 => Some(ThrottleScope::App),
        17 | 32 | 613 | 80000..=80014 => {
            business_object.map(|id| ThrottleScope::BusinessObject(id.to_owned()))
        }
        _ => None,
    }
}

/// Codes that block a bucket (app or business object), as opposed to per-message limits such as
/// WhatsApp's throughput (130429) or pair rate limit (131056).
pub fn is_bucket_throttle(code: i64) -> bool {
    matches!(code, 4 | 9 | 17 | 32 | 613 | 80000..=80014)
}

/// The delay before a call at `pct` usage: zero below `threshold_pct`, rising linearly to
/// `max_delay` at 100 % (and staying there above).
pub fn delay_for(pct: u32, threshold_pct: u32, max_delay: Duration) -> Duration {
    if pct < threshold_pct {
        return Duration::ZERO;
    }
    if threshold_pct >= 100 {
        return max_delay;
    }
    let span = f64::from(100 - threshold_pct);
    let over = f64::from((pct - threshold_pct).min(100 - threshold_pct));
    max_delay.mul_f64(over / span)
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    pct: u32,
    by_type: BTreeMap<String, u32>,
    blocked_until: Option<Instant>,
    /// Throttles since the last success: the backoff exponent.
    strikes: u32,
}

impl Bucket {
    fn blocked_for(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .filter(|until| *until > now)
            .map(|until| until - now)
    }

    /// `Err(remaining)` while blocked. When a block has just run out, the usage recorded with
    /// it is from before the wait and would slow the next call for nothing: forget it.
    fn check(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(remaining) = self.blocked_for(now) {
            return Err(remaining);
        }
        if self.blocked_until.take().is_some() {
            self.pct = 0;
            self.by_type.clear();
        }
        Ok(())
    }

    fn block_until(&mut self, until: Instant) {
        self.blocked_until = Some(self.blocked_until.map_or(until, |cur| cur.max(until)));
    }
}

#[derive(Debug, Default)]
struct State {
    app: Bucket,
    objects: HashMap<String, Bucket>,
}

impl State {
    /// The bucket for `id`, created if there is room (blocked buckets are never evicted).
    fn object(&mut self, id: &str, now: Instant) -> Option<&mut Bucket> {
        if !self.objects.contains_key(id) && self.objects.len() >= MAX_TRACKED_OBJECTS {
            self.objects
                .retain(|_, b| b.blocked_for(now).is_some() || b.strikes > 0);
            if self.objects.len() >= MAX_TRACKED_OBJECTS {
                return None;
            }
        }
        Some(self.objects.entry(id.to_owned()).or_default())
    }
}

/// Per-bucket usage and blocks; shared by every call of a [`crate::GraphClient`].
pub struct UsageTracker {
    policy: UsagePolicy,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl std::fmt::Debug for UsageTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageTracker")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl UsageTracker {
    pub fn new(policy: UsagePolicy) -> Self {
        Self::with_clock(policy, Arc::new(SystemClock))
    }

    pub fn with_clock(policy: UsagePolicy, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    pub fn policy(&self) -> &UsagePolicy {
        &self.policy
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Before a call: `Err(GraphError::Throttled)` if the app or the business object is blocked,
    /// otherwise the delay to apply first (zero below the threshold).
    pub fn admit(&self, business_object: Option<&str>) -> Result<Duration, GraphError> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        state
            .app
            .check(now)
            .map_err(|retry_after| GraphError::Throttled {
                retry_after,
                scope: ThrottleScope::App,
            })?;
        let mut pct = state.app.pct;
        if let Some(id) = business_object
            && let Some(bucket) = state.objects.get_mut(id)
        {
            bucket.check(now).map_err(|retry_after| GraphError::Throttled {
                retry_after,
                scope: ThrottleScope::BusinessObject(id.to_owned()),
            })?;
            pct = pct.max(bucket.pct);
        }
        Ok(delay_for(pct, self.policy.threshold_pct, self.policy.max_delay))
    }

    /// Record the usage headers of a response (success or error). Absent headers on a success
    /// mean low usage (Meta only sends them past some volume), so they reset the percentage.
    /// A business object reporting `estimated_time_to_regain_access > 0` is throttled: block it.
    pub fn record_headers(
        &self,
        business_object: Option<&str>,
        app_usage: Option<&str>,
        buc_usage: Option<&str>,
        success: bool,
    ) {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        match app_usage.and_then(parse_app_usage) {
            Some(usage) => {
                state.app.pct = usage.pct();
                state.app.by_type = BTreeMap::from([
                    ("call_count".to_owned(), usage.call_count),
                    ("total_time".to_owned(), usage.total_time),
                    ("total_cputime".to_owned(), usage.total_cputime),
                ]);
            }
            None if success => {
                state.app.pct = 0;
                state.app.by_type.clear();
            }
            None => {}
        }
        let buc = buc_usage.and_then(parse_buc_usage);
        if let Some(buc) = &buc {
            for (id, entries) in buc {
                let Some(bucket) = state.object(id, now) else {
                    continue;
                };
                bucket.pct = entries.iter().map(BucUsage::pct).max().unwrap_or(0);
                bucket.by_type = entries.iter().map(|e| (e.usage_type.clone(), e.pct())).collect();
                let regain = entries
                    .iter()
                    .map(|e| e.estimated_time_to_regain_access)
                    .max()
                    .unwrap_or(0);
                if regain > 0 {
                    bucket.block_until(now + Duration::from_secs(u64::from(regain) * 60));
                }
            }
        }
        if success
            && let Some(id) = business_object
            && !buc.as_ref().is_some_and(|b| b.contains_key(id))
            && let Some(bucket) = state.objects.get_mut(id)
        {
            bucket.pct = 0;
            bucket.by_type.clear();
        }
    }

    /// A call went through: the buckets it used start their backoff from scratch next time.
    pub fn record_success(&self, business_object: Option<&str>) {
        let mut state = lock(&self.state);
        state.app.strikes = 0;
        if let Some(id) = business_object
            && let Some(bucket) = state.objects.get_mut(id)
        {
            bucket.strikes = 0;
        }
    }

    /// Meta answered with a throttling error: block the bucket and return it with the time
    /// until it reopens. `None` when the code blocks nothing (not a bucket throttle, or an
    /// object-level throttle on a call that named no business object).
    ///
    /// Call after [`Self::record_headers`] for the same response, so a reported
    /// `estimated_time_to_regain_access` takes precedence over the backoff.
    pub fn record_throttle(
        &self,
        code: i64,
        business_object: Option<&str>,
    ) -> Option<(ThrottleScope, Duration)> {
        let scope = throttle_scope(code, business_object)?;
        let now = self.clock.now();
        let jitter = jitter_fraction();
        let mut state = lock(&self.state);
        let bucket = match &scope {
            ThrottleScope::App => &mut state.app,
            ThrottleScope::BusinessObject(id) => state.object(id, now)?,
        };
        // Concurrent calls answered while the bucket is already blocked (or blocked by the
        // regain estimate of this very response) must not escalate the backoff.
        if bucket.blocked_for(now).is_none() {
            bucket.strikes = bucket.strikes.saturating_add(1);
            let backoff = backoff(&self.policy, bucket.strikes, jitter);
            bucket.block_until(now + backoff);
        }
        let retry_after = bucket.blocked_for(now).unwrap_or(self.policy.initial_backoff);
        Some((scope, retry_after))
    }

    pub fn snapshot(&self) -> UsageSnapshot {
        let now = self.clock.now();
        let state = lock(&self.state);
        let snap = |b: &Bucket| BucketSnapshot {
            pct: b.pct,
            by_type: b.by_type.clone(),
            blocked_until: b.blocked_until.filter(|u| *u > now),
            blocked_for: b.blocked_for(now),
            strikes: b.strikes,
        };
        UsageSnapshot {
            taken_at: now,
            app: snap(&state.app),
            objects: state
                .objects
                .iter()
                .map(|(id, b)| (id.clone(), snap(b)))
                .collect(),
        }
    }
}

/// `initial * 2^(strikes-1)`, capped, plus up to a quarter of it as jitter (`jitter` in [0,1)).
pub(crate) fn backoff(policy: &UsagePolicy, strikes: u32, jitter: f64) -> Duration {
    let exp = strikes.saturating_sub(1).min(20);
    let base = policy
        .initial_backoff
        .saturating_mul(1u32 << exp)
        .min(policy.max_backoff);
    base + base.mul_f64(0.25 * jitter.clamp(0.0, 1.0))
}

fn jitter_fraction() -> f64 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 2];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u16::from_le_bytes(bytes)) / 65536.0,
        Err(_) => 0.0,
    }
}

/// A poisoned lock only means another thread panicked mid-update; the counters stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Point-in-time view for metrics and tests.
#[derive(Clone, Debug)]
pub struct UsageSnapshot {
    pub taken_at: Instant,
    pub app: BucketSnapshot,
    pub objects: BTreeMap<String, BucketSnapshot>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketSnapshot {
    /// Highest reported percentage across the bucket's counters.
    pub pct: u32,
    /// App: `call_count`/`total_time`/`total_cputime`; business object: per usage type.
    pub by_type: BTreeMap<String, u32>,
    /// Set while the bucket is blocked.
    pub blocked_until: Option<Instant>,
    pub blocked_for: Option<Duration>,
    pub strikes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(threshold: u32) -> (Arc<ManualClock>, UsageTracker) {
        let clock = Arc::new(ManualClock::new());
        let t = UsageTracker::with_clock(UsagePolicy::new(threshold), clock.clone());
        (clock, t)
    }

    fn throttled(r: Result<Duration, GraphError>) -> (Duration, ThrottleScope) {
        match r {
            Err(GraphError::Throttled { retry_after, scope }) => (retry_after, scope),
            other => panic!("expected Throttled, got {other:?}"),
        }
    }

    #[test]
    fn parses_app_usage_header() {
        let u = parse_app_usage(r#"{"call_count":28,"total_time":25,"total_cputime":91}"#).unwrap();
        assert_eq!(
            u,
            AppUsage {
                call_count: 28,
                total_time: 25,
                total_cputime: 91
            }
        );
        assert_eq!(u.pct(), 91);
        assert_eq!(parse_app_usage("not json"), None);
        assert_eq!(parse_app_usage("{}").unwrap().pct(), 0);
    }

    #[test]
    fn parses_business_use_case_header() {
        let h = r#"{"1234567890":[{"type":"pages","call_count":85,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":0}],
                    "42":[{"type":"messenger","call_count":5,"total_cputime":1,"total_time":2,"estimated_time_to_regain_access":7},
                          {"type":"pages","call_count":10,"total_cputime":99,"total_time":2}]}"#;
        let m = parse_buc_usage(h).unwrap();
        assert_eq!(
            m["1234567890"],
            vec![BucUsage {
                usage_type: "pages".into(),
                call_count: 85,
                total_time: 30,
                total_cputime: 20,
                estimated_time_to_regain_access: 0
            }]
        );
        assert_eq!(m["42"].len(), 2);
        assert_eq!(m["42"][0].estimated_time_to_regain_access, 7);
        assert_eq!(m["42"][1].pct(), 99);
        assert!(parse_buc_usage("[1,2]").is_none());
    }

    #[test]
    fn record_headers_tracks_app_and_object_pct() {
        let (_clock, t) = tracker(80);
        t.record_headers(
            Some("p1"),
            Some(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#),
            Some(r#"{"p1":[{"type":"pages","call_count":85,"total_cputime":20,"total_time":30,"estimated_time_to_regain_access":0}]}"#),
            true,
        );
        let s = t.snapshot();
        assert_eq!(s.app.pct, 28);
        assert_eq!(s.app.by_type["total_time"], 25);
        assert_eq!(s.objects["p1"].pct, 85);
        assert_eq!(s.objects["p1"].by_type["pages"], 85);
        assert_eq!(s.objects["p1"].blocked_until, None);

        // A later successful response without headers means usage dropped.
        t.record_headers(Some("p1"), None, None, true);
        let s = t.snapshot();
        assert_eq!(s.app.pct, 0);
        assert_eq!(s.objects["p1"].pct, 0);
    }

    #[test]
    fn error_responses_without_headers_keep_usage() {
        let (_clock, t) = tracker(80);
        t.record_headers(None, Some(r#"{"call_count":90}"#), None, true);
        t.record_headers(None, None, None, false);
        assert_eq!(t.snapshot().app.pct, 90);
    }

    #[test]
    fn proportional_delay() {
        let max = Duration::from_secs(5);
        assert_eq!(delay_for(0, 80, max), Duration::ZERO);
        assert_eq!(delay_for(79, 80, max), Duration::ZERO);
        assert_eq!(delay_for(80, 80, max), Duration::ZERO);
        assert_eq!(delay_for(90, 80, max), Duration::from_millis(2500));
        assert_eq!(delay_for(95, 80, max), Duration::from_millis(3750));
        assert_eq!(delay_for(100, 80, max), max);
        assert_eq!(delay_for(250, 80, max), max);
        assert_eq!(delay_for(99, 100, max), Duration::ZERO);
        assert_eq!(delay_for(100, 100, max), max);
    }

    #[test]
    fn admit_uses_the_higher_of_app_and_object_usage() {
        let (_clock, t) = tracker(80);
        t.record_headers(
            Some("p1"),
            Some(r#"{"call_count":90}"#),
            Some(r#"{"p1":[{"type":"pages","call_count":100}]}"#),
            true,
        );
        assert_eq!(t.admit(None).unwrap(), Duration::from_millis(2500));
        assert_eq!(t.admit(Some("p1")).unwrap(), Duration::from_secs(5));
        assert_eq!(t.admit(Some("other")).unwrap(), Duration::from_millis(2500));
    }

    #[test]
    fn throttle_scopes_by_code() {
        assert_eq!(throttle_scope(4, Some("p")), Some(ThrottleScope::App));
        assert_eq!(throttle_scope(9, None), Some(ThrottleScope::App));
        for code in [17, 32, 613, 80000, 80001, 80006, 80007, 80014] {
            assert_eq!(
                throttle_scope(code, Some("p")),
                Some(ThrottleScope::BusinessObject("p".into())),
                "{code}"
            );
            assert_eq!(throttle_scope(code, None), None, "{code}");
        }
        for code in [80015, 100, 190, 130429, 2] {
            assert_eq!(throttle_scope(code, Some("p")), None, "{code}");
        }
    }

    #[test]
    fn object_throttle_blocks_only_that_object_until_backoff_passes() {
        let (clock, t) = tracker(80);
        let (scope, retry) = t.record_throttle(32, Some("p1")).unwrap();
        assert_eq!(scope, ThrottleScope::BusinessObject("p1".into()));
        assert!(
            retry >= Duration::from_secs(60) && retry < Duration::from_secs(75),
            "{retry:?}"
        );
        let (refused_for, scope) = throttled(t.admit(Some("p1")));
        assert_eq!(scope, ThrottleScope::BusinessObject("p1".into()));
        assert_eq!(refused_for, retry);
        assert!(t.admit(Some("p2")).is_ok());
        assert!(t.admit(None).is_ok());

        clock.advance(retry - Duration::from_millis(1));
        assert!(t.admit(Some("p1")).is_err());
        clock.advance(Duration::from_millis(1));
        assert_eq!(t.admit(Some("p1")).unwrap(), Duration::ZERO);
        assert_eq!(t.snapshot().objects["p1"].blocked_until, None);
    }

    #[test]
    fn app_throttle_blocks_every_call() {
        let (clock, t) = tracker(80);
        let (scope, retry) = t.record_throttle(4, Some("p1")).unwrap();
        assert_eq!(scope, ThrottleScope::App);
        assert_eq!(throttled(t.admit(None)).1, ThrottleScope::App);
        assert_eq!(throttled(t.admit(Some("p2"))).1, ThrottleScope::App);
        assert!(t.snapshot().app.blocked_until.is_some());
        clock.advance(retry);
        assert!(t.admit(Some("p2")).is_ok());
    }

    #[test]
    fn regain_access_estimate_wins_over_backoff() {
        let (clock, t) = tracker(80);
        t.record_headers(
            Some("waba"),
            None,
            Some(r#"{"waba":[{"type":"whatsapp_business_management","call_count":100,"estimated_time_to_regain_access":12}]}"#),
            false,
        );
        let (_, retry) = t.record_throttle(80007, Some("waba")).unwrap();
        assert_eq!(retry, Duration::from_secs(12 * 60));
        clock.advance(Duration::from_secs(11 * 60));
        assert_eq!(throttled(t.admit(Some("waba"))).0, Duration::from_secs(60));
        clock.advance(Duration::from_secs(60));
        // Reopened, and the 100 % recorded with the block no longer slows calls down.
        assert_eq!(t.admit(Some("waba")).unwrap(), Duration::ZERO);
        assert_eq!(t.snapshot().objects["waba"].pct, 0);
    }

    #[test]
    fn regain_estimate_in_any_response_blocks_the_object() {
        let (_clock, t) = tracker(80);
        t.record_headers(
            None,
            None,
            Some(r#"{"p9":[{"type":"pages","call_count":100,"estimated_time_to_regain_access":3}]}"#),
            true,
        );
        let (retry, scope) = throttled(t.admit(Some("p9")));
        assert_eq!(scope, ThrottleScope::BusinessObject("p9".into()));
        assert_eq!(retry, Duration::from_secs(180));
    }

    #[test]
    fn backoff_doubles_until_success_resets_it() {
        let (clock, t) = tracker(80);
        let (_, first) = t.record_throttle(613, Some("p1")).unwrap();
        clock.advance(first);
        let (_, second) = t.record_throttle(613, Some("p1")).unwrap();
        assert!(
            second >= Duration::from_secs(120) && second < Duration::from_secs(150),
            "{second:?}"
        );
        clock.advance(second);
        t.record_success(Some("p1"));
        let (_, third) = t.record_throttle(613, Some("p1")).unwrap();
        assert!(third < Duration::from_secs(75), "{third:?}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = UsagePolicy::new(80);
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_secs(60));
        assert_eq!(backoff(&p, 1, 1.0), Duration::from_secs(75));
        assert_eq!(backoff(&p, 3, 0.0), Duration::from_secs(240));
        assert_eq!(backoff(&p, 40, 0.0), Duration::from_secs(3600));
    }

    #[test]
    fn object_throttle_without_object_blocks_nothing() {
        let (_clock, t) = tracker(80);
        assert_eq!(t.record_throttle(32, None), None);
        assert!(t.admit(None).is_ok());
    }
}
