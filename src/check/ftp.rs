// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=ftp`: log in, fetch the `request` file in passive mode and
//! match `receive` against its content. This is ldirectord's `check_ftp`
//! (Net::FTP: login, `CWD /`, binary, passive, `RETR request`), with the
//! login defaults ldirectord applies (`anonymous`, password
//! `ldirectord@<hostname>`). The whole exchange, data connection included,
//! runs under negotiatetimeout.
//!
//! Where ldirectord is loose this check is strict: ldirectord matches
//! `receive` against whatever was fetched even when the login or the
//! transfer failed, so an empty `receive` passed whatever happened. Here a
//! failed login or transfer is down with the server's reply as reason.
//! Without a `request` (the default `/`) there is no file to fetch and the
//! check ends after the login.
//!
//! The data connection goes to the address of the control connection,
//! whatever address the server advertises in its PASV reply: the real is
//! the only host a check talks to (and NAT'ed reals advertise addresses
//! the director cannot reach anyway).

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::receive::Receive;
use super::textproto::{self, local_hostname, Deadline, LineConn, Reply};
use super::{CheckError, CheckSpec, CheckTarget, Checker};

/// ldirectord's default FTP user.
pub const DEFAULT_LOGIN: &str = "anonymous";
/// Most of the file read for matching; a health check file is small, and
/// a huge one must not grow memory. The match runs on this much.
const MAX_FILE: u64 = 1 << 20;

/// Checks an FTP server by fetching a file.
#[derive(Debug, Clone)]
pub struct FtpChecker {
    timeout: Duration,
    login: String,
    passwd: String,
    /// The path sent with RETR (ldirectord's request, leading `/` kept);
    /// `None` when no file is configured.
    file: Option<String>,
    receive: Receive,
}

impl FtpChecker {
    pub fn new(spec: &CheckSpec) -> Result<Self, CheckError> {
        let file = Some(spec.request.as_str())
            .filter(|request| !request.is_empty() && *request != "/")
            .map(str::to_owned);
        if let Some(file) = &file {
            if file.contains(['\r', '\n']) {
                return Err(CheckError::Other(
                    "FTP request contains a line break".into(),
                ));
            }
        }
        Ok(Self {
            timeout: spec.negotiate_timeout,
            login: spec
                .login
                .clone()
                .filter(|login| !login.is_empty())
                .unwrap_or_else(|| DEFAULT_LOGIN.to_owned()),
            passwd: spec
                .passwd
                .clone()
                .filter(|passwd| !passwd.is_empty())
                .unwrap_or_else(|| format!("ldirectord@{}", local_hostname())),
            file,
            receive: Receive::new(&spec.receive)?,
        })
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.timeout);
        let mut conn = textproto::open(target.addr, None, deadline, "FTP").await?;
        let mut greeting = conn.read_reply("greeting").await?;
        // 120: "ready in nnn minutes", followed by the real greeting.
        if greeting.code == 120 {
            greeting = conn.read_reply("greeting").await?;
        }
        if greeting.class() != 2 {
            return Err(CheckError::Protocol(format!("FTP greeting: {greeting}")));
        }
        self.log_in(&mut conn).await?;
        if let Some(file) = &self.file {
            let content = fetch(&mut conn, target.addr, file, &deadline).await?;
            if !self.receive.matches(&content) {
                return Err(self.receive.not_found_in("file"));
            }
        }
        conn.goodbye("QUIT").await;
        Ok(())
    }

    async fn log_in(&self, conn: &mut LineConn) -> Result<(), CheckError> {
        for argument in [&self.login, &self.passwd] {
            if argument.contains(['\r', '\n']) {
                return Err(CheckError::Other(
                    "FTP login or passwd contains a line break".into(),
                ));
            }
        }
        let user = command(conn, &format!("USER {}", self.login), "USER reply").await?;
        let done = match user.code {
            230 => user,
            331 => command(conn, &format!("PASS {}", self.passwd), "PASS reply").await?,
            _ => return Err(login_failed(&user)),
        };
        if done.class() != 2 {
            return Err(login_failed(&done));
        }
        Ok(())
    }
}

fn login_failed(reply: &Reply) -> CheckError {
    CheckError::Protocol(format!("FTP login failed: {reply}"))
}

async fn command(conn: &mut LineConn, line: &str, waiting_for: &str) -> Result<Reply, CheckError> {
    conn.send_line(line).await?;
    conn.read_reply(waiting_for).await
}

