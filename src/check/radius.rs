// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=radius`: one RADIUS Access-Request (RFC 2865) with `login` and
//! `passwd`; the real is up on a verified Access-Accept, and down on an
//! Access-Reject (as in ldirectord, where `check_pwd` is false then), on an
//! Access-Challenge, or when no valid reply comes in time.
//!
//! ldirectord calls Authen::Radius `check_pwd`; this is the same exchange,
//! written out because the protocol is tiny and a crate would add more than
//! it saves. Compared with ldirectord it also:
//! - verifies the Response Authenticator (a reply forged or signed with
//!   another secret is not an Accept);
//! - sends a Message-Authenticator (RFC 3579), which servers hardened
//!   against BlastRADIUS (CVE-2024-3596) require, and checks the one in the
//!   reply when present;
//! - retransmits the identical datagram within the timeout, since UDP may
//!   drop one.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{KeyInit, Mac};
use md5::{Digest, Md5};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{CheckError, CheckSpec, CheckTarget, Checker};

const CODE_ACCESS_REQUEST: u8 = 1;
const CODE_ACCESS_ACCEPT: u8 = 2;
const CODE_ACCESS_REJECT: u8 = 3;
const CODE_ACCESS_CHALLENGE: u8 = 11;

const ATTR_USER_NAME: u8 = 1;
const ATTR_USER_PASSWORD: u8 = 2;
const ATTR_NAS_IP_ADDRESS: u8 = 4;
const ATTR_REPLY_MESSAGE: u8 = 18;
const ATTR_NAS_IDENTIFIER: u8 = 32;
const ATTR_MESSAGE_AUTHENTICATOR: u8 = 80;
const ATTR_NAS_IPV6_ADDRESS: u8 = 95;

const HEADER_LEN: usize = 20;
const AUTHENTICATOR_LEN: usize = 16;
/// RFC 2865 section 3: packets are at most 4096 bytes.
const MAX_PACKET_LEN: usize = 4096;
/// RFC 2865 section 5.2: the hidden password is at most 128 bytes.
const MAX_PASSWORD_LEN: usize = 128;
/// An attribute value is at most 253 bytes (one length byte, minus type and
/// length).
const MAX_ATTRIBUTE_VALUE_LEN: usize = 253;
/// How many times the same datagram is sent within the timeout.
const TRANSMISSIONS: u32 = 3;

/// The NAS-Identifier sent with every request, so the server's log names
/// who is asking.
pub const DEFAULT_NAS_IDENTIFIER: &str = "ldirectord";

type HmacMd5 = hmac::Hmac<Md5>;

