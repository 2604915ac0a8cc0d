//! Inbox analytics, the pure part (issue 5): days in a time zone, percentiles, and the
//! aggregation of activity facts into rows. See `crate::analytics` for what each fact means.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, NaiveDate, TimeZone};
use chrono_tz::Tz;

/// The longest range one request may ask for.
pub const MAX_DAYS: u64 = 366;

/// One kind of fact in the activity log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactKind {
    /// A conversation was created, or reopened after it was resolved.
    Opened,
    Resolved,
    MessageIn,
    /// An outbound message Meta took (or its echo showed).
    MessageOut,
    /// The first outbound message after the customer message that opened the conversation.
    FirstResponse,
    /// A send attempt failed (the reason says why).
    Failed,
    Handoff,
}

impl FactKind {
    pub const ALL: [FactKind; 7] = [
        Self::Opened,
        Self::Resolved,
        Self::MessageIn,
        Self::MessageOut,
        Self::FirstResponse,
        Self::Failed,
        Self::Handoff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Resolved => "resolved",
            Self::MessageIn => "message_in",
            Self::MessageOut => "message_out",
            Self::FirstResponse => "first_response",
            Self::Failed => "failed",
            Self::Handoff => "handoff",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

/// Who wrote an outbound message, as analytics counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    Human,
    Automation,
    Ai,
    /// Sent outside Scifer (an echo from Meta's own inbox or another app).
    Unknown,
}

/// One fact as the aggregation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub kind: FactKind,
    pub channel_id: String,
    pub agent_id: String,
    pub author: Author,
    pub at_ms: i64,
    /// Resolution time on `Resolved` (None when the opening is unknown), response time on
    /// `FirstResponse`.
    pub duration_ms: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Workspace,
    Channel,
    Agent,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidRange {
    #[error("{0} is not a day (YYYY-MM-DD)")]
    Day(String),
    #[error("{0} is not an IANA time zone (e.g. Europe/Paris)")]
    TimeZone(String),
    #[error("to_day is before from_day")]
    Reversed,
    #[error("at most {MAX_DAYS} days per request")]
    TooLong,
}

/// Whole days `from..=to` in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
}

impl DayRange {
    /// `time_zone` empty means UTC.
    pub fn parse(from: &str, to: &str, time_zone: &str) -> Result<Self, InvalidRange> {
        let day = |d: &str| {
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| InvalidRange::Day(d.to_string()))
        };
        let (from, to) = (day(from)?, day(to)?);
        let tz = match time_zone.trim() {
            "" => Tz::UTC,
            name => name
                .parse::<Tz>()
                .map_err(|_| InvalidRange::TimeZone(name.to_string()))?,
        };
        if to < from {
            return Err(InvalidRange::Reversed);
        }
        if (to - from).num_days() >= MAX_DAYS as i64 {
            return Err(InvalidRange::TooLong);
        }
        Ok(Self { from, to, tz })
    }

    /// `[start, end)` in Unix ms: local midnight of `from` to local midnight after `to`.
    pub fn bounds_ms(&self) -> (i64, i64) {
        let after = self.to.checked_add_days(Days::new(1)).unwrap_or(self.to);
        (self.midnight_ms(self.from), self.midnight_ms(after))
    }

    /// The first instant of `day` in the zone (a day starting inside a DST gap starts at the
    /// first time that exists).
    fn midnight_ms(&self, day: NaiveDate) -> i64 {
        let mut t = day.and_hms_opt(0, 0, 0).unwrap_or_default();
        for _ in 0..4 {
            if let Some(at) = self.tz.from_local_datetime(&t).earliest() {
                return at.timestamp_millis();
            }
            t += chrono::Duration::minutes(30);
        }
        t.and_utc().timestamp_millis()
    }

    /// The local day of an instant.
    pub fn day_of(&self, at_ms: i64) -> NaiveDate {
        match self.tz.timestamp_millis_opt(at_ms).single() {
            Some(at) => at.date_naive(),
            None => NaiveDate::default(),
        }
    }
}

/// Count, median and 90th percentile of durations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: i64,
    pub median_ms: i64,
    pub p90_ms: i64,
}

/// The nearest-rank percentile: the smallest value with at least `p`% of the values at or below
/// it, i.e. the value of rank `ceil(p/100 x n)` in ascending order. Always one of the values
/// (no interpolation), so a median of two values is the lower one. 0 for no values.
pub fn nearest_rank(sorted: &[i64], p: u32) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len() as u64;
    let rank = (u64::from(p.min(100)) * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

impl Stats {
    pub fn of(mut values: Vec<i64>) -> Self {
        values.sort_unstable();
        Self {
            count: values.len() as i64,
            median_ms: nearest_rank(&values, 50),
            p90_ms: nearest_rank(&values, 90),
        }
    }
}

/// The figures of one day and group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub day: NaiveDate,
    pub group: String,
    pub opened: i64,
    pub resolved: i64,
    pub messages_in: i64,
    pub messages_out: i64,
    pub replies_by_humans: i64,
    pub replies_by_automation: i64,
    pub replies_by_ai: i64,
    pub first_response: Stats,
    pub resolution: Stats,
    pub failed: BTreeMap<String, i64>,
    pub handoffs: i64,
}

