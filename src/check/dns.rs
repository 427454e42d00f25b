// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=dns`: ask the real, as a DNS server, about `request`, and be up
//! when one of the answers matches `receive`.
//!
//! As in ldirectord (Net::DNS `search`):
//! - the request loses its leading `/`; an IP address asks for its PTR
//!   record (`4.3.2.1.in-addr.arpa`, `...ip6.arpa`), a name for its A
//!   record;
//! - TCP when the virtual's protocol is tcp, UDP otherwise;
//! - up when an A address or PTR name matches `receive`; an empty receive
//!   is down (ldirectord never matches an empty pattern here).
//!
//! Differences, on purpose:
//! - A name is also asked for its AAAA record (both questions go out at
//!   once), so a receive of `2001:db8::` works for IPv6-only names;
//!   ldirectord ignored AAAA answers.
//! - Over UDP, unanswered questions are sent again every second until the
//!   timeout, and a truncated answer is asked again over TCP.
//!
//! The DNS messages are built and read here (RFC 1035): one question, no
//! EDNS; names in answers may be compressed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::receive::Receive;
use super::{within, CheckError, CheckSpec, CheckTarget, Checker, Protocol};

/// Record types this check asks for or reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    A,
    Aaaa,
    Ptr,
}

impl RecordType {
    fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Ptr => 12,
            RecordType::Aaaa => 28,
        }
    }

    fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(RecordType::A),
            12 => Some(RecordType::Ptr),
            28 => Some(RecordType::Aaaa),
            _ => None,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Ptr => "PTR",
        })
    }
}

const CLASS_IN: u16 = 1;
const HEADER_LEN: usize = 12;
/// Flags of a query: standard query, recursion desired.
const FLAGS_QUERY_RD: u16 = 0x0100;
const FLAG_RESPONSE: u16 = 0x8000;
const FLAG_TRUNCATED: u16 = 0x0200;
/// How often an unanswered UDP question is sent again.
const UDP_RETRY: Duration = Duration::from_secs(1);
/// Compression pointers followed before a name is called a loop.
const MAX_POINTERS: usize = 32;

/// Why a DNS message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("DNS answer truncated or malformed")]
    Malformed,
    #[error("DNS name in answer loops")]
    NameLoop,
    #[error("request {0:?} is not a valid DNS name")]
    InvalidName(String),
}

impl From<DnsError> for CheckError {
    fn from(err: DnsError) -> Self {
        CheckError::Protocol(err.to_string())
    }
}

/// One answer record this check understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Address(IpAddr),
    Name(String),
}

impl Answer {
    fn text(&self) -> String {
        match self {
            Answer::Address(ip) => ip.to_string(),
            Answer::Name(name) => name.clone(),
        }
    }
}

/// A parsed response to one of our questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub id: u16,
    pub truncated: bool,
    /// RCODE (0 = NOERROR, 3 = NXDOMAIN, ...).
    pub rcode: u8,
    /// Answers of the asked type (others, e.g. CNAMEs on the way, are
    /// skipped: the final A/AAAA/PTR records are what ldirectord matched).
    pub answers: Vec<Answer>,
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => format!("RCODE {other}"),
    }
}

/// What a check asks: the name and the record types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub name: String,
    pub types: Vec<RecordType>,
}

impl Question {
    /// The question for a `request=` as ldirectord asks it.
    pub fn for_request(request: &str) -> Result<Question, DnsError> {
        let request = request.strip_prefix('/').unwrap_or(request);
        let bare = request.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Question {
                name: reverse_name(ip),
                types: vec![RecordType::Ptr],
            });
        }
        let name = request.trim_end_matches('.');
        if name.is_empty()
            || name.len() > 253
            || name
                .split('.')
                .any(|label| label.is_empty() || label.len() > 63)
        {
            return Err(DnsError::InvalidName(request.to_string()));
        }
        Ok(Question {
            name: name.to_string(),
            types: vec![RecordType::A, RecordType::Aaaa],
        })
    }
}

/// The PTR name of an address.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push(hex_digit(byte & 0x0f));
                name.push('.');
                name.push(hex_digit(byte >> 4));
                name.push('.');
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

/// A query message for one name and type.
pub fn encode_query(id: u16, name: &str, record: RecordType) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&FLAGS_QUERY_RD.to_be_bytes());
    message.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    message.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    for label in name.split('.').filter(|label| !label.is_empty()) {
        // Validated by Question::for_request: every label fits in 63.
        message.push(label.len() as u8);
        message.extend_from_slice(label.as_bytes());
    }
    message.push(0);
    message.extend_from_slice(&record.code().to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    message
}

