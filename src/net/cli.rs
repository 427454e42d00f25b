// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord vip ...`: the command line of the VIP tools.
//!
//! The binary wires it in as a subcommand:
//!
//! ```ignore
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Manage a virtual IP address
//!     #[command(subcommand)]
//!     Vip(ldirector::net::cli::VipCommand),
//!     // ...
//! }
//! // ...
//! Command::Vip(command) => std::process::exit(ldirector::net::cli::run(command).await),
//! ```
//!
//! Exit codes (the same for every subcommand, so the OCF agent and shell
//! scripts can act on them):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success; `status`: the address is present |
//! | 1 | failure: missing interface, permission denied, address in use elsewhere, prefix mismatch, kernel error (the message says which) |
//! | 2 | bad usage: invalid address, prefix or label (clap's own usage errors exit 2 too) |
//! | 3 | `status` only: the address is not present (also when the interface does not exist) |

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::error::NetError;
use super::garp::{self, AnnounceOptions, ArpOperation};
use super::realserver::{self, RealServerOptions, RealServerReport};
use super::vip::{self, AddOptions, Change, VipAddr, VipHandle};

/// Exit code: success (`status`: present).
pub const EXIT_OK: i32 = 0;
/// Exit code: the operation failed.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: bad usage (invalid address, prefix or label).
pub const EXIT_USAGE: i32 = 2;
/// Exit code of `status`: the address is not present.
pub const EXIT_NOT_PRESENT: i32 = 3;

/// `ldirectord vip ...`
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum VipCommand {
    /// Add ADDR to IFACE (success if it is already there)
    Add(AddArgs),
    /// Remove ADDR from IFACE (success if it is already gone)
    Del(DelArgs),
    /// Announce ADDR on IFACE: gratuitous ARP (IPv4) or unsolicited
    /// neighbour advertisement (IPv6)
    Announce(AnnounceArgs),
    /// Exit 0 if ADDR is on IFACE, 3 if not
    Status(StatusArgs),
    /// Real-server (LVS direct routing) mode: ADDR on lo with ARP for it
    /// turned off (arp_ignore=1, arp_announce=2)
    Realserver(RealserverArgs),
}

/// `vip add IFACE ADDR[/PREFIX] [--label L] [--force]`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AddArgs {
    /// Interface to add the address to
    pub iface: String,
    /// The address; without /PREFIX a host address (/32 or /128)
    #[arg(value_name = "ADDR[/PREFIX]", value_parser = parse_vip)]
    pub addr: VipAddr,
    /// IPv4 address label: `eth0:web`, or `web` for the same
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// Add the address even if another interface already has it
    #[arg(long)]
    pub force: bool,
}

/// `vip del IFACE ADDR[/PREFIX]`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct DelArgs {
    /// Interface to remove the address from
    pub iface: String,
    /// The address; with /PREFIX only an address of that prefix length is removed
    #[arg(value_name = "ADDR[/PREFIX]", value_parser = parse_addr_prefix)]
    pub addr: AddrPrefix,
}

/// `vip announce IFACE ADDR [--count N] [--interval-ms M] [--arp-op OP]`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct AnnounceArgs {
    /// Interface that carries the address
    pub iface: String,
    /// The address to announce
    #[arg(value_name = "ADDR[/PREFIX]", value_parser = parse_addr_prefix)]
    pub addr: AddrPrefix,
    /// Number of announcements (IPaddr2's arp_count)
    #[arg(long, default_value_t = garp::DEFAULT_COUNT)]
    pub count: u32,
    /// Milliseconds between announcements (IPaddr2's arp_interval)
    #[arg(long, value_name = "MS", default_value_t = garp::DEFAULT_INTERVAL.as_millis() as u64)]
    pub interval_ms: u64,
    /// ARP operation of the gratuitous ARP (IPv4 only)
    #[arg(long, value_enum, default_value_t = ArpOpArg::Request)]
    pub arp_op: ArpOpArg,
}

