// SPDX-License-Identifier: GPL-2.0-or-later
//! The `ldirectord` command line: ldirectord 4.12's, plus extensions.
//!
//! ```text
//! ldirectord [-d|--debug] [--] [CONFIG] start|stop|restart|try-restart|reload|force-reload|status
//! ldirectord [-h|-?|--help|-v|--version]
//! ldirectord --check [CONFIG] [--json]   validate, print every error and warning
//! ldirectord --probe [CONFIG] [--json]   run every check once and report
//! ldirectord [CONFIG] status --verify-kernel
//! ldirectord vip add|del|announce|status|realserver ...
//! ```
//!
//! The ldirectord-compatible part keeps its exit codes, including 255 with
//! the usage text on stdout for a command line it does not understand, so
//! init scripts and the stock OCF agent behave unchanged. CONFIG defaults
//! to `ldirectord.cf` and is looked up in `/etc/ha.d`, then
//! `/etc/ha.d/conf`, then as given.
//!
//! The binary only parses arguments; every action lives in the library.

pub mod check;
pub mod control;
pub mod probe;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::net::cli::VipCommand;

/// The configuration name used when none is given, as in ldirectord.
pub const DEFAULT_CONFIG: &str = "ldirectord.cf";

/// ldirectord's exit code for a command line it cannot parse
/// (`pod2usage(-exitval => -1)`).
pub const EXIT_USAGE: i32 = 255;

const USAGE: &str = "\
Usage:
    ldirectord [-d|--debug] [--] [configfile] start | stop | restart |
    try-restart | reload | force-reload | status

    ldirectord [-h|-?|--help|-v|--version]

    ldirectord --check [configfile] [--json]
    ldirectord --probe [configfile] [--json]
    ldirectord [configfile] status --verify-kernel
    ldirectord vip add|del|announce|status|realserver ...
";

/// Command-line definition; also the source of the man page.
#[derive(Debug, Parser)]
#[command(
    name = "ldirectord",
    about = "Linux Virtual Server director: health-checks real servers and programs IPVS",
    long_about = "A drop-in replacement for ldirectord(8): reads the same ldirectord.cf, \
                  health-checks the real servers and keeps the kernel's IPVS table in line \
                  with their health, over generic netlink.",
    disable_help_flag = true,
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Run in the foreground with debug logging to stderr (no pid file)
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,

    /// With `start`: stay in the foreground, log where the config says, and
    /// tell systemd when the table is programmed (Type=notify); the pid file
    /// is written as in daemon mode
    #[arg(long)]
    pub foreground: bool,

    /// Print help
    #[arg(short = 'h', long = "help", short_alias = '?')]
    pub help: bool,

    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    /// Validate CONFIG and print every error and warning; exit 0 when valid, 2 when not
    #[arg(long, value_name = "CONFIG", num_args = 0..=1, default_missing_value = DEFAULT_CONFIG,
          conflicts_with_all = ["probe", "words"])]
    pub check: Option<PathBuf>,

    /// Run every configured check once and print the result per real;
    /// exit 0 when all are up, 1 when any is down, 2 on a config error
    #[arg(long, value_name = "CONFIG", num_args = 0..=1, default_missing_value = DEFAULT_CONFIG,
          conflicts_with = "words")]
    pub probe: Option<PathBuf>,

    /// With --check: print the parsed configuration as JSON on stdout.
    /// With --probe: print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,

    /// With `status`: also require the kernel's IPVS table to hold every
    /// configured virtual service (exit 1 and the reason on stderr if not)
    #[arg(long)]
    pub verify_kernel: bool,

    /// Write the man pages (ldirectord.8, ipvs-ls.8) into DIR and exit
    #[arg(long, value_name = "DIR", hide = true)]
    pub generate_man: Option<PathBuf>,

    /// [CONFIG] ACTION, as in ldirectord
    #[arg(value_name = "[CONFIG] ACTION", num_args = 0..=2)]
    pub words: Vec<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Extension subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the virtual IP: add, remove, announce, query, real-server mode
    #[command(subcommand)]
    Vip(VipCommand),
}

/// The ldirectord-compatible actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Restart,
    TryRestart,
    Reload,
    ForceReload,
    Status,
}

