// SPDX-License-Identifier: GPL-2.0-or-later
//! Value parsers for directive values.
//!
//! ldirectord reads most values with *unanchored* Perl regular expressions:
//! `checktimeout=5s` is 5 because `(\d+)` finds the first digits anywhere,
//! `checktype="connect"` works because `([\w-]+)` skips the quote. These
//! functions reproduce those searches exactly (nom for the token grammar,
//! explicit scans for "leftmost match anywhere"), and return byte offsets
//! so errors can point at the right column.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use nom::bytes::complete::{take_till, take_while1};
use nom::character::complete::{char, digit1};
use nom::combinator::{all_consuming, map_res};
use nom::{IResult, Parser};

use super::lexer::{is_perl_space, is_word};

/// A piece of a value with its byte offset in that value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    pub text: &'a str,
    pub offset: usize,
}

fn piece<'a>(whole: &'a str, part: &'a str) -> Piece<'a> {
    Piece {
        text: part,
        offset: part.as_ptr() as usize - whole.as_ptr() as usize,
    }
}

/// `(\d+)`, unanchored: the first run of ASCII digits.
pub fn first_digits(value: &str) -> Option<Piece<'_>> {
    let r: IResult<&str, (&str, &str)> =
        (take_till(|c: char| c.is_ascii_digit()), digit1).parse(value);
    r.ok().map(|(_, (_, digits))| piece(value, digits))
}

/// A Perl string is false when it is empty or exactly `"0"`; so `00` is a
/// true value with number 0 (`checkinterval=00` is accepted as 0).
pub fn perl_true(s: &str) -> bool {
    !s.is_empty() && s != "0"
}

/// Decimal digits as a number, saturating (Perl would switch to a float;
/// no sane configuration gets near `u64::MAX`).
pub fn saturating_u64(digits: &str) -> u64 {
    digits.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10)
            .saturating_add(u64::from(d.wrapping_sub(b'0')))
    })
}

/// The first maximal run of characters matching `pred`, anywhere.
pub fn first_run(value: &str, pred: impl Fn(char) -> bool) -> Option<Piece<'_>> {
    let start = value.find(&pred)?;
    let rest = &value[start..];
    let end = rest.find(|c: char| !pred(c)).unwrap_or(rest.len());
    Some(Piece {
        text: &rest[..end],
        offset: start,
    })
}

/// `(\w+)`, unanchored.
pub fn first_word(value: &str) -> Option<Piece<'_>> {
    first_run(value, is_word)
}

/// `\"(.*)\"` right after the `=`: the text between the opening quote and
/// the *last* quote of the line (Perl's greedy `.*`). `None` when the
/// value does not start with a quote or has no closing one.
pub fn quoted(value: &str) -> Option<Piece<'_>> {
    let inner = value.strip_prefix('"')?;
    let last = inner.rfind('"')?;
    Some(Piece {
        text: &inner[..last],
        offset: 1,
    })
}

