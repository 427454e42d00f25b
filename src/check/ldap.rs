// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=ldap`: bind (anonymous, or simple with `login`/`passwd`), then a
//! base-scope search at `request`; the real is up when the search returns
//! exactly one entry whose DN matches `receive` (any DN when `receive` is
//! empty). This is ldirectord's `check_ldap`, including its quirks:
//! - the configured request carries ldirectord's generic leading `/`, which
//!   `check_ldap` strips (`substr($request, 1)`); the default request `/` is
//!   therefore the root DSE (empty base DN);
//! - a simple bind happens only when both login and passwd are non-empty,
//!   otherwise the bind is anonymous.
//!
//! Unlike Net::LDAP, every step (connect, TLS, bind, search) is bounded by
//! the one timeout the checker is built with.
//!
//! The client is a minimal LDAPv3 (RFC 4511) encoder/decoder for exactly the
//! four messages a check needs. The `ldap3` crate would bring about fifty
//! crates (url/ICU, x509-parser, a second nom) and, with TLS, OpenSSL
//! probing, for a bind and one search.

use std::time::Duration;

use futures::future::BoxFuture;
use regex::Regex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{within, CheckError, CheckSpec, CheckTarget, Checker};

// BER identifiers (RFC 4511 section 4.2 onwards), class + constructed bit
// + tag number.
const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_BOOLEAN: u8 = 0x01;
const TAG_ENUMERATED: u8 = 0x0a;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_BIND_REQUEST: u8 = 0x60;
const TAG_BIND_RESPONSE: u8 = 0x61;
const TAG_UNBIND_REQUEST: u8 = 0x42;
const TAG_SEARCH_REQUEST: u8 = 0x63;
const TAG_SEARCH_RESULT_ENTRY: u8 = 0x64;
const TAG_SEARCH_RESULT_DONE: u8 = 0x65;
const TAG_SEARCH_RESULT_REFERENCE: u8 = 0x73;
const TAG_EXTENDED_RESPONSE: u8 = 0x78;
const TAG_SIMPLE_AUTHENTICATION: u8 = 0x80;
const TAG_FILTER_PRESENT: u8 = 0x87;

const LDAP_VERSION: u8 = 3;
const SCOPE_BASE_OBJECT: u8 = 0;
const DEREF_NEVER: u8 = 0;
/// RFC 4511 "1.1": return no attributes, only the entry's DN.
const NO_ATTRIBUTES: &[u8] = b"1.1";
/// A base-scope search answers with one small entry and no attributes;
/// anything bigger is a broken or hostile server, not an answer.
const MAX_MESSAGE_LEN: usize = 256 * 1024;

const BIND_MESSAGE_ID: u8 = 1;
const SEARCH_MESSAGE_ID: u8 = 2;
const UNBIND_MESSAGE_ID: u8 = 3;

/// Why an LDAP check failed at the protocol level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapError {
    #[error("LDAP bind failed: {0}")]
    BindFailed(LdapResult),
    #[error("LDAP search of \"{base}\" failed: {result}")]
    SearchFailed { base: String, result: LdapResult },
    #[error("LDAP search of \"{base}\" returned {count} entries, expected 1")]
    EntryCount { base: String, count: usize },
    #[error("LDAP entry DN \"{dn}\" does not match /{receive}/")]
    DnMismatch { dn: String, receive: String },
    #[error("LDAP server disconnected: {0}")]
    Disconnected(LdapResult),
    #[error("LDAP malformed response: {0}")]
    Malformed(&'static str),
    #[error("LDAP response too large ({0} bytes)")]
    TooLarge(usize),
    #[error("LDAP server closed the connection")]
    Closed,
}

impl From<LdapError> for CheckError {
    fn from(error: LdapError) -> Self {
        CheckError::Protocol(error.to_string())
    }
}

/// An LDAPResult: result code and the server's diagnostic message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapResult {
    pub code: u32,
    pub diagnostic: String,
}

