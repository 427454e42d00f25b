// SPDX-License-Identifier: GPL-2.0-or-later
//! `service=http|https|http_proxy`: one HTTP/1.1 request per check, on a
//! hyper client connection over our own TCP (and rustls) stream, with
//! `Connection: close`. The whole exchange, redirects included, runs under
//! negotiatetimeout (ldirectord's alarm).
//!
//! Semantics kept from ldirectord (LWP):
//! - URL `scheme://RIP:port/request`; a per-real request containing
//!   `scheme://` replaces the whole URL; for http_proxy the request is the
//!   absolute URL and the real is used as the proxy.
//! - `Host:` is `virtualhost`, else the real's IP (no port).
//! - Up when the status is 2xx and (receive is empty or the body matches).
//! - Redirects are followed for GET and HEAD, at most 7, and the `Host:`
//!   header then follows the new URL (LWP drops the explicit one).
//!
//! Differences, on purpose:
//! - A receive starting with `HTTP/` is matched against the status line
//!   (`HTTP/1.1 200 OK`), which is what its author meant; ldirectord
//!   matches it against the body and so marks every real down.
//! - https sends SNI from `virtualhost` and can verify certificates (off by
//!   default, as in ldirectord).
//! - At most 4 MiB of body is read for matching.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderValue, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::receive::Receive;
use super::{
    tls, within, CheckError, CheckSpec, CheckTarget, Checker, HttpMethod, Service, TlsVerify,
};

/// LWP's default `max_redirect`.
pub const MAX_REDIRECTS: usize = 7;
/// How much body is read for matching `receive`.
pub const MAX_BODY: usize = 4 << 20;

const AGENT: &str = concat!("ldirector/", env!("CARGO_PKG_VERSION"), " (health check)");

pub struct HttpChecker {
    service: Service,
    method: HttpMethod,
    request: String,
    request_per_real: bool,
    virtualhost: Option<String>,
    receive: Receive,
    /// receive starts with `HTTP/`: match the status line, not the body.
    match_status_line: bool,
    timeout: Duration,
    tls_verify: TlsVerify,
    /// Built on first use: https checks need it at once, http checks only
    /// if a redirect leads to https.
    tls_config: OnceLock<Result<Arc<ClientConfig>, CheckError>>,
    /// The first request's URL and headers, built on the first probe and
    /// reused: they depend only on the spec and the target, and formatting
    /// them on every probe was a measurable share of a check's CPU.
    first_hop: OnceLock<FirstHop>,
}

/// What the first request of a probe needs, ready to send.
#[derive(Clone)]
struct FirstHop {
    /// The target it was built for.
    addr: SocketAddr,
    url: Url,
    /// ldirectord's explicit Host header (none for http_proxy).
    host: Option<HeaderValue>,
    /// The request line's target: the path, or the absolute URL via a proxy.
    request_target: Uri,
}

impl HttpChecker {
    pub fn new(service: Service, spec: &CheckSpec) -> Result<Self, CheckError> {
        let receive = Receive::new(&spec.receive)?;
        let checker = HttpChecker {
            service,
            method: spec.http_method,
            request: spec.request.clone(),
            request_per_real: spec.request_per_real,
            virtualhost: spec.virtualhost.clone().filter(|host| !host.is_empty()),
            match_status_line: spec.receive.starts_with("HTTP/"),
            receive,
            timeout: spec.negotiate_timeout,
            tls_verify: spec.tls_verify.clone(),
            tls_config: OnceLock::new(),
            first_hop: OnceLock::new(),
        };
        if service == Service::Https {
            // Fail at build time (bad CA file, empty store) rather than on
            // every check.
            checker.tls_config()?;
        }
        Ok(checker)
    }

    fn tls_config(&self) -> Result<Arc<ClientConfig>, CheckError> {
        self.tls_config
            .get_or_init(|| tls::client_config(&self.tls_verify))
            .clone()
    }

    /// The first URL, built as ldirectord builds `$$r{url}`.
    pub fn initial_url(&self, target: &CheckTarget) -> Result<Url, CheckError> {
        let scheme = if self.service == Service::Https {
            "https"
        } else {
            "http"
        };
        let uri = self.request.strip_prefix('/').unwrap_or(&self.request);
        let whole_url = (self.request_per_real && self.request.contains(&format!("{scheme}://")))
            || (self.service == Service::HttpProxy && !self.request_per_real);
        if whole_url {
            return Url::parse(uri);
        }
        Ok(Url {
            https: scheme == "https",
            host: host_text(target.addr.ip()),
            port: target.addr.port(),
            path: format!("/{uri}"),
        })
    }