/// `yes` or `no`, compared exactly (`$1 eq "yes"`): no trimming.
pub fn yes_no(value: &str) -> Option<bool> {
    match value {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// `^\d+\.\d+\.\d+\.\d+$` (with each part read as a number; ldirectord
/// passes the text to ipvsadm, which needs real octets).
pub fn dotted_quad(value: &str) -> Option<Ipv4Addr> {
    fn octet(input: &str) -> IResult<&str, u8> {
        map_res(digit1, |d: &str| u8::try_from(saturating_u64(d))).parse(input)
    }
    let r: IResult<&str, _> =
        all_consuming((octet, char('.'), octet, char('.'), octet, char('.'), octet)).parse(value);
    r.ok()
        .map(|(_, (a, _, b, _, c, _, d))| Ipv4Addr::new(a, b, c, d))
}

/// Does `value` match `^\d+\.\d+\.\d+\.\d+$` at all (whatever the numbers)?
pub fn looks_dotted_quad(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Characters of a port token: `[0-9A-Za-z-_]`.
pub fn is_port_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Characters of a virtual's host: `[0-9A-Za-z._+-]`.
fn is_virtual_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')
}

/// The forms a `virtual=` value can take, before any name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VirtualSpec<'a> {
    /// `host:port` (host may be a dotted quad or a name).
    HostPort {
        host: Piece<'a>,
        port: Piece<'a>,
    },
    /// `[v6]:port`.
    BracketedHostPort {
        host: Piece<'a>,
        port: Piece<'a>,
    },
    /// `N`: a firewall mark.
    Fwmark(Piece<'a>),
    Invalid,
}

/// Read a `virtual=` value the way ldirectord's four regexes do
/// (L1345-1362); anything after the port is ignored.
pub fn virtual_spec(value: &str) -> VirtualSpec<'_> {
    fn host_port(input: &str) -> IResult<&str, (&str, char, &str)> {
        (
            take_while1(is_virtual_host_char),
            char(':'),
            take_while1(is_port_char),
        )
            .parse(input)
    }
    fn bracketed(input: &str) -> IResult<&str, (char, &str, char, char, &str)> {
        (
            char('['),
            take_while1(|c: char| c.is_ascii_hexdigit() || c == ':'),
            char(']'),
            char(':'),
            take_while1(is_port_char),
        )
            .parse(input)
    }
    if let Ok((_, (host, _, port))) = host_port(value) {
        return VirtualSpec::HostPort {
            host: piece(value, host),
            port: piece(value, port),
        };
    }
    let fwmark: IResult<&str, &str> = digit1(value);
    if let Ok((_, mark)) = fwmark {
        return VirtualSpec::Fwmark(piece(value, mark));
    }
    if let Ok((_, (_, host, _, _, port))) = bracketed(value) {
        return VirtualSpec::BracketedHostPort {
            host: piece(value, host),
            port: piece(value, port),
        };
    }
    VirtualSpec::Invalid
}

/// `parse_fallback` (L2205): the value is cut to its last one or two
/// whitespace-separated words (`(\S+)(\s+(\S+))?\s*$`, unanchored), the
/// first being `host[:port]` and the second the forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackSpec<'a> {
    pub host: Piece<'a>,
    pub port: Option<Piece<'a>>,
    pub forward: Option<Piece<'a>>,
    /// Words before the last two, which ldirectord silently drops.
    pub dropped: Option<Piece<'a>>,
}

pub fn fallback_spec(value: &str) -> FallbackSpec<'_> {
    let words: Vec<Piece<'_>> = split_words(value);
    let (server, forward, dropped) = match words.len() {
        0 => (
            Piece {
                text: value,
                offset: 0,
            },
            None,
            None,
        ),
        1 => (words[0], None, None),
        n => {
            let first = words[n - 2];
            let dropped = Piece {
                text: value[..first.offset].trim_end_matches(is_perl_space),
                offset: 0,
            };
            (first, Some(words[n - 1]), Some(dropped))
        }
    };
    // (:(\d+|[A-Za-z0-9-_]+))?$ : the leftmost ':' followed only by port
    // characters up to the end.
    let text = server.text;
    let mut port = None;
    let mut host_end = text.len();
    for (i, c) in text.char_indices() {
        if c == ':' {
            let rest = &text[i + 1..];
            if !rest.is_empty() && rest.chars().all(is_port_char) {
                port = Some(Piece {
                    text: rest,
                    offset: server.offset + i + 1,
                });
                host_end = i;
                break;
            }
        }
    }
    FallbackSpec {
        host: Piece {
            text: &text[..host_end],
            offset: server.offset,
        },
        port,
        forward,
        dropped,
    }
}

/// Whitespace-separated words with their offsets.
pub fn split_words(value: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in value.char_indices() {
        match (is_perl_space(c), start) {
            (true, Some(s)) => {
                out.push(Piece {
                    text: &value[s..i],
                    offset: s,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Piece {
            text: &value[s..],
            offset: s,
        });
    }
    out
}

/// The address part of a `real=` line as ldirectord's unanchored regex
/// (L1967) finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealSpec<'a> {
    pub first: Piece<'a>,
    pub last: Option<Piece<'a>>,
    pub port: Option<Piece<'a>>,
    /// Everything after the whitespace that follows the address.
    pub flags: Piece<'a>,
}

fn real_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // ldirectord's own pattern, spelled for the regex crate: ASCII
        // classes, Perl's \s, and `[0-9A-fa-f:]` kept as written (A-f spans
        // `[\]^_\``). The regex crate reports the same leftmost-first match
        // and groups a backtracking engine would for this pattern. The
        // pattern is a constant, so building it cannot fail at run time.
        const ADDR: &str = r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|[A-Za-z0-9.\-]+|\[[0-9A-fa-f:]+\]";
        let pattern =
            format!(r"({ADDR})(->({ADDR}))?(:([0-9]+|[A-Za-z0-9_\-]+))?[\t\n\x0B\x0C\r ]+(.*)");
        #[allow(clippy::expect_used)]
        regex::Regex::new(&pattern).expect("constant pattern")
    })
}

