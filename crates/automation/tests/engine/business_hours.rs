use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::America::New_York;
use chrono_tz::Europe::Berlin;
use chrono_tz::Tz;
use scifer_automation::BusinessHours;

use crate::{at, hm, office_hours};

const MON: usize = 0;
const WED: usize = 2;
const FRI: usize = 4;
const SUN: usize = 6;

/// Hours in `time_zone` with intervals only on the given weekdays.
fn hours(time_zone: Tz, days: &[(usize, Vec<(NaiveTime, NaiveTime)>)]) -> BusinessHours {
    let mut weekly: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
    for (day, intervals) in days {
        weekly[*day] = intervals.clone();
    }
    BusinessHours {
        time_zone,
        weekly,
        holidays: vec![],
        away_message: None,
    }
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn assert_open(hours: &BusinessHours, cases: &[(&str, bool)]) {
    for (instant, open) in cases {
        assert_eq!(hours.is_open(at(instant)), *open, "at {instant}");
    }
}

#[test]
fn office_hours_open_at_start_and_close_at_end_in_summer_and_winter() {
    assert_open(
        &office_hours(),
        &[
            // Wednesday in summer: CEST, UTC+2.
            ("2025-06-11T06:59:59Z", false),
            ("2025-06-11T07:00:00Z", true),
            ("2025-06-11T14:59:59Z", true),
            ("2025-06-11T15:00:00Z", false),
            // Wednesday in winter: CET, UTC+1.
            ("2025-01-15T07:59:59Z", false),
            ("2025-01-15T08:00:00Z", true),
            ("2025-01-15T15:59:59Z", true),
            ("2025-01-15T16:00:00Z", false),
            // The weekend.
            ("2025-06-14T10:00:00Z", false),
            ("2025-06-15T10:00:00Z", false),
        ],
    );
}

#[test]
fn berlin_weekdays_around_the_dst_changes_keep_local_time() {
    let hours = office_hours();
    assert_open(
        &hours,
        &[
            // Friday before spring forward (CET) and Monday after (CEST).
            ("2025-03-28T08:00:00Z", true),
            ("2025-03-28T07:59:59Z", false),
            ("2025-03-31T07:00:00Z", true),
            ("2025-03-31T06:59:59Z", false),
            // Friday before fall back (CEST) and Monday after (CET).
            ("2025-10-24T07:00:00Z", true),
            ("2025-10-27T07:59:59Z", false),
            ("2025-10-27T08:00:00Z", true),
        ],
    );
    assert_eq!(
        hours.next_open(at("2025-03-28T17:00:00Z")),
        Some(at("2025-03-31T07:00:00Z"))
    );
    assert_eq!(
        hours.next_open(at("2025-10-24T16:00:00Z")),
        Some(at("2025-10-27T08:00:00Z"))
    );
}

#[test]
fn berlin_spring_forward_shortens_an_interval_across_the_gap() {
    // Sunday 2025-03-30: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    let hours = hours(Berlin, &[(SUN, vec![(hm(1, 0), hm(5, 0))])]);
    assert_open(
        &hours,
        &[
            ("2025-03-29T23:59:59Z", false),
            ("2025-03-30T00:00:00Z", true),
            ("2025-03-30T02:59:59Z", true),
            ("2025-03-30T03:00:00Z", false),
        ],
    );
}

#[test]
fn berlin_an_interval_starting_in_the_skipped_hour_opens_when_the_clock_jumps() {
    let hours = hours(Berlin, &[(SUN, vec![(hm(2, 30), hm(4, 0))])]);
    assert_open(
        &hours,
        &[
            ("2025-03-30T00:59:59Z", false),
            ("2025-03-30T01:00:00Z", true),
            ("2025-03-30T01:59:59Z", true),
            ("2025-03-30T02:00:00Z", false),
        ],
    );
    assert_eq!(
        hours.next_open(at("2025-03-30T00:00:00Z")),
        Some(at("2025-03-30T01:00:00Z"))
    );
}

#[test]
fn berlin_fall_back_covers_both_occurrences_of_the_repeated_hour() {
    // Sunday 2025-10-26: 03:00 CEST falls back to 02:00 CET (01:00 UTC); 01:00-02:30 local runs
    // from 01:00 CEST to the second 02:30, in CET.
    let hours = hours(Berlin, &[(SUN, vec![(hm(1, 0), hm(2, 30))])]);
    assert_open(
        &hours,
        &[
            ("2025-10-25T22:59:59Z", false),
            ("2025-10-25T23:00:00Z", true),
            ("2025-10-26T00:45:00Z", true),
            ("2025-10-26T01:29:59Z", true),
            ("2025-10-26T01:30:00Z", false),
        ],
    );
}

#[test]
fn new_york_spring_forward_moves_the_opening_by_an_hour_in_utc() {
    let hours = hours(New_York, &[(SUN, vec![(hm(9, 0), hm(17, 0))])]);
    assert_open(
        &hours,
        &[
            // Sunday 2025-03-02, EST (UTC-5).
            ("2025-03-02T13:59:59Z", false),
            ("2025-03-02T14:00:00Z", true),
            // Sunday 2025-03-09, the change day, EDT (UTC-4) from 07:00 UTC.
            ("2025-03-09T12:59:59Z", false),
            ("2025-03-09T13:00:00Z", true),
            ("2025-03-09T20:59:59Z", true),
            ("2025-03-09T21:00:00Z", false),
        ],
    );
}

#[test]
fn new_york_an_interval_inside_the_skipped_hour_never_opens() {
    let hours = hours(New_York, &[(SUN, vec![(hm(2, 15), hm(2, 45))])]);
    assert!(!hours.is_open(at("2025-03-09T07:00:00Z")));
    // The next Sunday has the hour: 02:15 EDT.
    assert_eq!(
        hours.next_open(at("2025-03-09T00:00:00Z")),
        Some(at("2025-03-16T06:15:00Z"))
    );
}

#[test]
fn new_york_fall_back_makes_a_whole_day_25_hours_long() {
    // Sunday 2025-11-02: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
    let hours = hours(New_York, &[(SUN, vec![(hm(0, 0), hm(0, 0))])]);
    assert_open(
        &hours,
        &[
            ("2025-11-02T03:59:59Z", false),
            ("2025-11-02T04:00:00Z", true),
            ("2025-11-03T04:59:59Z", true),
            ("2025-11-03T05:00:00Z", false),
        ],
    );
    // An interval starting in the repeated hour opens at its first occurrence (EDT).
    let repeated = self::hours(New_York, &[(SUN, vec![(hm(1, 30), hm(3, 0))])]);
    assert_eq!(
        repeated.next_open(at("2025-11-02T00:00:00Z")),
        Some(at("2025-11-02T05:30:00Z"))
    );
    assert!(repeated.is_open(at("2025-11-02T07:59:59Z")));
    assert!(!repeated.is_open(at("2025-11-02T08:00:00Z")));
}

#[test]
fn intervals_ending_at_or_before_their_start_cross_midnight() {
    let hours = hours(
        Berlin,
        &[
            (WED, vec![(hm(18, 0), hm(0, 0))]),
            (FRI, vec![(hm(22, 0), hm(2, 0))]),
            (SUN, vec![(hm(0, 0), hm(0, 0))]),
        ],
    );
    assert_open(
        &hours,
        &[
            // Wednesday 18:00 until midnight (CEST).
            ("2025-06-11T15:59:59Z", false),
            ("2025-06-11T16:00:00Z", true),
            ("2025-06-11T21:59:59Z", true),
            ("2025-06-11T22:00:00Z", false),
            // Friday 22:00 until Saturday 02:00.
            ("2025-06-13T19:59:59Z", false),
            ("2025-06-13T20:00:00Z", true),
            ("2025-06-13T23:59:59Z", true),
            ("2025-06-14T00:00:00Z", false),
            // All of Sunday, and not a second more.
            ("2025-06-14T21:59:59Z", false),
            ("2025-06-14T22:00:00Z", true),
            ("2025-06-15T21:59:59Z", true),
            ("2025-06-15T22:00:00Z", false),
        ],
    );
    // Past midnight, the Friday interval is still open now.
    let past_midnight = at("2025-06-13T23:00:00Z");
    assert_eq!(hours.next_open(past_midnight), Some(past_midnight));
}

#[test]
fn a_holiday_closes_the_intervals_that_start_on_it() {
    let mut office = office_hours();
    office.holidays = vec![date("2025-06-11")];
    assert!(!office.is_open(at("2025-06-11T12:00:00Z")));
    assert!(office.is_open(at("2025-06-12T12:00:00Z")));
    assert_eq!(
        office.next_open(at("2025-06-11T12:00:00Z")),
        Some(at("2025-06-12T07:00:00Z"))
    );

    // Friday night runs into a Saturday holiday, but not when Friday itself is the holiday.
    let mut late = hours(Berlin, &[(FRI, vec![(hm(22, 0), hm(2, 0))])]);
    late.holidays = vec![date("2025-06-14")];
    assert!(late.is_open(at("2025-06-13T23:00:00Z")));
    late.holidays = vec![date("2025-06-13")];
    assert!(!late.is_open(at("2025-06-13T23:00:00Z")));
    assert!(!late.is_open(at("2025-06-13T20:30:00Z")));
}

#[test]
fn next_open_skips_holidays_and_gives_up_when_nothing_opens() {
    let mut office = office_hours();
    // Two whole weeks of holidays starting on Monday 2025-06-16.
    office.holidays = (0..14).map(|d| date("2025-06-16") + TimeDelta::days(d)).collect();
    assert_eq!(
        office.next_open(at("2025-06-13T16:00:00Z")),
        Some(at("2025-06-30T07:00:00Z"))
    );
    let never = hours(Berlin, &[]);
    assert_eq!(never.next_open(at("2025-06-13T16:00:00Z")), None);
    assert!(!never.is_open(at("2025-06-13T16:00:00Z")));
    // Open now: now.
    let now = at("2025-06-11T12:00:00Z");
    assert_eq!(office_hours().next_open(now), Some(now));
}

#[test]
fn last_close_is_the_end_of_the_last_open_period() {
    let office = office_hours();
    assert_eq!(
        office.last_close(at("2025-06-16T06:00:00Z")),
        Some(at("2025-06-13T15:00:00Z"))
    );
    assert_eq!(
        office.last_close(at("2025-06-13T15:00:00Z")),
        Some(at("2025-06-13T15:00:00Z"))
    );
    let overlapping = hours(
        Berlin,
        &[(MON, vec![(hm(9, 0), hm(17, 0)), (hm(10, 0), hm(12, 0))])],
    );
    assert_eq!(
        overlapping.last_close(at("2025-06-16T18:00:00Z")),
        Some(at("2025-06-16T15:00:00Z"))
    );
    assert_eq!(hours(Berlin, &[]).last_close(at("2025-06-16T18:00:00Z")), None);
}

/// Around each DST change, with intervals on both sides of it and inside it, `next_open` always
/// lands on an open instant and nothing between the query and that instant is open.
#[test]
fn next_open_agrees_with_is_open_across_dst_changes() {
    let tricky = vec![
        (hm(0, 30), hm(1, 45)),
        (hm(2, 15), hm(2, 45)),
        (hm(2, 50), hm(3, 10)),
        (hm(23, 0), hm(1, 30)),
    ];
    let schedules = [
        (Berlin, "2025-03-29T00:00:00Z"),
        (Berlin, "2025-10-25T00:00:00Z"),
        (New_York, "2025-03-08T00:00:00Z"),
        (New_York, "2025-11-01T00:00:00Z"),
    ];
    for (tz, from) in schedules {
        let hours = hours(tz, &[(5, tricky.clone()), (SUN, tricky.clone())]);
        let mut t: DateTime<Utc> = at(from);
        let end = t + TimeDelta::days(3);
        while t < end {
            let next = hours.next_open(t).unwrap();
            assert!(next >= t, "{tz} {t}");
            assert!(hours.is_open(next), "{tz}: next_open({t}) = {next} is closed");
            let mut probe = t;
            while probe < next.min(t + TimeDelta::days(2)) {
                assert!(!hours.is_open(probe), "{tz}: {probe} open before {next}");
                probe += TimeDelta::minutes(5);
            }
            t += TimeDelta::minutes(7);
        }
    }
}

#[test]
fn business_hours_json_uses_zone_names_and_times() {
    let json = serde_json::json!({
        "time_zone": "America/New_York",
        "weekly": [[["09:00:00", "17:00:00"]], [], [], [], [], [], [["22:00:00", "02:00:00"]]],
        "holidays": ["2025-12-25"],
        "away_message": "Back at 9, {{contact.name}}"
    });
    let hours: BusinessHours = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(hours.time_zone, New_York);
    assert_eq!(hours.weekly[SUN], vec![(hm(22, 0), hm(2, 0))]);
    assert_eq!(hours.holidays, vec![date("2025-12-25")]);
    assert_eq!(serde_json::to_value(&hours).unwrap(), json);
    // Holidays and the away message may be left out.
    let minimal: BusinessHours = serde_json::from_value(serde_json::json!({
        "time_zone": "Europe/Berlin",
        "weekly": [[], [], [], [], [], [], []]
    }))
    .unwrap();
    assert_eq!(minimal.away_message, None);
    assert!(
        serde_json::from_value::<BusinessHours>(serde_json::json!({
            "time_zone": "Mars/Olympus_Mons",
            "weekly": [[], [], [], [], [], [], []]
        }))
        .is_err()
    );
}