    fn build_first_hop(&self, target: &CheckTarget) -> Result<FirstHop, CheckError> {
        let url = self.initial_url(target)?;
        let proxy = self.service == Service::HttpProxy;
        let host = if proxy {
            None
        } else {
            let text = match &self.virtualhost {
                Some(virtualhost) => virtualhost.clone(),
                None => host_text(target.addr.ip()),
            };
            Some(header_value(&text)?)
        };
        let request_target = request_uri(&url, proxy)?;
        Ok(FirstHop {
            addr: target.addr,
            url,
            host,
            request_target,
        })
    }

    /// The cached first hop when it was built for this target (always, in
    /// the daemon: a checker probes its spec's target).
    fn first_hop(&self, target: &CheckTarget) -> Result<Cow<'_, FirstHop>, CheckError> {
        if let Some(hop) = self.first_hop.get() {
            if hop.addr == target.addr {
                return Ok(Cow::Borrowed(hop));
            }
            return self.build_first_hop(target).map(Cow::Owned);
        }
        let hop = self.build_first_hop(target)?;
        Ok(Cow::Borrowed(self.first_hop.get_or_init(|| hop)))
    }

    async fn run(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let first = self.first_hop(target)?;
        let mut url = Cow::Borrowed(&first.url);
        let mut method = match self.method {
            HttpMethod::Get => Method::GET,
            HttpMethod::Head => Method::HEAD,
        };
        let proxy = self.service == Service::HttpProxy;
        // ldirectord's explicit Host header; dropped after a redirect.
        let mut host_header = first.host.clone();
        let mut request_target = first.request_target.clone();
        for _hop in 0..=MAX_REDIRECTS {
            let connect_to = if proxy {
                target.addr
            } else {
                url.socket_addr().await?
            };
            let host = match &host_header {
                Some(host) => host.clone(),
                None => header_value(&url.authority())?,
            };
            let request = Request::builder()
                .method(method.clone())
                .uri(request_target)
                .header(HOST, host)
                .header(USER_AGENT, HeaderValue::from_static(AGENT))
                .header(CONNECTION, HeaderValue::from_static("close"))
                .body(Empty::<Bytes>::new())
                .map_err(|err| CheckError::Protocol(format!("cannot build request: {err}")))?;

            let tcp = TcpStream::connect(connect_to).await?;
            let _ = tcp.set_nodelay(true);
            let outcome = if url.https && !proxy {
                // Boxed so that the TLS state (rustls connection, hyper
                // over it) does not size every plain http check's future.
                Box::pin(self.exchange_tls(tcp, &url, connect_to, request)).await?
            } else {
                self.exchange(tcp, request).await?
            };
            match outcome {
                Outcome::Done(result) => return result,
                Outcome::Redirect(status, location) => {
                    url = Cow::Owned(url.join(&location)?);
                    request_target = request_uri(&url, proxy)?;
                    host_header = None;
                    if status == StatusCode::SEE_OTHER && method != Method::HEAD {
                        method = Method::GET;
                    }
                }
            }
        }
        Err(CheckError::Protocol(format!(
            "too many redirects (more than {MAX_REDIRECTS})"
        )))
    }

    /// The TLS handshake, then one request over it.
    async fn exchange_tls(
        &self,
        tcp: TcpStream,
        url: &Url,
        connect_to: SocketAddr,
        request: Request<Empty<Bytes>>,
    ) -> Result<Outcome, CheckError> {
        let name = tls::server_name(
            self.virtualhost.as_deref().or(Some(url.host.as_str())),
            connect_to.ip(),
        );
        let connector = tokio_rustls::TlsConnector::from(self.tls_config()?);
        let stream = connector.connect(name, tcp).await?;
        self.exchange(stream, request).await
    }

    /// One request on one connection.
    async fn exchange<IO>(
        &self,
        io: IO,
        request: Request<Empty<Bytes>>,
    ) -> Result<Outcome, CheckError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake::<_, Empty<Bytes>>(TokioIo::new(io))
            .await
            .map_err(|err| describe_hyper(&err))?;
        let work = async move {
            let response = sender
                .send_request(request)
                .await
                .map_err(|err| describe_hyper(&err))?;
            self.judge(response).await
        };
        // The connection future does the socket I/O; drive it alongside
        // the request without spawning a task per check.
        tokio::pin!(work);
        tokio::pin!(connection);
        tokio::select! {
            biased;
            outcome = &mut work => outcome,
            _ = &mut connection => work.await,
        }
    }

    async fn judge(
        &self,
        response: Response<hyper::body::Incoming>,
    ) -> Result<Outcome, CheckError> {
        let status = response.status();
        if status.is_redirection() {
            if let Some(location) = redirect_location(&response) {
                return Ok(Outcome::Redirect(status, location));
            }
        }
        if !status.is_success() {
            return Ok(Outcome::Done(Err(CheckError::HttpStatus(status.as_u16()))));
        }
        if self.receive.is_empty() {
            return Ok(Outcome::Done(Ok(())));
        }
        if self.match_status_line {
            let line = status_line(&response);
            return Ok(Outcome::Done(if self.receive.matches(line.as_bytes()) {
                Ok(())
            } else {
                Err(self.receive.not_found_in("status line"))
            }));
        }
        let body = read_body(response.into_body()).await?;
        Ok(Outcome::Done(if self.receive.matches(&body) {
            Ok(())
        } else {
            Err(self.receive.not_found_in("body"))
        }))
    }
}

