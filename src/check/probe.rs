// SPDX-License-Identifier: GPL-2.0-or-later
//! `ldirectord --probe`: run every configured check once, all at the same
//! time, and report one row per (virtual, real). It needs neither root nor
//! IPVS, so an operator can test a configuration before deploying it.
//!
//! Exit status: 0 when every real is up, 1 when any is down, 2 when the
//! configuration does not load.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{self, Config, SystemEnvironment};

use super::from_config::{virtual_label, CheckPlan, SpecId};
use super::{build_checker, CheckError, CheckSpec};

/// Exit status: every real is up.
pub const EXIT_ALL_UP: i32 = 0;
/// Exit status: at least one real is down.
pub const EXIT_SOME_DOWN: i32 = 1;
/// Exit status: the configuration could not be read or is invalid.
pub const EXIT_CONFIG_ERROR: i32 = 2;

/// Extra time a probe gets beyond its spec's budget before it is abandoned.
const LAST_RESORT_GRACE: Duration = Duration::from_secs(1);

/// One probe outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<(), CheckError>,
    pub latency: Duration,
}

/// One row of `--probe` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeRow {
    /// `IP:PORT`, `[IPv6]:PORT`, or the fwmark.
    #[serde(rename = "virtual")]
    pub virtual_service: String,
    /// `IP:PORT` (`[IPv6]:PORT`) of the real.
    pub real: String,
    /// What was checked (`connect`, `negotiate:http`, ...).
    pub check: String,
    pub up: bool,
    /// Why it is down, or `ok`.
    pub reason: String,
    pub latency_ms: f64,
}

/// Runs every check of `plan` once, concurrently, each bounded by its own
/// timeout.
///
/// At most [`concurrency_limit`] checks are in flight at once, so a large
/// configuration does not run out of file descriptors and report healthy
/// reals as down ("Too many open files").
pub async fn run_once(plan: &CheckPlan) -> HashMap<SpecId, Outcome> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency_limit()));
    let mut tasks = tokio::task::JoinSet::new();
    for check in &plan.checks {
        let id = check.id;
        let spec: Arc<CheckSpec> = check.spec.clone();
        let permits = permits.clone();
        tasks.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = permits.acquire_owned().await.ok();
            let checker = build_checker(&spec);
            let budget = spec.probe_budget() + LAST_RESORT_GRACE;
            let began = Instant::now();
            let result = tokio::time::timeout(budget, checker.check(&spec.target))
                .await
                .unwrap_or(Err(CheckError::Timeout(budget)));
            (
                id,
                Outcome {
                    result,
                    latency: began.elapsed(),
                },
            )
        });
    }
    let mut outcomes = HashMap::with_capacity(plan.len());
    while let Some(joined) = tasks.join_next().await {
        // A check task only ends by returning; a panic inside a checker is
        // a bug, reported as that real's reason below (missing outcome).
        if let Ok((id, outcome)) = joined {
            outcomes.insert(id, outcome);
        }
    }
    outcomes
}

/// How many checks may be in flight at once: a check holds up to two
/// descriptors (a socket, or the pipes of an external program), and some
/// are kept for the runtime itself.
pub fn concurrency_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    (soft.saturating_sub(64) / 2).clamp(16, 16_384)
}

/// Raises the soft limit on open files to the hard limit, as servers do:
/// thousands of concurrent checks need thousands of sockets.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Probes every real of `config`; rows in configuration order.
pub async fn probe(config: &Config) -> Vec<ProbeRow> {
    let plan = CheckPlan::from_config(config);
    let outcomes = run_once(&plan).await;
    let mut rows: Vec<(usize, usize, usize, ProbeRow)> = Vec::new();
    for check in &plan.checks {
        let outcome = outcomes.get(&check.id);
        for (order, member) in check.members.iter().enumerate() {
            let Some(virt) = config.virtuals.get(member.virtual_index) else {
                continue;
            };
            // A fwmark real written without a port is shown with the port
            // its check used.
            let port = match member.real.port() {
                0 => check.spec.target.addr.port(),
                port => port,
            };
            let (up, reason, latency) = match outcome {
                Some(outcome) => (
                    outcome.result.is_ok(),
                    match &outcome.result {
                        Ok(()) => "ok".to_string(),
                        Err(err) => err.to_string(),
                    },
                    outcome.latency,
                ),
                None => (false, "check task failed".to_string(), Duration::ZERO),
            };
            rows.push((
                member.virtual_index,
                member.real_index,
                order,
                ProbeRow {
                    virtual_service: virtual_label(virt),
                    real: SocketAddr::new(member.real.ip(), port).to_string(),
                    check: check.spec.kind.to_string(),
                    up,
                    reason,
                    latency_ms: (latency.as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
                },
            ));
        }
    }
    rows.sort_by(|a, b| (a.0, a.1, &a.3.real).cmp(&(b.0, b.1, &b.3.real)));
    rows.into_iter().map(|(_, _, _, row)| row).collect()
}

/// Aligned text table.
pub fn render_table(rows: &[ProbeRow]) -> String {
    let header = ["VIRTUAL", "REAL", "CHECK", "STATE", "LATENCY", "REASON"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.virtual_service.clone(),
                row.real.clone(),
                row.check.clone(),
                if row.up { "up" } else { "down" }.to_string(),
                format!("{:.1}ms", row.latency_ms),
                row.reason.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let last = cells.len() - 1;
        for (index, cell) in cells.iter().enumerate() {
            if index == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[index]));
            }
        }
        out.push('\n');
    };
    line(&header.map(str::to_string));
    for row in &cells {
        line(row);
    }
    out
}