/// `vip status IFACE ADDR[/PREFIX]`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StatusArgs {
    /// Interface to look at
    pub iface: String,
    /// The address; with /PREFIX it must also have that prefix length
    #[arg(value_name = "ADDR[/PREFIX]", value_parser = parse_addr_prefix)]
    pub addr: AddrPrefix,
}

/// `vip realserver on|off ...`
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RealserverArgs {
    #[command(subcommand)]
    pub action: RealserverAction,
}

/// Turn real-server mode on or off for one VIP.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum RealserverAction {
    /// Set arp_ignore=1/arp_announce=2 (IPv4), then put ADDR on lo
    On {
        /// The VIP (a host address)
        #[arg(value_name = "ADDR", value_parser = parse_host_addr)]
        addr: IpAddr,
        /// Also set the ARP sysctls on this interface (besides all and lo); repeatable
        #[arg(long = "iface", value_name = "IFACE")]
        ifaces: Vec<String>,
        /// Put ADDR on lo even if another interface has it
        #[arg(long)]
        force: bool,
        /// Where the previous sysctl values are saved
        #[arg(long, value_name = "DIR", default_value = realserver::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
    /// Take ADDR off lo, then restore the ARP sysctls once no IPv4 VIP is left
    Off {
        /// The VIP
        #[arg(value_name = "ADDR", value_parser = parse_host_addr)]
        addr: IpAddr,
        /// Where the previous sysctl values were saved
        #[arg(long, value_name = "DIR", default_value = realserver::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

/// `--arp-op`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArpOpArg {
    /// ARP request (send_arp, arping -U)
    Request,
    /// ARP reply (arping -A)
    Reply,
}

impl From<ArpOpArg> for ArpOperation {
    fn from(value: ArpOpArg) -> Self {
        match value {
            ArpOpArg::Request => ArpOperation::Request,
            ArpOpArg::Reply => ArpOperation::Reply,
        }
    }
}

/// `ADDR[/PREFIX]` with the prefix optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrPrefix {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
}

fn parse_vip(input: &str) -> Result<VipAddr, NetError> {
    input.parse()
}

fn parse_addr_prefix(input: &str) -> Result<AddrPrefix, NetError> {
    let (addr, prefix) = vip::parse_addr_prefix(input)?;
    Ok(AddrPrefix { addr, prefix })
}

fn parse_host_addr(input: &str) -> Result<IpAddr, NetError> {
    let (addr, prefix) = vip::parse_addr_prefix(input)?;
    match prefix {
        Some(prefix) if prefix != vip::max_prefix(addr) => Err(NetError::InvalidAddress {
            input: input.to_string(),
            reason: format!(
                "a real-server VIP is a host address (/{})",
                vip::max_prefix(addr)
            ),
        }),
        _ => Ok(addr),
    }
}

/// Runs a `vip` subcommand, reporting to stdout/stderr; returns the exit
/// code. Must run inside a tokio runtime (see [`run_blocking`] otherwise).
pub async fn run(command: VipCommand) -> i32 {
    let name = match &command {
        VipCommand::Add(_) => "add",
        VipCommand::Del(_) => "del",
        VipCommand::Announce(_) => "announce",
        VipCommand::Status(_) => "status",
        VipCommand::Realserver(_) => "realserver",
    };
    let is_status = matches!(command, VipCommand::Status(_));
    match execute(command).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ldirectord vip {name}: {error}");
            if matches!(error, NetError::AddressInUse { .. }) {
                eprintln!("(remove it there first, or use --force to add it anyway)");
            }
            exit_code(&error, is_status)
        }
    }
}

/// [`run`] on a runtime of its own, for a caller that has none.
pub fn run_blocking(command: VipCommand) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(command)),
        Err(error) => {
            eprintln!("ldirectord vip: cannot start the async runtime: {error}");
            EXIT_FAILURE
        }
    }
}