enum Outcome {
    Done(Result<(), CheckError>),
    Redirect(StatusCode, String),
}

/// LWP follows these for GET and HEAD.
fn redirect_location(response: &Response<hyper::body::Incoming>) -> Option<String> {
    let followed = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
    if !followed {
        return None;
    }
    response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
}

/// `HTTP/1.1 200 OK`, with the server's own reason phrase when it sent
/// a non-standard one.
fn status_line(response: &Response<hyper::body::Incoming>) -> String {
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|phrase| String::from_utf8_lossy(phrase.as_bytes()).into_owned())
        .or_else(|| response.status().canonical_reason().map(str::to_string))
        .unwrap_or_default();
    format!(
        "{:?} {} {}",
        response.version(),
        response.status().as_u16(),
        reason
    )
}

async fn read_body(mut body: hyper::body::Incoming) -> Result<Vec<u8>, CheckError> {
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| describe_hyper(&err))?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_BODY - collected.len();
            collected.extend_from_slice(&data[..data.len().min(room)]);
            if collected.len() >= MAX_BODY {
                break;
            }
        }
    }
    Ok(collected)
}

/// The request line's target: the path, or the absolute URL via a proxy.
fn request_uri(url: &Url, proxy: bool) -> Result<Uri, CheckError> {
    let text = if proxy {
        url.to_string()
    } else {
        url.path.clone()
    };
    Uri::try_from(text).map_err(|err| CheckError::Protocol(format!("cannot build request: {err}")))
}

fn header_value(text: &str) -> Result<HeaderValue, CheckError> {
    HeaderValue::from_str(text)
        .map_err(|_| CheckError::Protocol(format!("invalid Host header value {text:?}")))
}

/// A reason for a hyper error: the socket error when there is one, else
/// what was wrong with the response.
fn describe_hyper(err: &hyper::Error) -> CheckError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return CheckError::from_io(io);
        }
        source = cause.source();
    }
    if err.is_parse() || err.is_parse_status() {
        CheckError::Protocol(format!("invalid HTTP response ({err})"))
    } else if err.is_incomplete_message() {
        CheckError::Protocol("connection closed before the HTTP response was complete".into())
    } else if err.is_canceled() || err.is_closed() {
        CheckError::Protocol("connection closed before an HTTP response".into())
    } else {
        CheckError::Protocol(format!("HTTP: {err}"))
    }
}

fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// An absolute http(s) URL, split the way a request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    /// As written in the URL (IPv6 in brackets).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, CheckError> {
        let invalid = || CheckError::Protocol(format!("invalid URL {text:?}"));
        let uri: Uri = text.parse().map_err(|_| invalid())?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(invalid()),
        };
        let host = uri.host().ok_or_else(invalid)?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .filter(|pq| !pq.is_empty())
            .unwrap_or_else(|| "/".to_string());
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        Ok(Url {
            https,
            host,
            port,
            path,
        })
    }

    /// Resolves a `Location` against this URL.
    pub fn join(&self, location: &str) -> Result<Url, CheckError> {
        let location = location.split('#').next().unwrap_or("");
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            let scheme = if self.https { "https" } else { "http" };
            return Url::parse(&format!("{scheme}://{rest}"));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path: if path.is_empty() { "/".into() } else { path },
            ..self.clone()
        })
    }

    fn default_port(&self) -> u16 {
        if self.https {
            443
        } else {
            80
        }
    }

    /// `host[:port]` for a Host header.
    pub fn authority(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Where to connect: the literal IP, else the first address the name
    /// resolves to.
    async fn socket_addr(&self) -> Result<SocketAddr, CheckError> {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, self.port));
        }
        tokio::net::lookup_host((bare, self.port))
            .await
            .map_err(|err| CheckError::Io(format!("cannot resolve {bare}: {err}")))?
            .next()
            .ok_or_else(|| CheckError::Io(format!("cannot resolve {bare}: no address")))
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.path)
    }
}