impl std::fmt::Display for LdapResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match result_code_name(self.code) {
            Some(name) => f.write_str(name)?,
            None => write!(f, "result code {}", self.code)?,
        }
        if !self.diagnostic.is_empty() {
            write!(f, " ({})", self.diagnostic)?;
        }
        Ok(())
    }
}

/// RFC 4511 appendix A names, as ldapsearch and server logs print them.
fn result_code_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        13 => "confidentialityRequired",
        14 => "saslBindInProgress",
        16 => "noSuchAttribute",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => return None,
    })
}

/// What one LDAP check asks, shared by `ldap` and `ldaps`.
#[derive(Debug, Clone)]
pub struct LdapQuery {
    bind: Option<(String, String)>,
    base: String,
    receive: Option<Regex>,
    timeout: Duration,
}

impl LdapQuery {
    /// `request` is the configured request, with or without ldirectord's
    /// leading `/` (one is stripped, as `check_ldap` does).
    pub fn new(
        timeout: Duration,
        login: &str,
        passwd: &str,
        request: &str,
        receive: Option<Regex>,
    ) -> Self {
        let bind = (!login.is_empty() && !passwd.is_empty())
            .then(|| (login.to_owned(), passwd.to_owned()));
        Self {
            bind,
            base: request.strip_prefix('/').unwrap_or(request).to_owned(),
            receive: receive.filter(|regex| !regex.as_str().is_empty()),
            timeout,
        }
    }

    /// The query a spec describes. The timeout is the shorter of
    /// checktimeout and negotiatetimeout: ldirectord runs the whole LDAP
    /// exchange under an alarm of checktimeout and gives Net::LDAP
    /// negotiatetimeout, so the shorter one is what bounds it there.
    pub fn from_spec(spec: &CheckSpec) -> Result<Self, CheckError> {
        let receive = if spec.receive.is_empty() {
            None
        } else {
            Some(Regex::new(&spec.receive).map_err(|err| {
                CheckError::Other(format!("invalid receive regex /{}/: {err}", spec.receive))
            })?)
        };
        Ok(Self::new(
            spec.check_timeout.min(spec.negotiate_timeout),
            spec.login.as_deref().unwrap_or_default(),
            spec.passwd.as_deref().unwrap_or_default(),
            &spec.request,
            receive,
        ))
    }

    /// The base DN searched.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Runs bind, search and unbind over an established stream (plain TCP
    /// for `ldap`, TLS for `ldaps`). Not bounded by itself: callers wrap it.
    pub async fn run<S>(&self, stream: &mut S) -> Result<(), CheckError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (dn, password) = match &self.bind {
            Some((dn, password)) => (dn.as_str(), password.as_str()),
            None => ("", ""),
        };
        stream
            .write_all(&encode_bind_request(BIND_MESSAGE_ID, dn, password))
            .await
            .map_err(io_error)?;
        let response = read_response(stream, BIND_MESSAGE_ID).await?;
        if response.tag != TAG_BIND_RESPONSE {
            return Err(LdapError::Malformed("expected a BindResponse").into());
        }
        let result = parse_ldap_result(&response.body)?;
        if result.code != 0 {
            return Err(LdapError::BindFailed(result).into());
        }