/// The exit code for `error` (see the module documentation).
pub fn exit_code(error: &NetError, is_status: bool) -> i32 {
    match error {
        NetError::InterfaceNotFound { .. } if is_status => EXIT_NOT_PRESENT,
        NetError::InvalidAddress { .. } | NetError::InvalidLabel { .. } => EXIT_USAGE,
        _ => EXIT_FAILURE,
    }
}

async fn execute(command: VipCommand) -> Result<i32, NetError> {
    let handle = VipHandle::new()?;
    match command {
        VipCommand::Add(args) => {
            let options = AddOptions {
                label: args.label,
                force: args.force,
            };
            match handle.add(&args.iface, args.addr, &options).await? {
                Change::Changed => println!("added {} to {}", args.addr, args.iface),
                Change::Unchanged => println!("{} is already on {}", args.addr, args.iface),
            }
            Ok(EXIT_OK)
        }
        VipCommand::Del(args) => {
            let shown = show(args.addr);
            match handle
                .del(&args.iface, args.addr.addr, args.addr.prefix)
                .await?
            {
                Change::Changed => println!("removed {shown} from {}", args.iface),
                Change::Unchanged => println!("{shown} is not on {}", args.iface),
            }
            Ok(EXIT_OK)
        }
        VipCommand::Announce(args) => {
            let options = AnnounceOptions {
                count: args.count,
                interval: Duration::from_millis(args.interval_ms),
                arp_operation: args.arp_op.into(),
            };
            let sent = garp::announce(&handle, &args.iface, args.addr.addr, &options).await?;
            let kind = if args.addr.addr.is_ipv4() {
                "gratuitous ARP"
            } else {
                "unsolicited neighbour advertisement"
            };
            println!(
                "sent {sent} {kind} for {} on {}",
                args.addr.addr, args.iface
            );
            Ok(EXIT_OK)
        }
        VipCommand::Status(args) => {
            let present = handle
                .addresses_on(&args.iface)
                .await?
                .into_iter()
                .any(|assigned| {
                    assigned.addr == args.addr.addr
                        && args
                            .addr
                            .prefix
                            .is_none_or(|prefix| prefix == assigned.prefix)
                });
            let shown = show(args.addr);
            if present {
                println!("{shown} is present on {}", args.iface);
                Ok(EXIT_OK)
            } else {
                println!("{shown} is not present on {}", args.iface);
                Ok(EXIT_NOT_PRESENT)
            }
        }
        VipCommand::Realserver(RealserverArgs { action }) => match action {
            RealserverAction::On {
                addr,
                ifaces,
                force,
                state_dir,
            } => {
                let options = RealServerOptions {
                    ifaces,
                    force,
                    state_dir,
                };
                let report = realserver::realserver_on(&handle, addr, &options).await?;
                print_report("on", addr, &report);
                Ok(EXIT_OK)
            }
            RealserverAction::Off { addr, state_dir } => {
                let report = realserver::realserver_off(&handle, addr, &state_dir).await?;
                print_report("off", addr, &report);
                Ok(EXIT_OK)
            }
        },
    }
}

fn show(addr: AddrPrefix) -> String {
    match addr.prefix {
        Some(prefix) => format!("{}/{prefix}", addr.addr),
        None => addr.addr.to_string(),
    }
}