impl Checker for HttpChecker {
    fn name(&self) -> &'static str {
        self.service.name()
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(within(self.timeout, self.run(target)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::CheckKind;

    fn target() -> CheckTarget {
        CheckTarget {
            addr: "127.0.1.7:8080".parse().unwrap(),
            virtual_addr: None,
            virtual_port: 80,
            real_port: 8080,
        }
    }

    fn checker(service: Service, spec: CheckSpec) -> HttpChecker {
        HttpChecker::new(service, &spec).unwrap()
    }

    fn spec() -> CheckSpec {
        CheckSpec::new(CheckKind::Negotiate(Service::Http), target().addr)
    }

    #[test]
    fn url_from_request_like_ldirectord() {
        let url = checker(Service::Http, spec().request("index.html"))
            .initial_url(&target())
            .unwrap();
        assert_eq!(url.to_string(), "http://127.0.1.7:8080/index.html");
        // A virtual-level request is always appended, even if it looks
        // like a URL.
        let url = checker(Service::Http, spec().request("http://x/y"))
            .initial_url(&target())
            .unwrap();
        assert_eq!(url.path, "/http://x/y");
        // A per-real request with the scheme replaces the whole URL.
        let url = checker(
            Service::Http,
            spec().real_request("http://127.0.1.8:81/a?b", ""),
        )
        .initial_url(&target())
        .unwrap();
        assert_eq!(url.to_string(), "http://127.0.1.8:81/a?b");
        let url = checker(Service::Https, spec().request("/"))
            .initial_url(&target())
            .unwrap();
        assert_eq!(url.to_string(), "https://127.0.1.7:8080/");
        let v6 = CheckTarget {
            addr: "[::1]:80".parse().unwrap(),
            ..target()
        };
        let url = checker(Service::Http, spec()).initial_url(&v6).unwrap();
        assert_eq!(url.to_string(), "http://[::1]/");
    }

    #[test]
    fn proxy_request_is_the_absolute_url() {
        let url = checker(
            Service::HttpProxy,
            spec().request("http://www.example.test/x"),
        )
        .initial_url(&target())
        .unwrap();
        assert_eq!(url.host, "www.example.test");
        assert_eq!(url.path, "/x");
    }

    #[test]
    fn redirect_locations_resolve() {
        let base = Url::parse("http://127.0.1.7:8080/a/b?q=1").unwrap();
        assert_eq!(
            base.join("/c").unwrap().to_string(),
            "http://127.0.1.7:8080/c"
        );
        assert_eq!(
            base.join("d").unwrap().to_string(),
            "http://127.0.1.7:8080/a/d"
        );
        assert_eq!(
            base.join("https://[::1]:8443/e#frag").unwrap().to_string(),
            "https://[::1]:8443/e"
        );
        assert_eq!(
            base.join("//127.0.1.9/f").unwrap().to_string(),
            "http://127.0.1.9/f"
        );
        assert!(Url::parse("ftp://x/").is_err());
    }

    #[test]
    fn first_hop_is_reused_for_its_target_only() {
        let checker = checker(
            Service::Http,
            spec().request("/health").virtualhost("site.test"),
        );
        let first = checker.first_hop(&target()).unwrap();
        assert_eq!(first.url.to_string(), "http://127.0.1.7:8080/health");
        assert_eq!(first.host.as_ref().unwrap(), "site.test");
        assert_eq!(first.request_target, "/health");
        assert!(matches!(first, Cow::Borrowed(_)));
        let other = CheckTarget {
            addr: "127.0.1.9:81".parse().unwrap(),
            ..target()
        };
        let hop = checker.first_hop(&other).unwrap();
        assert_eq!(hop.url.to_string(), "http://127.0.1.9:81/health");
        // The cached one still belongs to the first target.
        let again = checker.first_hop(&target()).unwrap();
        assert_eq!(again.url.to_string(), "http://127.0.1.7:8080/health");
        let proxy = HttpChecker::new(
            Service::HttpProxy,
            &spec().request("http://www.example.test/x"),
        )
        .unwrap();
        let hop = proxy.first_hop(&target()).unwrap();
        assert!(hop.host.is_none());
        assert_eq!(hop.request_target, "http://www.example.test/x");
    }

    #[test]
    fn status_line_receive_is_detected() {
        assert!(checker(Service::Http, spec().receive("HTTP/1.1 200")).match_status_line);
        assert!(!checker(Service::Http, spec().receive("alive")).match_status_line);
    }
}
