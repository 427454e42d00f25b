// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=pop` (and, through [`super::pops`], `pops`): the server is up
//! when it greets with `+OK` and, if `login` is set, accepts `USER`/`PASS`
//! with `passwd`. This is ldirectord's `check_pop` (Mail::POP3Client).
//! The session ends with `QUIT`; the whole exchange, TLS handshake
//! included, runs under negotiatetimeout.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::implicit_tls::TlsClient;
use super::textproto::{self, quote_server_text, Deadline, LineConn};
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// Checks a POP3 server, over plain TCP or implicit TLS.
#[derive(Debug, Clone)]
pub struct PopChecker {
    timeout: Duration,
    /// `login`/`passwd`; no login means "greeting only", as in ldirectord.
    credentials: Option<(String, String)>,
    tls: Option<TlsClient>,
}

impl PopChecker {
    /// `service=pop`.
    pub fn new(spec: &CheckSpec) -> Self {
        Self {
            timeout: spec.negotiate_timeout,
            credentials: credentials(spec),
            tls: None,
        }
    }

    /// `service=pops`: the same over implicit TLS.
    pub(crate) fn over_tls(spec: &CheckSpec) -> Self {
        Self {
            tls: Some(TlsClient::new(spec)),
            ..Self::new(spec)
        }
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.timeout);
        let mut conn = textproto::open(target.addr, self.tls.as_ref(), deadline, "POP3").await?;
        let greeting = conn.read_line("greeting").await?;
        if !is_ok(&greeting) {
            return Err(CheckError::Protocol(format!(
                "POP3 greeting: {}",
                quote_server_text(&greeting)
            )));
        }
        if let Some((user, pass)) = &self.credentials {
            login(&mut conn, user, pass).await?;
        }
        conn.goodbye("QUIT").await;
        Ok(())
    }
}

/// The login to try: ldirectord logs in only when `login` is non-empty.
pub(crate) fn credentials(spec: &CheckSpec) -> Option<(String, String)> {
    spec.login
        .as_deref()
        .filter(|login| !login.is_empty())
        .map(|login| (login.to_owned(), spec.passwd.clone().unwrap_or_default()))
}

/// RFC 1939: positive replies start with `+OK`, negative with `-ERR`.
fn is_ok(line: &str) -> bool {
    line.starts_with("+OK")
}

async fn login(conn: &mut LineConn, user: &str, pass: &str) -> Result<(), CheckError> {
    for (command, argument) in [("USER", user), ("PASS", pass)] {
        if argument.contains(['\r', '\n']) {
            return Err(CheckError::Other(format!(
                "POP3 {command} argument contains a line break"
            )));
        }
        conn.send_line(&format!("{command} {argument}")).await?;
        let reply = conn.read_line(&format!("{command} reply")).await?;
        if !is_ok(&reply) {
            return Err(CheckError::Protocol(format!(
                "POP3 login failed: {}",
                quote_server_text(&reply)
            )));
        }
    }
    Ok(())
}

impl Checker for PopChecker {
    fn name(&self) -> &'static str {
        if self.tls.is_some() {
            "pops"
        } else {
            "pop"
        }
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.probe(target).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{CheckKind, Service};

    #[test]
    fn logs_in_only_with_a_login() {
        let real = "127.0.2.1:110".parse().unwrap();
        let spec = CheckSpec::new(CheckKind::Negotiate(Service::Pop), real);
        assert_eq!(credentials(&spec), None);
        let spec = spec.login("alice", "");
        assert_eq!(credentials(&spec), Some(("alice".into(), String::new())));
    }

    #[tokio::test]
    async fn err_reply_names_the_failure() {
        use tokio::io::AsyncWriteExt;
        let (client, mut server) = tokio::io::duplex(1024);
        server
            .write_all(b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n")
            .await
            .unwrap();
        let mut conn = LineConn::new(
            Box::new(client),
            Deadline::after(Duration::from_secs(5)),
            "POP3",
        );
        let err = login(&mut conn, "alice", "wrong").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "POP3 login failed: -ERR [AUTH] Authentication failed."
        );
    }
}
