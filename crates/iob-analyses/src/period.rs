//! Calendar periods (UTC): hours, days, ISO weeks (starting Monday) and months, numbered from
//! the epoch so that period arithmetic is integer subtraction (offset = period − cohort period).
//!
//! Weeks are ISO weeks: week `w` starts on Monday, day `7w − 3` (1969-12-29 is week 0). Labels
//! are the period's first instant: `YYYY-MM-DD` for day/week/month, `YYYY-MM-DDTHH:00:00Z` for
//! hours. The DuckDB peer (`bench/analytics/duckdb_peer.py`) computes the same numbers from
//! epoch milliseconds; change both together.

use serde::{Deserialize, Serialize};

use crate::DAY_MS;
use crate::property::{date_label, hour_label};

/// A calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

impl Period {
    /// The period number of a day number.
    pub fn of_day(self, day: i64) -> i64 {
        match self {
            Period::Hour => day * 24,
            Period::Day => day,
            Period::Week => (day + 3).div_euclid(7),
            Period::Month => {
                let d =
                    time::Date::from_julian_day((day + 2_440_588) as i32).expect("day in range");
                (d.year() as i64 - 1970) * 12 + u8::from(d.month()) as i64 - 1
            }
        }
    }

    /// The label of period number `p`.
    pub fn label(self, p: i64) -> String {
        match self {
            Period::Hour => hour_label(p),
            Period::Day => date_label(p),
            Period::Week => date_label(p * 7 - 3),
            Period::Month => {
                format!(
                    "{:04}-{:02}-01",
                    1970 + p.div_euclid(12),
                    p.rem_euclid(12) + 1
                )
            }
        }
    }
}

/// Maps event times to period numbers, caching the last day (rows arrive in time order).
pub struct Bucketer {
    period: Period,
    day: i64,
    base: i64,
}

impl Bucketer {
    pub fn new(period: Period) -> Self {
        Bucketer {
            period,
            day: i64::MIN,
            base: 0,
        }
    }

    /// The period number of event time `ts` (ms).
    #[inline]
    pub fn period_of(&mut self, ts: i64) -> i64 {
        if self.period == Period::Hour {
            return ts.div_euclid(3_600_000);
        }
        let day = ts.div_euclid(DAY_MS);
        if day != self.day {
            self.day = day;
            self.base = self.period.of_day(day);
        }
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2024-01-01 is a Monday: day 19723.
        assert_eq!(date_label(19723), "2024-01-01");
        let w = Period::Week.of_day(19723);
        assert_eq!(Period::Week.label(w), "2024-01-01");
        assert_eq!(
            Period::Week.of_day(19723 + 6),
            w,
            "Sunday is in Monday's week"
        );
        assert_eq!(Period::Week.of_day(19723 - 1), w - 1);
        assert_eq!(Period::Week.label(Period::Week.of_day(0)), "1969-12-29");
        let m = Period::Month.of_day(19723 + 31);
        assert_eq!(Period::Month.label(m), "2024-02-01");
        assert_eq!(Period::Month.of_day(19723 + 30), m - 1);
        assert_eq!(Period::Hour.label(19723 * 24 + 5), "2024-01-01T05:00:00Z");
        let mut b = Bucketer::new(Period::Hour);
        assert_eq!(
            b.period_of(19723 * DAY_MS + 5 * 3_600_000 + 59),
            19723 * 24 + 5
        );
    }
}
