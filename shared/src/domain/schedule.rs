//! Organization schedules: a single firing at `scheduled_at`, or recurring
//! from `start_at` every `interval` ("24h", "7d", "1h30m", "2 weeks",
//! "1 month", "1 year"; months and years follow the calendar).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::data::Data;
use crate::error::Error;
use crate::ids::{parse_timestamp, timestamp};

use crate::limits::MIN_INTERVAL_SECS;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub months: i32,
    pub seconds: i64,
}

impl Interval {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = || {
            Error::invalid(format!(
                "interval `{text}` is not understood; use e.g. \"30m\", \"24h\", \"7d\", \"2 weeks\", \"1 month\", \"1 year\""
            ))
        };
        let mut interval = Interval {
            months: 0,
            seconds: 0,
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let count: i64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = rest[digits..].trim_start();
            let letters = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let unit = rest[..letters].to_ascii_lowercase();
            rest = rest[letters..].trim_start();
            let seconds_per = match unit.as_str() {
                "s" | "sec" | "secs" | "second" | "seconds" => 1,
                "m" | "min" | "mins" | "minute" | "minutes" => 60,
                "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
                "d" | "day" | "days" => 86_400,
                "w" | "wk" | "wks" | "week" | "weeks" => 604_800,
                "mo" | "month" | "months" => {
                    interval.months = interval
                        .months
                        .checked_add(i32::try_from(count).map_err(|_| bad())?)
                        .ok_or_else(bad)?;
                    continue;
                }
                "y" | "yr" | "yrs" | "year" | "years" => {
                    let months = i32::try_from(count)
                        .ok()
                        .and_then(|c| c.checked_mul(12))
                        .ok_or_else(bad)?;
                    interval.months = interval.months.checked_add(months).ok_or_else(bad)?;
                    continue;
                }
                _ => return Err(bad()),
            };
            interval.seconds = count
                .checked_mul(seconds_per)
                .and_then(|s| interval.seconds.checked_add(s))
                .ok_or_else(bad)?;
        }
        if interval.months > 12 * 100 || interval.seconds > 100 * 366 * 86_400 {
            return Err(Error::invalid("an interval is at most 100 years"));
        }
        if interval.months == 0 && interval.seconds < MIN_INTERVAL_SECS {
            return Err(Error::invalid("a recurring interval is at least 1 minute"));
        }
        Ok(interval)
    }

    /// `at` plus this interval (calendar months, day clamped to the month).
    pub fn after(&self, at: OffsetDateTime) -> OffsetDateTime {
        let mut out = at;
        if self.months != 0 {
            let total = at.year() * 12 + (u8::from(at.month()) as i32 - 1) + self.months;
            let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
            let month = time::Month::try_from(month0 as u8 + 1).unwrap_or(time::Month::January);
            let day = at.day().min(month.length(year));
            out = time::Date::from_calendar_date(year, month, day)
                .map(|date| at.replace_date(date))
                .unwrap_or(at);
        }
        out + Duration::seconds(self.seconds)
    }
}

/// A stored schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: Uuid,
    pub project_id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// When it fires next; `None` once a single schedule has fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<String>,
    #[serde(default)]
    pub data: Data,
    pub created_at: String,
}

/// A validated schedule request.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRequest {
    pub name: String,
    pub scheduled_at: Option<OffsetDateTime>,
    pub start_at: Option<OffsetDateTime>,
    pub interval: Option<(String, Interval)>,
    pub data: Data,
}