impl Action {
    pub fn parse(word: &str) -> Option<Action> {
        Some(match word {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "restart" => Action::Restart,
            "try-restart" => Action::TryRestart,
            "reload" => Action::Reload,
            "force-reload" => Action::ForceReload,
            "status" => Action::Status,
            _ => return None,
        })
    }
}

/// What the command line asks for, after ldirectord's rules are applied.
#[derive(Debug)]
pub enum Invocation {
    Help,
    Version,
    Usage,
    GenerateMan(PathBuf),
    Check { config: PathBuf, json: bool },
    Probe { config: PathBuf, json: bool },
    Vip(VipCommand),
    Action(control::ActionRequest),
}

/// Interprets parsed arguments the way ldirectord's `ld_init` does: one
/// word is the action (config `ldirectord.cf`), two are config and action.
pub fn interpret(cli: Cli) -> Invocation {
    if cli.help {
        return Invocation::Help;
    }
    if cli.version {
        return Invocation::Version;
    }
    if let Some(dir) = cli.generate_man {
        return Invocation::GenerateMan(dir);
    }
    if let Some(Command::Vip(vip)) = cli.command {
        return Invocation::Vip(vip);
    }
    if let Some(config) = cli.check {
        return Invocation::Check {
            config,
            json: cli.json,
        };
    }
    if let Some(config) = cli.probe {
        return Invocation::Probe {
            config,
            json: cli.json,
        };
    }
    if cli.json {
        // --json only qualifies --check and --probe.
        return Invocation::Usage;
    }
    let (config, word) = match cli.words.as_slice() {
        [word] => (DEFAULT_CONFIG.to_owned(), word.clone()),
        [config, word] => (config.clone(), word.clone()),
        _ => return Invocation::Usage,
    };
    let Some(action) = Action::parse(&word) else {
        return Invocation::Usage;
    };
    if (cli.verify_kernel && action != Action::Status)
        || (cli.foreground && action != Action::Start)
    {
        return Invocation::Usage;
    }
    Invocation::Action(control::ActionRequest {
        config_name: config,
        action,
        debug: cli.debug,
        foreground: cli.foreground,
        verify_kernel: cli.verify_kernel,
    })
}

/// Parses `args` (without the program name's special meaning) into an
/// invocation; anything clap rejects becomes ldirectord's usage error.
pub fn parse_args<I, T>(args: I) -> Invocation
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => interpret(cli),
        Err(error) => {
            // Subcommand errors (`vip add` with a bad address...) deserve
            // clap's precise message; ldirectord's own words get its usage.
            if error.kind() != clap::error::ErrorKind::UnknownArgument
                && std::env::args().nth(1).as_deref() == Some("vip")
            {
                let _ = error.print();
                std::process::exit(2);
            }
            Invocation::Usage
        }
    }
}

/// Entry point of the `ldirectord` binary; returns the exit code.
pub fn main() -> i32 {
    match parse_args(std::env::args_os()) {
        Invocation::Help => {
            let _ = Cli::command().print_long_help();
            0
        }
        Invocation::Version => {
            println!(
                "ldirectord (ldirector) {}\nA Linux Virtual Server director compatible with ldirectord 4.12.\n\
                 This is free software; see the GNU General Public License version 2 or later.",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Invocation::Usage => {
            print!("{USAGE}");
            EXIT_USAGE
        }
        Invocation::GenerateMan(dir) => match write_man_pages(&dir) {
            Ok(()) => 0,
            Err(error) => {
                eprintln!(
                    "ldirectord: cannot write man pages to {}: {error}",
                    dir.display()
                );
                1
            }
        },
        Invocation::Check { config, json } => {
            if json {
                check::run_json(&resolve_config(&config))
            } else {
                check::run(&resolve_config(&config))
            }
        }
        Invocation::Probe { config, json } => probe::run(&resolve_config(&config), json),
        Invocation::Vip(command) => match tokio_runtime() {
            Ok(runtime) => runtime.block_on(crate::net::cli::run(command)),
            Err(code) => code,
        },
        Invocation::Action(request) => control::run(request),
    }
}

/// ldirectord's lookup: `/etc/ha.d/NAME`, `/etc/ha.d/conf/NAME`, then NAME.
/// A name found nowhere is returned as given, so the error names it.
pub fn resolve_config(name: &std::path::Path) -> PathBuf {
    let text = name.to_string_lossy();
    crate::config::locate(&text).unwrap_or_else(|| name.to_path_buf())
}

/// A current-thread runtime for the short-lived subcommands.
pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("ldirectord: cannot start the async runtime: {error}");
            1
        })
}