pub fn real_spec(value: &str) -> Option<RealSpec<'_>> {
    plain_ipv4_real(value).or_else(|| real_spec_by_regex(value))
}

/// The common shape `A.B.C.D[:PORT]<blanks>FLAGS` (numeric port), read
/// without the regex: its capture groups cost a backtracking search per
/// real, a third of parsing a 10,000-real config. For this shape the
/// regex's leftmost-first match starts at 0 and takes the first choice
/// at every step (the dotted-quad branch, each digit run whole, no range,
/// the numeric port whole, every blank), which is exactly what is read
/// here; anything else (names, IPv6, ranges, named ports, a newline) is
/// left to the regex.
fn plain_ipv4_real(value: &str) -> Option<RealSpec<'_>> {
    let bytes = value.as_bytes();
    if bytes.contains(&b'\n') {
        return None;
    }
    let digits = |from: usize| {
        bytes[from.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = 0;
    for octet in 0..4 {
        let run = digits(at);
        if run == 0 {
            return None;
        }
        at += run;
        if octet < 3 {
            if bytes.get(at) != Some(&b'.') {
                return None;
            }
            at += 1;
        }
    }
    let first = Piece {
        text: &value[..at],
        offset: 0,
    };
    let mut port = None;
    if bytes.get(at) == Some(&b':') {
        let run = digits(at + 1);
        if run == 0 {
            return None;
        }
        port = Some(Piece {
            text: &value[at + 1..at + 1 + run],
            offset: at + 1,
        });
        at += 1 + run;
    }
    let blanks = bytes[at..]
        .iter()
        .take_while(|b| is_perl_space(char::from(**b)))
        .count();
    if blanks == 0 {
        return None;
    }
    at += blanks;
    Some(RealSpec {
        first,
        last: None,
        port,
        flags: Piece {
            text: &value[at..],
            offset: at,
        },
    })
}

fn real_spec_by_regex(value: &str) -> Option<RealSpec<'_>> {
    let caps = real_regex().captures(value)?;
    let get = |i: usize| {
        caps.get(i).map(|m| Piece {
            text: m.as_str(),
            offset: m.start(),
        })
    };
    Some(RealSpec {
        first: get(1)?,
        last: get(3),
        port: get(5),
        flags: get(6)?,
    })
}

/// What `add_real_server` (L2102) reads from the flags after the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealFlags<'a> {
    /// The first word: must be gate, masq or ipip.
    pub method: Option<Piece<'a>>,
    pub weight: Option<Piece<'a>>,
    pub request: Option<Piece<'a>>,
    pub receive: Option<Piece<'a>>,
    pub lower: Option<Piece<'a>>,
    pub upper: Option<Piece<'a>>,
    /// Text left over that is not whitespace: an error.
    pub leftover: Option<Piece<'a>>,
    /// Text skipped by an unanchored search before the weight, the request
    /// pair or a threshold (silently dropped by ldirectord).
    pub skipped: Vec<Piece<'a>>,
}

/// Position just after a whitespace run that starts at or after `from` and
/// is followed by something `then` accepts; returns (run start, run end).
fn find_space_then(s: &str, from: usize, then: impl Fn(&str) -> bool) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        if is_perl_space(bytes[i] as char) {
            let start = i;
            while i < bytes.len() && is_perl_space(bytes[i] as char) {
                i += 1;
            }
            if then(&s[i..]) {
                return Some((start, i));
            }
        } else {
            i += 1;
        }
    }
    None
}