struct Reader<'a> {
    message: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DnsError> {
        let end = self.pos.checked_add(len).ok_or(DnsError::Malformed)?;
        let bytes = self.message.get(self.pos..end).ok_or(DnsError::Malformed)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// Reads a (possibly compressed) name at the cursor.
    fn name(&mut self) -> Result<String, DnsError> {
        let (name, end) = read_name(self.message, self.pos)?;
        self.pos = end;
        Ok(name)
    }
}

/// Reads the name starting at `start`; returns it and where the record
/// continues (after the first compression pointer, if any).
fn read_name(message: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut labels: Vec<String> = Vec::new();
    let mut pos = start;
    let mut resume = None;
    let mut pointers = 0;
    loop {
        let len = *message.get(pos).ok_or(DnsError::Malformed)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                pos += 1;
                break;
            }
            0x00 => {
                let label = message
                    .get(pos + 1..pos + 1 + usize::from(len))
                    .ok_or(DnsError::Malformed)?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                pos += 1 + usize::from(len);
            }
            0xc0 => {
                let low = *message.get(pos + 1).ok_or(DnsError::Malformed)?;
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(DnsError::NameLoop);
                }
                resume.get_or_insert(pos + 2);
                pos = usize::from(u16::from_be_bytes([len & 0x3f, low]));
            }
            _ => return Err(DnsError::Malformed),
        }
    }
    Ok((labels.join("."), resume.unwrap_or(pos)))
}

/// Reads a response, keeping only the answers of type `wanted`.
pub fn decode_response(message: &[u8], wanted: RecordType) -> Result<Response, DnsError> {
    let mut reader = Reader { message, pos: 0 };
    let id = reader.u16()?;
    let flags = reader.u16()?;
    let questions = reader.u16()?;
    let answers = reader.u16()?;
    reader.take(4)?; // NSCOUNT, ARCOUNT: not read
    if flags & FLAG_RESPONSE == 0 {
        return Err(DnsError::Malformed);
    }
    let truncated = flags & FLAG_TRUNCATED != 0;
    let rcode = (flags & 0x000f) as u8;
    let mut response = Response {
        id,
        truncated,
        rcode,
        answers: Vec::new(),
    };
    let parsed = (|| {
        for _ in 0..questions {
            reader.name()?;
            reader.take(4)?;
        }
        for _ in 0..answers {
            reader.name()?;
            let record = reader.u16()?;
            let class = reader.u16()?;
            reader.take(4)?; // TTL
            let len = usize::from(reader.u16()?);
            let data_start = reader.pos;
            let data = reader.take(len)?;
            if class != CLASS_IN || RecordType::from_code(record) != Some(wanted) {
                continue;
            }
            let answer = match wanted {
                RecordType::A => {
                    let octets: [u8; 4] = data.try_into().map_err(|_| DnsError::Malformed)?;
                    Answer::Address(IpAddr::V4(Ipv4Addr::from(octets)))
                }
                RecordType::Aaaa => {
                    let octets: [u8; 16] = data.try_into().map_err(|_| DnsError::Malformed)?;
                    Answer::Address(IpAddr::V6(Ipv6Addr::from(octets)))
                }
                RecordType::Ptr => Answer::Name(read_name(message, data_start)?.0),
            };
            response.answers.push(answer);
        }
        Ok::<(), DnsError>(())
    })();
    match parsed {
        Ok(()) => Ok(response),
        // A truncated UDP answer may stop mid-record; what was read counts
        // and the caller asks again over TCP.
        Err(_) if truncated => Ok(response),
        Err(err) => Err(err),
    }
}

pub struct DnsChecker {
    question: Result<Question, DnsError>,
    receive: Receive,
    tcp: bool,
    timeout: Duration,
}

impl DnsChecker {
    pub fn new(spec: &CheckSpec) -> Result<Self, CheckError> {
        Ok(DnsChecker {
            // A bad request is the reason of every check, not a build
            // failure: the operator sees it next to the real.
            question: Question::for_request(&spec.request),
            receive: Receive::new(&spec.receive)?,
            tcp: spec.protocol == Protocol::Tcp,
            timeout: spec.negotiate_timeout,
        })
    }

