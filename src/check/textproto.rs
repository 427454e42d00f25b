// SPDX-License-Identifier: GPL-2.0-or-later
//! Shared plumbing for the line-oriented text protocols (SMTP, POP3, IMAP,
//! FTP, NNTP): one deadline for the whole check, TCP connect with reasons
//! an operator can act on, bounded line reads, and the three-digit reply
//! format SMTP and FTP share.
//!
//! Every I/O step of a check runs under the same [`Deadline`], so a server
//! that trickles its greeting byte by byte still cannot hold a check past
//! its timeout.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::implicit_tls::TlsClient;
use super::CheckError;

/// Longest line accepted from a server. Real greetings and replies are a
/// few hundred bytes; anything longer is garbage and must not grow memory.
pub(crate) const MAX_LINE: usize = 8 * 1024;

/// Most continuation lines accepted in one multi-line reply (EHLO lists a
/// dozen extensions; FTP banners can be a page of text).
const MAX_REPLY_LINES: usize = 512;

/// Longest server text quoted in a failure reason.
const MAX_REASON_TEXT: usize = 200;

/// How long the polite goodbye (QUIT, LOGOUT) may wait for its reply once
/// the verdict is known. Short, so a server that hangs at QUIT cannot turn
/// an already-decided "up" into a late result.
const GOODBYE_GRACE: Duration = Duration::from_millis(500);

/// The point in time by which the whole check must be finished.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    pub(crate) fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// Runs one I/O step, failing with "timeout after N s" (the check's
    /// whole budget, which is what the operator configured) if the
    /// deadline passes first.
    pub(crate) async fn run<T, F>(&self, step: F) -> Result<T, CheckError>
    where
        F: std::future::Future<Output = T>,
    {
        tokio::time::timeout_at(self.at, step)
            .await
            .map_err(|_| CheckError::Timeout(self.budget))
    }

    /// A deadline for the goodbye: the sooner of the check's own deadline
    /// and a short grace from now.
    fn goodbye(&self) -> Self {
        Self {
            at: self.at.min(Instant::now() + GOODBYE_GRACE),
            budget: self.budget,
        }
    }
}

/// Maps a socket error to a reason. Refusal gets its own variant because
/// it is the commonest "down" and the scheduler may want to tell it apart.
pub(crate) fn io_error(context: &str, err: &io::Error) -> CheckError {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => CheckError::Refused,
        _ => CheckError::Io(format!("{context}: {err}")),
    }
}

/// Opens a TCP connection to `addr` within the deadline.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    deadline: &Deadline,
) -> Result<TcpStream, CheckError> {
    let stream = deadline
        .run(TcpStream::connect(addr))
        .await?
        .map_err(|e| io_error(&format!("connect to {addr}"), &e))?;
    // Commands are tiny and we always wait for the reply: Nagle would
    // only add latency to every round trip.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Connects to `addr` and, for the implicit-TLS services (pops, imaps),
/// runs the TLS handshake, giving a [`LineConn`] ready for the greeting.
pub(crate) async fn open(
    addr: SocketAddr,
    tls: Option<&TlsClient>,
    deadline: Deadline,
    protocol: &'static str,
) -> Result<LineConn, CheckError> {
    let tcp = connect_tcp(addr, &deadline).await?;
    let stream: Box<dyn ByteStream> = match tls {
        Some(tls) => Box::new(tls.handshake(tcp, addr.ip(), &deadline).await?),
        None => Box::new(tcp),
    };
    Ok(LineConn::new(stream, deadline, protocol))
}

/// Anything a text protocol can run over: plain TCP or TLS over TCP.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// Quotes server text in a reason: control characters replaced, length
/// capped, so a hostile server cannot forge log lines or flood them.
pub(crate) fn quote_server_text(text: &str) -> String {
    let mut quoted: String = text
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_REASON_TEXT)
        .collect();
    if text.trim_end().chars().count() > MAX_REASON_TEXT {
        quoted.push_str("...");
    }
    quoted
}

/// A reply in the SMTP/FTP format: a three-digit code, then text; a
/// multi-line reply is reduced to its code and its first line's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    /// The class of the reply: 2 for success, 3 for "go on", 4 and 5 for
    /// failures.
    pub(crate) fn class(&self) -> u16 {
        self.code / 100
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, quote_server_text(&self.text))
        }
    }
}

/// Splits `ddd<sep>text` into code, separator and text; `None` when the
/// line does not start with three digits.
fn split_reply_line(line: &str) -> Option<(u16, Option<char>, &str)> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code = digits.parse().ok()?;
    let mut rest = line[3..].chars();
    let separator = rest.next();
    let text = line.get(4..).unwrap_or("");
    Some((code, separator, text))
}

/// A client connection speaking a line-oriented protocol, every step
/// bounded by the check's deadline.
pub(crate) struct LineConn {
    reader: BufReader<Box<dyn ByteStream>>,
    deadline: Deadline,
    /// Protocol name used in reasons ("SMTP", "FTP", ...).
    protocol: &'static str,
}

impl LineConn {
    pub(crate) fn new(
        stream: Box<dyn ByteStream>,
        deadline: Deadline,
        protocol: &'static str,
    ) -> Self {
        Self {
            reader: BufReader::new(stream),
            deadline,
            protocol,
        }
    }

