// SPDX-License-Identifier: GPL-2.0-or-later
//! From lines to the typed model, with ldirectord 4.12's verdicts.
//!
//! The control flow mirrors `read_config` (ldirectord.in L1316): a
//! `virtual=` line opens a block; the block's directives are read as they
//! come (errors at their line); names in the block (fallback, virtual,
//! reals) are resolved when the block ends, because the protocol (needed
//! for service-name ports) is only final then. Unlike ldirectord, parsing
//! goes on after an error so that every error of the file is reported.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::env::Environment;
use super::error::Diagnostic;
use super::lexer::{self, BlockLine, RawLine};
use super::model::*;
use super::value::{self, Piece, VirtualSpec};
use crate::check::oracle;
use crate::ipvs::model::{AddressFamily, ForwardMethod};

/// Global directive names, for "unknown directive" hints.
pub const GLOBAL_DIRECTIVES: &[&str] = &[
    "checktimeout",
    "negotiatetimeout",
    "checkinterval",
    "checkcount",
    "failurecount",
    "fallback",
    "fallback6",
    "fallbackcommand",
    "autoreload",
    "callback",
    "logfile",
    "execute",
    "fork",
    "supervised",
    "quiescent",
    "readdquiescent",
    "emailalert",
    "emailalertfreq",
    "emailalertstatus",
    "emailalertfrom",
    "cleanstop",
    "smtp",
    "maintenancedir",
    "virtual",
    "virtual6",
    // extensions
    "metrics",
    "vipinterface",
    "vipannouncecount",
    "vipannounceinterval",
    "syncdaemon",
    "syncinterface",
    "syncid",
];

/// Per-virtual directive names.
pub const VIRTUAL_DIRECTIVES: &[&str] = &[
    "real",
    "real6",
    "request",
    "receive",
    "checktype",
    "checkcommand",
    "checktimeout",
    "negotiatetimeout",
    "checkcount",
    "failurecount",
    "checkinterval",
    "checkport",
    "login",
    "passwd",
    "database",
    "secret",
    "load",
    "scheduler",
    "persistent",
    "schedflags",
    "netmask",
    "protocol",
    "ops",
    "service",
    "httpmethod",
    "virtualhost",
    "fallback",
    "fallback6",
    "fallbackcommand",
    "quiescent",
    "emailalert",
    "emailalertfreq",
    "emailalertstatus",
    "monitorfile",
    "cleanstop",
    "smtp",
    "servicename",
    "comment",
    // extensions
    "sslverify",
    "vipinterface",
    "vipannouncecount",
    "vipannounceinterval",
];

/// Largest range `A->B` accepted. ldirectord would try to add every
/// address of an absurd range (a /8 is 16 million ipvsadm calls); ldirector
/// refuses, a deliberate difference.
pub const MAX_RANGE: u64 = 65_536;

/// Parse the text of a configuration file.
pub fn parse(file: &str, text: &str, env: &dyn Environment) -> (Option<Config>, Vec<Diagnostic>) {
    let file: Arc<str> = Arc::from(file);
    let mut p = Parser {
        file: file.clone(),
        env,
        diags: Vec::new(),
        global: Global::default(),
        virtuals: Vec::new(),
        virtual_ids: std::collections::HashMap::new(),
        ended_block: None,
    };
    let lines = lexer::lines(text);
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some((six, value, value_offset)) = virtual_header(line.text) {
            i += 1;
            let mut block = p.open_virtual(line, six, value, value_offset);
            let last_line_of_file = i == lines.len();
            while i < lines.len() {
                match lexer::block_line(lines[i].text) {
                    BlockLine::Comment => i += 1,
                    BlockLine::End => break,
                    BlockLine::Directive { text, offset } => {
                        if let Some(b) = block.as_mut() {
                            p.virtual_directive(b, lines[i], &text, offset);
                        }
                        i += 1;
                    }
                }
            }
            if let Some(b) = block {
                p.close_virtual(b, last_line_of_file);
            }
            p.ended_block = Some(line.number);
            // The line that ended the block is read again as a global line
            // (ldirectord's `goto outer_loop`).
            continue;
        }
        p.global_line(line);
        i += 1;
    }
    p.finish()
}

/// `^virtual(6)?\s*=\s*(.*)`: (is virtual6, value, value offset).
fn virtual_header(text: &str) -> Option<(bool, &str, usize)> {
    let kv = lexer::key_value(text)?;
    let six = match kv.key {
        "virtual" => false,
        "virtual6" => true,
        _ => return None,
    };
    Some((six, kv.value?, kv.value_offset))
}

struct Parser<'e> {
    file: Arc<str>,
    env: &'e dyn Environment,
    diags: Vec<Diagnostic>,
    global: Global,
    virtuals: Vec<Virtual>,
    /// Each accepted virtual's id and line, for the duplicate check: a
    /// linear search formatting every earlier id made a 1,000-virtual
    /// config quadratic (70% of its parse time).
    virtual_ids: std::collections::HashMap<String, u32>,
    /// The line of the last `virtual=` whose block ended, while no column-0
    /// directive has come since: an indented line now most likely meant to
    /// continue that block.
    ended_block: Option<u32>,
}

/// A `real=` line waiting for the end of its block.
struct PendingReal {
    value: String,
    /// Span of the value's first character; offsets are added to `col`.
    at: Span,
}

/// A fallback read but not resolved yet.
struct PendingFallback {
    span: Span,
    host: String,
    host_at: Span,
    /// The written port, else the virtual's port token.
    port: Option<String>,
    forward: ForwardMethod,
}

struct Block {
    virt: Virtual,
    /// Unresolved `host:port` of the virtual line.
    host: Option<(String, Span)>,
    port_token: String,
    reals: Vec<PendingReal>,
    fallback: Option<PendingFallback>,
}

/// Where in a line a value sits, to turn value offsets into spans.
#[derive(Clone, Copy)]
struct At<'a> {
    raw: &'a str,
    line: u32,
    /// Byte offset of the value in the (tab-expanded, for block lines) line.
    base: usize,
    block: bool,
}