fn parse_time(what: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, Error> {
    value
        .map(|v| {
            parse_timestamp(v)
                .ok_or_else(|| Error::invalid(format!("{what} must be an RFC 3339 date-time")))
        })
        .transpose()
}

impl ScheduleRequest {
    pub fn new(
        name: String,
        scheduled_at: Option<&str>,
        start_at: Option<&str>,
        interval: Option<&str>,
        data: Option<Data>,
    ) -> Result<Self, Error> {
        crate::events::validate_name(&name)?;
        let scheduled_at = parse_time("scheduled_at", scheduled_at)?;
        let start_at = parse_time("start_at", start_at)?;
        let interval = interval
            .map(|text| Interval::parse(text).map(|i| (text.to_owned(), i)))
            .transpose()?;
        if interval.is_none() && scheduled_at.is_none() {
            return Err(Error::invalid(
                "a single schedule needs `scheduled_at`; a recurring one needs `interval` (and optionally `start_at`)",
            ));
        }
        let data = data.unwrap_or_default();
        super::data::check_limits("data", &data)?;
        Ok(Self {
            name,
            scheduled_at,
            start_at,
            interval,
            data,
        })
    }

    /// The schedule this request stores for an organization.
    pub fn schedule(
        &self,
        project_id: Uuid,
        organization_id: Uuid,
        now: OffsetDateTime,
    ) -> Schedule {
        let (scheduled_at, start_at, next) = match &self.interval {
            Some(_) => {
                let start = self.start_at.unwrap_or(now);
                (None, Some(timestamp(start)), start)
            }
            None => {
                let at = self.scheduled_at.unwrap_or(now);
                (Some(timestamp(at)), None, at)
            }
        };
        Schedule {
            id: crate::ids::new_id(),
            project_id,
            organization_id,
            name: self.name.clone(),
            scheduled_at,
            start_at,
            interval: self.interval.as_ref().map(|(text, _)| text.clone()),
            next_at: Some(timestamp(next)),
            data: self.data.clone(),
            created_at: timestamp(now),
        }
    }
}

impl Schedule {
    /// After firing at `next_at`: the next time (recurring, skipping any
    /// occurrences missed up to `now`), or `None` (single).
    pub fn following(&self, now: OffsetDateTime) -> Option<String> {
        let interval = Interval::parse(self.interval.as_deref()?).ok()?;
        let mut next = parse_timestamp(self.next_at.as_deref()?)?;
        for _ in 0..100_000 {
            next = interval.after(next);
            if next > now {
                return Some(timestamp(next));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn intervals_parse() {
        assert_eq!(
            Interval::parse("24h").unwrap(),
            Interval {
                months: 0,
                seconds: 86_400
            }
        );
        assert_eq!(Interval::parse("7d").unwrap().seconds, 604_800);
        assert_eq!(Interval::parse("1h30m").unwrap().seconds, 5_400);
        assert_eq!(Interval::parse("2 weeks").unwrap().seconds, 1_209_600);
        assert_eq!(
            Interval::parse("1 year").unwrap(),
            Interval {
                months: 12,
                seconds: 0
            }
        );
        assert_eq!(Interval::parse("1 Month").unwrap().months, 1);
        for bad in [
            "",
            "h",
            "24",
            "5x",
            "10s",
            "-1d",
            "1 fortnight",
            "99999999999999999999d",
            "200 years",
        ] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calendar_intervals_clamp_the_day() {
        let month = Interval::parse("1 month").unwrap();
        assert_eq!(
            month.after(datetime!(2026-01-31 10:00 UTC)),
            datetime!(2026-02-28 10:00 UTC)
        );
        let year = Interval::parse("1 year").unwrap();
        assert_eq!(
            year.after(datetime!(2028-02-29 00:00 UTC)),
            datetime!(2029-02-28 00:00 UTC)
        );
        assert_eq!(
            Interval::parse("1d")
                .unwrap()
                .after(datetime!(2026-12-31 23:00 UTC)),
            datetime!(2027-01-01 23:00 UTC)
        );
    }

    #[test]
    fn requests_need_a_time_or_an_interval() {
        assert!(ScheduleRequest::new("renewal".into(), None, None, None, None).is_err());
        assert!(
            ScheduleRequest::new("renewal".into(), Some("tomorrow"), None, None, None).is_err()
        );
        assert!(ScheduleRequest::new("renewal".into(), None, None, Some("1 eon"), None).is_err());
        assert!(ScheduleRequest::new(
            "renewal".into(),
            Some("2026-12-01T00:00:00Z"),
            None,
            None,
            None
        )
        .is_ok());
        assert!(ScheduleRequest::new("renewal".into(), None, None, Some("24h"), None).is_ok());
    }

    #[test]
    fn a_recurring_schedule_skips_missed_occurrences() {
        let now = datetime!(2026-11-23 12:00 UTC);
        let request = ScheduleRequest::new(
            "digest".into(),
            None,
            Some("2026-11-20T09:00:00Z"),
            Some("24h"),
            None,
        )
        .unwrap();
        let schedule = request.schedule(Uuid::nil(), Uuid::nil(), now);
        assert_eq!(
            schedule.next_at.as_deref(),
            Some("2026-11-20T09:00:00.000Z")
        );
        assert_eq!(
            schedule.following(now).as_deref(),
            Some("2026-11-24T09:00:00.000Z")
        );
        let single = ScheduleRequest::new(
            "once".into(),
            Some("2026-11-23T11:00:00Z"),
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            single
                .schedule(Uuid::nil(), Uuid::nil(), now)
                .following(now),
            None
        );
    }
}
