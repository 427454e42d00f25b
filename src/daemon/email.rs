// SPDX-License-Identifier: GPL-2.0-or-later
//! Email alerts over SMTP, with ldirectord's message layout: subject = the
//! log line (prefixed `[servicename]`), body = host, log message, daemon
//! status, then the service details. Sent to `smtp=` or, where ldirectord
//! would use Mail::Send (a local MTA), to localhost:25.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("SMTP {server}: {what}")]
    Smtp { server: String, what: String },
    #[error("SMTP {server}: timeout after {secs}s")]
    Timeout { server: String, secs: u64 },
}

/// One alert, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// `host` or `host:port` (port 25 when absent).
    pub server: String,
    pub from: String,
    /// Recipients as configured: `a@x, b@y`.
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// ldirectord's body: host, log message, daemon status, optional details.
pub fn body(hostname: &str, subject: &str, daemon_status: &str, details: Option<&str>) -> String {
    let mut b = format!(
        "ldirectord host: {hostname}\nLog-Message: {subject}\nDaemon-Status: {daemon_status}\n"
    );
    if let Some(d) = details.filter(|d| !d.is_empty()) {
        b.push('\n');
        b.push_str(d);
        b.push('\n');
    }
    b
}

/// The recipients of an `emailalert` value.
pub fn recipients(to: &str) -> Vec<&str> {
    to.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Sends the alert; the whole exchange is bounded by `timeout` so a dead
/// mail server never holds up the director.
pub async fn send(alert: &Alert, timeout: Duration) -> Result<(), EmailError> {
    let server = alert.server.clone();
    match tokio::time::timeout(timeout, exchange(alert)).await {
        Ok(r) => r,
        Err(_) => Err(EmailError::Timeout {
            server,
            secs: timeout.as_secs(),
        }),
    }
}

async fn exchange(alert: &Alert) -> Result<(), EmailError> {
    let err = |what: String| EmailError::Smtp {
        server: alert.server.clone(),
        what,
    };
    let addr = if alert.server.contains(':') && !alert.server.starts_with('[') {
        alert.server.clone()
    } else {
        format!("{}:25", alert.server)
    };
    let stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| err(format!("connect: {e}")))?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);

    expect(&mut rd, 2, "greeting").await.map_err(err)?;
    let helo = hostname();
    command(&mut wr, &mut rd, &format!("EHLO {helo}"), 2)
        .await
        .map_err(err)?;
    command(
        &mut wr,
        &mut rd,
        &format!("MAIL FROM:<{}>", bare(&alert.from)),
        2,
    )
    .await
    .map_err(err)?;
    for rcpt in recipients(&alert.to) {
        command(&mut wr, &mut rd, &format!("RCPT TO:<{}>", bare(rcpt)), 2)
            .await
            .map_err(err)?;
    }
    command(&mut wr, &mut rd, "DATA", 3).await.map_err(err)?;
    let mut msg = format!(
        "From: {}\r\nTo: {}\r\nSubject: {}\r\n\r\n",
        alert.from, alert.to, alert.subject
    );
    for line in alert.body.lines() {
        // Dot-stuffing (RFC 5321 4.5.2).
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push_str(".\r\n");
    wr.write_all(msg.as_bytes())
        .await
        .map_err(|e| err(format!("write: {e}")))?;
    expect(&mut rd, 2, "end of data").await.map_err(err)?;
    let _ = command(&mut wr, &mut rd, "QUIT", 2).await;
    Ok(())
}

/// `Name <a@b>` -> `a@b`; a bare address passes through.
fn bare(addr: &str) -> &str {
    match (addr.find('<'), addr.rfind('>')) {
        (Some(l), Some(r)) if l < r => &addr[l + 1..r],
        _ => addr.trim(),
    }
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

async fn command<W, R>(wr: &mut W, rd: &mut R, line: &str, class: u8) -> Result<(), String>
where
    W: AsyncWriteExt + Unpin,
    R: AsyncBufReadExt + Unpin,
{
    wr.write_all(format!("{line}\r\n").as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let verb = line.split_whitespace().next().unwrap_or(line);
    expect(rd, class, verb).await
}

/// Reads a (possibly multi-line) reply and checks its first digit.
async fn expect<R: AsyncBufReadExt + Unpin>(
    rd: &mut R,
    class: u8,
    what: &str,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = rd
            .read_line(&mut line)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed before the {what} reply"));
        }
        let b = line.as_bytes();
        if b.len() < 4 || !b[..3].iter().all(u8::is_ascii_digit) {
            return Err(format!("bad reply to {what}: {}", line.trim_end()));
        }
        if b[3] == b'-' {
            continue;
        }
        if b[0] != b'0' + class {
            return Err(format!("{what} refused: {}", line.trim_end()));
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_like_ldirectord() {
        let b = body(
            "lb1",
            "Deleted real server: 10.1.0.2:80",
            "running",
            Some("Comment: x\n"),
        );
        assert_eq!(
            b,
            "ldirectord host: lb1\nLog-Message: Deleted real server: 10.1.0.2:80\nDaemon-Status: running\n\nComment: x\n\n"
        );
        assert_eq!(recipients("a@x, b@y,"), vec!["a@x", "b@y"]);
        assert_eq!(bare("Ops <ops@example.test>"), "ops@example.test");
    }
}