pub fn real_flags(flags: &str) -> RealFlags<'_> {
    let mut out = RealFlags {
        method: None,
        weight: None,
        request: None,
        receive: None,
        lower: None,
        upper: None,
        leftover: None,
        skipped: Vec::new(),
    };
    // /(\w+)(.*)/
    let Some(method) = first_word(flags) else {
        return out;
    };
    out.method = Some(method);
    let mut pos = method.offset + method.text.len();

    // /\s+(\d+)(.*)/: the first blank run followed by a digit.
    if let Some((start, end)) =
        find_space_then(flags, pos, |r| r.starts_with(|c: char| c.is_ascii_digit()))
    {
        if flags[pos..start].chars().any(|c| !is_perl_space(c)) {
            out.skipped.push(Piece {
                text: &flags[pos..start],
                offset: pos,
            });
        }
        let len = flags[end..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(flags.len() - end);
        out.weight = Some(Piece {
            text: &flags[end..end + len],
            offset: end,
        });
        pos = end + len;
    }

    // /\s+\"(.*)\"[, ]\s*\"(.*)\"(.*)/: only the first blank run followed
    // by a quote can start a match (a later start sees a subset of the
    // same closing quotes). Both groups are greedy: the request runs to the
    // last `"` that is followed by `,` or ` `, blanks, and a `"` that still
    // has a closing `"` after it; the receive runs to the last `"`.
    if let Some((start, end)) = find_space_then(flags, pos, |r| r.starts_with('"')) {
        let open = end;
        let bytes = flags.as_bytes();
        if let Some(last_quote) = flags.rfind('"') {
            let mut i = last_quote;
            let mut found = None;
            while i > open {
                if bytes[i] == b'"' && i + 1 < bytes.len() && matches!(bytes[i + 1], b',' | b' ') {
                    let mut j = i + 2;
                    while j < bytes.len() && is_perl_space(bytes[j] as char) {
                        j += 1;
                    }
                    if j < last_quote && bytes[j] == b'"' {
                        found = Some((i, j));
                        break;
                    }
                }
                i -= 1;
            }
            if let Some((close_req, open_recv)) = found {
                if flags[pos..start].chars().any(|c| !is_perl_space(c)) {
                    out.skipped.push(Piece {
                        text: &flags[pos..start],
                        offset: pos,
                    });
                }
                out.request = Some(Piece {
                    text: &flags[open + 1..close_req],
                    offset: open + 1,
                });
                out.receive = Some(Piece {
                    text: &flags[open_recv + 1..last_quote],
                    offset: open_recv + 1,
                });
                pos = last_quote + 1;
            }
        }
    }

    for (prefix, slot) in [("l:", 0usize), ("u:", 1usize)] {
        let starts = |r: &str| {
            r.strip_prefix(prefix)
                .is_some_and(|d| d.starts_with(|c: char| c.is_ascii_digit()))
        };
        if let Some((start, end)) = find_space_then(flags, pos, starts) {
            if flags[pos..start].chars().any(|c| !is_perl_space(c)) {
                out.skipped.push(Piece {
                    text: &flags[pos..start],
                    offset: pos,
                });
            }
            let digits_at = end + 2;
            let len = flags[digits_at..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(flags.len() - digits_at);
            let p = Piece {
                text: &flags[digits_at..digits_at + len],
                offset: digits_at,
            };
            if slot == 0 {
                out.lower = Some(p);
            } else {
                out.upper = Some(p);
            }
            pos = digits_at + len;
        }
    }

    let rest = &flags[pos..];
    if let Some(first) = rest.find(|c: char| !is_perl_space(c)) {
        out.leftover = Some(Piece {
            text: rest[first..].trim_end_matches(is_perl_space),
            offset: pos + first,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_from_the_first_digits() {
        assert_eq!(first_digits("5s").map(|p| p.text), Some("5"));
        assert_eq!(
            first_digits("x 12 y 3").map(|p| (p.text, p.offset)),
            Some(("12", 2))
        );
        assert_eq!(first_digits("abc"), None);
        assert!(perl_true("00"));
        assert!(!perl_true("0"));
    }

    #[test]
    fn quoted_takes_the_last_quote() {
        assert_eq!(quoted(r#""a"b" tail"#).map(|p| p.text), Some(r#"a"b"#));
        assert_eq!(quoted(r#""""#).map(|p| p.text), Some(""));
        assert_eq!(quoted(r#""open"#), None);
        assert_eq!(quoted("bare"), None);
    }

    #[test]
    fn virtual_forms() {
        assert!(matches!(
            virtual_spec("10.0.0.1:80 junk"),
            VirtualSpec::HostPort { .. }
        ));
        assert!(matches!(virtual_spec("80"), VirtualSpec::Fwmark(_)));
        assert!(matches!(
            virtual_spec("[2001:db8::1]:http"),
            VirtualSpec::BracketedHostPort { .. }
        ));
        assert_eq!(virtual_spec(":80"), VirtualSpec::Invalid);
    }

    #[test]
    fn fallback_keeps_the_last_two_words() {
        let f = fallback_spec("127.0.0.1:80 gate");
        assert_eq!(
            (
                f.host.text,
                f.port.map(|p| p.text),
                f.forward.map(|p| p.text)
            ),
            ("127.0.0.1", Some("80"), Some("gate"))
        );
        let f = fallback_spec("127.0.0.1:80 gate # note");
        assert_eq!(
            (f.host.text, f.forward.map(|p| p.text)),
            ("#", Some("note"))
        );
        let f = fallback_spec("[::1]:80");
        assert_eq!((f.host.text, f.port.map(|p| p.text)), ("[::1]", Some("80")));
    }

    #[test]
    fn real_address_search_is_unanchored() {
        let r = real_spec("192.168.6.2::5060 gate").unwrap();
        assert_eq!(r.first.text, "5060");
        assert_eq!(r.port, None);
        let r = real_spec("sql01->sql03:3306 gate 10").unwrap();
        assert_eq!(
            (r.first.text, r.last.map(|p| p.text), r.port.map(|p| p.text)),
            ("sql01", Some("sql03"), Some("3306"))
        );
        let r = real_spec("[2001:db8::1]:80 masq").unwrap();
        assert_eq!(r.first.text, "[2001:db8::1]");
        assert!(real_spec("10.0.0.1:80").is_none());
    }

    #[test]
    fn plain_ipv4_reading_agrees_with_the_regex() {
        let addrs = [
            "10.0.0.1",
            "10.0.0.1.5",
            "10.0.0",
            "1.2.3.4->1.2.3.9",
            "010.1.1.1",
            "10.0.0.1x",
            "host",
            "[::1]",
            "-1.2.3.4",
            " 10.0.0.1",
            "1.2.3.4-",
        ];
        let ports = ["", ":80", ":", ":http", ":80x", "::80", ":8-0", ":65536"];
        let rests = [
            " gate",
            "\tmasq 5",
            "  ",
            "",
            "gate",
            " ",
            " \x0b\x0c\r ipip 2 \"/x\", \"y\"",
            " gate\nmasq",
            "\n",
        ];
        let mut fast_hits = 0;
        for addr in addrs {
            for port in ports {
                for rest in rests {
                    let value = format!("{addr}{port}{rest}");
                    if let Some(fast) = plain_ipv4_real(&value) {
                        fast_hits += 1;
                        assert_eq!(Some(fast), real_spec_by_regex(&value), "{value:?}");
                    }
                    assert_eq!(real_spec(&value), real_spec_by_regex(&value), "{value:?}");
                }
            }
        }
        // The shortcut must actually serve the common shapes.
        assert!(fast_hits >= 20, "{fast_hits}");
        assert!(plain_ipv4_real("10.102.117.14:80 masq 9").is_some());
        assert!(plain_ipv4_real("10.102.117.14 gate").is_some());
    }

    #[test]
    fn real_flags_quirks() {
        let f = real_flags(r#"gate 5 "/x", "ok" l:1 u:9"#);
        assert_eq!(f.weight.map(|p| p.text), Some("5"));
        assert_eq!(f.request.map(|p| p.text), Some("/x"));
        assert_eq!(f.receive.map(|p| p.text), Some("ok"));
        assert_eq!(f.lower.map(|p| p.text), Some("1"));
        assert_eq!(f.upper.map(|p| p.text), Some("9"));
        assert_eq!(f.leftover, None);
        // The weight search is unanchored: 200 inside the receive string.
        let f = real_flags(r#"gate "/x", "HTTP 200""#);
        assert_eq!(f.weight.map(|p| p.text), Some("200"));
        assert_eq!(f.leftover.map(|p| p.text), Some("\""));
        // Quoted thresholds become request and receive.
        let f = real_flags(r#"gate 1 "l:5" "u:9""#);
        assert_eq!(f.request.map(|p| p.text), Some("l:5"));
        assert_eq!(f.lower, None);
        assert_eq!(real_flags("-gate").method.map(|p| p.text), Some("gate"));
    }
}