    async fn run(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let question = self.question.clone()?;
        if self.receive.is_empty() {
            return Err(CheckError::Other(
                "receive is empty: a dns check needs a pattern for the answer".into(),
            ));
        }
        let mut judge = Judge::new(&question, &self.receive);
        if self.tcp {
            ask_over_tcp(target.addr, &question, &mut judge).await?;
        } else {
            let truncated = ask_over_udp(target.addr, &question, &mut judge).await?;
            if !truncated.is_empty() {
                let again = Question {
                    name: question.name.clone(),
                    types: truncated,
                };
                ask_over_tcp(target.addr, &again, &mut judge).await?;
            }
        }
        judge.verdict()
    }
}

/// Collects the answers to each question and decides.
struct Judge<'a> {
    name: &'a str,
    receive: &'a Receive,
    matched: bool,
    /// Answers that did not match, with their record type, so the reason
    /// lists them in question order whatever order UDP delivered them in.
    seen: Vec<(u16, String)>,
    errors: Vec<(u16, String)>,
}

impl<'a> Judge<'a> {
    fn new(question: &'a Question, receive: &'a Receive) -> Self {
        Judge {
            name: &question.name,
            receive,
            matched: false,
            seen: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Takes one response; true when the check is decided (up).
    fn take(&mut self, record: RecordType, response: &Response) -> bool {
        if response.rcode != 0 {
            self.errors.push((
                record.code(),
                format!("{record} {}", rcode_name(response.rcode)),
            ));
            return false;
        }
        for answer in &response.answers {
            let text = answer.text();
            if self.receive.matches(text.as_bytes()) {
                self.matched = true;
                return true;
            }
            self.seen.push((record.code(), text));
        }
        false
    }

    fn verdict(mut self) -> Result<(), CheckError> {
        if self.matched {
            return Ok(());
        }
        if !self.seen.is_empty() {
            self.seen.sort_by_key(|(code, _)| *code);
            let seen: Vec<&str> = self.seen.iter().map(|(_, text)| text.as_str()).collect();
            return Err(CheckError::Protocol(format!(
                "receive /{}/ not found in answer ({})",
                self.receive.pattern(),
                seen.join(", ")
            )));
        }
        if !self.errors.is_empty() {
            self.errors.sort_by_key(|(code, _)| *code);
            let errors: Vec<&str> = self.errors.iter().map(|(_, text)| text.as_str()).collect();
            return Err(CheckError::Protocol(format!(
                "DNS {} for {}",
                errors.join(", "),
                self.name
            )));
        }
        Err(CheckError::Protocol(format!(
            "no answer record for {}",
            self.name
        )))
    }
}

/// Asks every question on one UDP socket; returns the types whose answer
/// came back truncated (to be asked again over TCP).
async fn ask_over_udp(
    server: SocketAddr,
    question: &Question,
    judge: &mut Judge<'_>,
) -> Result<Vec<RecordType>, CheckError> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    let base_id = super::ping::random_u64() as u16;
    let queries: Vec<(u16, RecordType, Vec<u8>)> = question
        .types
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let id = base_id.wrapping_add(index as u16);
            (id, *record, encode_query(id, &question.name, *record))
        })
        .collect();
    let mut pending: Vec<bool> = vec![true; queries.len()];
    let mut truncated = Vec::new();
    let mut buf = vec![0u8; 65535];
    loop {
        for (index, (_, _, query)) in queries.iter().enumerate() {
            if pending[index] {
                socket.send(query).await?;
            }
        }
        let deadline = tokio::time::Instant::now() + UDP_RETRY;
        while pending.iter().any(|p| *p) {
            let len = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(received) => received?,
                Err(_) => break, // send the unanswered questions again
            };
            let Some(id) = buf.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                continue;
            };
            let Some(index) = queries.iter().position(|(qid, _, _)| *qid == id) else {
                continue; // not ours (a late duplicate, say)
            };
            if !pending[index] {
                continue;
            }
            let record = queries[index].1;
            let response = decode_response(&buf[..len], record)?;
            pending[index] = false;
            if judge.take(record, &response) {
                return Ok(Vec::new());
            }
            if response.truncated {
                truncated.push(record);
            }
        }
        if !pending.iter().any(|p| *p) {
            return Ok(truncated);
        }
    }
}

/// Asks every question in turn on one TCP connection (RFC 1035 4.2.2:
/// each message with a two-byte length).
async fn ask_over_tcp(
    server: SocketAddr,
    question: &Question,
    judge: &mut Judge<'_>,
) -> Result<(), CheckError> {
    let mut stream = TcpStream::connect(server).await?;
    let _ = stream.set_nodelay(true);
    for record in &question.types {
        let id = super::ping::random_u64() as u16;
        let query = encode_query(id, &question.name, *record);
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await?;
        let len = usize::from(stream.read_u16().await?);
        let mut message = vec![0u8; len];
        stream.read_exact(&mut message).await?;
        let response = decode_response(&message, *record)?;
        if response.id != id {
            return Err(CheckError::Protocol(
                "DNS answer over TCP does not match the question".into(),
            ));
        }
        if judge.take(*record, &response) {
            return Ok(());
        }
    }
    Ok(())
}

