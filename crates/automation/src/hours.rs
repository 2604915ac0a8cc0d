//! Business hours per workspace, in the workspace's time zone.
//!
//! Semantics, chosen so that the schedule reads like the one a business would write on its door:
//! - `weekly[0]` is Monday, `weekly[6]` Sunday; each entry is a list of `(start, end)` local
//!   wall-clock intervals, half-open (`start` is open, `end` is closed). Overlapping intervals
//!   simply merge.
//! - An interval with `end <= start` crosses midnight: it ends at `end` on the next day. So
//!   `(22:00, 02:00)` on Friday is open until Saturday 02:00, `(18:00, 00:00)` is open until
//!   midnight and `(00:00, 00:00)` is the whole day.
//! - An interval belongs to the day it starts on. A holiday removes the intervals that start on
//!   that local date, so Friday's `(22:00, 02:00)` still runs into a Saturday holiday.
//! - Daylight saving time: a start or end that falls into a skipped hour (spring forward) moves to
//!   the first instant after the gap; in a repeated hour (fall back) a start takes the earlier
//!   occurrence and an end the later one, so the interval covers every moment the wall clock shows
//!   a time inside it. Each interval is thus one span of real time, which keeps `is_open` and
//!   `next_open` consistent.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::{GapInfo, Tz};
use serde::{Deserialize, Serialize};

/// How far `next_open` and `last_close` look, in days: a year of holidays plus slack.
const SEARCH_DAYS: i64 = 400;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// An IANA name such as "Europe/Berlin" in JSON.
    pub time_zone: Tz,
    /// Monday..Sunday; an empty list is closed all day.
    pub weekly: [Vec<(NaiveTime, NaiveTime)>; 7],
    /// Local dates on which no interval starts.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// Sent (once per closed period) when a customer writes while closed; a template, see
    /// [`crate::render`].
    #[serde(default)]
    pub away_message: Option<String>,
}

impl BusinessHours {
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let today = self.local_date(at);
        // An interval containing `at` starts on the local day of `at` or the day before (it may
        // cross midnight); the day after only matters around odd transitions at midnight.
        [today.pred_opt(), Some(today), today.succ_opt()]
            .into_iter()
            .flatten()
            .flat_map(|day| self.spans(day))
            .any(|(start, end)| start <= at && at < end)
    }

    /// The earliest instant at or after `at` when the business is open: `at` itself while open,
    /// `None` when no interval opens within about a year.
    pub fn next_open(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = self.local_date(at);
        let mut best: Option<DateTime<Utc>> = None;
        for offset in -1..=SEARCH_DAYS {
            let Some(day) = today.checked_add_signed(TimeDelta::days(offset)) else {
                break;
            };
            // Intervals start in day order, so once one day has produced a candidate only the
            // next day can still (through a DST quirk at midnight) produce an earlier one.
            if let Some(found) = best
                && self
                    .local_date(found)
                    .checked_add_signed(TimeDelta::days(1))
                    .is_none_or(|limit| day > limit)
            {
                break;
            }
            for (start, end) in self.spans(day) {
                if end > at && start < end {
                    let candidate = start.max(at);
                    best = Some(best.map_or(candidate, |b| b.min(candidate)));
                }
            }
        }
        best
    }

    /// When the current closed period began: the latest instant at or before `at` at which an
    /// open period ended. Only meaningful while closed (while open it is the end of an earlier
    /// interval); `None` when nothing closed within about a year.
    pub fn last_close(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = self.local_date(at);
        let mut best: Option<DateTime<Utc>> = None;
        for offset in -1..=SEARCH_DAYS {
            let Some(day) = today.checked_sub_signed(TimeDelta::days(offset)) else {
                break;
            };
            // An interval starting earlier than the day before the best one's start cannot end
            // later than it: intervals are shorter than two days.
            if let Some(found) = best
                && day
                    .checked_add_signed(TimeDelta::days(2))
                    .is_some_and(|limit| limit < self.local_date(found))
            {
                break;
            }
            for (start, end) in self.spans(day) {
                if end <= at && start < end {
                    best = Some(best.map_or(end, |b| b.max(end)));
                }
            }
        }
        best
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.time_zone).date_naive()
    }

    /// The intervals starting on `day`, as real-time spans.
    fn spans(&self, day: NaiveDate) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let intervals: &[(NaiveTime, NaiveTime)] = if self.holidays.contains(&day) {
            &[]
        } else {
            &self.weekly[day.weekday().num_days_from_monday() as usize]
        };
        intervals.iter().filter_map(move |&(start, end)| {
            let end_day = if end <= start { day.succ_opt()? } else { day };
            let start = resolve(self.time_zone, day.and_time(start), Pick::Earliest)?;
            let end = resolve(self.time_zone, end_day.and_time(end), Pick::Latest)?;
            Some((start, end))
        })
    }
}

#[derive(Clone, Copy)]
enum Pick {
    Earliest,
    Latest,
}

/// The real instant of a local wall-clock time, resolving DST gaps and folds as the module doc
/// describes.
fn resolve(tz: Tz, local: NaiveDateTime, pick: Pick) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(earliest, latest) => Some(
            match pick {
                Pick::Earliest => earliest,
                Pick::Latest => latest,
            }
            .with_timezone(&Utc),
        ),
        chrono::LocalResult::None => {
            let after_gap = GapInfo::new(&local, &tz).and_then(|gap| gap.end);
            match after_gap {
                Some(t) => Some(t.with_timezone(&Utc)),
                // The gap is at the edge of the zone's known history: shift by the offset in
                // force at that UTC reading, which is off by at most the gap's length.
                None => {
                    let offset = tz.offset_from_utc_datetime(&local);
                    let fixed = chrono::Offset::fix(&offset);
                    local
                        .checked_sub_signed(TimeDelta::seconds(i64::from(fixed.local_minus_utc())))
                        .map(|utc| utc.and_utc())
                }
            }
        }
    }
}