/// `CWD /`, `TYPE I`, passive mode, `RETR file`: the file's content (at
/// most [`MAX_FILE`] bytes).
async fn fetch(
    conn: &mut LineConn,
    server: SocketAddr,
    file: &str,
    deadline: &Deadline,
) -> Result<Vec<u8>, CheckError> {
    // As Net::FTP's cwd and binary in ldirectord: results not checked,
    // a server that refuses them may still serve the file.
    command(conn, "CWD /", "CWD reply").await?;
    command(conn, "TYPE I", "TYPE reply").await?;
    let data_port = passive_port(conn, server).await?;
    let data_addr = SocketAddr::new(server.ip(), data_port);
    let mut data = deadline
        .run(TcpStream::connect(data_addr))
        .await?
        .map_err(|e| textproto::io_error(&format!("FTP data connection to {data_addr}"), &e))?;

    let start = command(conn, &format!("RETR {file}"), "RETR reply").await?;
    if start.class() != 1 {
        return Err(CheckError::Protocol(format!("FTP RETR {file}: {start}")));
    }
    let mut content = Vec::new();
    deadline
        .run((&mut data).take(MAX_FILE).read_to_end(&mut content))
        .await?
        .map_err(|e| textproto::io_error("FTP data connection", &e))?;
    if content.len() as u64 >= MAX_FILE {
        // Enough to match on; the rest is not read, so the transfer's
        // final reply would not come in time: judge what we have.
        return Ok(content);
    }
    drop(data);
    let done = conn.read_reply("end of transfer").await?;
    if done.class() != 2 {
        return Err(CheckError::Protocol(format!("FTP RETR {file}: {done}")));
    }
    Ok(content)
}

/// EPSV (RFC 2428, both address families), falling back to PASV for old
/// IPv4 servers; only the port of the reply is used.
async fn passive_port(conn: &mut LineConn, server: SocketAddr) -> Result<u16, CheckError> {
    let epsv = command(conn, "EPSV", "EPSV reply").await?;
    if epsv.code == 229 {
        return epsv_port(&epsv.text).ok_or_else(|| {
            CheckError::Protocol(format!("FTP: cannot read the port in EPSV reply {epsv}"))
        });
    }
    if server.is_ipv6() {
        return Err(CheckError::Protocol(format!("FTP EPSV: {epsv}")));
    }
    let pasv = command(conn, "PASV", "PASV reply").await?;
    if pasv.code != 227 {
        return Err(CheckError::Protocol(format!("FTP PASV: {pasv}")));
    }
    pasv_port(&pasv.text).ok_or_else(|| {
        CheckError::Protocol(format!("FTP: cannot read the port in PASV reply {pasv}"))
    })
}

/// `Entering Extended Passive Mode (|||6446|)`: the port between the
/// delimiters (the delimiter is the first character inside the brackets).
fn epsv_port(text: &str) -> Option<u16> {
    let inside = &text[text.find('(')? + 1..];
    let delimiter = inside.chars().next()?;
    let fields: Vec<&str> = inside.split(delimiter).collect();
    // "", "", "", "6446", ")"
    fields.get(3)?.parse().ok()
}

/// `Entering Passive Mode (h1,h2,h3,h4,p1,p2)`: the port is p1*256+p2.
/// Servers vary in brackets and text, so take the last six numbers.
fn pasv_port(text: &str) -> Option<u16> {
    let numbers: Vec<u16> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|field| !field.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [.., p1, p2] = numbers.as_slice() else {
        return None;
    };
    if numbers.len() < 6 || *p1 > 255 || *p2 > 255 {
        return None;
    }
    Some(p1 * 256 + p2)
}

impl Checker for FtpChecker {
    fn name(&self) -> &'static str {
        "ftp"
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
    fn passive_replies_give_the_port() {
        assert_eq!(
            epsv_port("Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(epsv_port("Extended Passive (!!!21!)"), Some(21));
        assert_eq!(epsv_port("no brackets"), None);
        assert_eq!(
            pasv_port("Entering Passive Mode (127,0,2,5,200,13)."),
            Some(200 * 256 + 13)
        );
        assert_eq!(pasv_port("=127,0,2,5,1,2"), Some(258));
        assert_eq!(pasv_port("Entering Passive Mode (1,2,3)"), None);
        assert_eq!(pasv_port("(127,0,0,1,300,1)"), None);
    }

    #[test]
    fn defaults_follow_ldirectord() {
        let real = "127.0.2.1:21".parse().unwrap();
        let checker =
            FtpChecker::new(&CheckSpec::new(CheckKind::Negotiate(Service::Ftp), real)).unwrap();
        assert_eq!(checker.login, "anonymous");
        assert!(checker.passwd.starts_with("ldirectord@"));
        assert_eq!(checker.file, None);
        let checker = FtpChecker::new(
            &CheckSpec::new(CheckKind::Negotiate(Service::Ftp), real)
                .request("health.txt")
                .login("ftpuser", "pw"),
        )
        .unwrap();
        assert_eq!(checker.file.as_deref(), Some("/health.txt"));
        assert_eq!(checker.login, "ftpuser");
    }
}