        let time_limit = u32::try_from(self.timeout.as_secs().max(1)).unwrap_or(u32::MAX);
        stream
            .write_all(&encode_search_request(
                SEARCH_MESSAGE_ID,
                &self.base,
                time_limit,
            ))
            .await
            .map_err(io_error)?;
        let mut dns = Vec::new();
        loop {
            let response = read_response(stream, SEARCH_MESSAGE_ID).await?;
            match response.tag {
                TAG_SEARCH_RESULT_ENTRY => dns.push(parse_entry_dn(&response.body)?),
                // Net::LDAP's count() ignores references; so does the check.
                TAG_SEARCH_RESULT_REFERENCE => {}
                TAG_SEARCH_RESULT_DONE => {
                    let result = parse_ldap_result(&response.body)?;
                    if result.code != 0 {
                        return Err(LdapError::SearchFailed {
                            base: self.base.clone(),
                            result,
                        }
                        .into());
                    }
                    break;
                }
                _ => return Err(LdapError::Malformed("unexpected search response").into()),
            }
        }
        // Polite close; the verdict does not depend on it.
        let _ = stream
            .write_all(&encode_unbind_request(UNBIND_MESSAGE_ID))
            .await;
        let _ = stream.shutdown().await;

        let [dn] = dns.as_slice() else {
            return Err(LdapError::EntryCount {
                base: self.base.clone(),
                count: dns.len(),
            }
            .into());
        };
        match &self.receive {
            Some(receive) if !receive.is_match(dn) => Err(LdapError::DnMismatch {
                dn: dn.clone(),
                receive: receive.as_str().to_owned(),
            }
            .into()),
            _ => Ok(()),
        }
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// `service=ldap`: plain LDAP (usually port 389).
#[derive(Debug, Clone)]
pub struct LdapChecker {
    query: LdapQuery,
}

impl LdapChecker {
    /// The check a spec describes; fails on an invalid `receive` regex.
    pub fn new(spec: &CheckSpec) -> Result<Self, CheckError> {
        Ok(Self {
            query: LdapQuery::from_spec(spec)?,
        })
    }

    async fn probe(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let mut stream = TcpStream::connect(target.addr).await.map_err(io_error)?;
        // Requests are written whole; no point delaying them.
        let _ = stream.set_nodelay(true);
        self.query.run(&mut stream).await
    }
}

impl Checker for LdapChecker {
    fn name(&self) -> &'static str {
        "ldap"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(within(self.query.timeout(), self.probe(target)))
    }
}

pub(crate) fn io_error(error: std::io::Error) -> CheckError {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => CheckError::Refused,
        std::io::ErrorKind::UnexpectedEof => LdapError::Closed.into(),
        _ => CheckError::Io(error.to_string()),
    }
}

// ---------------------------------------------------------------------------
// BER encoding: definite lengths only, as RFC 4511 section 5.1 requires.

fn push_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER/ENUMERATED in minimal two's complement form.
fn integer(tag: u8, value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes
        .iter()
        .take_while(|&&b| b == 0)
        .count()
        .min(bytes.len() - 1);
    let mut content = bytes[skip..].to_vec();
    if content[0] & 0x80 != 0 {
        content.insert(0, 0);
    }
    tlv(tag, &content)
}

fn message(message_id: u8, operation: &[u8]) -> Vec<u8> {
    let mut content = integer(TAG_INTEGER, u32::from(message_id));
    content.extend_from_slice(operation);
    tlv(TAG_SEQUENCE, &content)
}

fn encode_bind_request(message_id: u8, dn: &str, password: &str) -> Vec<u8> {
    let mut content = integer(TAG_INTEGER, u32::from(LDAP_VERSION));
    content.extend(tlv(TAG_OCTET_STRING, dn.as_bytes()));
    content.extend(tlv(TAG_SIMPLE_AUTHENTICATION, password.as_bytes()));
    message(message_id, &tlv(TAG_BIND_REQUEST, &content))
}

fn encode_search_request(message_id: u8, base: &str, time_limit: u32) -> Vec<u8> {
    let mut content = tlv(TAG_OCTET_STRING, base.as_bytes());
    content.extend(integer(TAG_ENUMERATED, u32::from(SCOPE_BASE_OBJECT)));
    content.extend(integer(TAG_ENUMERATED, u32::from(DEREF_NEVER)));
    // sizeLimit: a base search yields at most one entry anyway.
    content.extend(integer(TAG_INTEGER, 0));
    content.extend(integer(TAG_INTEGER, time_limit));
    content.extend(tlv(TAG_BOOLEAN, &[0])); // typesOnly FALSE
    content.extend(tlv(TAG_FILTER_PRESENT, b"objectClass"));
    content.extend(tlv(TAG_SEQUENCE, &tlv(TAG_OCTET_STRING, NO_ATTRIBUTES)));
    message(message_id, &tlv(TAG_SEARCH_REQUEST, &content))
}

