// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=sip`: send `OPTIONS sip:<login>` over the virtual's protocol
//! (UDP for `protocol=udp`, TCP otherwise); the real is up when the final
//! response is `SIP/2.0 200`. This is ldirectord's `check_sip`, with the
//! same request (To, From and Contact are `sip:<login>`, login defaulting
//! to `ldirectord@<hostname>`), under negotiatetimeout.
//!
//! Differences from ldirectord, all towards reading the protocol right:
//! - ldirectord requires the literal status line `SIP/2.0 200 OK`; here
//!   the status code decides (RFC 3261 section 7.2: reason phrases are for
//!   humans), so `SIP/2.0 200 Fine` is up too;
//! - provisional `1xx` responses are skipped, not taken as the answer;
//! - the Via header names the transport actually used (ldirectord always
//!   wrote UDP), and carries `rport` and a fresh branch per request;
//! - over UDP, a datagram that is not the answer to this request (another
//!   Call-ID) is ignored.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::net::UdpSocket;

use super::textproto::{self, local_hostname, quote_server_text, Deadline};
use super::{CheckError, CheckSpec, CheckTarget, Checker, Protocol};

/// A SIP response over UDP fits one datagram; RFC 3261 section 18.1.1
/// keeps them well under this.
const MAX_DATAGRAM: usize = 65_535;
/// Responses (provisional ones included) read before giving up.
const MAX_RESPONSES: usize = 16;
/// Header lines of one response read over TCP before giving up.
const MAX_HEADER_LINES: usize = 256;

/// Checks a SIP server with an OPTIONS request.
#[derive(Debug, Clone)]
pub struct SipChecker {
    timeout: Duration,
    login: String,
    udp: bool,
}

impl SipChecker {
    pub fn new(spec: &CheckSpec) -> Self {
        Self {
            timeout: spec.negotiate_timeout,
            login: spec
                .login
                .clone()
                .filter(|login| !login.is_empty())
                .unwrap_or_else(|| format!("ldirectord@{}", local_hostname())),
            udp: spec.protocol == Protocol::Udp,
        }
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let deadline = Deadline::after(self.timeout);
        if self.udp {
            self.over_udp(target.addr, &deadline).await
        } else {
            self.over_tcp(target.addr, deadline).await
        }
    }

    async fn over_tcp(&self, addr: SocketAddr, deadline: Deadline) -> Result<(), CheckError> {
        let stream = textproto::connect_tcp(addr, &deadline).await?;
        let local = stream
            .local_addr()
            .map_err(|e| textproto::io_error("SIP", &e))?;
        let request = Request::new(&self.login, "TCP", local)?;
        let mut conn = textproto::LineConn::new(Box::new(stream), deadline, "SIP");
        conn.send_raw(request.text.as_bytes()).await?;
        for _ in 0..MAX_RESPONSES {
            let status_line = conn.read_line("status line").await?;
            // The headers (and the empty body of an OPTIONS answer) are
            // read so that a following response starts on a fresh line.
            let mut content_length = 0usize;
            for _ in 0..MAX_HEADER_LINES {
                let header = conn.read_line("response headers").await?;
                if header.is_empty() {
                    break;
                }
                if let Some(value) = header_value(&header, "content-length", "l") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
            if let Some(verdict) = verdict(&status_line)? {
                return verdict;
            }
            if content_length > 0 {
                // A provisional response with a body: not worth parsing.
                return Err(CheckError::Protocol(format!(
                    "SIP: provisional response with a body: {}",
                    quote_server_text(&status_line)
                )));
            }
        }
        Err(too_many_provisional())
    }

    async fn over_udp(&self, addr: SocketAddr, deadline: &Deadline) -> Result<(), CheckError> {
        let unspecified: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let io = |e: std::io::Error| textproto::io_error("SIP", &e);
        let socket = UdpSocket::bind(unspecified).await.map_err(io)?;
        // Connected: only the real's datagrams arrive, and an ICMP port
        // unreachable comes back as "connection refused".
        socket.connect(addr).await.map_err(io)?;
        let local = socket.local_addr().map_err(io)?;
        let request = Request::new(&self.login, "UDP", local)?;
        deadline
            .run(socket.send(request.text.as_bytes()))
            .await?
            .map_err(io)?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        for _ in 0..MAX_RESPONSES {
            let received = deadline.run(socket.recv(&mut buf)).await?.map_err(io)?;
            let datagram = String::from_utf8_lossy(&buf[..received]);
            let mut lines = datagram.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let call_id = lines
                .take_while(|line| !line.is_empty())
                .find_map(|line| header_value(line, "call-id", "i"));
            if call_id.map(str::trim) != Some(request.call_id.as_str()) {
                continue;
            }
            if let Some(verdict) = verdict(status_line)? {
                return verdict;
            }
        }
        Err(too_many_provisional())
    }
}

fn too_many_provisional() -> CheckError {
    CheckError::Protocol(format!(
        "SIP: no final response after {MAX_RESPONSES} responses"
    ))
}

/// The check's verdict from a status line: `None` for a provisional
/// (1xx) response, after which the final one is awaited.
fn verdict(status_line: &str) -> Result<Option<Result<(), CheckError>>, CheckError> {
    let code = status_line
        .strip_prefix("SIP/2.0 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            CheckError::Protocol(format!(
                "SIP: not a status line: \"{}\"",
                quote_server_text(status_line)
            ))
        })?;
    Ok(match code {
        100..=199 => None,
        200 => Some(Ok(())),
        _ => Some(Err(CheckError::Protocol(format!(
            "SIP {}",
            quote_server_text(&status_line["SIP/2.0 ".len()..])
        )))),
    })
}

