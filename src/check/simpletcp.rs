// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=simpletcp`: send the request, shut down writing, and read the
//! answer line by line; up as soon as one line matches `receive`.
//!
//! As in ldirectord: the request loses its leading `/` and a literal `\n`
//! becomes a newline; the whole exchange runs under negotiatetimeout. On a
//! UDP virtual the request goes out as one datagram and the lines of the
//! one datagram that comes back are matched (ldirectord opened a UDP socket
//! there too).

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UdpSocket};

use super::receive::Receive;
use super::{within, CheckError, CheckSpec, CheckTarget, Checker, Protocol};

/// A longer line is cut for matching; a real that sends megabytes without
/// a newline is not going to match anyway.
const MAX_LINE: usize = 64 << 10;

pub struct SimpleTcpChecker {
    payload: Vec<u8>,
    receive: Receive,
    udp: bool,
    timeout: Duration,
}

impl SimpleTcpChecker {
    pub fn new(spec: &CheckSpec) -> Result<Self, CheckError> {
        Ok(SimpleTcpChecker {
            payload: payload(&spec.request),
            receive: Receive::new(&spec.receive)?,
            udp: spec.protocol == Protocol::Udp,
            timeout: spec.negotiate_timeout,
        })
    }

    async fn over_tcp(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let mut stream = TcpStream::connect(target.addr).await?;
        stream.write_all(&self.payload).await?;
        stream.shutdown().await?;
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        let mut lines = 0usize;
        loop {
            line.clear();
            let read = (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .await?;
            if read == 0 {
                break;
            }
            lines += 1;
            if self.receive.matches(trim_newline(&line)) {
                return Ok(());
            }
        }
        Err(self.mismatch(lines))
    }

    async fn over_udp(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let local: std::net::SocketAddr = if target.addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(target.addr).await?;
        socket.send(&self.payload).await?;
        let mut buf = vec![0u8; 65536];
        let len = socket.recv(&mut buf).await?;
        let mut lines = 0usize;
        for line in buf[..len].split_inclusive(|byte| *byte == b'\n') {
            lines += 1;
            if self.receive.matches(trim_newline(line)) {
                return Ok(());
            }
        }
        Err(self.mismatch(lines))
    }

    fn mismatch(&self, lines: usize) -> CheckError {
        if lines == 0 {
            CheckError::Protocol("connection closed without an answer".into())
        } else {
            self.receive.not_found_in("any line")
        }
    }
}

/// ldirectord: `substr($request, 1)` then `s/\\n/\n/g`.
fn payload(request: &str) -> Vec<u8> {
    let request = request.strip_prefix('/').unwrap_or(request);
    request.replace("\\n", "\n").into_bytes()
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

impl Checker for SimpleTcpChecker {
    fn name(&self) -> &'static str {
        "simpletcp"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(within(self.timeout, async move {
            if self.udp {
                self.over_udp(target).await
            } else {
                self.over_tcp(target).await
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_strips_slash_and_expands_newlines() {
        assert_eq!(payload("/PING\\nQUIT\\n"), b"PING\nQUIT\n");
        assert_eq!(payload("/"), b"");
    }
}
