// SPDX-License-Identifier: GPL-2.0-or-later
//! Real servers for the check tests: nginx (http, https, a virtual host,
//! a proxy) and dnsmasq (dns over udp and tcp), each started as a child
//! process with its own configuration in a temp dir, bound to a loopback
//! address of 127.0.3.0/24 (this suite's range) or ::1, and killed by PID
//! when the guard drops. Plus test certificates made with the openssl CLI.
//!
//! A missing program is a test failure with a clear message, never a skip:
//! `tests/setup/install.sh` installs them.

#![allow(dead_code)] // each test binary uses a different part

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldirector::check::CheckTarget;

/// An address of this suite's loopback range.
pub fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 3, last])
}

pub fn target(addr: SocketAddr) -> CheckTarget {
    CheckTarget {
        addr,
        virtual_addr: None,
        virtual_port: 0,
        real_port: addr.port(),
    }
}

/// A port free for both TCP and UDP on `ip` right now. Each test uses its
/// own address, so nobody else races for it.
pub fn free_port(ip: IpAddr) -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind((ip, 0)).expect("bind a loopback TCP port");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on {ip}");
}

fn require(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(program);
        if path.is_file() {
            return path;
        }
    }
    panic!("{program} is not installed: run tests/setup/install.sh (as root)");
}

/// A server process; killed (by PID) and reaped on drop.
pub struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// What the server logged, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_tcp(&mut self, addr: SocketAddr) {
        self.wait_until(addr, "listening", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }

    /// A DNS server's TCP listener says nothing of its UDP one: dnsmasq
    /// answered TCP while a UDP query to it still met "port unreachable"
    /// once in CI. Ask over UDP until an answer comes back.
    fn wait_for_udp_dns(&mut self, addr: SocketAddr) {
        self.wait_until(addr, "answering DNS over UDP", || {
            udp_dns_answers(addr).unwrap_or(false)
        });
    }

    fn wait_until(&mut self, addr: SocketAddr, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!(
                    "{} exited ({status}) before {what} on {addr}:\n{stderr}\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{} is not {what} on {addr} after 10s:\n{}",
            self.name,
            self.log()
        );
    }
}

/// One A query for "ready.test" over UDP; true when any answer with its id
/// comes back within 200 ms.
fn udp_dns_answers(addr: SocketAddr) -> std::io::Result<bool> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => "127.0.0.1:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::1]:0".parse().expect("literal"),
    };
    let socket = UdpSocket::bind(local)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    socket.connect(addr)?;
    let mut query = vec![0x4c, 0x44, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["ready", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send(&query)?;
    let mut answer = [0u8; 512];
    let len = socket.recv(&mut answer)?;
    Ok(len >= 2 && answer[..2] == query[..2])
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Test certificates: a CA, a leaf for `www.example.test` signed by it,
/// and an expired leaf for the same name.
pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub leaf: PathBuf,
    pub leaf_key: PathBuf,
    pub expired: PathBuf,
}

pub const CERT_NAME: &str = "www.example.test";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new(require("openssl"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn make_certs() -> Certs {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "30",
        "-subj",
        "/CN=ldirector test CA",
    ]);
    openssl(d, &args);
    let mut args = vec!["req", "-new"];
    args.extend(ec);
    let san = format!("subjectAltName=DNS:{CERT_NAME}");
    let subject = format!("/CN={CERT_NAME}");
    args.extend([
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", &subject, "-addext", &san,
    ]);
    openssl(d, &args);
    std::fs::write(
        d.join("leaf.ext"),
        format!("{san}\nbasicConstraints=CA:FALSE\n"),
    )
    .expect("write ext");
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    // `openssl x509` cannot backdate; `openssl ca` can.
    std::fs::write(
        d.join("ca.cnf"),
        "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\n\
         default_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\ncommonName=supplied\n",
    )
    .expect("write ca.cnf");
    std::fs::write(d.join("index.txt"), "").expect("index");
    std::fs::write(d.join("serial"), "01\n").expect("serial");
    openssl(
        d,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "leaf.csr",
            "-out",
            "expired.pem",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20200102000000Z",
            "-notext",
        ],
    );
    Certs {
        ca: d.join("ca.pem"),
        leaf: d.join("leaf.pem"),
        leaf_key: d.join("leaf.key"),
        expired: d.join("expired.pem"),
        dir,
    }
}

