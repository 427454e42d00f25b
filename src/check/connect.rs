// SPDX-License-Identifier: GPL-2.0-or-later
//! `checktype=connect`: the real is up when a TCP (or SCTP) connection to
//! the check port opens within checktimeout. The connection is closed at
//! once without sending anything, as ldirectord does.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpStream;

use super::{within, CheckError, CheckTarget, Checker, Protocol};

const IPPROTO_SCTP: i32 = 132;

pub struct ConnectChecker {
    protocol: Protocol,
    timeout: Duration,
}

impl ConnectChecker {
    pub fn new(protocol: Protocol, timeout: Duration) -> Self {
        ConnectChecker { protocol, timeout }
    }
}

impl Checker for ConnectChecker {
    fn name(&self) -> &'static str {
        "connect"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(within(self.timeout, async move {
            match self.protocol {
                Protocol::Sctp => sctp_connect(target.addr).await.map_err(CheckError::from),
                _ => {
                    let stream = TcpStream::connect(target.addr).await?;
                    // Close with a plain FIN: the real sees an ordinary
                    // client that went away.
                    drop(stream);
                    Ok(())
                }
            }
        }))
    }
}

/// Opens (and drops) an SCTP association; tokio has no SCTP type, so the
/// non-blocking connect is driven by hand.
async fn sctp_connect(addr: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(socket2::Protocol::from(IPPROTO_SCTP)),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => return Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(err) => return Err(err),
    }
    let fd = super::ping::register(socket)?;
    let _ready = fd.writable().await?;
    match fd.get_ref().take_error()? {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn target(addr: SocketAddr) -> CheckTarget {
        CheckTarget {
            addr,
            virtual_addr: None,
            virtual_port: 0,
            real_port: addr.port(),
        }
    }

    #[tokio::test]
    async fn up_when_listening_refused_when_closed() {
        let listener = TcpListener::bind("127.0.3.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let checker = ConnectChecker::new(Protocol::Tcp, Duration::from_secs(2));
        assert_eq!(checker.check(&target(addr)).await, Ok(()));
        drop(listener);
        let err = checker.check(&target(addr)).await.unwrap_err();
        assert_eq!(err, CheckError::Refused);
        assert_eq!(err.to_string(), "connection refused");
    }
}
