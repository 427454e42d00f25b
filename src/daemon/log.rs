// SPDX-License-Identifier: GPL-2.0-or-later
//! Logging where ldirectord logs: `logfile="/path"` (one line per event,
//! `[localtime|CFGNAME|pid] message`, the file reopened for every line so
//! logrotate needs no signal) or `logfile="local0"` (syslog, ident
//! `ldirectord`), plus stderr in the foreground.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    File(PathBuf),
    /// A syslog facility name (`daemon`, `local0` ... `local7`, ...).
    Syslog(String),
}

impl LogTarget {
    /// ldirectord's rule: a value starting with `/` is a file, anything
    /// else names a syslog facility.
    pub fn from_config(value: &str) -> Self {
        if value.starts_with('/') {
            LogTarget::File(PathBuf::from(value))
        } else {
            LogTarget::Syslog(value.to_owned())
        }
    }
}

/// syslog facility codes (RFC 5424 table 1).
pub fn facility_code(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// The time as Perl's scalar `localtime` prints it: `Mon Nov 23 09:31:00 2026`.
pub fn perl_localtime(secs: i64) -> String {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: localtime_r only writes into the `tm` we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return secs.to_string();
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year + 1900
    )
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Formats events as ldirectord does: `[time|cfgname|pid] message k=v`.
pub struct LdirectordFormat {
    pub config_name: String,
    /// Syslog adds its own time and pid, so the prefix is left out there.
    pub prefix: bool,
}

impl<S, N> FormatEvent<S, N> for LdirectordFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: format::Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        if self.prefix {
            write!(
                writer,
                "[{}|{}|{}] ",
                perl_localtime(now_secs()),
                self.config_name,
                std::process::id()
            )?;
        }
        let level = *event.metadata().level();
        if level <= Level::WARN {
            write!(writer, "{}: ", level.as_str())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// A `MakeWriter` that sends each formatted line to the configured target.
#[derive(Clone)]
pub struct LogSink {
    target: LogTarget,
    syslog: Arc<Mutex<Option<UnixDatagram>>>,
    facility: u8,
}

impl LogSink {
    pub fn new(target: LogTarget) -> Self {
        let facility = match &target {
            LogTarget::Syslog(f) => facility_code(f).unwrap_or(3),
            _ => 3,
        };
        LogSink {
            target,
            syslog: Arc::new(Mutex::new(None)),
            facility,
        }
    }

    fn emit(&self, line: &[u8]) -> io::Result<()> {
        match &self.target {
            LogTarget::Stderr => io::stderr().write_all(line),
            LogTarget::File(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
                .write_all(line),
            LogTarget::Syslog(_) => {
                // RFC 3164 over /dev/log, priority info (6) as ldirectord.
                let text = String::from_utf8_lossy(line);
                let mut msg = String::new();
                let _ = write!(
                    msg,
                    "<{}>ldirectord[{}]: {}",
                    u32::from(self.facility) * 8 + 6,
                    std::process::id(),
                    text.trim_end()
                );
                let mut guard = self.syslog.lock().unwrap_or_else(|e| e.into_inner());
                if guard.is_none() {
                    let s = UnixDatagram::unbound()?;
                    s.connect("/dev/log")?;
                    *guard = Some(s);
                }
                let sent = guard.as_ref().map(|s| s.send(msg.as_bytes()));
                if let Some(Err(e)) = sent {
                    // syslogd may have restarted: reconnect next time.
                    *guard = None;
                    return Err(e);
                }
                Ok(())
            }
        }
    }
}

/// Buffers one event and hands the whole line to the sink on drop, so a
/// file line is written with one `write` and never interleaves.
pub struct LineWriter {
    sink: LogSink,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            // Logging must never take the director down.
            let _ = self.sink.emit(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            sink: self.clone(),
            buf: Vec::with_capacity(128),
        }
    }
}

/// Installs the global subscriber. `debug` (`-d`) lowers the level to debug.
pub fn init(target: LogTarget, config_name: &str, debug: bool) {
    let prefix = !matches!(target, LogTarget::Syslog(_));
    let level = if debug { Level::DEBUG } else { Level::INFO };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .event_format(LdirectordFormat {
            config_name: config_name.to_owned(),
            prefix,
        })
        .with_writer(LogSink::new(target))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_rule() {
        assert_eq!(
            LogTarget::from_config("/var/log/ldirectord.log"),
            LogTarget::File("/var/log/ldirectord.log".into())
        );
        assert_eq!(
            LogTarget::from_config("local0"),
            LogTarget::Syslog("local0".into())
        );
        assert_eq!(facility_code("local0"), Some(16));
        assert_eq!(facility_code("nope"), None);
    }

    #[test]
    fn perl_time_shape() {
        let s = perl_localtime(0);
        // "Thu Jan  1 00:00:00 1970" in UTC; the shape holds in any zone.
        let parts: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(parts.len(), 5, "{s}");
        assert_eq!(parts[3].len(), 8, "{s}");
    }

    #[test]
    fn file_sink_appends_whole_lines() {
        let path = std::env::temp_dir().join(format!("ldir-log-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let sink = LogSink::new(LogTarget::File(path.clone()));
        for i in 0..3 {
            let mut w = sink.make_writer();
            writeln!(w, "line {i}").unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "line 0\nline 1\nline 2\n");
        // Rotation: the file moved away, the next line creates a new one.
        std::fs::rename(&path, path.with_extension("old")).unwrap();
        writeln!(sink.make_writer(), "after").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("old"));
    }
}
