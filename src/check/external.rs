// SPDX-License-Identifier: GPL-2.0-or-later
//! `checktype=external` and `external-perl`: run a program with the
//! arguments `VIP VPORT RIP RPORT`; exit status 0 means up.
//!
//! As in ldirectord there is no shell: the command is one program path, so
//! arguments cannot be added to it. For fwmark virtuals the first argument
//! is the fwmark and the second is `0`; IPv6 addresses are passed in
//! brackets, as ldirectord passes them.
//!
//! Differences from ldirectord, on purpose:
//! - `external-perl` runs `perl SCRIPT ARGS...` as a separate program
//!   instead of compiling the file into the daemon; scripts that only use
//!   `@ARGV` and `exit` behave the same.
//! - At the timeout the whole process group of the check gets TERM, then
//!   KILL shortly after, and is reaped: a hung script leaves no process
//!   behind (ldirectord sends TERM to the child only).

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures::future::BoxFuture;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{CheckError, CheckTarget, Checker};

/// How long a timed-out check gets between TERM and KILL.
const TERM_GRACE: Duration = Duration::from_millis(200);

pub struct ExternalChecker {
    program: PathBuf,
    /// `Some(script)` for external-perl: run `program script ARGS`.
    script: Option<PathBuf>,
    timeout: Duration,
}

impl ExternalChecker {
    /// `checktype=external`: run `command VIP VPORT RIP RPORT`.
    pub fn program(command: PathBuf, timeout: Duration) -> Self {
        ExternalChecker {
            program: command,
            script: None,
            timeout,
        }
    }

    /// `checktype=external-perl`: run `perl script VIP VPORT RIP RPORT`.
    pub fn perl(script: PathBuf, timeout: Duration) -> Self {
        ExternalChecker {
            program: PathBuf::from("perl"),
            script: Some(script),
            timeout,
        }
    }

    fn shown(&self) -> String {
        match &self.script {
            Some(script) => script.display().to_string(),
            None => self.program.display().to_string(),
        }
    }

    async fn run(&self, target: &CheckTarget) -> Result<(), CheckError> {
        let mut command = Command::new(&self.program);
        if let Some(script) = &self.script {
            command.arg(script);
        }
        command
            .args(arguments(target))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group, so a timeout can stop everything the
            // check started (a shell script's curl, say).
            .process_group(0)
            // If this future is dropped (outer timeout, shutdown), tokio
            // kills and reaps the child.
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|err| CheckError::Other(format!("cannot run {}: {}", self.shown(), err)))?;

        match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => self.judge(status),
            Ok(Err(err)) => Err(CheckError::Other(format!(
                "waiting for {}: {}",
                self.shown(),
                err
            ))),
            Err(_) => {
                stop_group(&mut child).await;
                Err(CheckError::Timeout(self.timeout))
            }
        }
    }

    fn judge(&self, status: ExitStatus) -> Result<(), CheckError> {
        use std::os::unix::process::ExitStatusExt;
        if status.success() {
            Ok(())
        } else if let Some(code) = status.code() {
            Err(CheckError::Other(format!(
                "{} exited with status {}",
                self.shown(),
                code
            )))
        } else {
            let signal = status.signal().unwrap_or(0);
            Err(CheckError::Other(format!(
                "{} killed by signal {}",
                self.shown(),
                signal
            )))
        }
    }
}

/// `VIP VPORT RIP RPORT` as ldirectord passes them.
pub fn arguments(target: &CheckTarget) -> [String; 4] {
    let (vip, vport) = match target.virtual_addr {
        Some(addr) => (bracketed(addr), target.virtual_port.to_string()),
        None => (target.virtual_port.to_string(), "0".to_string()),
    };
    [
        vip,
        vport,
        bracketed(target.addr.ip()),
        target.real_port.to_string(),
    ]
}

fn bracketed(addr: std::net::IpAddr) -> String {
    match addr {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// TERM the check's process group, KILL it after a short grace, and reap
/// the child so no zombie is left.
async fn stop_group(child: &mut Child) {
    let Some(pid) = child.id() else {
        return; // already reaped
    };
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(TERM_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    } else {
        // The leader is gone; anything it left in the group goes too.
        let _ = killpg(group, Signal::SIGKILL);
    }
}

impl Checker for ExternalChecker {
    fn name(&self) -> &'static str {
        if self.script.is_some() {
            "external-perl"
        } else {
            "external"
        }
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(self.run(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_for_address_and_fwmark_virtuals() {
        let target = CheckTarget {
            addr: "[::1]:8080".parse().unwrap(),
            virtual_addr: Some("2001:db8::1".parse().unwrap()),
            virtual_port: 80,
            real_port: 80,
        };
        assert_eq!(arguments(&target), ["[2001:db8::1]", "80", "[::1]", "80"]);
        let target = CheckTarget {
            addr: "127.0.1.9:80".parse().unwrap(),
            virtual_addr: None,
            virtual_port: 7,
            real_port: 0,
        };
        assert_eq!(arguments(&target), ["7", "0", "127.0.1.9", "0"]);
    }
}