fn encode_unbind_request(message_id: u8) -> Vec<u8> {
    message(message_id, &[TAG_UNBIND_REQUEST, 0])
}

// ---------------------------------------------------------------------------
// BER decoding of responses.

/// One response: its protocolOp tag and that element's content.
#[derive(Debug)]
struct Response {
    tag: u8,
    body: Vec<u8>,
}

/// A cursor over BER content.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next element as (tag, content).
    fn element(&mut self) -> Result<(u8, &'a [u8]), LdapError> {
        let (&tag, rest) = self
            .data
            .split_first()
            .ok_or(LdapError::Malformed("truncated element"))?;
        let (length, header_len) = decode_length(rest)?;
        let content = rest
            .get(header_len..header_len + length)
            .ok_or(LdapError::Malformed("element overruns its container"))?;
        self.data = &rest[header_len + length..];
        Ok((tag, content))
    }

    fn expect(&mut self, expected: u8, what: &'static str) -> Result<&'a [u8], LdapError> {
        match self.element()? {
            (tag, content) if tag == expected => Ok(content),
            _ => Err(LdapError::Malformed(what)),
        }
    }

    fn unsigned(&mut self, tag: u8, what: &'static str) -> Result<u32, LdapError> {
        let content = self.expect(tag, what)?;
        if content.is_empty() || content.len() > 5 || content[0] & 0x80 != 0 {
            return Err(LdapError::Malformed(what));
        }
        content
            .iter()
            .fold(0u64, |value, &byte| value << 8 | u64::from(byte))
            .try_into()
            .map_err(|_| LdapError::Malformed(what))
    }
}

/// A BER length at the start of `data`: (length, bytes used).
fn decode_length(data: &[u8]) -> Result<(usize, usize), LdapError> {
    let &first = data
        .first()
        .ok_or(LdapError::Malformed("truncated length"))?;
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let count = usize::from(first & 0x7f);
    // 0x80 is the indefinite form, which LDAP forbids.
    if count == 0 || count > 4 {
        return Err(LdapError::Malformed("unsupported length form"));
    }
    let bytes = data
        .get(1..1 + count)
        .ok_or(LdapError::Malformed("truncated length"))?;
    let length = bytes
        .iter()
        .fold(0usize, |value, &byte| value << 8 | usize::from(byte));
    Ok((length, 1 + count))
}

/// Reads LDAPMessages until one for `message_id`; a Notice of
/// Disconnection (unsolicited, message ID 0) ends the check.
async fn read_response<S>(stream: &mut S, message_id: u8) -> Result<Response, CheckError>
where
    S: AsyncRead + Unpin,
{
    loop {
        let bytes = read_message(stream).await?;
        let mut outer = Reader::new(&bytes);
        let content = outer.expect(TAG_SEQUENCE, "expected an LDAPMessage")?;
        let mut fields = Reader::new(content);
        let id = fields.unsigned(TAG_INTEGER, "bad messageID")?;
        let (tag, body) = fields.element()?;
        if id == 0 && tag == TAG_EXTENDED_RESPONSE {
            return Err(LdapError::Disconnected(parse_ldap_result(body)?).into());
        }
        if id == u32::from(message_id) {
            return Ok(Response {
                tag,
                body: body.to_vec(),
            });
        }
    }
}