/// Why a RADIUS exchange failed below the level of a plain I/O error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadiusError {
    #[error("RADIUS Access-Reject")]
    Reject,
    #[error("RADIUS Access-Reject: {0}")]
    RejectWithMessage(String),
    #[error("RADIUS Access-Challenge (multi-round authentication is not supported by the check)")]
    Challenge,
    #[error("RADIUS reply with unexpected code {0}")]
    UnexpectedCode(u8),
    #[error("RADIUS response authenticator mismatch (wrong secret?)")]
    BadResponseAuthenticator,
    #[error("RADIUS Message-Authenticator mismatch in the reply (wrong secret?)")]
    BadMessageAuthenticator,
    #[error("RADIUS {0} is {1} bytes, at most {2} allowed")]
    TooLong(&'static str, usize, usize),
    #[error("RADIUS malformed reply: {0}")]
    Malformed(&'static str),
}

impl From<RadiusError> for CheckError {
    fn from(error: RadiusError) -> Self {
        CheckError::Protocol(error.to_string())
    }
}

/// Checks a RADIUS authentication server with one Access-Request.
#[derive(Debug, Clone)]
pub struct RadiusChecker {
    timeout: Duration,
    login: String,
    passwd: String,
    secret: Vec<u8>,
    nas_identifier: String,
}

impl RadiusChecker {
    /// The check a spec describes: User-Name `login`, User-Password
    /// `passwd`, shared `secret`. The timeout is the shorter of
    /// checktimeout and negotiatetimeout: ldirectord runs the exchange
    /// under an alarm of checktimeout and gives Authen::Radius
    /// negotiatetimeout, so the shorter one bounds it there.
    pub fn new(spec: &CheckSpec) -> Self {
        Self::with_params(
            spec.check_timeout.min(spec.negotiate_timeout),
            spec.login.clone().unwrap_or_default(),
            spec.passwd.clone().unwrap_or_default(),
            spec.secret.clone().unwrap_or_default(),
        )
    }

    /// `timeout` bounds the whole exchange, retransmissions included.
    pub fn with_params(
        timeout: Duration,
        login: impl Into<String>,
        passwd: impl Into<String>,
        secret: impl Into<Vec<u8>>,
    ) -> Self {
        Self {
            timeout,
            login: login.into(),
            passwd: passwd.into(),
            secret: secret.into(),
            nas_identifier: DEFAULT_NAS_IDENTIFIER.to_owned(),
        }
    }

    /// Replaces the NAS-Identifier sent in requests.
    pub fn with_nas_identifier(mut self, nas_identifier: impl Into<String>) -> Self {
        self.nas_identifier = nas_identifier.into();
        self
    }

    async fn probe(&self, addr: SocketAddr) -> Result<(), CheckError> {
        let deadline = Instant::now() + self.timeout;
        let bind_addr: SocketAddr = match addr {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(bind_addr).await.map_err(io_error)?;
        // A connected socket only receives datagrams from the real, and
        // reports an ICMP port unreachable as ECONNREFUSED.
        socket.connect(addr).await.map_err(io_error)?;
        let local_ip = socket.local_addr().map_err(io_error)?.ip();

        let identifier = random_bytes::<1>()?[0];
        let request_authenticator = random_bytes::<AUTHENTICATOR_LEN>()?;
        let request = AccessRequest {
            identifier,
            authenticator: request_authenticator,
            user_name: self.login.as_bytes(),
            password: self.passwd.as_bytes(),
            nas_ip: local_ip,
            nas_identifier: self.nas_identifier.as_bytes(),
        }
        .encode(&self.secret)?;

        let mut buf = vec![0u8; MAX_PACKET_LEN];
        let retransmit_every = self.timeout / TRANSMISSIONS;
        loop {
            socket.send(&request).await.map_err(io_error)?;
            let resend_at = (Instant::now() + retransmit_every).min(deadline);
            loop {
                let received = match tokio::time::timeout_at(resend_at, socket.recv(&mut buf)).await
                {
                    Ok(received) => received.map_err(io_error)?,
                    Err(_) if resend_at >= deadline => {
                        return Err(CheckError::Timeout(self.timeout))
                    }
                    Err(_) => break,
                };
                let reply = &buf[..received];
                // A reply to an earlier probe from the same port (or noise):
                // not ours, keep waiting.
                if reply.len() < 2 || reply[1] != identifier {
                    continue;
                }
                return verify_reply(reply, &request_authenticator, &self.secret)
                    .map_err(CheckError::from);
            }
        }
    }
}

impl Checker for RadiusChecker {
    fn name(&self) -> &'static str {
        "radius"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, self.probe(target.addr)).await {
                Ok(result) => result,
                Err(_) => Err(CheckError::Timeout(self.timeout)),
            }
        })
    }
}

fn io_error(error: std::io::Error) -> CheckError {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => CheckError::Refused,
        _ => CheckError::Io(error.to_string()),
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], CheckError> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| {
            CheckError::Other("no system randomness for the RADIUS authenticator".into())
        })?;
    Ok(bytes)
}

/// The fields of one Access-Request, encoded by [`AccessRequest::encode`].
struct AccessRequest<'a> {
    identifier: u8,
    authenticator: [u8; AUTHENTICATOR_LEN],
    user_name: &'a [u8],
    password: &'a [u8],
    nas_ip: IpAddr,
    nas_identifier: &'a [u8],
}