/// The value of header `name` (or its compact form) in `line`, if the line
/// is that header. Names are case-insensitive (RFC 3261 section 7.3.1).
fn header_value<'a>(line: &'a str, name: &str, compact: &str) -> Option<&'a str> {
    let (field, value) = line.split_once(':')?;
    let field = field.trim();
    (field.eq_ignore_ascii_case(name) || field.eq_ignore_ascii_case(compact)).then_some(value)
}

/// One OPTIONS request and its Call-ID.
struct Request {
    text: String,
    call_id: String,
}

impl Request {
    fn new(login: &str, transport: &str, local: SocketAddr) -> Result<Self, CheckError> {
        if login.contains(['\r', '\n', ' ', '<', '>']) {
            return Err(CheckError::Other(format!(
                "SIP login {login:?} is not a valid SIP user"
            )));
        }
        let [call_id, branch, tag] = [random_hex::<8>()?, random_hex::<8>()?, random_hex::<4>()?];
        // SocketAddr's Display brackets IPv6 addresses, as a Via needs.
        let text = format!(
            "OPTIONS sip:{login} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:{login}>\r\n\
             From: <sip:{login}>;tag={tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 63104 OPTIONS\r\n\
             Contact: <sip:{login}>\r\n\
             Accept: application/sdp\r\n\
             Content-Length: 0\r\n\r\n"
        );
        Ok(Self { text, call_id })
    }
}

fn random_hex<const N: usize>() -> Result<String, CheckError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CheckError::Other("no system randomness for the SIP Call-ID".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Checker for SipChecker {
    fn name(&self) -> &'static str {
        "sip"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        self.probe(target).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_code_decides() {
        assert_eq!(verdict("SIP/2.0 200 OK"), Ok(Some(Ok(()))));
        assert_eq!(verdict("SIP/2.0 200 Fine"), Ok(Some(Ok(()))));
        assert_eq!(verdict("SIP/2.0 100 Trying"), Ok(None));
        assert_eq!(
            verdict("SIP/2.0 503 Service Unavailable"),
            Ok(Some(Err(CheckError::Protocol(
                "SIP 503 Service Unavailable".into()
            ))))
        );
        assert!(verdict("HTTP/1.1 200 OK").is_err());
    }

    #[test]
    fn request_has_ldirectords_shape_and_brackets_ipv6() {
        let local: SocketAddr = "[::1]:5070".parse().unwrap();
        let request = Request::new("ldirectord@lb1", "UDP", local).unwrap();
        assert!(request.text.starts_with(
            "OPTIONS sip:ldirectord@lb1 SIP/2.0\r\nVia: SIP/2.0/UDP [::1]:5070;branch=z9hG4bK"
        ));
        assert!(request.text.contains("\r\nTo: <sip:ldirectord@lb1>\r\n"));
        assert!(request
            .text
            .contains(&format!("\r\nCall-ID: {}\r\n", request.call_id)));
        assert!(request.text.ends_with("Content-Length: 0\r\n\r\n"));
        assert!(Request::new("bad user", "UDP", local).is_err());
    }

    #[test]
    fn headers_match_long_and_compact_names() {
        assert_eq!(header_value("Call-ID: abc", "call-id", "i"), Some(" abc"));
        assert_eq!(header_value("i:abc", "call-id", "i"), Some("abc"));
        assert_eq!(header_value("Via: x", "call-id", "i"), None);
    }
}