/// One whole BER element (an LDAPMessage) off the stream.
async fn read_message<S>(stream: &mut S) -> Result<Vec<u8>, CheckError>
where
    S: AsyncRead + Unpin,
{
    let mut header = vec![0u8; 2];
    stream.read_exact(&mut header).await.map_err(io_error)?;
    let extra = match header[1] {
        length if length < 0x80 => 0,
        length => usize::from(length & 0x7f),
    };
    if extra > 4 {
        return Err(LdapError::Malformed("unsupported length form").into());
    }
    header.resize(2 + extra, 0);
    stream
        .read_exact(&mut header[2..])
        .await
        .map_err(io_error)?;
    let (length, _) = decode_length(&header[1..])?;
    if length > MAX_MESSAGE_LEN {
        return Err(LdapError::TooLarge(length).into());
    }
    let mut message = header;
    let header_len = message.len();
    message.resize(header_len + length, 0);
    stream
        .read_exact(&mut message[header_len..])
        .await
        .map_err(io_error)?;
    Ok(message)
}

/// LDAPResult ::= SEQUENCE { resultCode, matchedDN, diagnosticMessage, ... }
/// (the content of BindResponse, SearchResultDone, ExtendedResponse).
fn parse_ldap_result(body: &[u8]) -> Result<LdapResult, LdapError> {
    let mut fields = Reader::new(body);
    let code = fields.unsigned(TAG_ENUMERATED, "bad resultCode")?;
    fields.expect(TAG_OCTET_STRING, "bad matchedDN")?;
    let diagnostic = fields.expect(TAG_OCTET_STRING, "bad diagnosticMessage")?;
    Ok(LdapResult {
        code,
        diagnostic: String::from_utf8_lossy(diagnostic).trim().to_owned(),
    })
}

