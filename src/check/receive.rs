// SPDX-License-Identifier: GPL-2.0-or-later
//! `receive=`: a regex matched against what the real answered.
//!
//! ldirectord uses Perl regexes; the `regex` crate accepts the common
//! subset (no backreferences or look-around). Matching is on bytes so a
//! body that is not UTF-8 can still be searched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use regex::bytes::Regex;

use super::CheckError;

/// Compiled patterns, shared: thousands of reals usually share a handful
/// of receive strings, and a compiled regex costs tens of kilobytes, so
/// compiling one per checker made 10,000 http checks cost 300 MiB.
/// Shared through an `Arc`, not by cloning the `Regex`: a clone shares the
/// compiled program but brings its own pool of search caches (about 2 KB a
/// checker, 20 MB for 10,000 reals); one regex has one pool.
///
/// The cache holds weak references: a reload that keeps a pattern gets the
/// regex its running checks already hold (no recompile), and a pattern no
/// check uses any more is freed instead of kept for the life of the
/// daemon.
fn compiled(pattern: &str) -> Result<Arc<Regex>, CheckError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Weak<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked mid-insert; the
    // map itself is still usable.
    let mut cache = cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(regex) = cache.get(pattern).and_then(Weak::upgrade) {
        return Ok(regex);
    }
    let regex = Regex::new(pattern)
        .map(Arc::new)
        .map_err(|err| CheckError::Other(format!("invalid receive regex /{pattern}/: {err}")))?;
    // Patterns are few; dropping the dead ones on each compile keeps the
    // map as small as the set in use.
    cache.retain(|_, weak| weak.strong_count() > 0);
    cache.insert(pattern.to_string(), Arc::downgrade(&regex));
    Ok(regex)
}

#[derive(Debug, Clone)]
pub struct Receive {
    pattern: String,
    regex: Option<Arc<Regex>>,
}

impl Receive {
    /// Compiles `pattern`; an empty pattern matches everything.
    pub fn new(pattern: &str) -> Result<Self, CheckError> {
        let regex = if pattern.is_empty() {
            None
        } else {
            Some(compiled(pattern)?)
        };
        Ok(Receive {
            pattern: pattern.to_string(),
            regex,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.regex.is_none()
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// True when empty or when the regex matches somewhere in `haystack`.
    pub fn matches(&self, haystack: &[u8]) -> bool {
        match &self.regex {
            None => true,
            Some(regex) => regex.is_match(haystack),
        }
    }

    /// The failure reason for a mismatch in `place` ("body", ...).
    pub fn not_found_in(&self, place: &'static str) -> CheckError {
        CheckError::ReceiveNotFoundIn {
            pattern: self.pattern.clone(),
            place,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_matches_anything_and_regex_searches() {
        assert!(Receive::new("").unwrap().matches(b"whatever"));
        let receive = Receive::new("al+ive").unwrap();
        assert!(receive.matches(b"I am alllive\n"));
        assert!(!receive.matches(b"dead"));
        assert_eq!(
            receive.not_found_in("body").to_string(),
            "receive /al+ive/ not found in body"
        );
    }

    #[test]
    fn invalid_regex_is_a_reason() {
        let err = Receive::new("(unclosed").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid receive regex /(unclosed/"));
    }

    #[test]
    fn a_kept_pattern_reuses_the_running_regex_and_a_dropped_one_is_freed() {
        // A pattern no other test uses: the cache is process-wide.
        let pattern = "reuse-across-reload-[0-9]+";
        let running = Receive::new(pattern).unwrap();
        // The reload's checker for the same receive string.
        let reloaded = Receive::new(pattern).unwrap();
        let (Some(a), Some(b)) = (&running.regex, &reloaded.regex) else {
            panic!("a non-empty pattern compiles to a regex");
        };
        assert!(Arc::ptr_eq(a, b), "same pattern compiled twice");
        assert!(reloaded.matches(b"reuse-across-reload-42"));
        // Once no checker holds it, the regex is gone, not cached forever.
        let weak = Arc::downgrade(a);
        drop(running);
        drop(reloaded);
        assert!(weak.upgrade().is_none(), "unused regex kept alive");
        // And a later use compiles it again.
        assert!(Receive::new(pattern)
            .unwrap()
            .matches(b"reuse-across-reload-7"));
    }
}
