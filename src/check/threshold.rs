// SPDX-License-Identifier: GPL-2.0-or-later
//! Flap damping, kept apart from probing: `failurecount` consecutive
//! failures mark a real down, one success brings it back (ldirectord's
//! `failcount`). Pure, so it is tested without any I/O.
//!
//! "Healthy" (what the checks say) is separate from "enabled" (what the
//! operator says: maintenance, manual disable), as in pingora's `Health`;
//! a real serves traffic only when it is both.

use std::collections::HashMap;
use std::hash::Hash;

/// What one observation did to a real's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing changed that anyone needs to hear about.
    Unchanged,
    /// A failure below the threshold: ldirectord logs "Soft failure n/N".
    SoftFailure { failures: u32, threshold: u32 },
    /// The threshold was reached: the real is now down.
    WentDown,
    /// A success on a real that was down: it is up again.
    CameUp,
}

impl Verdict {
    /// True when the healthy state flipped.
    pub fn flipped(self) -> bool {
        matches!(self, Verdict::WentDown | Verdict::CameUp)
    }
}

/// One real's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    healthy: bool,
    enabled: bool,
    consecutive_failures: u32,
}

impl Health {
    /// Starts healthy or not: at startup ldirectord counts a real already
    /// in the kernel table with weight > 0 as up, anything else as down.
    pub fn new(healthy: bool) -> Self {
        Health {
            healthy,
            enabled: true,
            consecutive_failures: 0,
        }
    }

    /// Records one check result. `failure_threshold` is failurecount; 0 is
    /// treated as 1 (a failure always counts).
    pub fn observe(&mut self, success: bool, failure_threshold: u32) -> Verdict {
        let threshold = failure_threshold.max(1);
        if success {
            self.consecutive_failures = 0;
            if self.healthy {
                Verdict::Unchanged
            } else {
                self.healthy = true;
                Verdict::CameUp
            }
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if !self.healthy {
                Verdict::Unchanged
            } else if self.consecutive_failures >= threshold {
                self.healthy = false;
                Verdict::WentDown
            } else {
                Verdict::SoftFailure {
                    failures: self.consecutive_failures,
                    threshold,
                }
            }
        }
    }

    /// Operator intent (maintenance, manual disable). Returns true when
    /// readiness changed.
    pub fn set_enabled(&mut self, enabled: bool) -> bool {
        let before = self.ready();
        self.enabled = enabled;
        before != self.ready()
    }

    pub fn healthy(&self) -> bool {
        self.healthy
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Serves traffic: healthy and enabled.
    pub fn ready(&self) -> bool {
        self.healthy && self.enabled
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

/// Health of many reals, keyed by identity so a reload keeps the state of
/// every real whose key did not change.
#[derive(Debug, Clone)]
pub struct HealthTable<K> {
    entries: HashMap<K, Health>,
}

impl<K: Eq + Hash + Clone> Default for HealthTable<K> {
    fn default() -> Self {
        HealthTable {
            entries: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> HealthTable<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a result; an unknown key starts down (so its first success
    /// is reported as [`Verdict::CameUp`]).
    pub fn observe(&mut self, key: &K, success: bool, failure_threshold: u32) -> Verdict {
        self.entries
            .entry(key.clone())
            .or_insert_with(|| Health::new(false))
            .observe(success, failure_threshold)
    }

    /// Adds a key with a known starting state; an existing entry is kept.
    pub fn insert_if_absent(&mut self, key: K, healthy: bool) {
        self.entries
            .entry(key)
            .or_insert_with(|| Health::new(healthy));
    }

    pub fn get(&self, key: &K) -> Option<&Health> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut Health> {
        self.entries.get_mut(key)
    }

    /// Keeps the state of keys still present after a reload and forgets the
    /// rest; new keys are added later by `insert_if_absent` or `observe`.
    pub fn retain_keys<'a>(&mut self, keep: impl IntoIterator<Item = &'a K>)
    where
        K: 'a,
    {
        let keep: std::collections::HashSet<&K> = keep.into_iter().collect();
        self.entries.retain(|key, _| keep.contains(key));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_downs_with_failurecount_one() {
        let mut health = Health::new(true);
        assert_eq!(health.observe(false, 1), Verdict::WentDown);
        assert!(!health.healthy());
        assert_eq!(health.observe(false, 1), Verdict::Unchanged);
    }

    #[test]
    fn consecutive_failures_reach_the_threshold() {
        let mut health = Health::new(true);
        assert_eq!(
            health.observe(false, 3),
            Verdict::SoftFailure {
                failures: 1,
                threshold: 3
            }
        );
        assert_eq!(
            health.observe(false, 3),
            Verdict::SoftFailure {
                failures: 2,
                threshold: 3
            }
        );
        assert_eq!(health.observe(false, 3), Verdict::WentDown);
        assert!(!health.ready());
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut health = Health::new(true);
        health.observe(false, 3);
        health.observe(false, 3);
        assert_eq!(health.observe(true, 3), Verdict::Unchanged);
        assert_eq!(health.consecutive_failures(), 0);
        // The count starts over: two more failures are still soft.
        assert!(matches!(
            health.observe(false, 3),
            Verdict::SoftFailure { failures: 1, .. }
        ));
        assert!(matches!(
            health.observe(false, 3),
            Verdict::SoftFailure { failures: 2, .. }
        ));
        assert!(health.healthy());
    }

    #[test]
    fn one_success_restores_a_down_real() {
        let mut health = Health::new(true);
        for _ in 0..5 {
            health.observe(false, 2);
        }
        assert!(!health.healthy());
        assert_eq!(health.observe(true, 2), Verdict::CameUp);
        assert!(health.healthy());
        assert_eq!(health.observe(true, 2), Verdict::Unchanged);
    }

    #[test]
    fn zero_threshold_behaves_like_one() {
        let mut health = Health::new(true);
        assert_eq!(health.observe(false, 0), Verdict::WentDown);
    }

    #[test]
    fn only_flips_are_reported_as_flips() {
        let mut health = Health::new(false);
        let verdicts: Vec<bool> = [false, true, true, false, false, true]
            .iter()
            .map(|ok| health.observe(*ok, 1).flipped())
            .collect();
        assert_eq!(verdicts, [false, true, false, true, false, true]);
    }

    #[test]
    fn enabled_is_independent_of_healthy() {
        let mut health = Health::new(true);
        assert!(health.set_enabled(false));
        assert!(health.healthy());
        assert!(!health.ready());
        // Checks keep counting while disabled; re-enabling restores ready.
        assert_eq!(health.observe(true, 1), Verdict::Unchanged);
        assert!(health.set_enabled(true));
        assert!(health.ready());
        assert!(!health.set_enabled(true));
    }

    #[test]
    fn table_keeps_state_of_retained_keys() {
        let mut table: HealthTable<&str> = HealthTable::new();
        table.insert_if_absent("a", true);
        table.insert_if_absent("b", true);
        table.observe(&"a", false, 1);
        table.retain_keys([&"a", &"c"]);
        assert_eq!(table.len(), 1);
        assert!(!table.get(&"a").unwrap().healthy());
        // Re-inserting an existing key does not reset it.
        table.insert_if_absent("a", true);
        assert!(!table.get(&"a").unwrap().healthy());
        // A new key starts down, so its first success is a flip.
        assert_eq!(table.observe(&"c", true, 1), Verdict::CameUp);
    }
}
