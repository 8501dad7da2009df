//! Silent stalls: a connection whose refreshes succeed while an account brings nothing new for
//! far longer than that account usually goes quiet. The one owner of what "stalled" means; the
//! refresh judges after each success and the diagnosis ladder explains, both through [`judge`].
//!
//! An account's rhythm is learned from its own feed: the days on which the bank reported a
//! transaction, and the gaps between consecutive such days. The usual gap is a high percentile
//! of those gaps, so one long holiday does not count as the rhythm but a monthly-interest
//! savings account still learns that a month of silence is normal. An account is stalled when
//! its current silence exceeds both the floor and [`FACTOR`] times its usual gap; an account
//! with fewer than [`MIN_GAPS`] gaps is not judged (too little history to know its rhythm).
//!
//! Only rows the feed brought count (`source = 'feed'`): an imported statement fills the books
//! but says nothing about whether the bank still sends data.

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;
use uuid::Uuid;

/// Gaps needed before an account's rhythm is trusted: a week of active days at the least.
pub const MIN_GAPS: usize = 6;

/// The percentile of gaps taken as an account's usual silence (nearest rank).
pub const PERCENTILE: f64 = 0.9;

/// How many usual gaps of silence make a stall: twice the 90th percentile is "far longer".
pub const FACTOR: i64 = 2;

/// How far back the history that teaches the rhythm reaches.
pub const LOOKBACK: TimeDelta = TimeDelta::days(365);

/// Configuration of the judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// No account is stalled before this many days of silence, however regular it was, so a
    /// quiet account is never flagged for a normal lull.
    pub floor_days: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Self { floor_days: 14 }
    }
}

impl Rules {
    /// From a configured duration, rounded down to whole days, at least one.
    pub fn with_floor(floor: std::time::Duration) -> Self {
        Self { floor_days: i64::try_from(floor.as_secs() / 86_400).unwrap_or(i64::MAX).max(1) }
    }
}

/// One account's feed history, as the store reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub account_id: Uuid,
    pub account_name: String,
    /// The distinct days (UTC) the feed reported a transaction on, ascending.
    pub days: Vec<NaiveDate>,
}

/// What an account's history says about its rhythm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rhythm {
    /// The usual gap between active days, in days (the [`PERCENTILE`] gap).
    pub usual_gap_days: i64,
    /// The last day the feed reported a transaction.
    pub last_active: NaiveDate,
}

/// The rhythm of an account active on `days` (ascending, distinct), or `None` when there are
/// too few gaps to learn one.
pub fn rhythm(days: &[NaiveDate]) -> Option<Rhythm> {
    let mut gaps: Vec<i64> = days.windows(2).map(|pair| (pair[1] - pair[0]).num_days()).collect();
    if gaps.len() < MIN_GAPS {
        return None;
    }
    gaps.sort_unstable();
    // Nearest rank: the smallest gap at or above which PERCENTILE of the gaps lie.
    let rank = (PERCENTILE * gaps.len() as f64).ceil() as usize;
    let usual_gap_days = gaps[rank.clamp(1, gaps.len()) - 1];
    Some(Rhythm { usual_gap_days, last_active: *days.last()? })
}

/// A stalled account, with the figures that condemned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountStall {
    pub account_id: Uuid,
    pub account_name: String,
    pub last_active: NaiveDate,
    /// Days from the last active day to today.
    pub silent_days: i64,
    pub usual_gap_days: i64,
    /// The silence beyond which it is stalled: the floor or `FACTOR` usual gaps, the larger.
    pub limit_days: i64,
}

/// The judgement on one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Too little history to know its rhythm.
    NotJudged,
    Flowing {
        rhythm: Rhythm,
        limit_days: i64,
    },
    Stalled(AccountStall),
}

/// Judges one account on `today`.
pub fn judge(activity: &Activity, today: NaiveDate, rules: Rules) -> Verdict {
    let Some(rhythm) = rhythm(&activity.days) else {
        return Verdict::NotJudged;
    };
    let limit_days = rules.floor_days.max(FACTOR.saturating_mul(rhythm.usual_gap_days));
    let silent_days = (today - rhythm.last_active).num_days();
    if silent_days <= limit_days {
        return Verdict::Flowing { rhythm, limit_days };
    }
    Verdict::Stalled(AccountStall {
        account_id: activity.account_id,
        account_name: activity.account_name.clone(),
        last_active: rhythm.last_active,
        silent_days,
        usual_gap_days: rhythm.usual_gap_days,
        limit_days,
    })
}

/// The first day on which feed activity proves an account is not stalled on `today`, whatever
/// its rhythm: its silence is then at most the floor, and a stall needs more than the floor.
/// The refresh reads the history only of accounts quiet since then (most are not).
pub fn quiet_since(today: NaiveDate, rules: Rules) -> NaiveDate {
    today - TimeDelta::days(rules.floor_days)
}