/// SearchResultEntry ::= SEQUENCE { objectName LDAPDN, attributes }
fn parse_entry_dn(body: &[u8]) -> Result<String, LdapError> {
    let mut fields = Reader::new(body);
    let dn = fields.expect(TAG_OCTET_STRING, "bad objectName")?;
    if !fields.is_empty() {
        // The attribute list follows; with "1.1" requested it is empty,
        // but servers may send it anyway and it does not matter here.
        fields.element()?;
    }
    Ok(String::from_utf8_lossy(dn).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_anonymous_bind_like_ldapsearch() {
        // `ldapsearch -x` sends exactly these 14 bytes for message 1.
        assert_eq!(
            encode_bind_request(1, "", ""),
            [0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00]
        );
    }

    #[test]
    fn encodes_long_lengths_in_long_form() {
        let dn = "x".repeat(200);
        let bind = encode_bind_request(1, &dn, "");
        // SEQUENCE length 0x81 0xd8... The whole message must re-parse.
        let mut outer = Reader::new(&bind);
        let (tag, content) = outer.element().expect("well-formed");
        assert_eq!(tag, TAG_SEQUENCE);
        assert!(outer.is_empty());
        let mut fields = Reader::new(content);
        assert_eq!(fields.unsigned(TAG_INTEGER, "id"), Ok(1));
        let (tag, bind_body) = fields.element().expect("bind");
        assert_eq!(tag, TAG_BIND_REQUEST);
        let mut bind_fields = Reader::new(bind_body);
        assert_eq!(bind_fields.unsigned(TAG_INTEGER, "version"), Ok(3));
        assert_eq!(
            bind_fields.expect(TAG_OCTET_STRING, "dn"),
            Ok(dn.as_bytes())
        );
    }

    #[test]
    fn integers_are_minimal_and_non_negative() {
        assert_eq!(integer(TAG_INTEGER, 0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(TAG_INTEGER, 127), [0x02, 0x01, 0x7f]);
        assert_eq!(integer(TAG_INTEGER, 128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(TAG_INTEGER, 65536), [0x02, 0x03, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn parses_bind_failure_with_code_name() {
        // resultCode 49, matchedDN "", diagnosticMessage "bad".
        let body = [0x0a, 0x01, 49, 0x04, 0x00, 0x04, 0x03, b'b', b'a', b'd'];
        let result = parse_ldap_result(&body).expect("well-formed");
        assert_eq!(result.to_string(), "invalidCredentials (bad)");
        assert_eq!(
            LdapError::BindFailed(result).to_string(),
            "LDAP bind failed: invalidCredentials (bad)"
        );
        let unknown = LdapResult {
            code: 4242,
            diagnostic: String::new(),
        };
        assert_eq!(unknown.to_string(), "result code 4242");
    }

    #[test]
    fn strips_one_leading_slash_from_request() {
        let query = |request| LdapQuery::new(Duration::from_secs(1), "", "", request, None);
        assert_eq!(query("/").base(), "");
        assert_eq!(query("").base(), "");
        assert_eq!(query("/dc=example,dc=test").base(), "dc=example,dc=test");
        assert_eq!(query("dc=example,dc=test").base(), "dc=example,dc=test");
    }

    #[test]
    fn binds_only_with_login_and_passwd() {
        let bind = |login, passwd| {
            LdapQuery::new(Duration::from_secs(1), login, passwd, "/", None)
                .bind
                .is_some()
        };
        assert!(bind("cn=a", "secret"));
        assert!(!bind("cn=a", ""));
        assert!(!bind("", "secret"));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x0a][..],
            &[0x0a, 0x85, 1, 1, 1, 1, 1][..],
            &[0x0a, 0x80][..],
            &[0x0a, 0x82, 0xff][..],
            &[0x0a, 0x05, 1][..],
            &[0x0a, 0x01, 0x80][..],
            &[0x04, 0x00][..],
        ] {
            assert!(parse_ldap_result(bytes).is_err(), "{bytes:?}");
            let _ = parse_entry_dn(bytes);
        }
    }

    #[tokio::test]
    async fn reads_messages_across_reads_and_skips_other_ids() {
        // A response for message 7 then one for message 2, written in
        // 1-byte pieces.
        let mut wire = message(7, &tlv(TAG_BIND_RESPONSE, &[0x0a, 1, 0, 4, 0, 4, 0]));
        wire.extend(message(
            2,
            &tlv(TAG_SEARCH_RESULT_DONE, &[0x0a, 1, 32, 4, 0, 4, 0]),
        ));
        let mut builder = tokio_test_reader(&wire);
        let response = read_response(&mut builder, 2).await.expect("found");
        assert_eq!(response.tag, TAG_SEARCH_RESULT_DONE);
        assert_eq!(parse_ldap_result(&response.body).map(|r| r.code), Ok(32));
    }

    #[tokio::test]
    async fn notice_of_disconnection_ends_the_check() {
        let wire = message(
            0,
            &tlv(
                TAG_EXTENDED_RESPONSE,
                &[0x0a, 1, 52, 4, 0, 4, 4, b'b', b'y', b'e', b'!'],
            ),
        );
        let mut reader = tokio_test_reader(&wire);
        let error = read_response(&mut reader, 1).await.expect_err("disconnect");
        assert_eq!(
            error.to_string(),
            "LDAP server disconnected: unavailable (bye!)"
        );
    }

    #[tokio::test]
    async fn refuses_oversized_messages() {
        let wire = [0x30, 0x84, 0x7f, 0xff, 0xff, 0xff];
        let mut reader = tokio_test_reader(&wire);
        let error = read_message(&mut reader).await.expect_err("too large");
        assert_eq!(
            error,
            CheckError::Protocol("LDAP response too large (2147483647 bytes)".into())
        );
    }

    /// A reader that yields one byte per read, to exercise partial reads.
    fn tokio_test_reader(bytes: &[u8]) -> impl AsyncRead + Unpin {
        let (client, mut server) = tokio::io::duplex(1);
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            for byte in bytes {
                if server.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
            // Keep the pipe open until the reader is done with it.
            let _ = server.shutdown().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        client
    }
}
