// SPDX-License-Identifier: GPL-2.0-or-later
//! `ipvs-ls`: list the kernel's IPVS table like `ipvsadm -Ln`, as JSON, or
//! with the director's health of each real server. The work is done in
//! `ldirector::inspect`; this only maps the command line onto it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser};
use ldirector::daemon::control::RUN_DIR;
use ldirector::inspect::format::{Columns, ListFormat};
use ldirector::inspect::{self, HealthSource, Request, Subject};
use ldirector::ipvs::Protocol;

/// List the IPVS table. Without options the output is byte for byte that
/// of `ipvsadm -Ln`; the list options below give exactly ipvsadm's output
/// for the same options.
#[derive(Debug, Parser)]
#[command(
    name = "ipvs-ls",
    version,
    about = "List the kernel's IPVS table like ipvsadm -Ln, as JSON, or with the director's health"
)]
#[command(group(ArgGroup::new("subject").args([
    "tcp_service", "udp_service", "sctp_service", "fwmark_service",
    "connection", "timeout", "daemon",
])))]
struct Cli {
    /// Only this TCP service (ADDRESS:PORT, [IPv6]:PORT).
    #[arg(short = 't', long, value_name = "SERVICE")]
    tcp_service: Option<String>,
    /// Only this UDP service.
    #[arg(short = 'u', long, value_name = "SERVICE")]
    udp_service: Option<String>,
    /// Only this SCTP service.
    #[arg(long, value_name = "SERVICE")]
    sctp_service: Option<String>,
    /// Only this firewall-mark service.
    #[arg(short = 'f', long, value_name = "MARK")]
    fwmark_service: Option<u32>,
    /// The firewall-mark service is IPv6 (with -f).
    #[arg(short = '6', long = "ipv6", requires = "fwmark_service")]
    ipv6: bool,

    /// The connection table (/proc/net/ip_vs_conn).
    #[arg(short = 'c', long, conflicts_with_all = ["stats", "rate", "thresholds", "json", "health"])]
    connection: bool,
    /// The connection timeouts.
    #[arg(long, conflicts_with_all = ["stats", "rate", "thresholds", "persistent_conn", "json", "health"])]
    timeout: bool,
    /// The connection-sync daemons.
    #[arg(long, conflicts_with_all = ["stats", "rate", "thresholds", "persistent_conn", "json", "health"])]
    daemon: bool,

    /// Counters: connections, packets and bytes.
    #[arg(long)]
    stats: bool,
    /// Rates: connections, packets and bytes per second.
    #[arg(long)]
    rate: bool,
    /// Upper and lower connection thresholds.
    #[arg(long)]
    thresholds: bool,
    /// Persistent connections (with -c: persistence engine data).
    #[arg(long)]
    persistent_conn: bool,
    /// Tunnel type, port and checksum option of tunnelled reals.
    #[arg(long)]
    tun_info: bool,
    /// Counters in full instead of K/M/G/T.
    #[arg(short = 'X', long)]
    exact: bool,
    /// Keep the kernel's order instead of ipvsadm's.
    #[arg(long)]
    nosort: bool,
    /// ipvsadm's default order (accepted for compatibility).
    #[arg(long, hide = true)]
    sort: bool,

    /// Numeric addresses and ports (the default; accepted for
    /// compatibility).
    #[arg(short = 'n', long, conflicts_with = "resolve")]
    numeric: bool,
    /// Host and service names instead of numbers.
    #[arg(long)]
    resolve: bool,
    /// Accepted and ignored, so `ipvs-ls -Ln` works as `ipvsadm -Ln`.
    #[arg(short = 'L', long = "list", hide = true)]
    list: bool,

    /// JSON: every service with destinations, counters, rates and flags
    /// (schema in docs/ipvs-ls.md).
    #[arg(long, conflicts_with_all = ["stats", "rate", "thresholds", "persistent_conn", "tun_info", "exact", "resolve"])]
    json: bool,

    /// Add the running director's health of each real (up/down, when last
    /// checked, why). Not an ipvsadm option: with it the output is no
    /// longer ipvsadm's.
    #[arg(long)]
    health: bool,
    /// Where --health looks for control sockets.
    #[arg(long, value_name = "DIR", default_value = RUN_DIR, requires = "health")]
    run_dir: PathBuf,
    /// Ask only this control socket (repeatable) instead of every socket
    /// in --run-dir.
    #[arg(long, value_name = "PATH", requires = "health")]
    control_socket: Vec<PathBuf>,

    /// Write the man page ipvs-ls.8 into DIR and exit (for `make install`).
    #[arg(long, value_name = "DIR", hide = true, exclusive = true)]
    generate_man: Option<PathBuf>,
}

impl Cli {
    fn request(&self) -> Result<Request, inspect::InspectError> {
        let service = |protocol, text: &String| inspect::parse_service(protocol, text);
        let subject = if let Some(text) = &self.tcp_service {
            Subject::Service(service(Protocol::Tcp, text)?)
        } else if let Some(text) = &self.udp_service {
            Subject::Service(service(Protocol::Udp, text)?)
        } else if let Some(text) = &self.sctp_service {
            Subject::Service(service(Protocol::Sctp, text)?)
        } else if let Some(mark) = self.fwmark_service {
            Subject::Service(inspect::fwmark_service(mark, self.ipv6))
        } else if self.connection {
            Subject::Connections
        } else if self.timeout {
            Subject::Timeouts
        } else if self.daemon {
            Subject::Daemons
        } else {
            Subject::All
        };
        let health = self.health.then(|| {
            if self.control_socket.is_empty() {
                HealthSource::RunDir(self.run_dir.clone())
            } else {
                HealthSource::Sockets(self.control_socket.clone())
            }
        });
        Ok(Request {
            subject,
            format: ListFormat {
                columns: Columns::from_options(
                    self.stats,
                    self.rate,
                    self.thresholds,
                    self.persistent_conn,
                    self.tun_info,
                ),
                exact: self.exact,
            },
            sort: !self.nosort,
            resolve: self.resolve,
            json: self.json,
            health,
        })
    }
}

/// ipvs-ls.8, generated from the option definitions above.
fn write_man_page(dir: &std::path::Path) -> std::io::Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .render(&mut page)?;
    std::fs::write(dir.join("ipvs-ls.8"), page)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.generate_man {
        return match write_man_page(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ipvs-ls: cannot write {}/ipvs-ls.8: {e}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    let result = match cli.request() {
        Ok(request) => inspect::run(&request).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(output) => {
            for warning in &output.warnings {
                eprintln!("ipvs-ls: {warning}");
            }
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(output.stdout.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                // A closed pipe (`ipvs-ls | head`) is not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ipvs-ls: cannot write the listing: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(error) => {
            eprintln!("ipvs-ls: {error}");
            ExitCode::FAILURE
        }
    }
}