/// Rows by day then group, for the facts inside `range` (others are ignored).
pub fn aggregate(facts: &[Fact], range: &DayRange, group_by: GroupBy) -> Vec<Row> {
    #[derive(Default)]
    struct Acc {
        row: Row,
        responses: Vec<i64>,
        resolutions: Vec<i64>,
    }
    let (start, end) = range.bounds_ms();
    let mut acc: HashMap<(NaiveDate, String), Acc> = HashMap::new();
    for f in facts.iter().filter(|f| f.at_ms >= start && f.at_ms < end) {
        let day = range.day_of(f.at_ms);
        let group = match group_by {
            GroupBy::Workspace => String::new(),
            GroupBy::Channel => f.channel_id.clone(),
            GroupBy::Agent => f.agent_id.clone(),
        };
        let a = acc.entry((day, group)).or_default();
        let r = &mut a.row;
        match f.kind {
            FactKind::Opened => r.opened += 1,
            FactKind::Resolved => {
                r.resolved += 1;
                a.resolutions.extend(f.duration_ms);
            }
            FactKind::MessageIn => r.messages_in += 1,
            FactKind::MessageOut => {
                r.messages_out += 1;
                match f.author {
                    Author::Human => r.replies_by_humans += 1,
                    Author::Automation => r.replies_by_automation += 1,
                    Author::Ai => r.replies_by_ai += 1,
                    Author::Unknown => {}
                }
            }
            FactKind::FirstResponse => a.responses.extend(f.duration_ms),
            FactKind::Failed => *r.failed.entry(f.reason.clone()).or_default() += 1,
            FactKind::Handoff => r.handoffs += 1,
        }
    }
    let mut rows: Vec<Row> = acc
        .into_iter()
        .map(|((day, group), a)| Row {
            day,
            group,
            first_response: Stats::of(a.responses),
            resolution: Stats::of(a.resolutions),
            ..a.row
        })
        .collect();
    rows.sort_by(|a, b| (a.day, &a.group).cmp(&(b.day, &b.group)));
    rows
}