/// Writes ldirectord.8 generated from the clap definitions (ipvs-ls.8
/// comes from `ipvs-ls --generate-man DIR`).
pub fn write_man_pages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .section("8")
        .render(&mut page)?;
    std::fs::write(dir.join("ldirectord.8"), page)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(args: &[&str]) -> control::ActionRequest {
        match parse_args(std::iter::once("ldirectord").chain(args.iter().copied())) {
            Invocation::Action(request) => request,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn one_word_is_the_action_with_the_default_config() {
        let request = action(&["start"]);
        assert_eq!(request.config_name, "ldirectord.cf");
        assert_eq!(request.action, Action::Start);
        assert!(!request.debug);
    }

    #[test]
    fn two_words_are_config_and_action() {
        let request = action(&["-d", "web.cf", "force-reload"]);
        assert_eq!(request.config_name, "web.cf");
        assert_eq!(request.action, Action::ForceReload);
        assert!(request.debug);
        let request = action(&["--debug", "--", "web.cf", "stop"]);
        assert_eq!(request.action, Action::Stop);
    }

    #[test]
    fn foreground_is_for_start_only() {
        let request = action(&["--foreground", "web.cf", "start"]);
        assert!(request.foreground && !request.debug);
        assert!(matches!(
            parse_args(["ldirectord", "--foreground", "web.cf", "stop"]),
            Invocation::Usage
        ));
    }

    #[test]
    fn unknown_words_and_options_are_usage_errors() {
        for args in [
            &[][..],
            &["web.cf"],
            &["web.cf", "bounce"],
            &["--bogus", "start"],
            &["a", "b", "start"],
            &["web.cf", "start", "--verify-kernel"],
        ] {
            let got = parse_args(std::iter::once("ldirectord").chain(args.iter().copied()));
            assert!(matches!(got, Invocation::Usage), "{args:?} gave {got:?}");
        }
    }

    #[test]
    fn extensions_parse() {
        let parse =
            |args: &[&str]| parse_args(std::iter::once("ldirectord").chain(args.iter().copied()));
        assert!(matches!(
            parse(&["--check", "x.cf"]),
            Invocation::Check { config, json: false } if config.as_os_str() == "x.cf"
        ));
        assert!(matches!(
            parse(&["--check"]),
            Invocation::Check { config, json: false } if config.as_os_str() == "ldirectord.cf"
        ));
        assert!(matches!(
            parse(&["--check", "x.cf", "--json"]),
            Invocation::Check { config, json: true } if config.as_os_str() == "x.cf"
        ));
        assert!(matches!(
            parse(&["--json", "--check", "x.cf"]),
            Invocation::Check { json: true, .. }
        ));
        assert!(matches!(parse(&["--json", "start"]), Invocation::Usage));
        assert!(matches!(
            parse(&["--probe", "x.cf", "--json"]),
            Invocation::Probe { json: true, .. }
        ));
        assert!(matches!(parse(&["-h"]), Invocation::Help));
        assert!(matches!(parse(&["-?"]), Invocation::Help));
        assert!(matches!(parse(&["-v"]), Invocation::Version));
        assert!(matches!(
            parse(&["vip", "status", "eth0", "10.0.0.1"]),
            Invocation::Vip(_)
        ));
        let request = action(&["x.cf", "status", "--verify-kernel"]);
        assert!(request.verify_kernel);
    }

    #[test]
    fn man_page_renders() {
        let dir = std::env::temp_dir().join(format!("ldirector-man-{}", std::process::id()));
        write_man_pages(&dir).expect("man page");
        let page = std::fs::read_to_string(dir.join("ldirectord.8")).expect("read");
        assert!(page.contains("\\-\\-probe"), "{page}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