impl Checker for DnsChecker {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(within(self.timeout, self.run(target)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_becomes_a_question_like_net_dns_search() {
        let q = Question::for_request("/www.example.test").unwrap();
        assert_eq!(q.name, "www.example.test");
        assert_eq!(q.types, [RecordType::A, RecordType::Aaaa]);
        let q = Question::for_request("/10.1.2.3").unwrap();
        assert_eq!(q.name, "3.2.1.10.in-addr.arpa");
        assert_eq!(q.types, [RecordType::Ptr]);
        let q = Question::for_request("2001:db8::1").unwrap();
        assert_eq!(
            q.name,
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert!(Question::for_request("/").is_err());
        assert!(Question::for_request("/a..b").is_err());
    }

    #[test]
    fn query_bytes() {
        let query = encode_query(0x1234, "ab.c", RecordType::Aaaa);
        assert_eq!(
            query,
            [
                0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header
                2, b'a', b'b', 1, b'c', 0, // name
                0, 28, 0, 1, // AAAA IN
            ]
        );
    }

    /// A response to `x.test A` with a CNAME to `y.test` (compressed) and
    /// the A record of `y.test`.
    fn response_with_cname() -> Vec<u8> {
        let mut m = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0];
        // question at offset 12: x.test A IN
        m.extend_from_slice(&[1, b'x', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1]);
        // answer 1: name -> pointer to 12, CNAME IN, ttl, rdata y + ptr to "test" at 14
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, b'y', 0xc0, 14]);
        // answer 2: y.test (pointer to the CNAME's rdata at 36) A 10.1.2.3
        m.extend_from_slice(&[0xc0, 36, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 2, 3]);
        m
    }

    #[test]
    fn decodes_answers_of_the_asked_type_only() {
        let response = decode_response(&response_with_cname(), RecordType::A).unwrap();
        assert_eq!(response.id, 0xabcd);
        assert_eq!(response.rcode, 0);
        assert_eq!(
            response.answers,
            [Answer::Address("10.1.2.3".parse().unwrap())]
        );
    }

    #[test]
    fn decodes_compressed_ptr_names() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
        // answer: root name, PTR IN, rdata "www.t" then a pointer back to "t"
        m.extend_from_slice(&[0, 0, 12, 0, 1, 0, 0, 0, 1, 0, 8]);
        m.extend_from_slice(&[3, b'w', b'w', b'w', 1, b't', 0, 0]);
        let response = decode_response(&m, RecordType::Ptr).unwrap();
        assert_eq!(response.answers, [Answer::Name("www.t".into())]);
    }

    #[test]
    fn rejects_loops_and_short_messages() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]); // name points at itself
        assert_eq!(decode_response(&m, RecordType::A), Err(DnsError::NameLoop));
        assert_eq!(
            decode_response(&[0, 1, 0x81], RecordType::A),
            Err(DnsError::Malformed)
        );
        // A query (QR=0) is not an answer.
        let query = encode_query(1, "x", RecordType::A);
        assert_eq!(
            decode_response(&query, RecordType::A),
            Err(DnsError::Malformed)
        );
    }

    #[test]
    fn reasons_say_what_was_seen() {
        let question = Question::for_request("/x.test").unwrap();
        let receive = Receive::new("^10\\.9\\.").unwrap();
        let mut judge = Judge::new(&question, &receive);
        let response = decode_response(&response_with_cname(), RecordType::A).unwrap();
        assert!(!judge.take(RecordType::A, &response));
        assert_eq!(
            judge.verdict().unwrap_err().to_string(),
            "receive /^10\\.9\\./ not found in answer (10.1.2.3)"
        );
        let mut judge = Judge::new(&question, &receive);
        let nx = Response {
            id: 1,
            truncated: false,
            rcode: 3,
            answers: vec![],
        };
        judge.take(RecordType::A, &nx);
        judge.take(RecordType::Aaaa, &nx);
        assert_eq!(
            judge.verdict().unwrap_err().to_string(),
            "DNS A NXDOMAIN, AAAA NXDOMAIN for x.test"
        );
    }
}