/// `YYYY-MM-DD`.
pub fn day_string(day: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", day.year(), day.month(), day.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_an_actual_value() {
        assert_eq!(nearest_rank(&[], 50), 0);
        assert_eq!(nearest_rank(&[7], 50), 7);
        assert_eq!(nearest_rank(&[7], 90), 7);
        // Two values: the median is the lower one (rank ceil(1.0) = 1), p90 the upper.
        assert_eq!(nearest_rank(&[10, 20], 50), 10);
        assert_eq!(nearest_rank(&[10, 20], 90), 20);
        let ten: Vec<i64> = (1..=10).map(|v| v * 100).collect();
        assert_eq!(nearest_rank(&ten, 50), 500);
        assert_eq!(nearest_rank(&ten, 90), 900);
        let eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(nearest_rank(&eleven, 50), 6);
        assert_eq!(nearest_rank(&eleven, 90), 10, "ceil(9.9) = 10");
        assert_eq!(nearest_rank(&eleven, 100), 11);
    }

    #[test]
    fn stats_sort_first() {
        assert_eq!(
            Stats::of(vec![300, 100, 200]),
            Stats {
                count: 3,
                median_ms: 200,
                p90_ms: 300
            }
        );
        assert_eq!(Stats::of(vec![]), Stats::default());
    }

    #[test]
    fn ranges_are_validated() {
        assert!(DayRange::parse("2026-03-01", "2026-03-31", "Europe/Paris").is_ok());
        assert_eq!(
            DayRange::parse("2026-3-x", "2026-03-31", ""),
            Err(InvalidRange::Day("2026-3-x".into()))
        );
        assert_eq!(
            DayRange::parse("2026-03-01", "2026-03-31", "Mars/Olympus"),
            Err(InvalidRange::TimeZone("Mars/Olympus".into()))
        );
        assert_eq!(
            DayRange::parse("2026-03-02", "2026-03-01", ""),
            Err(InvalidRange::Reversed)
        );
        assert!(DayRange::parse("2025-01-01", "2025-12-31", "").is_ok());
        assert_eq!(
            DayRange::parse("2024-01-01", "2025-01-01", ""),
            Err(InvalidRange::TooLong)
        );
    }

    #[test]
    fn days_follow_the_time_zone_and_its_dst() {
        // Paris is UTC+1 in winter: 23:30 UTC on the 1st is already the 2nd there.
        let paris = DayRange::parse("2026-01-01", "2026-01-02", "Europe/Paris").unwrap();
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 1, 1, 23, 30, 0)
            .unwrap()
            .timestamp_millis();
        assert_eq!(paris.day_of(at), NaiveDate::from_ymd_opt(2026, 1, 2).unwrap());
        let utc = DayRange::parse("2026-01-01", "2026-01-02", "").unwrap();
        assert_eq!(utc.day_of(at), NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let (start, end) = paris.bounds_ms();
        assert_eq!(
            start,
            chrono::Utc
                .with_ymd_and_hms(2025, 12, 31, 23, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(end - start, 2 * 86_400_000);
        // The day DST starts has 23 hours.
        let spring = DayRange::parse("2026-03-29", "2026-03-29", "Europe/Paris").unwrap();
        let (s, e) = spring.bounds_ms();
        assert_eq!(e - s, 23 * 3_600_000);
    }

    fn fact(kind: FactKind, channel: &str, agent: &str, at_ms: i64) -> Fact {
        Fact {
            kind,
            channel_id: channel.into(),
            agent_id: agent.into(),
            author: Author::Unknown,
            at_ms,
            duration_ms: None,
            reason: String::new(),
        }
    }

    #[test]
    fn facts_become_rows_per_day_and_group() {
        let range = DayRange::parse("2026-01-01", "2026-01-02", "").unwrap();
        let day1 = range.bounds_ms().0;
        let day2 = day1 + 86_400_000;
        let mut facts = vec![
            fact(FactKind::Opened, "c1", "a1", day1),
            fact(FactKind::Opened, "c2", "a2", day1 + 5),
            fact(FactKind::MessageIn, "c1", "a1", day1 + 1),
            Fact {
                author: Author::Human,
                ..fact(FactKind::MessageOut, "c1", "a1", day1 + 2)
            },
            Fact {
                author: Author::Automation,
                ..fact(FactKind::MessageOut, "c2", "", day2)
            },
            Fact {
                author: Author::Ai,
                ..fact(FactKind::MessageOut, "c2", "", day2 + 1)
            },
            Fact {
                duration_ms: Some(60_000),
                ..fact(FactKind::FirstResponse, "c1", "a1", day1 + 2)
            },
            Fact {
                duration_ms: Some(120_000),
                ..fact(FactKind::FirstResponse, "c2", "a2", day1 + 3)
            },
            Fact {
                duration_ms: Some(3_600_000),
                ..fact(FactKind::Resolved, "c1", "a1", day2 + 10)
            },
            // A resolution whose opening is unknown counts, without a duration.
            fact(FactKind::Resolved, "c2", "a2", day2 + 11),
            Fact {
                reason: "window_closed".into(),
                ..fact(FactKind::Failed, "c1", "a1", day2 + 12)
            },
            Fact {
                reason: "window_closed".into(),
                ..fact(FactKind::Failed, "c2", "a2", day2 + 13)
            },
            fact(FactKind::Handoff, "c1", "a1", day2 + 14),
        ];
        // Outside the range: ignored.
        facts.push(fact(FactKind::Opened, "c1", "a1", day1 - 1));
        facts.push(fact(FactKind::Opened, "c1", "a1", day2 + 86_400_000));

        let ws = aggregate(&facts, &range, GroupBy::Workspace);
        assert_eq!(ws.len(), 2);
        let (d1, d2) = (&ws[0], &ws[1]);
        assert_eq!(day_string(d1.day), "2026-01-01");
        assert_eq!(
            (d1.opened, d1.messages_in, d1.messages_out, d1.replies_by_humans),
            (2, 1, 1, 1)
        );
        assert_eq!(
            d1.first_response,
            Stats {
                count: 2,
                median_ms: 60_000,
                p90_ms: 120_000
            }
        );
        assert_eq!(
            (d2.messages_out, d2.replies_by_automation, d2.replies_by_ai),
            (2, 1, 1)
        );
        assert_eq!(d2.resolved, 2);
        assert_eq!(d2.resolution.count, 1);
        assert_eq!(d2.resolution.median_ms, 3_600_000);
        assert_eq!(d2.failed, BTreeMap::from([("window_closed".to_string(), 2)]));
        assert_eq!(d2.handoffs, 1);

        let by_channel = aggregate(&facts, &range, GroupBy::Channel);
        let groups: Vec<(String, &str)> = by_channel
            .iter()
            .map(|r| (day_string(r.day), r.group.as_str()))
            .collect();
        assert_eq!(
            groups,
            vec![
                ("2026-01-01".to_string(), "c1"),
                ("2026-01-01".to_string(), "c2"),
                ("2026-01-02".to_string(), "c1"),
                ("2026-01-02".to_string(), "c2"),
            ]
        );
        let by_agent = aggregate(&facts, &range, GroupBy::Agent);
        let unassigned = by_agent.iter().find(|r| r.group.is_empty()).unwrap();
        assert_eq!(unassigned.messages_out, 2);
    }

    #[test]
    fn fact_kinds_round_trip() {
        for k in FactKind::ALL {
            assert_eq!(FactKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(FactKind::parse("nope"), None);
    }
}
