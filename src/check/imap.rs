// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=imap` (and, through [`super::imaps`], `imaps`): the server is
//! up when it greets with `* OK` (or `* PREAUTH`) and, if `login` is set,
//! accepts `LOGIN` with `passwd`. This is ldirectord's `check_imap`
//! (Net::IMAP::Simple). The session ends with `LOGOUT`; the whole
//! exchange, TLS handshake included, runs under negotiatetimeout.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::implicit_tls::TlsClient;
use super::pop::credentials;
use super::textproto::{self, quote_server_text, Deadline, LineConn};
use super::{CheckError, CheckSpec, CheckTarget, Checker};

const LOGIN_TAG: &str = "L1";
/// Untagged lines accepted before the tagged reply to LOGIN (a server
/// may send CAPABILITY and friends first).
const MAX_UNTAGGED: usize = 128;

/// Checks an IMAP server, over plain TCP or implicit TLS.
#[derive(Debug, Clone)]
pub struct ImapChecker {
    timeout: Duration,
    credentials: Option<(String, String)>,
    tls: Option<TlsClient>,
}

impl ImapChecker {
    /// `service=imap`.
    pub fn new(spec: &CheckSpec) -> Self {
        Self {
            timeout: spec.negotiate_timeout,
            credentials: credentials(spec),
            tls: None,
        }
    }

    /// `service=imaps`: the same over implicit TLS.
    pub(crate) fn over_tls(spec: &CheckSpec) -> Self {
        Self {
            tls: Some(TlsClient::new(spec)),
            ..Self::new(spec)
        }
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.timeout);
        let mut conn = textproto::open(target.addr, self.tls.as_ref(), deadline, "IMAP").await?;
        let greeting = conn.read_line("greeting").await?;
        let preauthenticated = greeting.starts_with("* PREAUTH");
        if !greeting.starts_with("* OK") && !preauthenticated {
            return Err(CheckError::Protocol(format!(
                "IMAP greeting: {}",
                quote_server_text(&greeting)
            )));
        }
        // A pre-authenticated session has nothing left to prove (and a
        // LOGIN there is a protocol error).
        if let (Some((user, pass)), false) = (&self.credentials, preauthenticated) {
            login(&mut conn, user, pass).await?;
        }
        conn.goodbye("L2 LOGOUT").await;
        Ok(())
    }
}

/// One LOGIN argument on the wire.
enum Argument {
    /// A quoted string, quotes and escapes included.
    Quoted(String),
    /// A synchronizing literal: `{n}` CR LF, the server's `+`, the bytes.
    Literal(Vec<u8>),
}

impl Argument {
    /// Quoted when RFC 3501 allows it (7-bit text without CR, LF or NUL),
    /// a literal otherwise, so any password can be sent.
    fn new(value: &str) -> Self {
        let quotable = value
            .bytes()
            .all(|b| b.is_ascii() && !matches!(b, b'\0' | b'\r' | b'\n'));
        if quotable {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            Argument::Quoted(format!("\"{escaped}\""))
        } else {
            Argument::Literal(value.as_bytes().to_vec())
        }
    }
}

async fn login(conn: &mut LineConn, user: &str, pass: &str) -> Result<(), CheckError> {
    let mut pending = format!("{LOGIN_TAG} LOGIN").into_bytes();
    for argument in [Argument::new(user), Argument::new(pass)] {
        pending.push(b' ');
        match argument {
            Argument::Quoted(text) => pending.extend_from_slice(text.as_bytes()),
            Argument::Literal(bytes) => {
                pending.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
                conn.send_raw(&pending).await?;
                let go_on = conn.read_line("literal continuation").await?;
                if !go_on.starts_with('+') {
                    return Err(login_failed(&go_on));
                }
                pending = bytes;
            }
        }
    }
    pending.extend_from_slice(b"\r\n");
    conn.send_raw(&pending).await?;

    for _ in 0..MAX_UNTAGGED {
        let line = conn.read_line("LOGIN reply").await?;
        let Some(status) = line
            .strip_prefix(LOGIN_TAG)
            .and_then(|rest| rest.strip_prefix(' '))
        else {
            continue;
        };
        return if status.starts_with("OK") {
            Ok(())
        } else {
            Err(login_failed(&line))
        };
    }
    Err(CheckError::Protocol(format!(
        "IMAP: no reply to LOGIN after {MAX_UNTAGGED} lines"
    )))
}

fn login_failed(reply: &str) -> CheckError {
    CheckError::Protocol(format!("IMAP login failed: {}", quote_server_text(reply)))
}

impl Checker for ImapChecker {
    fn name(&self) -> &'static str {
        if self.tls.is_some() {
            "imaps"
        } else {
            "imap"
        }
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.probe(target).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    #[test]
    fn arguments_are_quoted_or_literal() {
        assert!(matches!(Argument::new(r#"a"b\c"#), Argument::Quoted(q) if q == r#""a\"b\\c""#));
        assert!(
            matches!(Argument::new("pässword"), Argument::Literal(b) if b == "pässword".as_bytes())
        );
    }

    /// The literal exchange needs the server's go-ahead between parts.
    #[tokio::test]
    async fn literal_waits_for_continuation() {
        let (client, server) = tokio::io::duplex(4096);
        let server = tokio::spawn(async move {
            let mut server = BufReader::new(server);
            let mut line = String::new();
            server.read_line(&mut line).await.unwrap();
            assert_eq!(line, "L1 LOGIN \"alice\" {3}\r\n");
            server.get_mut().write_all(b"+ go\r\n").await.unwrap();
            line.clear();
            server.read_line(&mut line).await.unwrap();
            assert_eq!(line, "pä\r\n");
            server
                .get_mut()
                .write_all(b"* CAPABILITY IMAP4rev1\r\nL1 NO [AUTHENTICATIONFAILED] nope\r\n")
                .await
                .unwrap();
        });
        let mut conn = LineConn::new(
            Box::new(client),
            Deadline::after(Duration::from_secs(5)),
            "IMAP",
        );
        let err = login(&mut conn, "alice", "pä").await.unwrap_err();
        server.await.unwrap();
        assert_eq!(
            err.to_string(),
            "IMAP login failed: L1 NO [AUTHENTICATIONFAILED] nope"
        );
    }
}