/// A running nginx and where it listens.
pub struct Nginx {
    pub daemon: Daemon,
    /// Plain HTTP: `/` answers 200 "alive", `/down` 503, `/redir` a 302 to
    /// `/`, `/loop` redirects to itself; the virtual host `www.example.test`
    /// answers 200 "vhost page". Absolute-form requests (as a proxy gets
    /// them) are served by the virtual host named in the URL.
    pub http: SocketAddr,
    /// The same site on ::1.
    pub http6: SocketAddr,
    /// TLS with the leaf certificate (for www.example.test): 200 "secure".
    pub https: SocketAddr,
    /// TLS with the expired certificate.
    pub https_expired: SocketAddr,
    pub certs: Certs,
}

pub fn start_nginx(ip: IpAddr) -> Nginx {
    let nginx = require("nginx");
    let certs = make_certs();
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let http = SocketAddr::new(ip, free_port(ip));
    let http6 = SocketAddr::new(
        "::1".parse().expect("::1"),
        free_port("::1".parse().expect("::1")),
    );
    let https = SocketAddr::new(ip, free_port(ip));
    let https_expired = SocketAddr::new(ip, free_port(ip));
    let p = |name: &str| d.join(name).display().to_string();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
error_log {log} info;
pid {pid};
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type text/plain;
    server {{
        listen {http} default_server;
        listen {http6} default_server;
        server_name _;
        location = / {{ return 200 "alive\n"; }}
        location = /down {{ return 503 "maintenance\n"; }}
        location = /redir {{ return 302 /; }}
        location = /loop {{ return 302 /loop; }}
        location = /notfound {{ return 404; }}
    }}
    server {{
        listen {http};
        server_name {name};
        location / {{ return 200 "vhost page $uri\n"; }}
    }}
    server {{
        listen {https} ssl;
        ssl_certificate {leaf};
        ssl_certificate_key {key};
        location / {{ return 200 "secure\n"; }}
    }}
    server {{
        listen {https_expired} ssl;
        ssl_certificate {expired};
        ssl_certificate_key {key};
        location / {{ return 200 "secure but expired\n"; }}
    }}
}}
"#,
        log = p("error.log"),
        pid = p("nginx.pid"),
        tmp = d.display(),
        http6 = format_args!("[::1]:{}", http6.port()),
        name = CERT_NAME,
        leaf = certs.leaf.display(),
        key = certs.leaf_key.display(),
        expired = certs.expired.display(),
    );
    std::fs::write(d.join("nginx.conf"), conf).expect("write nginx.conf");
    let child = Command::new(nginx)
        .arg("-p")
        .arg(d)
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .arg("-e")
        .arg(d.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    let mut daemon = Daemon {
        name: "nginx",
        child,
        log: d.join("error.log"),
        _dir: dir,
    };
    for addr in [http, http6, https, https_expired] {
        daemon.wait_for_tcp(addr);
    }
    Nginx {
        daemon,
        http,
        http6,
        https,
        https_expired,
        certs,
    }
}

/// A running dnsmasq answering for `www.example.test` (A 10.1.2.3, AAAA
/// 2001:db8::3, and the PTR of both) and `v6only.example.test` (AAAA
/// 2001:db8::6); other names in example.test are NXDOMAIN.
pub struct Dnsmasq {
    pub daemon: Daemon,
    pub addr: SocketAddr,
}

pub fn start_dnsmasq(ip: IpAddr) -> Dnsmasq {
    let dnsmasq = require("dnsmasq");
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("dnsmasq.log");
    let addr = SocketAddr::new(ip, free_port(ip));
    let child = Command::new(dnsmasq)
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--pid-file",
            "--local=/example.test/",
            "--host-record=www.example.test,10.1.2.3,2001:db8::3",
            "--host-record=v6only.example.test,2001:db8::6",
        ])
        .arg(format!("--listen-address={ip}"))
        .arg(format!("--port={}", addr.port()))
        .arg(format!("--log-facility={}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dnsmasq");
    let mut daemon = Daemon {
        name: "dnsmasq",
        child,
        log,
        _dir: dir,
    };
    daemon.wait_for_tcp(addr);
    daemon.wait_for_udp_dns(addr);
    Dnsmasq { daemon, addr }
}