impl Parser<'_> {
    fn span_at(&self, at: At<'_>, offset: usize) -> Span {
        let col = if at.block {
            lexer::original_col(at.raw, at.base + offset)
        } else {
            lexer::col_of(at.raw, at.base + offset)
        };
        Span {
            file: self.file.clone(),
            line: at.line,
            col,
        }
    }

    fn error(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        let d = Diagnostic::error(span, msg);
        self.diags
            .push(if help.is_empty() { d } else { d.help(help) });
    }

    fn warn(&mut self, span: Span, msg: impl Into<String>, help: impl Into<String>) {
        let help = help.into();
        let d = Diagnostic::warning(span, msg);
        self.diags
            .push(if help.is_empty() { d } else { d.help(help) });
    }

    fn finish(mut self) -> (Option<Config>, Vec<Diagnostic>) {
        // ldirectord warns at the end of the file because fork= may come
        // after the virtuals.
        if !self.global.fork() {
            let spans: Vec<Span> = self
                .virtuals
                .iter()
                .filter_map(|v| v.checkinterval.as_ref().map(|c| c.span.clone()))
                .collect();
            for span in spans {
                self.warn(
                    span,
                    "per-virtual checkinterval: ldirectord ignores it unless fork=yes; ldirector always honours it",
                    "",
                );
            }
        }
        self.sync_daemon_checks();
        self.diags.sort_by(|a, b| {
            (a.span.line, a.span.col, a.severity).cmp(&(b.span.line, b.span.col, b.severity))
        });
        let ok = !self.diags.iter().any(|d| d.is_error());
        let config = ok.then(|| Config {
            file: self.file.clone(),
            global: self.global,
            virtuals: self.virtuals,
        });
        (config, self.diags)
    }

    /// The sync daemon needs an interface; sync settings without a daemon
    /// do nothing.
    fn sync_daemon_checks(&mut self) {
        let mode = self
            .global
            .syncdaemon
            .as_ref()
            .map(|m| (m.value, m.span.clone()));
        match mode {
            Some((SyncDaemonMode::Master | SyncDaemonMode::Backup, span))
                if self.global.syncinterface.is_none() =>
            {
                self.error(
                    span,
                    "syncdaemon needs the interface the sync messages use",
                    "add syncinterface=IFACE, such as syncinterface=eth1",
                );
            }
            Some((SyncDaemonMode::Master | SyncDaemonMode::Backup, _)) => {}
            _ => {
                let unused: Vec<Span> = [
                    self.global.syncinterface.as_ref().map(|s| s.span.clone()),
                    self.global.syncid.as_ref().map(|s| s.span.clone()),
                ]
                .into_iter()
                .flatten()
                .collect();
                for span in unused {
                    self.warn(
                        span,
                        "sync settings have no effect without syncdaemon=master or syncdaemon=backup",
                        "",
                    );
                }
            }
        }
    }

    // ----- global lines ---------------------------------------------------

    fn global_line(&mut self, line: RawLine<'_>) {
        let text = line.text;
        if lexer::is_blank(text) || lexer::is_comment(text) {
            return;
        }
        let start_span = Span {
            file: self.file.clone(),
            line: line.number,
            col: 1,
        };
        let Some(kv) = lexer::key_value(text) else {
            // Indented: a directive outside a block, or a block line after
            // a blank line (which ended the block).
            let trimmed = text.trim_start_matches(lexer::is_perl_space);
            let indent = text.len() - trimmed.len();
            let span = Span {
                col: lexer::col_of(text, indent),
                ..start_span
            };
            let key = lexer::key_value(trimmed).map(|k| k.key).unwrap_or("");
            let help = match self.ended_block {
                Some(start) if VIRTUAL_DIRECTIVES.contains(&key) => format!(
                    "the virtual block of line {start} already ended: a blank line or a line indented by fewer than 4 spaces ends it; write its directives right below virtual=, indented by a tab or 4+ spaces"
                ),
                _ if GLOBAL_DIRECTIVES.contains(&key) => {
                    "global directives must start in column 0".to_string()
                }
                _ if VIRTUAL_DIRECTIVES.contains(&key) => {
                    "per-virtual directives belong in a block right below a virtual= line".to_string()
                }
                _ => "expected a global directive in column 0, a comment, or a blank line".to_string(),
            };
            self.error(
                span,
                format!("unexpected line {:?}", trimmed.trim_end()),
                help,
            );
            return;
        };
        self.ended_block = None;
        let at = At {
            raw: text,
            line: line.number,
            base: kv.value_offset,
            block: false,
        };
        let span = start_span.clone();
        if kv.key == "supervised" {
            return self.global_supervised(kv.value, span, at);
        }
        let Some(value) = kv.value else {
            return self.unknown_global(kv.key, span);
        };
        match kv.key {
            "checktimeout" | "negotiatetimeout" => {
                let what = if kv.key == "checktimeout" {
                    "check timeout"
                } else {
                    "negotiate timeout"
                };
                if let Some(n) = self.number(value, at, what, true, true) {
                    self.comment_warning(value, at);
                    let slot = if kv.key == "checktimeout" {
                        &mut self.global.checktimeout
                    } else {
                        &mut self.global.negotiatetimeout
                    };
                    *slot = Some(Spanned::new(n, span));
                }
            }
            "connecttimeout" => self.error(
                span,
                "connecttimeout is no longer supported",
                "ldirectord deprecated it in favour of negotiatetimeout",
            ),
            "timeout" => self.error(
                span,
                "timeout is no longer supported",
                "ldirectord deprecated it in favour of checktimeout and negotiatetimeout",
            ),
            "checkinterval" | "checkcount" | "failurecount" => {
                if let Some(n) = self.number(value, at, kv.key, true, false) {
                    self.comment_warning(value, at);
                    if kv.key == "checkcount" {
                        self.warn(span.clone(), "checkcount is deprecated", "use failurecount");
                    }
                    let slot = match kv.key {
                        "checkinterval" => &mut self.global.checkinterval,
                        "checkcount" => &mut self.global.checkcount,
                        _ => &mut self.global.failurecount,
                    };
                    *slot = Some(Spanned::new(n, span));
                }
            }
            "fallback" | "fallback6" => {
                let family = if kv.key == "fallback6" {
                    AddressFamily::Inet6
                } else {
                    AddressFamily::Inet
                };
                if let Some(pending) = self.fallback_directive(value, at, span.clone(), None) {
                    // ldirectord resolves it for tcp and for udp virtuals;
                    // report a failure once.
                    let tcp = self.resolve_fallback(&pending, "tcp", family);
                    let udp = match tcp {
                        Some(_) => self.resolve_fallback(&pending, "udp", family),
                        None => None,
                    };
                    if let (Some(tcp), Some(udp)) = (tcp, udp) {
                        let slot = if family == AddressFamily::Inet {
                            &mut self.global.fallback
                        } else {
                            &mut self.global.fallback6
                        };
                        *slot = Some(Spanned::new(GlobalFallback { tcp, udp }, span));
                    }
                }
            }
            "fallbackcommand" => {
                if value.is_empty() {
                    self.error(span, "empty fallbackcommand", "expected a command to run");
                } else {
                    self.comment_warning(value, at);
                    self.global.fallbackcommand = Some(Spanned::new(value.to_string(), span));
                }
            }
            "autoreload" | "fork" | "quiescent" | "readdquiescent" | "cleanstop" => {
                if let Some(b) = self.yes_no(kv.key, value, at, true) {
                    let slot = match kv.key {
                        "autoreload" => &mut self.global.autoreload,
                        "fork" => &mut self.global.fork,
                        "quiescent" => &mut self.global.quiescent,
                        "readdquiescent" => &mut self.global.readdquiescent,
                        _ => &mut self.global.cleanstop,
                    };
                    *slot = Some(Spanned::new(b, span));
                }
            }
            "callback" => {
                if let Some(q) = self.required_quotes("callback", value, at) {
                    self.after_quote_warning(value, at);
                    self.global.callback = Some(Spanned::new(q.to_string(), span));
                }
            }
            "logfile" => {
                if let Some(q) = self.required_quotes("logfile", value, at) {
                    self.after_quote_warning(value, at);
                    let target = if q.starts_with('/') {
                        if let Err(e) = self.env.can_append(q) {
                            self.warn(
                                span.clone(),
                                format!("logfile {q} cannot be opened for appending: {e}"),
                                "ldirectord refuses to start with this (except with -d)",
                            );
                        }
                        LogTarget::File(q.to_string())
                    } else {
                        LogTarget::Syslog(q.to_string())
                    };
                    self.global.logfile = Some(Spanned::new(target, span));
                }
            }
            "execute" => {
                self.comment_warning(value, at);
                self.global
                    .execute
                    .push(Spanned::new(value.to_string(), span));
            }
            "emailalert" => {
                if let Some(a) = self.email_alert(value, span.clone()) {
                    self.comment_warning(value, at);
                    self.global.emailalert = Some(Spanned::new(a, span));
                }
            }
            "emailalertfreq" => {
                if let Some(n) = self.email_alert_freq(value, at) {
                    self.comment_warning(value, at);
                    self.global.emailalertfreq = Some(Spanned::new(n, span));
                }
            }
            "emailalertstatus" => {
                if let Some(s) = self.email_alert_status(value, at) {
                    self.global.emailalertstatus = Some(Spanned::new(s, span));
                }
            }
            "emailalertfrom" => {
                if value.is_empty() {
                    self.error(
                        span,
                        "no email from address specified",
                        "expected emailalertfrom=ADDRESS",
                    );
                } else {
                    self.comment_warning(value, at);
                    self.global.emailalertfrom = Some(Spanned::new(value.to_string(), span));
                }
            }
            "smtp" => {
                if let Some(h) = self.smtp(value, at) {
                    self.comment_warning(value, at);
                    self.global.smtp = Some(Spanned::new(h, span));
                }
            }
            "maintenancedir" => {
                if value.is_empty() {
                    self.error(
                        span,
                        "maintenance directory not specified",
                        "expected maintenancedir=/path",
                    );
                } else {
                    self.comment_warning(value, at);
                    if !self.env.is_dir(value) {
                        self.warn(
                            span.clone(),
                            format!("maintenance directory {value} does not exist"),
                            "",
                        );
                    }
                    self.global.maintenancedir = Some(Spanned::new(value.to_string(), span));
                }
            }
            "metrics" => {
                if let Some(m) = self.metrics(value, at) {
                    self.global.metrics = Some(Spanned::new(m, span));
                }
            }
            "vipinterface" | "vipannouncecount" | "vipannounceinterval" => {
                let mut vip = std::mem::take(&mut self.global.vip);
                self.vip_directive(&mut vip, kv.key, value, at, span);
                self.global.vip = vip;
            }
            "syncdaemon" => {
                let mode = match value.trim_end_matches(lexer::is_perl_space) {
                    "master" => Some(SyncDaemonMode::Master),
                    "backup" => Some(SyncDaemonMode::Backup),
                    "none" => Some(SyncDaemonMode::None),
                    _ => None,
                };
                match mode {
                    Some(m) => self.global.syncdaemon = Some(Spanned::new(m, span)),
                    None => {
                        let s = self.span_at(at, 0);
                        self.error(
                            s,
                            format!("invalid syncdaemon {value:?}"),
                            "expected syncdaemon=master, syncdaemon=backup or syncdaemon=none",
                        );
                    }
                }
            }
            "syncinterface" => {
                if let Some(name) = self.interface_name("syncinterface", value, at) {
                    self.global.syncinterface = Some(Spanned::new(name, span));
                }
            }
            "syncid" => {
                let v = value.trim_end_matches(lexer::is_perl_space);
                match v.parse::<u8>() {
                    Ok(id) if !v.starts_with('+') => {
                        self.global.syncid = Some(Spanned::new(id, span))
                    }
                    _ => {
                        let s = self.span_at(at, 0);
                        self.error(
                            s,
                            format!("invalid syncid {value:?}"),
                            "expected a sync id from 0 to 255, the same on master and backup",
                        );
                    }
                }
            }
            key => self.unknown_global(key, span),
        }
    }

    /// Extension `metrics=yes|no|ADDR:PORT`.
    fn metrics(&mut self, value: &str, at: At<'_>) -> Option<Option<std::net::SocketAddr>> {
        let v = value.trim_end_matches(lexer::is_perl_space);
        match v {
            "yes" => return Some(Some(defaults::METRICS_LISTEN)),
            "no" => return Some(None),
            _ => {}
        }
        match v.parse::<std::net::SocketAddr>() {
            Ok(addr) if addr.port() != 0 => Some(Some(addr)),
            _ => {
                let s = self.span_at(at, 0);
                self.error(
                    s,
                    format!("invalid metrics {value:?}"),
                    "expected metrics=yes (127.0.0.1:9469), metrics=no, or metrics=ADDRESS:PORT such as 127.0.0.1:9469 or [::1]:9469",
                );
                None
            }
        }
    }

    /// Extension `vipinterface=`, `vipannouncecount=`, `vipannounceinterval=`
    /// (global or per virtual).
    fn vip_directive(
        &mut self,
        vip: &mut VipSettings,
        key: &str,
        value: &str,
        at: At<'_>,
        span: Span,
    ) {
        let v = value.trim_end_matches(lexer::is_perl_space);
        match key {
            "vipinterface" => {
                if let Some(name) = self.interface_name(key, value, at) {
                    vip.interface = Some(Spanned::new(name, span));
                }
            }
            "vipannouncecount" => match v.parse::<u32>() {
                Ok(n) if n <= 100 && !v.starts_with('+') => {
                    vip.announce_count = Some(Spanned::new(n, span))
                }
                _ => {
                    let s = self.span_at(at, 0);
                    self.error(
                        s,
                        format!("invalid vipannouncecount {value:?}"),
                        "expected a number of announcements from 0 to 100",
                    );
                }
            },
            _ => match v.parse::<u64>() {
                Ok(n) if (1..=60_000).contains(&n) && !v.starts_with('+') => {
                    vip.announce_interval_ms = Some(Spanned::new(n, span))
                }
                _ => {
                    let s = self.span_at(at, 0);
                    self.error(
                        s,
                        format!("invalid vipannounceinterval {value:?}"),
                        "expected milliseconds between announcements, from 1 to 60000",
                    );
                }
            },
        }
    }

    /// A Linux interface name: 1-15 bytes, no '/', ':' or blanks, not `.`
    /// or `..` (dev_valid_name in the kernel; ':' would be an alias label).
    fn interface_name(&mut self, key: &str, value: &str, at: At<'_>) -> Option<String> {
        let v = value.trim_end_matches(lexer::is_perl_space);
        let valid = !v.is_empty()
            && v.len() <= 15
            && v != "."
            && v != ".."
            && v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
        if valid {
            return Some(v.to_string());
        }
        let s = self.span_at(at, 0);
        self.error(
            s,
            format!("invalid {key} {value:?}"),
            "expected a network interface name such as eth0 (at most 15 characters, no '/', ':' or blanks)",
        );
        None
    }

    fn global_supervised(&mut self, value: Option<&str>, span: Span, at: At<'_>) {
        match value {
            Some(v) => {
                if let Some(b) = self.yes_no("supervised", v, at, true) {
                    self.global.supervised = Some(Spanned::new(b, span));
                }
            }
            None => {
                // `^supervised\s*$`: bare means yes; anything else after the
                // word is an error.
                let rest = &at.raw["supervised".len()..];
                if lexer::is_blank(rest) {
                    self.warn(
                        span.clone(),
                        "bare supervised directive",
                        "write supervised=yes",
                    );
                    self.global.supervised = Some(Spanned::new(true, span));
                } else {
                    self.error(
                        span,
                        "supervised must be 'yes' or 'no'",
                        "expected supervised=yes or supervised=no",
                    );
                }
            }
        }
    }

    fn unknown_global(&mut self, key: &str, span: Span) {
        let help = if VIRTUAL_DIRECTIVES.contains(&key) {
            format!("{key} is a per-virtual directive: it must be inside a virtual block, indented by a tab or 4+ spaces")
        } else if key == "include" {
            "ldirectord.cf has no include directive".to_string()
        } else {
            match suggest(key, GLOBAL_DIRECTIVES) {
                Some(s) => format!("did you mean {s}?"),
                None => {
                    "expected a global directive such as checktimeout=, or virtual=".to_string()
                }
            }
        };
        self.error(span, format!("unknown global directive {key:?}"), help);
    }

    /// Warn when a value that ldirectord accepts carries what looks like a
    /// trailing comment (global lines are not comment-stripped).
    fn comment_warning(&mut self, value: &str, at: At<'_>) {
        if let Some(i) = value.find('#') {
            if i > 0 && value[..i].ends_with(lexer::is_perl_space) {
                let span = self.span_at(at, i);
                self.warn(
                    span,
                    "trailing comment on a global line",
                    "ldirectord does not strip comments on global lines, the value is the raw rest of the line; put comments on their own line",
                );
            }
        }
    }

    fn after_quote_warning(&mut self, value: &str, at: At<'_>) {
        if let Some(q) = value.rfind('"') {
            let tail = &value[q + 1..];
            if tail.chars().any(|c| !lexer::is_perl_space(c)) {
                let span = self.span_at(at, q + 1);
                self.warn(
                    span,
                    format!("text after the closing quote is ignored: {:?}", tail.trim()),
                    "put comments on their own line",
                );
            }
        }
    }

    // ----- shared value readers ------------------------------------------

    /// `(\d+)` anywhere in the value, Perl-true (`0` is not), and > 0 when
    /// `positive`.
    fn number(
        &mut self,
        value: &str,
        at: At<'_>,
        what: &str,
        truthy: bool,
        positive: bool,
    ) -> Option<u64> {
        let span = self.span_at(at, 0);
        let Some(d) = value::first_digits(value) else {
            self.error(
                span,
                format!("invalid {what}: {value:?} has no number"),
                "expected a whole number such as 5",
            );
            return None;
        };
        let n = value::saturating_u64(d.text);
        if (truthy && !value::perl_true(d.text)) || (positive && n == 0) {
            let span = self.span_at(at, d.offset);
            self.error(
                span,
                format!("invalid {what}: must not be 0"),
                "expected a number greater than 0",
            );
            return None;
        }
        if d.offset > 0 || d.offset + d.text.len() < value.len() {
            let rest = &value[d.offset + d.text.len()..];
            // `5s` style is common and harmless; say how it was read when
            // there is more than a unit suffix.
            if d.offset > 0 || rest.chars().any(|c| !c.is_ascii_alphabetic()) {
                let span = self.span_at(at, 0);
                if !value.contains('#') {
                    self.warn(
                        span,
                        format!("{what} {value:?} is read as {n}"),
                        "ldirectord reads the first digits of the value and ignores the rest",
                    );
                }
            }
        }
        Some(n)
    }

    fn yes_no(&mut self, key: &str, value: &str, at: At<'_>, global: bool) -> Option<bool> {
        if let Some(b) = value::yes_no(value) {
            return Some(b);
        }
        let span = self.span_at(at, 0);
        let trimmed = value.trim_end_matches(lexer::is_perl_space);
        let help = if value.ends_with('\r') {
            "the line ends with a carriage return (DOS line ending); ldirectord compares the value exactly, so convert the file to Unix line endings".to_string()
        } else if global && value.contains('#') {
            format!("global values are the raw rest of the line, comments included: ldirectord reads {value:?}; put the comment on its own line")
        } else if value::yes_no(trimmed).is_some() {
            "trailing blanks are part of the value; ldirectord compares it exactly".to_string()
        } else {
            format!("expected {key}=yes or {key}=no")
        };
        self.error(
            span,
            format!("{key} must be 'yes' or 'no', not {value:?}"),
            help,
        );
        None
    }

    fn required_quotes<'v>(&mut self, key: &str, value: &'v str, at: At<'_>) -> Option<&'v str> {
        match value::quoted(value) {
            Some(q) => Some(q.text),
            None => {
                let span = self.span_at(at, 0);
                self.error(
                    span,
                    format!("{key} value must be in double quotes"),
                    format!("expected {key}=\"...\"; ldirectord rejects an unquoted {key} as an unknown command"),
                );
                None
            }
        }
    }

    fn email_alert(&mut self, value: &str, span: Span) -> Option<String> {
        // Strip enclosing quotes only when the whole value is "...".
        let addr = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) if !inner.contains('"') => inner,
            _ => value,
        };
        if addr.is_empty() {
            self.error(
                span,
                "no email address specified",
                "expected emailalert=admin@example.org",
            );
            return None;
        }
        Some(addr.to_string())
    }

    fn email_alert_freq(&mut self, value: &str, at: At<'_>) -> Option<u64> {
        // `emailalertfreq\s*=\s*(\d*)` then `(\d+)`: the digits must come
        // first.
        let digits: &str = &value[..value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len())];
        if digits.is_empty() {
            let span = self.span_at(at, 0);
            self.error(
                span,
                "invalid email alert frequency",
                "expected a number of seconds, such as 3600",
            );
            return None;
        }
        Some(value::saturating_u64(digits))
    }

    fn email_alert_status(&mut self, value: &str, at: At<'_>) -> Option<EmailAlertStatus> {
        // split /\s*,\s*/ (trailing empty fields dropped, as Perl does).
        let mut items: Vec<&str> = Vec::new();
        let mut rest = value;
        loop {
            match rest.find(',') {
                Some(i) => {
                    items.push(rest[..i].trim_end_matches(lexer::is_perl_space));
                    rest = rest[i + 1..].trim_start_matches(lexer::is_perl_space);
                }
                None => {
                    items.push(rest);
                    break;
                }
            }
        }
        while items.last().is_some_and(|s| s.is_empty()) {
            items.pop();
        }
        let none = items.contains(&"none");
        let mut status = 0u8;
        let mut ok = true;
        for item in &items {
            let bit = match *item {
                "none" => continue,
                "all" => EmailAlertStatus::ALL.0,
                "starting" => EmailAlertStatus::STARTING,
                "running" => EmailAlertStatus::RUNNING,
                "stopping" => EmailAlertStatus::STOPPING,
                "reloading" => EmailAlertStatus::RELOADING,
                other => {
                    let span = self.span_at(at, 0);
                    self.error(span, format!("invalid email alert status {other:?}"), "expected all, none, or a comma-separated list of starting, running, stopping, reloading");
                    ok = false;
                    continue;
                }
            };
            if none {
                let span = self.span_at(at, 0);
                self.error(
                    span,
                    format!("email alert status {item:?} given together with \"none\""),
                    "none cannot be combined with other states",
                );
                ok = false;
            }
            status |= bit;
        }
        ok.then_some(EmailAlertStatus(status))
    }

    fn smtp(&mut self, value: &str, at: At<'_>) -> Option<String> {
        let end = value
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
            .unwrap_or(value.len());
        if end == 0 {
            let span = self.span_at(at, 0);
            self.error(
                span,
                "invalid SMTP server address",
                "expected a host name or address",
            );
            return None;
        }
        Some(value[..end].to_string())
    }

    /// `parse_fallback`: split and check the forwarding method; resolution
    /// comes later (at the end of the block for per-virtual fallbacks).
    fn fallback_directive(
        &mut self,
        value: &str,
        at: At<'_>,
        span: Span,
        virtual_port: Option<&str>,
    ) -> Option<PendingFallback> {
        let spec = value::fallback_spec(value);
        if let Some(d) = spec.dropped {
            if !d.text.is_empty() {
                let s = self.span_at(at, 0);
                self.warn(
                    s,
                    format!(
                        "fallback: {:?} is ignored; only the last two words are read",
                        d.text
                    ),
                    "write fallback=HOST[:PORT] [gate|masq|ipip]",
                );
            }
        }
        let forward = match spec.forward {
            None => ForwardMethod::Route,
            Some(f) => match forward_method(f.text) {
                Some(m) => m,
                None => {
                    let s = self.span_at(at, f.offset);
                    let help = if f.text.starts_with('#')
                        || spec.host.text.starts_with('#')
                        || value.contains('#')
                    {
                        "expected gate, masq or ipip; ldirectord does not strip comments on global lines, so put the comment on its own line"
                    } else {
                        "expected gate, masq or ipip"
                    };
                    self.error(
                        s,
                        format!(
                            "fallback forwarding method must be gate, masq or ipip, not {:?}",
                            f.text
                        ),
                        help,
                    );
                    return None;
                }
            },
        };
        let port = spec
            .port
            .map(|p| p.text.to_string())
            .or_else(|| virtual_port.map(str::to_string));
        Some(PendingFallback {
            span,
            host: spec.host.text.to_string(),
            host_at: self.span_at(at, spec.host.offset),
            port,
            forward,
        })
    }

    fn resolve_fallback(
        &mut self,
        f: &PendingFallback,
        protocol: &str,
        family: AddressFamily,
    ) -> Option<Fallback> {
        let Some(addr) = self.resolve_host(&f.host, family) else {
            let v = match family {
                AddressFamily::Inet => "IPv4",
                AddressFamily::Inet6 => "IPv6",
            };
            self.error(
                f.host_at.clone(),
                format!(
                    "fallback server {:?} is not a valid {v} address and does not resolve",
                    f.host
                ),
                if family == AddressFamily::Inet {
                    "expected fallback=HOST[:PORT]; IPv6 fallbacks are fallback6=[ADDR]:PORT"
                } else {
                    "expected fallback6=[ADDR]:PORT"
                },
            );
            return None;
        };
        // `unless ($fallback->{port})`: no port, or the Perl-false "0".
        let port = match f.port.as_deref() {
            None | Some("") | Some("0") => None,
            Some(p) => match self.port_number(p, Some(protocol)) {
                Some(n) => Some(n),
                None => {
                    self.error(
                        f.span.clone(),
                        format!("invalid port {p:?} for fallback server"),
                        format!("expected a number 0-65535 or a {protocol} service name from /etc/services"),
                    );
                    return None;
                }
            },
        };
        Some(Fallback {
            addr,
            port,
            forward: f.forward,
        })
    }

    /// `ld_gethostbyname`: `[...]` is stripped (`/\[(.*)\]/`, unanchored).
    fn resolve_host(&self, name: &str, family: AddressFamily) -> Option<IpAddr> {
        let name = match (name.find('['), name.rfind(']')) {
            (Some(a), Some(b)) if a < b => &name[a + 1..b],
            _ => name,
        };
        if name.contains('\0') {
            return None;
        }
        self.env.resolve_host(name, family)
    }

    /// `ld_getservbyname`: digits 0-65535, or a service name.
    fn port_number(&self, token: &str, protocol: Option<&str>) -> Option<u16> {
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            return u16::try_from(value::saturating_u64(token)).ok();
        }
        match protocol {
            Some("fwm") => None,
            p => self.env.service_port(token, p),
        }
    }

    // ----- virtual blocks ---------------------------------------------------

    fn open_virtual(
        &mut self,
        line: RawLine<'_>,
        six: bool,
        value: &str,
        value_offset: usize,
    ) -> Option<Block> {
        let family = if six {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let at = At {
            raw: line.text,
            line: line.number,
            base: value_offset,
            block: false,
        };
        let span = Span {
            file: self.file.clone(),
            line: line.number,
            col: 1,
        };
        let key = if six { "virtual6" } else { "virtual" };
        let (addr, host, port_token) = match value::virtual_spec(value) {
            VirtualSpec::HostPort { host, port } => {
                let hs = self.span_at(at, host.offset);
                (
                    VirtualAddr::Addr {
                        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        port: 0,
                    },
                    Some((host.text.to_string(), hs)),
                    port.text.to_string(),
                )
            }
            VirtualSpec::BracketedHostPort { host, port } => {
                if !six {
                    let s = self.span_at(at, 0);
                    self.error(
                        s,
                        "an IPv6 address cannot be used in virtual=",
                        "use virtual6=[ADDR]:PORT",
                    );
                    return self.skip_block();
                }
                if host.text.parse::<std::net::Ipv6Addr>().is_err() {
                    let s = self.span_at(at, host.offset);
                    self.error(
                        s,
                        format!("invalid IPv6 address {:?} for virtual server", host.text),
                        "expected virtual6=[2001:db8::1]:80",
                    );
                    return self.skip_block();
                }
                let hs = self.span_at(at, host.offset);
                (
                    VirtualAddr::Addr {
                        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        port: 0,
                    },
                    Some((host.text.to_string(), hs)),
                    port.text.to_string(),
                )
            }
            VirtualSpec::Fwmark(mark) => match u32::try_from(value::saturating_u64(mark.text)) {
                Ok(m) => (
                    VirtualAddr::Fwmark { mark: m, family },
                    None,
                    "0".to_string(),
                ),
                Err(_) => {
                    let s = self.span_at(at, mark.offset);
                    self.error(
                        s,
                        format!("firewall mark {} is out of range", mark.text),
                        "expected a mark from 1 to 4294967295",
                    );
                    return self.skip_block();
                }
            },
            VirtualSpec::Invalid => {
                let s = self.span_at(at, 0);
                self.error(
                    s,
                    format!("invalid address for virtual server: {:?}", value.trim_end()),
                    format!(
                        "expected {key}=ADDRESS:PORT, {key}=HOST:PORT{}, or {key}=FWMARK",
                        if six { ", virtual6=[ADDR]:PORT" } else { "" }
                    ),
                );
                return self.skip_block();
            }
        };
        let mut virt = Virtual::new(span, family, addr);
        if matches!(addr, VirtualAddr::Addr { .. })
            && (port_token == "53" || port_token == "domain")
        {
            virt.protocol = VirtualProtocol::Udp;
        }
        Some(Block {
            virt,
            host,
            port_token,
            reals: Vec::new(),
            fallback: None,
        })
    }

    /// After an error on the virtual line ldirectord stops; to go on and
    /// report more errors, the block's lines are skipped.
    fn skip_block(&mut self) -> Option<Block> {
        None
    }

    fn virtual_directive(&mut self, b: &mut Block, line: RawLine<'_>, text: &str, offset: usize) {
        let span = Span {
            file: self.file.clone(),
            line: line.number,
            col: lexer::original_col(line.text, offset),
        };
        let Some(kv) = lexer::key_value(text) else {
            if lexer::is_blank(text) {
                self.error(span, "line of only blanks inside a virtual block", "ldirectord reads 5 or more blanks as a command and rejects it; make the line empty (which ends the block) or remove it");
            } else {
                self.error(
                    span,
                    format!("unexpected line in virtual block: {:?}", text.trim()),
                    "expected DIRECTIVE=VALUE indented by a tab or 4+ spaces",
                );
            }
            return;
        };
        let Some(value) = kv.value else {
            return self.unknown_virtual(kv.key, span);
        };
        let at = At {
            raw: line.text,
            line: line.number,
            base: offset + kv.value_offset,
            block: true,
        };
        let six = b.virt.family == AddressFamily::Inet6;
        match kv.key {
            "real" | "real6" => {
                if (kv.key == "real6") != six {
                    let (want, block) = if six {
                        ("real6", "virtual6")
                    } else {
                        ("real", "virtual")
                    };
                    self.error(
                        span,
                        format!("{} cannot be used in a {block} block", kv.key),
                        format!("use {want}="),
                    );
                    return;
                }
                b.reals.push(PendingReal {
                    value: value.to_string(),
                    at: self.span_at(at, 0),
                });
            }
            "request" | "receive" | "login" | "passwd" | "database" | "secret" => {
                let Some(q) = self.required_quotes(kv.key, value, at) else {
                    return;
                };
                if q.is_empty() {
                    let what = match kv.key {
                        "request" => "no request string specified",
                        "receive" => "invalid receive string: empty",
                        "login" => "invalid login string: empty",
                        "passwd" => "invalid password: empty",
                        "database" => "invalid database: empty",
                        _ => "invalid secret: empty",
                    };
                    self.error(span, what, format!("expected {}=\"...\" with at least one character; leave the directive out for the default", kv.key));
                    return;
                }
                self.after_quote_warning(value, at);
                let s = Spanned::new(q.to_string(), span.clone());
                match kv.key {
                    "request" => {
                        let r = if q.starts_with('/') {
                            q.to_string()
                        } else {
                            format!("/{q}")
                        };
                        b.virt.request = Some(Spanned::new(r, span));
                    }
                    "receive" => {
                        self.receive_warnings(q, span.clone());
                        b.virt.receive = Some(s);
                    }
                    "login" => b.virt.login = Some(s),
                    "passwd" => b.virt.passwd = Some(s),
                    "database" => b.virt.database = Some(s),
                    _ => b.virt.secret = Some(s),
                }
            }
            "checktype" => {
                if let Some(d) = value::first_digits(value) {
                    b.virt.checktype = Some(Spanned::new(
                        CheckType::Combined(value::saturating_u64(d.text)),
                        span,
                    ));
                    return;
                }
                let word = value::first_run(value, |c| lexer::is_word(c) || c == '-');
                let ct = match word.map(|w| w.text) {
                    Some("connect") => CheckType::Connect,
                    Some("negotiate") => CheckType::Negotiate,
                    Some("ping") => CheckType::Ping,
                    Some("off") => CheckType::Off,
                    Some("on") => CheckType::On,
                    Some("external") => CheckType::External,
                    Some("external-perl") => CheckType::ExternalPerl,
                    _ => {
                        let s = self.span_at(at, 0);
                        self.error(s, format!("invalid checktype {:?}", value.trim_end()), "expected connect, negotiate, ping, on, off, external, external-perl or a number N (N connect checks per negotiate check)");
                        return;
                    }
                };
                b.virt.checktype = Some(Spanned::new(ct, span));
            }
            "checkcommand" | "fallbackcommand" => {
                let cmd = value::quoted(value).map_or(value, |q| q.text);
                if cmd.is_empty() {
                    self.error(
                        span,
                        format!("empty {}", kv.key),
                        "expected a command (path to an executable)",
                    );
                    return;
                }
                let s = Some(Spanned::new(cmd.to_string(), span));
                if kv.key == "checkcommand" {
                    b.virt.checkcommand = s;
                } else {
                    b.virt.fallbackcommand = s;
                }
            }
            "checktimeout" | "negotiatetimeout" | "checkcount" | "failurecount"
            | "checkinterval" => {
                let what = match kv.key {
                    "checktimeout" => "check timeout",
                    "negotiatetimeout" => "negotiate timeout",
                    "checkcount" => "check count",
                    "failurecount" => "failure count",
                    _ => "checkinterval",
                };
                let Some(n) = self.number(value, at, what, true, false) else {
                    return;
                };
                let s = Some(Spanned::new(n, span.clone()));
                match kv.key {
                    "checktimeout" => b.virt.checktimeout = s,
                    "negotiatetimeout" => b.virt.negotiatetimeout = s,
                    "checkcount" => {
                        self.warn(span, "checkcount is deprecated", "use failurecount");
                        b.virt.checkcount = s;
                    }
                    "failurecount" => b.virt.failurecount = s,
                    _ => b.virt.checkinterval = s,
                }
            }
            "connecttimeout" => self.error(
                span,
                "connecttimeout is no longer supported",
                "ldirectord deprecated it in favour of negotiatetimeout",
            ),
            "checkport" => {
                let Some(d) = value::first_digits(value) else {
                    let s = self.span_at(at, 0);
                    self.error(
                        s,
                        "invalid checkport: no number",
                        "expected a port number 1-65535",
                    );
                    return;
                };
                match u16::try_from(value::saturating_u64(d.text)) {
                    Ok(p) if p > 0 => b.virt.checkport = Some(Spanned::new(p, span)),
                    _ => {
                        let s = self.span_at(at, d.offset);
                        self.error(
                            s,
                            format!("checkport {} is out of range", d.text),
                            "expected a port number 1-65535",
                        );
                    }
                }
            }
            "load" => {
                let Some(q) = self.required_quotes("load", value, at) else {
                    return;
                };
                match value::first_word(q) {
                    Some(w) => b.virt.load = Some(Spanned::new(w.text.to_string(), span)),
                    None => self.error(
                        span,
                        "invalid string for load testing",
                        "expected load=\"word\"",
                    ),
                }
            }
            "scheduler" => match value::first_run(value, |c| c.is_ascii_lowercase()) {
                Some(w) => {
                    if w.offset > 0 || w.text.len() < value.trim_end().len() {
                        let s = self.span_at(at, 0);
                        self.warn(
                            s,
                            format!("scheduler {:?} is read as {:?}", value.trim_end(), w.text),
                            "ldirectord takes the first run of lowercase letters",
                        );
                    }
                    b.virt.scheduler = Some(Spanned::new(w.text.to_string(), span));
                }
                None => {
                    let s = self.span_at(at, 0);
                    self.error(
                        s,
                        format!("invalid scheduler {:?}", value.trim_end()),
                        "expected a lowercase scheduler name such as rr, wrr, lc, wlc, sh, mh",
                    );
                }
            },
            "persistent" => match value::first_digits(value) {
                Some(d) => {
                    b.virt.persistent = Some(Spanned::new(value::saturating_u64(d.text), span))
                }
                None => {
                    let s = self.span_at(at, 0);
                    self.error(
                        s,
                        "invalid persistent timeout",
                        "expected a number of seconds, such as 300",
                    );
                }
            },
            "schedflags" => match value::first_run(value, |c| !lexer::is_perl_space(c)) {
                Some(w) => b.virt.schedflags = Some(Spanned::new(w.text.to_string(), span)),
                None => self.error(
                    span,
                    "invalid sched-flags: empty",
                    "expected flags for ipvsadm -b, such as sh-port",
                ),
            },
            "netmask" => {
                let s = self.span_at(at, 0);
                if six {
                    let n = if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) {
                        value::saturating_u64(value)
                    } else {
                        0
                    };
                    if (1..=128).contains(&n) {
                        b.virt.netmask = Some(Spanned::new(Netmask::Prefix(n as u8), span));
                    } else {
                        self.error(
                            s,
                            format!("invalid netmask {value:?}"),
                            "a virtual6 needs a prefix length between 1 and 128",
                        );
                    }
                } else if value::looks_dotted_quad(value) {
                    match value::dotted_quad(value) {
                        Some(m) => b.virt.netmask = Some(Spanned::new(Netmask::V4(m), span)),
                        None => {
                            // ldirectord accepts any digits here and lets
                            // ipvsadm fail later; we keep the verdict but
                            // cannot represent it.
                            self.warn(s, format!("netmask {value:?} is not a valid IPv4 mask"), "ipvsadm will reject it; expected a dotted quad such as 255.255.255.0");
                        }
                    }
                } else {
                    self.error(
                        s,
                        format!("invalid netmask {value:?}"),
                        "dotted quad notation is required, such as 255.255.255.0",
                    );
                }
            }
            "protocol" => {
                let Some(w) = value::first_word(value) else {
                    self.error(
                        span,
                        "invalid protocol: empty",
                        "expected tcp, udp, sctp, or fwm for a fwmark virtual",
                    );
                    return;
                };
                if b.virt.protocol == VirtualProtocol::Fwm {
                    if w.text == "fwm" {
                        b.virt.protocol_directive = Some(Spanned::new(VirtualProtocol::Fwm, span));
                    } else {
                        let s = self.span_at(at, w.offset);
                        self.error(
                            s,
                            format!("protocol {:?} on a fwmark virtual", w.text),
                            "a fwmark virtual (virtual=NUMBER) takes protocol=fwm or no protocol= at all",
                        );
                    }
                    return;
                }
                let p = match w.text {
                    "tcp" => VirtualProtocol::Tcp,
                    "udp" => VirtualProtocol::Udp,
                    "sctp" => VirtualProtocol::Sctp,
                    other => {
                        let s = self.span_at(at, w.offset);
                        self.error(s, format!("invalid protocol {other:?}"), "expected tcp, udp or sctp for an address virtual (sctp is an ldirector extension)");
                        return;
                    }
                };
                b.virt.protocol = p;
                b.virt.protocol_directive = Some(Spanned::new(p, span));
            }
            "ops" | "quiescent" | "cleanstop" | "sslverify" => {
                let Some(yes) = self.yes_no(kv.key, value, at, false) else {
                    return;
                };
                let s = Some(Spanned::new(yes, span));
                match kv.key {
                    "ops" => b.virt.ops = s,
                    "quiescent" => b.virt.quiescent = s,
                    "cleanstop" => b.virt.cleanstop = s,
                    _ => b.virt.sslverify = s,
                }
            }
            "service" => {
                let word = value::first_word(value);
                let Some(service) = word.and_then(|w| Service::from_name(w.text)) else {
                    let s = self.span_at(at, 0);
                    let names: Vec<&str> = Service::ALL.iter().map(|s| s.as_str()).collect();
                    self.error(
                        s,
                        format!("invalid service {:?}", value.trim_end()),
                        format!("expected one of {}", names.join(", ")),
                    );
                    return;
                };
                let host = self.env.hostname();
                // ldirectord fills these in when the service line is read
                // and no login/passwd was given before it.
                if service == Service::Ftp && b.virt.login.is_none() {
                    b.virt.login = Some(Spanned::new("anonymous".to_string(), span.clone()));
                } else if service == Service::Sip && b.virt.login.is_none() {
                    b.virt.login = Some(Spanned::new(format!("ldirectord@{host}"), span.clone()));
                }
                if service == Service::Ftp && b.virt.passwd.is_none() {
                    b.virt.passwd = Some(Spanned::new(format!("ldirectord@{host}"), span.clone()));
                }
                b.virt.service_directive = Some(Spanned::new(service, span));
            }
            "httpmethod" => {
                let m = value::first_word(value).and_then(|w| {
                    match w.text.to_ascii_uppercase().as_str() {
                        "GET" => Some(HttpMethod::Get),
                        "HEAD" => Some(HttpMethod::Head),
                        _ => None,
                    }
                });
                match m {
                    Some(m) => b.virt.httpmethod = Some(Spanned::new(m, span)),
                    None => {
                        let s = self.span_at(at, 0);
                        self.error(
                            s,
                            format!("invalid httpmethod {:?}", value.trim_end()),
                            "expected GET or HEAD",
                        );
                    }
                }
            }
            "virtualhost" => {
                // /\"?([^\"]*)\"?/ always matches at the start.
                let v = value.strip_prefix('"').unwrap_or(value);
                let end = v.find('"').unwrap_or(v.len());
                b.virt.virtualhost = Some(Spanned::new(v[..end].to_string(), span));
            }
            "fallback" | "fallback6" => {
                if (kv.key == "fallback6") != six {
                    let (want, block) = if six {
                        ("fallback6", "virtual6")
                    } else {
                        ("fallback", "virtual")
                    };
                    self.error(
                        span,
                        format!("{} cannot be used in a {block} block", kv.key),
                        format!("use {want}="),
                    );
                    return;
                }
                let port = b.port_token.clone();
                b.fallback = self.fallback_directive(value, at, span, Some(&port));
            }
            "emailalert" => {
                if let Some(a) = self.email_alert(value, span.clone()) {
                    b.virt.emailalert = Some(Spanned::new(a, span));
                }
            }
            "emailalertfreq" => {
                if let Some(n) = self.email_alert_freq(value, at) {
                    b.virt.emailalertfreq = Some(Spanned::new(n, span));
                }
            }
            "emailalertstatus" => {
                if let Some(s) = self.email_alert_status(value, at) {
                    b.virt.emailalertstatus = Some(Spanned::new(s, span));
                }
            }
            "monitorfile" => {
                let path = value::quoted(value).map_or(value, |q| q.text);
                match self.env.can_append(path) {
                    Ok(()) => b.virt.monitorfile = Some(Spanned::new(path.to_string(), span)),
                    Err(e) => {
                        let s = self.span_at(at, 0);
                        self.error(
                            s,
                            format!("unable to open monitorfile {path:?}: {e}"),
                            "expected a file path the director can append to",
                        );
                    }
                }
            }
            "smtp" => {
                if let Some(h) = self.smtp(value, at) {
                    b.virt.smtp = Some(Spanned::new(h, span));
                }
            }
            "vipinterface" | "vipannouncecount" | "vipannounceinterval" => {
                let mut vip = std::mem::take(&mut b.virt.vip);
                self.vip_directive(&mut vip, kv.key, value, at, span);
                b.virt.vip = vip;
            }
            "servicename" => b.virt.servicename = Some(Spanned::new(value.to_string(), span)),
            "comment" => b.virt.comment = Some(Spanned::new(value.to_string(), span)),
            key => self.unknown_virtual(key, span),
        }
    }

    fn unknown_virtual(&mut self, key: &str, span: Span) {
        let help = if GLOBAL_DIRECTIVES.contains(&key) {
            format!("{key} is a global directive: write it in column 0, outside virtual blocks (and before them, or after a blank line)")
        } else if matches!(
            key,
            "request" | "receive" | "login" | "passwd" | "database" | "secret"
        ) {
            format!("{key} needs a double-quoted value")
        } else {
            match suggest(key, VIRTUAL_DIRECTIVES) {
                Some(s) => format!("did you mean {s}?"),
                None => "expected a per-virtual directive such as real=, service=, checktype="
                    .to_string(),
            }
        };
        self.error(
            span,
            format!("unknown directive {key:?} in virtual block"),
            help,
        );
    }

    fn receive_warnings(&mut self, receive: &str, span: Span) {
        if receive.starts_with("HTTP/") {
            self.warn(
                span,
                format!("receive {receive:?} looks like an HTTP status line"),
                "ldirectord matches receive against the response body, so every real would be down there; ldirector matches a receive starting with HTTP/ against the status line. A 2xx status is required anyway",
            );
        }
    }

    fn close_virtual(&mut self, mut b: Block, last_line_of_file: bool) {
        let protocol = b.virt.protocol;
        let family = b.virt.family;
        if let Some(f) = b.fallback.take() {
            if let Some(resolved) = self.resolve_fallback(&f, protocol.as_str(), family) {
                b.virt.fallback = Some(Spanned::new(resolved, f.span));
            }
        }
        let mut virtual_ok = true;
        if let Some((host, host_span)) = &b.host {
            let addr = self.resolve_host(host, family);
            let port = self.port_number(&b.port_token, Some(protocol.as_str()));
            match (addr, port) {
                (Some(addr), Some(port)) => {
                    b.virt.addr = VirtualAddr::Addr { addr, port };
                    // ld_port_to_service compares text: `080` is not 80.
                    let canonical = b.port_token == port.to_string()
                        || !b.port_token.bytes().all(|c| c.is_ascii_digit());
                    if b.virt.service_directive.is_none() && canonical {
                        b.virt.service = Service::from_port(port);
                    }
                }
                (None, _) => {
                    self.error(
                        host_span.clone(),
                        format!("invalid address for virtual service: {host:?} does not resolve"),
                        match family {
                            AddressFamily::Inet => {
                                "expected an IPv4 address or a host name with an IPv4 address"
                            }
                            AddressFamily::Inet6 => {
                                "expected [IPv6-address] or a host name with an IPv6 address"
                            }
                        },
                    );
                    virtual_ok = false;
                }
                (_, None) => {
                    self.error(host_span.clone(), format!("invalid port {:?} for virtual service", b.port_token), format!("expected a number 0-65535 or a {protocol} service name from /etc/services"));
                    virtual_ok = false;
                }
            }
        }
        if let Some(s) = &b.virt.service_directive {
            b.virt.service = s.value;
        }
        // Extension (a documented difference): an Oracle negotiate check
        // cannot run in ldirector, so a virtual that would need one, by
        // service=oracle or by port 1521, is refused instead of keeping
        // every real down. The checktype may come after service=, so this
        // is decided when the block is complete.
        if b.virt.service == Service::Oracle
            && matches!(
                b.virt.checktype(),
                CheckType::Negotiate | CheckType::Combined(_)
            )
        {
            let (s, message) = match &b.virt.service_directive {
                Some(d) => (d.span.clone(), oracle::MESSAGE.to_string()),
                None => (
                    b.virt.span.clone(),
                    format!(
                        "port 1521 implies a negotiate check of service oracle: {}",
                        oracle::MESSAGE
                    ),
                ),
            };
            self.error(s, message, oracle::HELP);
            virtual_ok = false;
        }
        for pending in std::mem::take(&mut b.reals) {
            if let Some(real) = self.real(&pending, family) {
                b.virt.reals.push(real);
            }
        }
        if b.virt.persistent.is_none() {
            if let Some(n) = &b.virt.netmask {
                let s = n.span.clone();
                self.warn(s, "netmask has no effect without persistent=", "");
            }
        }
        if let Some(o) = &b.virt.ops {
            if o.value && protocol != VirtualProtocol::Udp {
                let s = o.span.clone();
                self.warn(s, "ops=yes only applies to udp virtuals; ignored", "");
            }
        }
        if virtual_ok {
            let id = b.virt.id();
            if let Some(&first_line) = self.virtual_ids.get(&id) {
                let s = b.virt.span.clone();
                self.error(
                    s,
                    format!("duplicate virtual server {id}"),
                    format!("the same service is already defined at line {first_line}"),
                );
                return;
            }
            if last_line_of_file {
                // ldirectord's goto re-reads the virtual line when no line
                // follows it, and rejects the second copy as a duplicate.
                let s = b.virt.span.clone();
                self.error(
                    s,
                    format!("virtual server {id} on the last line of the file has no directives"),
                    "ldirectord 4.12 reads this line twice and rejects it as a duplicate virtual server; add its real= lines below it",
                );
                return;
            }
            self.virtual_ids.insert(id, b.virt.span.line);
            self.virtuals.push(b.virt);
        }
    }

    /// `_ld_read_config_real_resolve` + `add_real_server`.
    fn real(&mut self, pending: &PendingReal, family: AddressFamily) -> Option<Real> {
        let value = pending.value.as_str();
        let span_of = |offset: usize| {
            let prefix = value.get(..offset).unwrap_or(value);
            let extra = u32::try_from(prefix.chars().count()).unwrap_or(0);
            Span {
                col: pending.at.col.saturating_add(extra),
                ..pending.at.clone()
            }
        };
        let Some(spec) = value::real_spec(value) else {
            let help = if value.trim().is_empty() {
                "expected real=ADDRESS[:PORT] gate|masq|ipip [WEIGHT]"
            } else {
                "expected real=ADDRESS[->ADDRESS][:PORT] gate|masq|ipip [WEIGHT] [\"REQUEST\", \"RECEIVE\"]; the forwarding method is mandatory"
            };
            self.error(
                pending.at.clone(),
                format!("invalid real server {:?}", value.trim_end()),
                help,
            );
            return None;
        };
        if spec.first.offset > 0 {
            self.warn(
                span_of(spec.first.offset),
                format!("real server address is read as {:?}", spec.first.text),
                format!(
                    "ldirectord skips {:?} to find an address; write real=ADDRESS[:PORT] METHOD",
                    &value[..spec.first.offset]
                ),
            );
        }
        let Some(first) = self.resolve_host(spec.first.text, family) else {
            self.error(span_of(spec.first.offset), format!("invalid address {:?} for real server: does not resolve", spec.first.text), match family {
                AddressFamily::Inet => "expected an IPv4 address or a host name with an IPv4 address; IPv6 reals are real6=[ADDR]:PORT in a virtual6 block",
                AddressFamily::Inet6 => "expected [IPv6-address] or a host name with an IPv6 address",
            });
            return None;
        };
        let port = match spec.port {
            None => 0,
            Some(p) => match self.port_number(p.text, None) {
                Some(n) => n,
                None => {
                    self.error(
                        span_of(p.offset),
                        format!("invalid port {:?} for real server", p.text),
                        "expected a number 0-65535 or a service name from /etc/services",
                    );
                    return None;
                }
            },
        };
        let addr = match spec.last {
            None => RealAddr::Single { addr: first },
            Some(l) => {
                let Some(last) = self.resolve_host(l.text, family) else {
                    self.error(span_of(l.offset), format!("invalid address {:?} for the end of the real server range: does not resolve", l.text), "expected real=FIRST->LAST:PORT with IPv4 addresses or names");
                    return None;
                };
                let (IpAddr::V4(a), IpAddr::V4(z)) = (first, last) else {
                    self.error(
                        span_of(spec.first.offset),
                        "address ranges are not supported for IPv6",
                        "list each real6= on its own line",
                    );
                    return None;
                };
                if u32::from(a) > u32::from(z) {
                    self.error(
                        span_of(spec.first.offset),
                        format!(
                            "invalid range {a}->{z}: the first address is greater than the last"
                        ),
                        "expected real=FIRST->LAST with FIRST <= LAST",
                    );
                    return None;
                }
                // ldirectord loops `while ($i le $last)`, a *text* comparison
                // of the addresses as integers: a range whose integer forms
                // differ in length stops early.
                let effective = perl_range_last(u32::from(a), u32::from(z));
                match effective {
                    None => {
                        self.warn(span_of(spec.first.offset), format!("range {a}->{z} adds no servers"), "ldirectord compares the addresses as text and stops at once; split the range");
                        return None;
                    }
                    Some(e) if e != u32::from(z) => {
                        self.warn(
                            span_of(spec.first.offset),
                            format!("range {a}->{z} stops at {}", Ipv4Addr::from(e)),
                            "ldirectord compares the addresses as text; split the range",
                        );
                    }
                    _ => {}
                }
                let e = effective.unwrap_or(u32::from(z));
                let count = u64::from(e) - u64::from(u32::from(a)) + 1;
                if count > MAX_RANGE {
                    self.error(
                        span_of(spec.first.offset),
                        format!("range {a}->{} has {count} addresses", Ipv4Addr::from(e)),
                        format!("at most {MAX_RANGE} addresses per range"),
                    );
                    return None;
                }
                RealAddr::Range {
                    first: a,
                    last: Ipv4Addr::from(e),
                }
            }
        };
        let flags_offset = spec.flags.offset;
        let f = value::real_flags(spec.flags.text);
        let at = |p: Piece<'_>| span_of(flags_offset + p.offset);
        let forward = match f.method.and_then(|m| forward_method(m.text)) {
            Some(m) => m,
            None => {
                let (s, got) = match f.method {
                    Some(m) => (at(m), format!(" {:?}", m.text)),
                    None => (span_of(flags_offset), String::new()),
                };
                self.error(
                    s,
                    format!("real server forwarding method{got} is not gate, masq or ipip"),
                    "the forwarding method is mandatory: real=ADDRESS:PORT gate|masq|ipip [WEIGHT]",
                );
                return None;
            }
        };
        for skipped in &f.skipped {
            self.warn(
                at(*skipped),
                format!("{:?} is ignored", skipped.text.trim()),
                "ldirectord silently skips text it does not expect here",
            );
        }
        if let Some(l) = f.leftover {
            let help = if f.request.is_some()
                || f.weight
                    .is_some_and(|w| w.offset > 0 && spec.flags.text[..w.offset].contains('"'))
            {
                "ldirectord reads the first number after a blank as the weight, even inside a quoted string; write real=ADDR:PORT METHOD [WEIGHT] \"REQUEST\", \"RECEIVE\" [l:LOW] [u:HIGH]".to_string()
            } else if l.text.starts_with('"') {
                "request and receive must come as a pair: \"REQUEST\", \"RECEIVE\"".to_string()
            } else {
                "expected [WEIGHT] [\"REQUEST\", \"RECEIVE\"] [l:LOW] [u:HIGH] after the forwarding method".to_string()
            };
            self.error(
                at(l),
                format!("unexpected {:?} in real server line", l.text),
                help,
            );
            return None;
        }
        let to_u32 = |p: Option<Piece<'_>>| {
            p.map(|p| u32::try_from(value::saturating_u64(p.text)).unwrap_or(u32::MAX))
        };
        let request = f.request.map(|r| {
            if r.text.starts_with('/') {
                r.text.to_string()
            } else {
                format!("/{}", r.text)
            }
        });
        for (what, p) in [("request", f.request), ("receive", f.receive)] {
            if let Some(p) = p {
                if p.text.starts_with("l:") || p.text.starts_with("u:") {
                    self.warn(
                        at(p),
                        format!("quoted threshold {:?} is read as the {what} string", p.text),
                        "write thresholds without quotes: l:LOW u:HIGH",
                    );
                }
            }
        }
        if let Some(r) = f.receive {
            self.receive_warnings(r.text, at(r));
        }
        if f.upper.is_none() && f.lower.is_some() {
            if let Some(l) = f.lower {
                let before = &spec.flags.text[..l.offset];
                if before.contains("u:") {
                    self.warn(
                        at(l),
                        "u: threshold written before l: is ignored",
                        "write l:LOW before u:HIGH",
                    );
                }
            }
        }
        Some(Real {
            span: pending.at.clone(),
            addr,
            port,
            forward,
            weight: to_u32(f.weight).unwrap_or(1),
            request,
            receive: f.receive.map(|r| r.text.to_string()),
            lower_threshold: to_u32(f.lower),
            upper_threshold: to_u32(f.upper),
        })
    }
}

