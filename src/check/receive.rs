// SPDX-License-Identifier: GPL-2.0-or-later
//! `receive=`: a regex matched against what the real answered.
//!
//! ldirectord uses Perl regexes; the `regex` crate accepts the common
//! subset (no backreferences or look-around). Matching is on bytes so a
//! body that is not UTF-8 can still be searched.

use regex::bytes::Regex;

use super::CheckError;

#[derive(Debug, Clone)]
pub struct Receive {
    pattern: String,
    regex: Option<Regex>,
}

impl Receive {
    /// Compiles `pattern`; an empty pattern matches everything.
    pub fn new(pattern: &str) -> Result<Self, CheckError> {
        let regex = if pattern.is_empty() {
            None
        } else {
            Some(Regex::new(pattern).map_err(|err| {
                CheckError::Other(format!("invalid receive regex /{pattern}/: {err}"))
            })?)
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
}
