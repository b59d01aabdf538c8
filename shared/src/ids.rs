//! Record ids and timestamps.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// A new time-sortable id (UUIDv7): ids sort in creation order, which keeps
/// lists stable and lets the id double as a sort key.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// A UTC timestamp, RFC 3339 with milliseconds and `Z`: fixed width, so the
/// strings sort in time order.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

pub fn now() -> String {
    timestamp(OffsetDateTime::now_utc())
}

/// [`timestamp`] of a system time (for crates that do not use `time`).
pub fn system_timestamp(at: std::time::SystemTime) -> String {
    timestamp(OffsetDateTime::from(at))
}

/// Parses an RFC 3339 timestamp (any offset).
pub fn parse_timestamp(value: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_utc_and_sort_in_time_order() {
        let a = timestamp(time::macros::datetime!(2026-01-02 03:04:05.006 +02:00));
        assert_eq!(a, "2026-01-02T01:04:05.006Z");
        let b = timestamp(time::macros::datetime!(2026-01-02 03:04:05.1 UTC));
        assert!(a < b);
        assert_eq!(parse_timestamp(&a).map(timestamp), Some(a));
    }

    #[test]
    fn ids_are_v7_and_increase() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b);
    }
}