impl AccessRequest<'_> {
    /// The datagram, Message-Authenticator included.
    fn encode(&self, secret: &[u8]) -> Result<Vec<u8>, RadiusError> {
        let mut packet = Vec::with_capacity(128);
        packet.push(CODE_ACCESS_REQUEST);
        packet.push(self.identifier);
        packet.extend_from_slice(&[0, 0]); // length, filled in below
        packet.extend_from_slice(&self.authenticator);
        push_attribute(&mut packet, ATTR_USER_NAME, "User-Name", self.user_name)?;
        let hidden = hide_password(self.password, secret, &self.authenticator)?;
        push_attribute(&mut packet, ATTR_USER_PASSWORD, "User-Password", &hidden)?;
        match self.nas_ip {
            IpAddr::V4(ip) if !ip.is_unspecified() => push_attribute(
                &mut packet,
                ATTR_NAS_IP_ADDRESS,
                "NAS-IP-Address",
                &ip.octets(),
            )?,
            IpAddr::V6(ip) if !ip.is_unspecified() => push_attribute(
                &mut packet,
                ATTR_NAS_IPV6_ADDRESS,
                "NAS-IPv6-Address",
                &ip.octets(),
            )?,
            _ => {}
        }
        if !self.nas_identifier.is_empty() {
            push_attribute(
                &mut packet,
                ATTR_NAS_IDENTIFIER,
                "NAS-Identifier",
                self.nas_identifier,
            )?;
        }
        let message_authenticator_at = packet.len() + 2;
        push_attribute(
            &mut packet,
            ATTR_MESSAGE_AUTHENTICATOR,
            "Message-Authenticator",
            &[0u8; 16],
        )?;
        let length = u16::try_from(packet.len())
            .ok()
            .filter(|&length| usize::from(length) <= MAX_PACKET_LEN)
            .ok_or(RadiusError::TooLong(
                "Access-Request",
                packet.len(),
                MAX_PACKET_LEN,
            ))?;
        packet[2..4].copy_from_slice(&length.to_be_bytes());
        // RFC 3579 section 3.2: HMAC-MD5 over the whole packet with the
        // Message-Authenticator value zeroed.
        let mac = hmac_md5(secret, &[&packet]);
        packet[message_authenticator_at..message_authenticator_at + 16].copy_from_slice(&mac);
        Ok(packet)
    }
}

fn push_attribute(
    packet: &mut Vec<u8>,
    kind: u8,
    name: &'static str,
    value: &[u8],
) -> Result<(), RadiusError> {
    if value.len() > MAX_ATTRIBUTE_VALUE_LEN {
        return Err(RadiusError::TooLong(
            name,
            value.len(),
            MAX_ATTRIBUTE_VALUE_LEN,
        ));
    }
    packet.push(kind);
    // Cannot truncate: value.len() + 2 <= 255 was checked above.
    packet.push((value.len() + 2) as u8);
    packet.extend_from_slice(value);
    Ok(())
}