    /// Reads one line (without its CR LF). `waiting_for` names what was
    /// expected, for the reason when the server hangs up instead.
    pub(crate) async fn read_line(&mut self, waiting_for: &str) -> Result<String, CheckError> {
        let mut raw = Vec::new();
        let deadline = self.deadline;
        let reader = &mut self.reader;
        let read = deadline
            .run(
                (&mut *reader)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut raw),
            )
            .await?
            .map_err(|e| io_error(&format!("reading {} {waiting_for}", self.protocol), &e))?;
        if read == 0 {
            return Err(CheckError::Protocol(format!(
                "{}: connection closed by server while waiting for {waiting_for}",
                self.protocol
            )));
        }
        if raw.last() != Some(&b'\n') {
            return Err(CheckError::Protocol(if raw.len() >= MAX_LINE {
                format!(
                    "{}: {waiting_for} longer than {MAX_LINE} bytes",
                    self.protocol
                )
            } else {
                format!(
                    "{}: connection closed by server in the middle of {waiting_for}",
                    self.protocol
                )
            }));
        }
        raw.pop();
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        Ok(String::from_utf8_lossy(&raw).into_owned())
    }

    /// Reads a complete SMTP/FTP reply, following `ddd-` continuation
    /// lines to the closing `ddd ` line.
    pub(crate) async fn read_reply(&mut self, waiting_for: &str) -> Result<Reply, CheckError> {
        let first = self.read_line(waiting_for).await?;
        let Some((code, separator, text)) = split_reply_line(&first) else {
            return Err(CheckError::Protocol(format!(
                "{}: {waiting_for} is not a reply: \"{}\"",
                self.protocol,
                quote_server_text(&first)
            )));
        };
        let reply = Reply {
            code,
            text: text.to_owned(),
        };
        if separator != Some('-') {
            return Ok(reply);
        }
        // RFC 5321 4.2.1 / RFC 959 4.2: the reply ends at the first line
        // that starts with the same code followed by a space (or nothing).
        for _ in 0..MAX_REPLY_LINES {
            let line = self.read_line(waiting_for).await?;
            if let Some((next_code, next_separator, _)) = split_reply_line(&line) {
                if next_code == code && next_separator != Some('-') {
                    return Ok(reply);
                }
            }
        }
        Err(CheckError::Protocol(format!(
            "{}: {waiting_for} has more than {MAX_REPLY_LINES} lines",
            self.protocol
        )))
    }

    /// Sends one command line; CR LF is appended here.
    pub(crate) async fn send_line(&mut self, line: &str) -> Result<(), CheckError> {
        let mut wire = Vec::with_capacity(line.len() + 2);
        wire.extend_from_slice(line.as_bytes());
        wire.extend_from_slice(b"\r\n");
        self.send_raw(&wire).await
    }

    /// Sends bytes as they are (IMAP literals, pre-built commands).
    pub(crate) async fn send_raw(&mut self, wire: &[u8]) -> Result<(), CheckError> {
        let deadline = self.deadline;
        let stream = self.reader.get_mut();
        deadline
            .run(async {
                stream.write_all(wire).await?;
                stream.flush().await
            })
            .await?
            .map_err(|e| io_error(&format!("sending {} command", self.protocol), &e))
    }

    /// Says goodbye once the verdict is known: sends `command`, waits
    /// briefly for the server's answer so the server, not us, closes
    /// first, and ignores whatever happens (ldirectord ignores QUIT
    /// failures too).
    pub(crate) async fn goodbye(mut self, command: &str) {
        self.deadline = self.deadline.goodbye();
        if self.send_line(command).await.is_ok() {
            let _ = self.read_line("the goodbye").await;
        }
        let _ = self.deadline.run(self.reader.get_mut().shutdown()).await;
    }
}

/// This host's name, as ldirectord's `$HOSTNAME` (used for the default FTP
/// password, the default SIP user and the SMTP EHLO argument).
pub(crate) fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines_split_into_code_separator_and_text() {
        assert_eq!(
            split_reply_line("220 ready"),
            Some((220, Some(' '), "ready"))
        );
        assert_eq!(
            split_reply_line("250-PIPELINING"),
            Some((250, Some('-'), "PIPELINING"))
        );
        assert_eq!(split_reply_line("221"), Some((221, None, "")));
        assert_eq!(split_reply_line("22"), None);
        assert_eq!(split_reply_line("+OK"), None);
        assert_eq!(split_reply_line("2a0 x"), None);
    }

    #[test]
    fn server_text_is_defanged_and_capped() {
        assert_eq!(quote_server_text("bad\x1b[31m\tline \r"), "bad?[31m?line");
        let long = "x".repeat(500);
        let quoted = quote_server_text(&long);
        assert!(quoted.ends_with("..."));
        assert_eq!(quoted.len(), MAX_REASON_TEXT + 3);
    }

    #[tokio::test]
    async fn multi_line_reply_ends_at_the_line_with_a_space() {
        let (client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"250-mx.example\r\n250-SIZE 10\r\n 250 not the end\r\n250 HELP\r\n")
            .await
            .unwrap();
        let mut conn = LineConn::new(
            Box::new(client),
            Deadline::after(Duration::from_secs(5)),
            "SMTP",
        );
        let reply = conn.read_reply("EHLO reply").await.unwrap();
        assert_eq!(reply.code, 250);
        assert_eq!(reply.text, "mx.example");
    }

    #[tokio::test]
    async fn overlong_line_is_refused() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(&vec![b'a'; MAX_LINE + 10]).await.unwrap();
        let mut conn = LineConn::new(
            Box::new(client),
            Deadline::after(Duration::from_secs(5)),
            "POP3",
        );
        let err = conn.read_line("greeting").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("POP3: greeting longer than {MAX_LINE} bytes")
        );
    }

    #[tokio::test]
    async fn hang_up_mid_line_is_reported() {
        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"* OK half").await.unwrap();
        drop(server);
        let mut conn = LineConn::new(
            Box::new(client),
            Deadline::after(Duration::from_secs(5)),
            "IMAP",
        );
        let err = conn.read_line("greeting").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "IMAP: connection closed by server in the middle of greeting"
        );
    }
}
