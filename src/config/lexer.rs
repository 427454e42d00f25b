// SPDX-License-Identifier: GPL-2.0-or-later
//! Lines, indentation and `key = value` splitting, with ldirectord's exact
//! lexical rules (ldirectord.in L1331-1420):
//!
//! * A global line is taken raw: no comment stripping, no trimming, a CR of
//!   a DOS line ending stays part of the value.
//! * Inside a virtual block a line that starts with optional blanks and `#`
//!   is skipped; otherwise everything from the first `#` on is cut (inside
//!   quotes too), tabs become four spaces, and the line must then start
//!   with at least four spaces followed by something. Any other line ends
//!   the block and is read again as a global line.

use std::borrow::Cow;

use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::char;
use nom::{IResult, Parser};

/// One physical line, without its `\n`.
#[derive(Debug, Clone, Copy)]
pub struct RawLine<'a> {
    /// 1-based.
    pub number: u32,
    pub text: &'a str,
}

/// Split a file into lines as Perl's `<FH>` does (on `\n` only).
pub fn lines(src: &str) -> Vec<RawLine<'_>> {
    let mut out = Vec::new();
    let mut number = 0u32;
    let mut rest = src;
    while !rest.is_empty() {
        number = number.saturating_add(1);
        let (text, next) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        out.push(RawLine { number, text });
        rest = next;
    }
    out
}

/// Perl's `\s` on byte strings: space, `\t`, `\n`, `\v`, `\f`, `\r`.
pub fn is_perl_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Perl's `\w` on byte strings.
pub fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `^\s*$`
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_perl_space)
}

/// `^\s*#`
pub fn is_comment(text: &str) -> bool {
    text.trim_start_matches(is_perl_space).starts_with('#')
}

/// A `key = value` split: `^(key)\s*=\s*(value)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    /// Byte offset of the key in the text it was split from.
    pub key_offset: usize,
    /// `None` when the key is not followed by `=` (only meaningful for a
    /// bare `supervised`).
    pub value: Option<&'a str>,
    /// Byte offset of the value.
    pub value_offset: usize,
}

fn key_value_parts(input: &str) -> IResult<&str, (&str, &str)> {
    let (rest, key) = take_while1(is_word).parse(input)?;
    let (rest, _) = take_while(is_perl_space).parse(rest)?;
    let (rest, _) = char('=').parse(rest)?;
    let (rest, _) = take_while(is_perl_space).parse(rest)?;
    Ok(("", (key, rest)))
}

/// Split `text` (starting at the key, no indentation) into key and value.
/// Returns `None` if it does not start with a word.
pub fn key_value(text: &str) -> Option<KeyValue<'_>> {
    match key_value_parts(text) {
        Ok((_, (key, value))) => Some(KeyValue {
            key,
            key_offset: 0,
            value: Some(value),
            value_offset: text.len() - value.len(),
        }),
        Err(_) => {
            let end = text.find(|c: char| !is_word(c)).unwrap_or(text.len());
            if end == 0 {
                return None;
            }
            Some(KeyValue {
                key: &text[..end],
                key_offset: 0,
                value: None,
                value_offset: end,
            })
        }
    }
}

/// What a line inside a virtual block is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockLine<'a> {
    /// `^\s*#`: skipped, the block goes on.
    Comment,
    /// Not indented by four or more spaces after tab expansion (a blank
    /// line included): the block ends here and this line is read again as
    /// a global line.
    End,
    /// An indented line. `text` is what follows the indentation, after the
    /// comment cut and tab expansion; `offset` is its byte offset in the
    /// expanded line, for [`original_col`].
    /// Borrowed from the line unless a tab had to be expanded in it.
    Directive { text: Cow<'a, str>, offset: usize },
}

/// Classify a line inside a virtual block.
pub fn block_line(raw: &str) -> BlockLine<'_> {
    if is_comment(raw) {
        return BlockLine::Comment;
    }
    // s/#.*//  (`.` stops at a newline, and there is none in `raw`)
    let cut = match raw.find('#') {
        Some(i) => &raw[..i],
        None => raw,
    };
    // s/\t/    /g, then /^ {4,}(.+)/: greedy spaces, then at least one
    // character; with nothing after five or more spaces the last space is
    // that character. The indentation is measured as expanded; only the
    // rest is copied, and only when it holds a tab (seldom).
    let indent_len = cut.len() - cut.trim_start_matches([' ', '\t']).len();
    let spaces: usize = cut[..indent_len]
        .bytes()
        .map(|b| if b == b'\t' { 4 } else { 1 })
        .sum();
    let rest = &cut[indent_len..];
    if spaces < 4 {
        return BlockLine::End;
    }
    if !rest.is_empty() {
        let text = if rest.contains('\t') {
            Cow::Owned(rest.replace('\t', "    "))
        } else {
            Cow::Borrowed(rest)
        };
        BlockLine::Directive {
            text,
            offset: spaces,
        }
    } else if spaces >= 5 {
        BlockLine::Directive {
            text: Cow::Borrowed(" "),
            offset: spaces - 1,
        }
    } else {
        BlockLine::End
    }
}

/// Map a byte offset in the tab-expanded line back to a 1-based character
/// column of the original line.
pub fn original_col(raw: &str, expanded_offset: usize) -> u32 {
    let mut expanded = 0usize;
    let mut col = 1u32;
    for c in raw.chars() {
        if expanded >= expanded_offset {
            break;
        }
        expanded += if c == '\t' { 4 } else { c.len_utf8() };
        col = col.saturating_add(1);
    }
    col
}

/// 1-based character column of a byte offset in a line.
pub fn col_of(text: &str, byte_offset: usize) -> u32 {
    let prefix = text.get(..byte_offset).unwrap_or(text);
    u32::try_from(prefix.chars().count())
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_carriage_returns_and_count_from_one() {
        let l = lines("a\r\n\nb");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].text, "a\r");
        assert_eq!(l[1].text, "");
        assert_eq!(l[2].number, 3);
    }

    #[test]
    fn block_lines_follow_ldirectord() {
        assert_eq!(block_line("\t# x"), BlockLine::Comment);
        assert_eq!(block_line("# x"), BlockLine::Comment);
        assert_eq!(block_line(""), BlockLine::End);
        assert_eq!(block_line("  real=1"), BlockLine::End);
        assert_eq!(block_line("\t"), BlockLine::End);
        assert_eq!(block_line("    "), BlockLine::End);
        assert_eq!(
            block_line("\t\t"),
            BlockLine::Directive {
                text: " ".into(),
                offset: 7
            }
        );
        assert_eq!(
            block_line("\treceive=\"a#b\""),
            BlockLine::Directive {
                text: "receive=\"a".into(),
                offset: 4
            }
        );
        assert_eq!(
            block_line("  \t  x"),
            BlockLine::Directive {
                text: "x".into(),
                offset: 8
            }
        );
    }

    #[test]
    fn key_value_splits_like_the_perl_regexes() {
        let kv = key_value("checktimeout = 5s").unwrap();
        assert_eq!(kv.key, "checktimeout");
        assert_eq!(kv.value, Some("5s"));
        assert_eq!(kv.value_offset, 15);
        let bare = key_value("supervised").unwrap();
        assert_eq!(bare.value, None);
        assert!(key_value(" x=1").is_none());
        assert_eq!(key_value("real 6=x").unwrap().value, None);
    }

    #[test]
    fn columns_map_back_through_tabs() {
        assert_eq!(original_col("\treal=x", 4), 2);
        assert_eq!(original_col("    real=x", 4), 5);
        assert_eq!(col_of("abc", 2), 3);
    }
}