/// The exit status for a set of rows.
pub fn exit_status(rows: &[ProbeRow]) -> i32 {
    if rows.iter().all(|row| row.up) {
        EXIT_ALL_UP
    } else {
        EXIT_SOME_DOWN
    }
}

/// The whole command: load `config_path`, probe, print to `out` (table or
/// JSON array), diagnostics to `err`; returns the exit status.
pub fn run_command(
    config_path: &Path,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    // ldirectord's lookup order (/etc/ha.d/NAME, /etc/ha.d/conf/NAME, NAME)
    // for a bare name that is not a file here.
    let path = if config_path.is_file() {
        config_path.to_path_buf()
    } else {
        config::locate(&config_path.to_string_lossy()).unwrap_or_else(|| config_path.to_path_buf())
    };
    let parsed = match config::parse_file(&path, &SystemEnvironment::new()) {
        Ok(parsed) => parsed,
        Err(error) => {
            let _ = writeln!(err, "{error}");
            return EXIT_CONFIG_ERROR;
        }
    };
    for warning in &parsed.warnings {
        let _ = writeln!(err, "{warning}");
    }
    raise_fd_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(err, "cannot start the async runtime: {error}");
            return EXIT_SOME_DOWN;
        }
    };
    let rows = runtime.block_on(probe(&parsed.config));
    let printed = if json {
        serde_json::to_string_pretty(&rows)
            .map_err(std::io::Error::other)
            .and_then(|text| writeln!(out, "{text}"))
    } else {
        write!(out, "{}", render_table(&rows))
    };
    if let Err(error) = printed {
        let _ = writeln!(err, "cannot write the report: {error}");
    }
    exit_status(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(up: bool, reason: &str) -> ProbeRow {
        ProbeRow {
            virtual_service: "[::1]:80".into(),
            real: "127.0.3.2:8080".into(),
            check: "connect".into(),
            up,
            reason: reason.into(),
            latency_ms: 1.25,
        }
    }

    #[test]
    fn json_has_the_documented_keys() {
        let value = serde_json::to_value([row(true, "ok")]).unwrap();
        let object = value[0].as_object().unwrap();
        for key in ["virtual", "real", "up", "reason", "latency_ms"] {
            assert!(object.contains_key(key), "missing {key}");
        }
        assert_eq!(object["virtual"], "[::1]:80");
        assert_eq!(object["up"], true);
    }

    #[test]
    fn table_aligns_and_exit_status_counts_downs() {
        let rows = [row(true, "ok"), row(false, "connection refused")];
        let table = render_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("VIRTUAL"));
        let state_col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[2][state_col..state_col + 4], "down");
        assert!(lines[2].ends_with("connection refused"));
        assert_eq!(exit_status(&rows), EXIT_SOME_DOWN);
        assert_eq!(exit_status(&rows[..1]), EXIT_ALL_UP);
    }

    #[tokio::test]
    async fn probe_reports_every_member_of_a_shared_check() {
        let listener = std::net::TcpListener::bind("127.0.3.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let text = format!(
            "virtual=127.0.3.100:80\n\treal=127.0.3.1:{port} gate\n\tchecktype=connect\n\
             virtual=127.0.3.101:80\n\treal=127.0.3.1:{port} gate\n\tchecktype=connect\n\
             \treal=127.0.3.1:1 gate\n"
        );
        let parsed = config::parse_str("t.cf", &text, &config::OfflineEnvironment).expect("parses");
        let rows = probe(&parsed.config).await;
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].virtual_service, "127.0.3.100:80");
        assert_eq!(rows[1].virtual_service, "127.0.3.101:80");
        assert!(rows[0].up && rows[1].up);
        assert_eq!(rows[0].reason, "ok");
        assert!(!rows[2].up);
        assert_eq!(rows[2].reason, "connection refused");
        assert_eq!(exit_status(&rows), EXIT_SOME_DOWN);
    }
}