/// RFC 2865 section 5.2: the password, NUL-padded to a multiple of 16, is
/// XORed block by block with MD5(secret + previous block), the first
/// "previous block" being the Request Authenticator.
fn hide_password(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>, RadiusError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(RadiusError::TooLong(
            "User-Password",
            password.len(),
            MAX_PASSWORD_LEN,
        ));
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut hidden = password.to_vec();
    hidden.resize(padded_len, 0);
    let mut previous: [u8; 16] = *request_authenticator;
    for block in hidden.chunks_mut(16) {
        let key: [u8; 16] = Md5::new()
            .chain_update(secret)
            .chain_update(previous)
            .finalize()
            .into();
        for (byte, key_byte) in block.iter_mut().zip(key) {
            *byte ^= key_byte;
        }
        previous.copy_from_slice(block);
    }
    Ok(hidden)
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacMd5 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Checks a reply to our request (same identifier) and maps its code to
/// the check's verdict.
fn verify_reply(
    reply: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &[u8],
) -> Result<(), RadiusError> {
    if reply.len() < HEADER_LEN {
        return Err(RadiusError::Malformed("shorter than the 20-byte header"));
    }
    let length = usize::from(u16::from_be_bytes([reply[2], reply[3]]));
    if !(HEADER_LEN..=reply.len()).contains(&length) {
        return Err(RadiusError::Malformed("length field out of range"));
    }
    // RFC 2865 section 3: octets past the length field are padding.
    let reply = &reply[..length];
    let expected: [u8; 16] = Md5::new()
        .chain_update(&reply[..4])
        .chain_update(request_authenticator)
        .chain_update(&reply[HEADER_LEN..])
        .chain_update(secret)
        .finalize()
        .into();
    if reply[4..HEADER_LEN] != expected {
        return Err(RadiusError::BadResponseAuthenticator);
    }

    let mut reply_messages = Vec::new();
    let mut attributes = &reply[HEADER_LEN..];
    let mut offset = HEADER_LEN;
    while !attributes.is_empty() {
        if attributes.len() < 2 {
            return Err(RadiusError::Malformed("truncated attribute"));
        }
        let (kind, attribute_len) = (attributes[0], usize::from(attributes[1]));
        if attribute_len < 2 || attribute_len > attributes.len() {
            return Err(RadiusError::Malformed("attribute length out of range"));
        }
        let value = &attributes[2..attribute_len];
        match kind {
            ATTR_REPLY_MESSAGE => reply_messages.push(String::from_utf8_lossy(value).into_owned()),
            ATTR_MESSAGE_AUTHENTICATOR => {
                if value.len() != 16 {
                    return Err(RadiusError::Malformed(
                        "Message-Authenticator is not 16 bytes",
                    ));
                }
                // RFC 3579 section 3.2: for a reply, the HMAC covers the
                // packet with the Request Authenticator in place of the
                // Response Authenticator and the attribute value zeroed.
                let value_at = offset + 2;
                let mac = hmac_md5(
                    secret,
                    &[
                        &reply[..4],
                        request_authenticator,
                        &reply[HEADER_LEN..value_at],
                        &[0u8; 16],
                        &reply[value_at + 16..],
                    ],
                );
                if value != mac {
                    return Err(RadiusError::BadMessageAuthenticator);
                }
            }
            _ => {}
        }
        attributes = &attributes[attribute_len..];
        offset += attribute_len;
    }

    match reply[0] {
        CODE_ACCESS_ACCEPT => Ok(()),
        CODE_ACCESS_REJECT if reply_messages.is_empty() => Err(RadiusError::Reject),
        CODE_ACCESS_REJECT => Err(RadiusError::RejectWithMessage(reply_messages.join(" "))),
        CODE_ACCESS_CHALLENGE => Err(RadiusError::Challenge),
        code => Err(RadiusError::UnexpectedCode(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|digit| (digit as char).to_digit(16).map(|d| d as u8).unwrap_or(0))
            .collect();
        digits
            .chunks(2)
            .map(|pair| pair[0] << 4 | pair[1])
            .collect()
    }

    // RFC 2865 section 7.1: user "nemo", password "arctangent", secret
    // "xyzzy5461".
    const RFC_SECRET: &[u8] = b"xyzzy5461";
    const RFC_REQUEST_AUTHENTICATOR: &str = "0f403f9473978057bd83d5cb98f4227a";
    const RFC_HIDDEN_PASSWORD: &str = "0dbe708d93d413ce3196e43f782a0aee";
    const RFC_ACCESS_ACCEPT: &str = "02000026 86fe220e7624ba2a1005f6bf9b55e0b2
        06060000000 1 0f0600000000 0e06c0a80103";

    fn rfc_request_authenticator() -> [u8; 16] {
        hex(RFC_REQUEST_AUTHENTICATOR).try_into().expect("16 bytes")
    }

    #[test]
    fn hides_password_as_rfc_2865_example() {
        let hidden = hide_password(b"arctangent", RFC_SECRET, &rfc_request_authenticator())
            .expect("short password");
        assert_eq!(hidden, hex(RFC_HIDDEN_PASSWORD));
    }

    #[test]
    fn accepts_rfc_2865_example_reply() {
        let reply = hex(RFC_ACCESS_ACCEPT);
        assert_eq!(reply.len(), 0x26);
        assert_eq!(
            verify_reply(&reply, &rfc_request_authenticator(), RFC_SECRET),
            Ok(())
        );
    }

    #[test]
    fn rejects_rfc_2865_example_reply_with_wrong_secret() {
        let reply = hex(RFC_ACCESS_ACCEPT);
        assert_eq!(
            verify_reply(&reply, &rfc_request_authenticator(), b"xyzzy5462"),
            Err(RadiusError::BadResponseAuthenticator)
        );
    }

    #[test]
    fn hides_multi_block_password_reversibly() {
        let password = b"a password longer than sixteen bytes";
        let authenticator = [7u8; 16];
        let hidden = hide_password(password, b"s3cret", &authenticator).expect("fits");
        assert_eq!(hidden.len(), 48);
        // Undo the hiding as a server does: key block i from the hidden
        // block i-1.
        let mut previous = authenticator.to_vec();
        let mut clear = Vec::new();
        for block in hidden.chunks(16) {
            let key = Md5::new()
                .chain_update(b"s3cret")
                .chain_update(&previous)
                .finalize();
            clear.extend(block.iter().zip(key.iter()).map(|(a, b)| a ^ b));
            previous = block.to_vec();
        }
        assert_eq!(&clear[..password.len()], password);
        assert!(clear[password.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn refuses_password_longer_than_128_bytes() {
        let password = [b'x'; 129];
        assert_eq!(
            hide_password(&password, b"s", &[0; 16]),
            Err(RadiusError::TooLong("User-Password", 129, 128))
        );
    }

    /// Builds a signed reply as a server would, for the verdict tests.
    fn signed_reply(code: u8, attributes: &[u8], request_authenticator: &[u8; 16]) -> Vec<u8> {
        let mut reply = vec![code, 42, 0, 0];
        reply.extend_from_slice(request_authenticator);
        reply.extend_from_slice(attributes);
        let length = reply.len() as u16;
        reply[2..4].copy_from_slice(&length.to_be_bytes());
        let signature = Md5::new()
            .chain_update(&reply)
            .chain_update(b"secret")
            .finalize();
        reply[4..20].copy_from_slice(&signature);
        reply
    }

    #[test]
    fn reject_carries_reply_message() {
        let authenticator = [1u8; 16];
        let mut attributes = vec![ATTR_REPLY_MESSAGE, 2 + 6];
        attributes.extend_from_slice(b"Denied");
        let reply = signed_reply(CODE_ACCESS_REJECT, &attributes, &authenticator);
        let error = verify_reply(&reply, &authenticator, b"secret").expect_err("reject");
        assert_eq!(error.to_string(), "RADIUS Access-Reject: Denied");
    }

    #[test]
    fn challenge_is_down() {
        let authenticator = [2u8; 16];
        let reply = signed_reply(CODE_ACCESS_CHALLENGE, &[], &authenticator);
        assert_eq!(
            verify_reply(&reply, &authenticator, b"secret"),
            Err(RadiusError::Challenge)
        );
    }

    #[test]
    fn checks_message_authenticator_in_reply() {
        let authenticator = [3u8; 16];
        // Reply with a Message-Authenticator computed as RFC 3579 says.
        let mut reply = vec![CODE_ACCESS_ACCEPT, 42, 0, 38];
        reply.extend_from_slice(&authenticator);
        reply.extend_from_slice(&[ATTR_MESSAGE_AUTHENTICATOR, 18]);
        reply.extend_from_slice(&[0u8; 16]);
        let mac = hmac_md5(b"secret", &[&reply]);
        reply[22..38].copy_from_slice(&mac);
        let signature = Md5::new()
            .chain_update(&reply)
            .chain_update(b"secret")
            .finalize();
        reply[4..20].copy_from_slice(&signature);
        assert_eq!(verify_reply(&reply, &authenticator, b"secret"), Ok(()));

        // Flip one bit of the MAC and re-sign the packet so only the
        // Message-Authenticator is wrong.
        reply[4..20].copy_from_slice(&authenticator);
        reply[30] ^= 1;
        let signature = Md5::new()
            .chain_update(&reply)
            .chain_update(b"secret")
            .finalize();
        reply[4..20].copy_from_slice(&signature);
        assert_eq!(
            verify_reply(&reply, &authenticator, b"secret"),
            Err(RadiusError::BadMessageAuthenticator)
        );
    }

    #[test]
    fn request_carries_valid_message_authenticator() {
        let request = AccessRequest {
            identifier: 9,
            authenticator: [5u8; 16],
            user_name: b"nemo",
            password: b"arctangent",
            nas_ip: IpAddr::from([127, 0, 3, 1]),
            nas_identifier: b"ldirectord",
        }
        .encode(b"secret")
        .expect("fits");
        assert_eq!(
            usize::from(u16::from_be_bytes([request[2], request[3]])),
            request.len()
        );
        // The Message-Authenticator is the last attribute.
        let value_at = request.len() - 16;
        assert_eq!(request[value_at - 2], ATTR_MESSAGE_AUTHENTICATOR);
        let mut zeroed = request.clone();
        zeroed[value_at..].fill(0);
        assert_eq!(request[value_at..], hmac_md5(b"secret", &[&zeroed]));
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let authenticator = [0u8; 16];
        for reply in [
            &[][..],
            &[2, 0, 0, 20][..],
            &[
                2, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ][..],
        ] {
            assert!(matches!(
                verify_reply(reply, &authenticator, b"s"),
                Err(RadiusError::Malformed(_))
            ));
        }
        // A well-signed reply whose attribute overruns the packet.
        let reply = signed_reply(
            CODE_ACCESS_ACCEPT,
            &[ATTR_REPLY_MESSAGE, 9, b'x'],
            &authenticator,
        );
        assert_eq!(
            verify_reply(&reply, &authenticator, b"secret"),
            Err(RadiusError::Malformed("attribute length out of range"))
        );
    }
}
