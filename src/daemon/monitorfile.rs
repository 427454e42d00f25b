// SPDX-License-Identifier: GPL-2.0-or-later
//! The per-virtual `monitorfile`, in the format ldirectord 4.12 really
//! writes (its POD is wrong): `[localtime] [pid] <real id> [up|down] <msg>`,
//! where the real id is ldirectord's check id with runs of `:` squeezed to
//! one space and backslashes dropped, and `%`, `|`, CR and LF in the
//! message are %-escaped.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// The fields of ldirectord's real id (`get_real_id_str`), in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealId<'a> {
    /// `negotiate:http`, `external:/path`, `connect`, ...
    pub check: &'a str,
    pub protocol: &'a str,
    pub server: &'a str,
    pub port: &'a str,
    pub virtualhost: &'a str,
    pub checkport: &'a str,
    pub weight: &'a str,
    pub forward: &'a str,
    pub request: &'a str,
    pub receive: &'a str,
}

impl RealId<'_> {
    /// The id as it appears in the monitor file.
    pub fn monitor_text(&self) -> String {
        let joined = [
            self.check,
            self.protocol,
            self.server,
            self.port,
            self.virtualhost,
            self.checkport,
            self.weight,
            self.forward,
            self.request,
            self.receive,
        ]
        .join(":");
        let mut out = String::with_capacity(joined.len());
        let mut last_was_colon = false;
        for c in joined.chars() {
            match c {
                ':' if last_was_colon => {}
                ':' => {
                    out.push(' ');
                    last_was_colon = true;
                }
                '\\' => {}
                c => {
                    out.push(c);
                    last_was_colon = false;
                }
            }
        }
        out
    }
}

/// %-escapes the characters that would break the line format.
pub fn escape_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for c in msg.chars() {
        match c {
            '%' | '|' | '\r' | '\n' => out.push_str(&format!("%{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One monitor line, newline included.
pub fn line(now: &str, pid: u32, id: &RealId<'_>, up: bool, msg: Option<&str>) -> String {
    let state = if up { "up" } else { "down" };
    let msg = escape_message(msg.unwrap_or("-"));
    format!("[{now}] [{pid}] {} [{state}] {msg}\n", id.monitor_text())
}

/// Appends one line; opened per line like ldirectord, so rotation is free.
pub fn append(path: &Path, text: &str) -> io::Result<()> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ldirectord_layout() {
        let id = RealId {
            check: "negotiate:http",
            protocol: "tcp",
            server: "10.1.0.2",
            port: "80",
            virtualhost: "",
            checkport: "",
            weight: "1",
            forward: "gate",
            request: "/index.html",
            receive: "ok",
        };
        let l = line(
            "Mon Nov 23 09:31:00 2026",
            42,
            &id,
            false,
            Some("HTTP 503|x\n"),
        );
        assert_eq!(
            l,
            "[Mon Nov 23 09:31:00 2026] [42] negotiate http tcp 10.1.0.2 80 1 gate /index.html ok [down] HTTP 503%7cx%0a\n"
        );
        let up = line("t", 1, &RealId::default(), true, None);
        // All fields empty: the nine colons squeeze to one space.
        assert_eq!(up, "[t] [1]   [up] -\n");
    }
}