fn print_report(action: &str, addr: IpAddr, report: &RealServerReport) {
    for change in &report.changed {
        println!(
            "{}: {} -> {}",
            change.path.display(),
            change.from,
            change.to
        );
    }
    for change in &report.left_alone {
        eprintln!(
            "warning: {} is {} (changed since real-server mode was turned on); not restoring it to {}",
            change.path.display(),
            change.from,
            change.to
        );
    }
    let address = match (action, report.address) {
        ("on", Change::Changed) => format!("added {addr} to lo"),
        ("on", Change::Unchanged) => format!("{addr} is already on lo"),
        (_, Change::Changed) => format!("removed {addr} from lo"),
        (_, Change::Unchanged) => format!("{addr} is not on lo"),
    };
    println!("real-server mode {action} for {addr}: {address}");
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: VipCommand,
    }

    fn parse(args: &[&str]) -> Result<VipCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("vip").chain(args.iter().copied()))
            .map(|cli| cli.command)
    }

    #[test]
    fn add_takes_prefix_label_and_force() {
        let command = parse(&[
            "add",
            "eth0",
            "203.0.113.10/24",
            "--label",
            "web",
            "--force",
        ])
        .unwrap();
        assert_eq!(
            command,
            VipCommand::Add(AddArgs {
                iface: "eth0".into(),
                addr: "203.0.113.10/24".parse().unwrap(),
                label: Some("web".into()),
                force: true,
            })
        );
    }

    #[test]
    fn announce_defaults_are_ipaddr2s() {
        let VipCommand::Announce(args) = parse(&["announce", "eth0", "2001:db8::10"]).unwrap()
        else {
            panic!("not an announce command");
        };
        assert_eq!(args.count, 5);
        assert_eq!(args.interval_ms, 200);
        assert_eq!(args.arp_op, ArpOpArg::Request);
        let VipCommand::Announce(args) = parse(&[
            "announce",
            "eth0",
            "203.0.113.10",
            "--count",
            "2",
            "--interval-ms",
            "10",
            "--arp-op",
            "reply",
        ])
        .unwrap() else {
            panic!("not an announce command");
        };
        assert_eq!(
            (args.count, args.interval_ms, args.arp_op),
            (2, 10, ArpOpArg::Reply)
        );
    }

    #[test]
    fn realserver_on_and_off() {
        let command = parse(&[
            "realserver",
            "on",
            "203.0.113.10",
            "--iface",
            "eth0",
            "--iface",
            "eth1",
        ])
        .unwrap();
        assert_eq!(
            command,
            VipCommand::Realserver(RealserverArgs {
                action: RealserverAction::On {
                    addr: "203.0.113.10".parse().unwrap(),
                    ifaces: vec!["eth0".into(), "eth1".into()],
                    force: false,
                    state_dir: PathBuf::from("/run/ldirector"),
                }
            })
        );
        assert!(parse(&["realserver", "off", "203.0.113.10/32"]).is_ok());
        assert!(parse(&["realserver", "on", "203.0.113.10/24"]).is_err());
    }

    #[test]
    fn bad_addresses_are_usage_errors() {
        assert!(parse(&["add", "eth0", "203.0.113.300"]).is_err());
        assert!(parse(&["del", "eth0", "203.0.113.1/40"]).is_err());
        assert!(parse(&["status", "eth0"]).is_err());
    }

    #[test]
    fn exit_codes() {
        let missing = NetError::InterfaceNotFound {
            iface: "eth9".into(),
        };
        assert_eq!(exit_code(&missing, false), EXIT_FAILURE);
        assert_eq!(exit_code(&missing, true), EXIT_NOT_PRESENT);
        let denied = NetError::PermissionDenied {
            operation: "add".into(),
            capability: "CAP_NET_ADMIN",
        };
        assert_eq!(exit_code(&denied, false), EXIT_FAILURE);
        assert_eq!(exit_code(&denied, true), EXIT_FAILURE);
        let in_use = NetError::AddressInUse {
            addr: "203.0.113.10".parse().unwrap(),
            iface: "eth0".into(),
            other_iface: "eth1".into(),
        };
        assert_eq!(exit_code(&in_use, false), EXIT_FAILURE);
        let label = NetError::InvalidLabel {
            label: "a b".into(),
            reason: "spaces".into(),
        };
        assert_eq!(exit_code(&label, false), EXIT_USAGE);
    }
}
