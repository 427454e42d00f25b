// SPDX-License-Identifier: GPL-2.0-or-later
//! `execute=CONFIG`: further director instances that follow this one, as in
//! ldirectord. Each is this same binary run as `ldirectord CONFIG ACTION`:
//! started with this daemon, reloaded with it (or started/stopped when a
//! reload adds or drops an `execute=` line), and stopped with it.
//!
//! The commands run on blocking threads: `start` returns only after the
//! instance's first round of checks, and `stop` after its cleanup, which
//! may take seconds each and must not stall this daemon's own checks.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use tracing::{error, info};

/// The instances this daemon started, by config name as written.
#[derive(Debug, Default)]
pub struct Instances {
    running: Vec<String>,
}

impl Instances {
    /// Starts an instance for each of `configs`.
    pub async fn start(configs: &[String]) -> Instances {
        let mut instances = Instances::default();
        instances.follow(configs).await;
        instances
    }

    /// Makes the running instances those of `configs`: stops the dropped
    /// ones, reloads the kept ones, starts the new ones.
    pub async fn follow(&mut self, configs: &[String]) {
        let (kept, dropped): (Vec<String>, Vec<String>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|c| configs.contains(c));
        for config in &dropped {
            run(config, "stop").await;
        }
        for config in &kept {
            run(config, "reload").await;
        }
        for config in configs.iter().filter(|c| !kept.contains(c)) {
            run(config, "start").await;
        }
        self.running = configs.to_vec();
    }

    /// Stops every instance (at shutdown).
    pub async fn stop_all(&mut self) {
        self.follow(&[]).await;
    }
}

/// Runs `ldirectord CONFIG ACTION` with this binary and logs the outcome.
async fn run(config: &str, action: &'static str) {
    let executable = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ldirectord"));
    let config_owned = config.to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        Command::new(&executable)
            .arg(&config_owned)
            .arg(action)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
    })
    .await;
    match outcome {
        Ok(Ok(output)) if output.status.success() => {
            info!("execute: {action} of instance {config} done");
        }
        Ok(Ok(output)) => error!(
            "execute: {action} of instance {config} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Ok(Err(e)) => error!("execute: cannot run {action} for instance {config}: {e}"),
        Err(e) => error!("execute: {action} of instance {config} did not finish: {e}"),
    }
}