/// The stalled accounts among `accounts`, in their order: a connection is stalled when any is.
pub fn stalled(accounts: &[Activity], today: NaiveDate, rules: Rules) -> Vec<AccountStall> {
    accounts
        .iter()
        .filter_map(|activity| match judge(activity, today, rules) {
            Verdict::Stalled(stall) => Some(stall),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn day(n: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + TimeDelta::days(n)
    }

    fn every(step: i64, count: i64) -> Vec<NaiveDate> {
        (0..count).map(|n| day(n * step)).collect()
    }

    fn activity(days: Vec<NaiveDate>) -> Activity {
        Activity { account_id: Uuid::nil(), account_name: "Checking".into(), days }
    }

    #[test]
    fn the_usual_gap_is_a_high_percentile_so_one_holiday_does_not_set_the_rhythm() {
        let mut days = every(1, 30);
        days.push(day(29 + 20));
        let rhythm = rhythm(&days).unwrap();
        assert_eq!(rhythm.usual_gap_days, 1);
        assert_eq!(rhythm.last_active, day(49));
        let monthly: Vec<NaiveDate> = (0..12).map(|month| day(month * 30)).collect();
        assert_eq!(super::rhythm(&monthly).unwrap().usual_gap_days, 30);
    }

    proptest! {
        /// The refresh skips the history of accounts active since `quiet_since`: sound only if
        /// no such account is ever judged stalled, whatever its rhythm.
        #[test]
        fn an_account_active_since_quiet_since_is_never_stalled(
            gaps in proptest::collection::vec(1_i64..90, 0..40), floor in 1_i64..60, after in 0_i64..200,
        ) {
            let rules = Rules { floor_days: floor };
            let mut days = vec![day(0)];
            for gap in gaps {
                days.push(*days.last().unwrap() + TimeDelta::days(gap));
            }
            let last = *days.last().unwrap();
            let today = last + TimeDelta::days(after);
            let judged = judge(&activity(days), today, rules);
            if last >= quiet_since(today, rules) {
                prop_assert!(!matches!(judged, Verdict::Stalled(_)));
            }
        }
    }

    #[test]
    fn too_little_history_is_not_judged() {
        assert_eq!(rhythm(&every(1, MIN_GAPS as i64)), None, "{MIN_GAPS} days have one gap too few");
        assert!(rhythm(&every(1, MIN_GAPS as i64 + 1)).is_some());
        assert_eq!(judge(&activity(every(1, 3)), day(400), Rules::default()), Verdict::NotJudged);
        assert_eq!(rhythm(&[]), None);
    }

    #[test]
    fn a_daily_account_stalls_after_the_floor_and_a_monthly_one_only_after_two_months() {
        let rules = Rules::default();
        let daily = activity(every(1, 60));
        assert!(matches!(judge(&daily, day(59 + 14), rules), Verdict::Flowing { limit_days: 14, .. }));
        let Verdict::Stalled(stall) = judge(&daily, day(59 + 15), rules) else { panic!("stalled after the floor") };
        assert_eq!((stall.silent_days, stall.usual_gap_days, stall.limit_days), (15, 1, 14));

        let monthly = activity((0..12).map(|month| day(month * 30)).collect());
        assert!(matches!(judge(&monthly, day(330 + 45), rules), Verdict::Flowing { limit_days: 60, .. }));
        assert!(matches!(judge(&monthly, day(330 + 61), rules), Verdict::Stalled(_)));
    }

    #[test]
    fn the_floor_is_configurable_in_whole_days() {
        let rules = Rules::with_floor(std::time::Duration::from_secs(30 * 86_400 + 5));
        assert_eq!(rules.floor_days, 30);
        assert_eq!(Rules::with_floor(std::time::Duration::ZERO).floor_days, 1);
        assert!(matches!(judge(&activity(every(1, 60)), day(59 + 20), rules), Verdict::Flowing { .. }));
    }

    #[test]
    fn only_stalled_accounts_are_listed() {
        let flowing = activity(every(1, 60));
        let stalled_account = Activity { account_name: "Savings".into(), ..activity(every(1, 30)) };
        let found = stalled(&[flowing, stalled_account, activity(every(1, 2))], day(60), Rules::default());
        assert_eq!(found.iter().map(|stall| stall.account_name.as_str()).collect::<Vec<_>>(), ["Savings"]);
    }

    fn history() -> impl Strategy<Value = Vec<NaiveDate>> {
        proptest::collection::btree_set(0_i64..400, 0..80).prop_map(|days| days.into_iter().map(day).collect())
    }

    proptest! {
        /// The usual gap is one of the gaps, at least the median, and at most the longest.
        #[test]
        fn the_usual_gap_is_a_real_gap_between_the_median_and_the_longest(days in history()) {
            let gaps: Vec<i64> = days.windows(2).map(|pair| (pair[1] - pair[0]).num_days()).collect();
            match rhythm(&days) {
                None => prop_assert!(gaps.len() < MIN_GAPS),
                Some(rhythm) => {
                    let mut sorted = gaps.clone();
                    sorted.sort_unstable();
                    prop_assert!(gaps.contains(&rhythm.usual_gap_days));
                    prop_assert!(rhythm.usual_gap_days >= sorted[sorted.len() / 2]);
                    prop_assert!(rhythm.usual_gap_days <= *sorted.last().unwrap());
                    prop_assert_eq!(Some(&rhythm.last_active), days.last());
                }
            }
        }

        /// Never stalled within the floor; once stalled, staying silent longer keeps it stalled.
        #[test]
        fn silence_within_the_floor_never_stalls_and_longer_silence_stays_stalled(
            days in history(), after in 0_i64..200, floor in 1_i64..60,
        ) {
            let rules = Rules { floor_days: floor };
            let Some(last) = days.last().copied() else { return Ok(()) };
            let account = activity(days);
            let today = last + TimeDelta::days(after);
            match judge(&account, today, rules) {
                Verdict::Stalled(stall) => {
                    prop_assert!(stall.silent_days > floor && stall.silent_days > stall.limit_days);
                    let later = judge(&account, today + TimeDelta::days(30), rules);
                    prop_assert!(matches!(later, Verdict::Stalled(_)));
                }
                Verdict::Flowing { .. } | Verdict::NotJudged => {}
            }
            if after <= floor {
                prop_assert!(!matches!(judge(&account, today, rules), Verdict::Stalled(_)));
            }
        }
    }
}