fn forward_method(word: &str) -> Option<ForwardMethod> {
    match word {
        "gate" => Some(ForwardMethod::Route),
        "masq" => Some(ForwardMethod::Masq),
        "ipip" => Some(ForwardMethod::Tunnel),
        _ => None,
    }
}

/// The last address ldirectord's `while ($i le $last)` loop adds, or `None`
/// if it adds none. The loop compares decimal strings, which agrees with the
/// numbers while both have the same number of digits.
fn perl_range_last(first: u32, last: u32) -> Option<u32> {
    let (fs, ls) = (first.to_string(), last.to_string());
    if fs.len() == ls.len() {
        return Some(last);
    }
    if fs > ls {
        return None;
    }
    // Different lengths and first <= last as text: count up until the text
    // order breaks; bounded by MAX_RANGE (longer ranges are refused anyway).
    let mut i = first;
    let mut cap = MAX_RANGE + 1;
    while cap > 0 && i < last {
        let next = i + 1;
        if next.to_string() > ls {
            return Some(i);
        }
        i = next;
        cap -= 1;
    }
    Some(i)
}

/// A known name within edit distance 2, for "did you mean".
fn suggest(word: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|k| (levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(64).enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perl_range_text_comparison() {
        assert_eq!(perl_range_last(5, 9), Some(9));
        assert_eq!(perl_range_last(9, 10), None);
        assert_eq!(perl_range_last(1, 10), Some(1));
        assert_eq!(perl_range_last(167772161, 167772170), Some(167772170));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("checktimout", GLOBAL_DIRECTIVES),
            Some("checktimeout")
        );
        assert_eq!(suggest("zzzzzzzz", GLOBAL_DIRECTIVES), None);
    }
}
