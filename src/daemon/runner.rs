// SPDX-License-Identifier: GPL-2.0-or-later
//! The daemon: start, run, reload, stop.
//!
//! ```text
//! start:  pid file -> IPVS handle -> adopt the kernel table (no flush)
//!         -> checks -> first round (bounded) -> reconcile -> "ready"
//! run:    check results -> health -> desired table -> dump/diff/apply
//!         HUP, `reload` on the socket, autoreload (inotify): parse first,
//!         keep the old config on any error
//! stop:   TERM/INT -> checks stop -> fallbackcommand stop -> cleanstop
//!         -> pid file removed -> exit
//! ```
//!
//! Only [`Daemon::reconcile`] writes to the kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::checks;
use super::control::{self, Request};
use super::instances::Instances;
use super::status::{DaemonState, StatusReport};
use super::{email, log, metrics, monitorfile, notify, pidfile, vips};
use crate::check::from_config::CheckPlan;
use crate::check::scheduler::{CheckResult, Scheduler};
use crate::config::{self, Config, Parsed, SystemEnvironment};
use crate::director::managed::{managed_virtuals, RealKey};
use crate::director::state::{addr_port, DirectorState, Transition};
use crate::director::{plan, Op};
use crate::ipvs::{IpvsHandle, IpvsOp};
use crate::ipvs::{ServiceEntry, ServiceKey};
use crate::net::VipSet;

/// How often the kernel table is compared with the desired one even when
/// no health changed, so a hand-made change is corrected.
const DRIFT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Where control sockets live.
pub const SOCKET_DIR: &str = "/run/ldirector";

/// What the command line decided.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub config_path: PathBuf,
    /// The config's short name, for log lines and file names.
    pub config_name: String,
    pub debug: bool,
    pub foreground: bool,
    pub pid_path: PathBuf,
}

/// Tells whoever started the daemon that it is directing (or why not).
#[derive(Debug, Default)]
pub struct Readiness {
    pipe: Option<std::fs::File>,
}

impl Readiness {
    /// Foreground: systemd's `READY=1` is the only signal.
    pub fn systemd() -> Self {
        Readiness { pipe: None }
    }

    /// Daemon mode: the invoking process waits on this pipe.
    pub fn pipe(fd: OwnedFd) -> Self {
        Readiness {
            pipe: Some(std::fs::File::from(fd)),
        }
    }

    fn ready(&mut self) {
        notify::notify("READY=1");
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.write_all(b"ready\n");
        }
    }

    fn failed(&mut self, reason: &str) {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = writeln!(pipe, "{reason}");
        }
    }
}

/// Runs the daemon to completion; returns the exit code.
pub fn run(options: RunOptions, parsed: Parsed, mut readiness: Readiness) -> i32 {
    let target = if options.debug {
        log::LogTarget::Stderr
    } else {
        match parsed.config.global.logfile() {
            config::LogTarget::File(path) => log::LogTarget::File(path.into()),
            config::LogTarget::Syslog(facility) => log::LogTarget::Syslog(facility),
        }
    };
    log::init(target, &options.config_name, options.debug);
    for warning in &parsed.warnings {
        warn!("{warning}");
    }
    // Two runtimes: the event loop's, and the checks' own (see
    // `Scheduler::on_runtime`), so that check tasks never queue ahead of
    // the event loop. One worker each: keepalived_compare (300 reals, in
    // the VM) measured 1.46 CPU s per 1,000 http checks with two workers
    // each, 1.10-1.17 with one (3 runs), 1.18-1.37 with a current-thread
    // event loop (3) and 1.23-1.30 with two current-thread runtimes (3):
    // the extra workers only woke each other. One core runs 10,000 http
    // checks a second (check_scale).
    let runtimes = one_worker_runtime("ldirector")
        .and_then(|main| Ok((main, one_worker_runtime("ldirector-checks")?)));
    let (runtime, checks_runtime) = match runtimes {
        Ok(pair) => pair,
        Err(e) => {
            let reason = format!("cannot start the async runtime: {e}");
            error!("{reason}");
            readiness.failed(&reason);
            return 1;
        }
    };
    let checks = checks_runtime.handle().clone();
    let code = runtime.block_on(async move {
        // Before the pid file exists, so that nobody can signal a daemon that
        // would still die of the default action: a HUP (an operator's
        // reload, a logrotate) during the first round is queued and applied
        // once running, and a TERM runs the normal stop and cleanup.
        let signals = match Signals::install() {
            Ok(signals) => signals,
            Err(e) => {
                let reason = format!("cannot install signal handlers: {e}");
                error!("{reason}");
                readiness.failed(&reason);
                return 1;
            }
        };
        let pid = std::process::id();
        if let Err(e) = pidfile::write(&options.pid_path, pid) {
            let reason = format!("cannot write pid file {}: {e}", options.pid_path.display());
            error!("{reason}");
            readiness.failed(&reason);
            return 1;
        }
        let code = match Daemon::start(options.clone(), parsed.config, &mut readiness, checks).await
        {
            Ok(daemon) => daemon.run(signals).await,
            Err(reason) => {
                error!("{reason}");
                readiness.failed(&reason);
                1
            }
        };
        pidfile::remove_if_ours(&options.pid_path, pid);
        code
    });
    // Every check task has ended by now (the scheduler's shutdown waits for
    // them); nothing is left to wait for.
    checks_runtime.shutdown_background();
    code
}

/// A multi-thread runtime with one worker named `thread_name`: the worker
/// drives its runtime's I/O and timers by itself, whatever the thread
/// that called `block_on` is doing.
fn one_worker_runtime(thread_name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(thread_name)
        .enable_all()
        .build()
}

/// The signals the daemon handles. Creating a tokio signal stream replaces
/// the default action at once; deliveries before the loop polls it are kept.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

struct Shared {
    state: DirectorState,
    daemon_state: DaemonState,
    reload_errors: Vec<String>,
    kernel: Vec<ServiceEntry>,
}

struct Daemon {
    options: RunOptions,
    config: Arc<Config>,
    ipvs: IpvsHandle,
    shared: Arc<Mutex<Shared>>,
    scheduler: Scheduler,
    results: tokio::sync::mpsc::UnboundedReceiver<CheckResult>,
    plan: CheckPlan,
    /// `plan`'s checks by id.
    plan_index: std::collections::HashMap<crate::check::from_config::SpecId, usize>,
    /// Services owned by an earlier config of this run, deleted by the
    /// next reconcile when the new config drops them.
    retired: BTreeSet<ServiceKey>,
    stop: CancellationToken,
    reload_requests: tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<String>>,
    reload_sender: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<String>>,
    /// VIPs carried in standalone mode (`vipinterface=`).
    vips: VipSet,
    /// Instances started for `execute=` lines.
    instances: Instances,
    /// Reals down with `emailalertfreq` set: when their alert last went out.
    inaccessible: BTreeMap<(ServiceKey, IpAddr, u16), tokio::time::Instant>,
}

impl Daemon {
    async fn start(
        options: RunOptions,
        config: Config,
        readiness: &mut Readiness,
        checks: tokio::runtime::Handle,
    ) -> Result<Daemon, String> {
        info!(
            "Starting ldirector {} with pid: {}",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        );
        let ipvs = IpvsHandle::connect().await.map_err(|e| e.to_string())?;
        let kernel = ipvs.services().await.map_err(|e| e.to_string())?;
        let plan = CheckPlan::from_config(&config);
        let labels = checks::labels(&config);
        let state = DirectorState::adopt(managed_virtuals(&config), &kernel, |v| {
            labels.get(&v.service.key).cloned().unwrap_or_default()
        });
        let (mut scheduler, results) = Scheduler::on_runtime(checks);
        scheduler.apply(&plan);
        let (reload_sender, reload_requests) = tokio::sync::mpsc::channel(4);
        let mut daemon = Daemon {
            options,
            config: Arc::new(config),
            ipvs,
            shared: Arc::new(Mutex::new(Shared {
                state,
                daemon_state: DaemonState::Starting,
                reload_errors: Vec::new(),
                kernel,
            })),
            scheduler,
            results,
            plan_index: plan.index(),
            plan,
            retired: BTreeSet::new(),
            stop: CancellationToken::new(),
            reload_requests,
            reload_sender,
            vips: VipSet::new(),
            instances: Instances::default(),
            inaccessible: BTreeMap::new(),
        };
        daemon.start_sync_daemon().await;
        daemon.first_round().await;
        // The VIPs come up just before the table is programmed (checks are
        // known by then), and a VIP that cannot be owned fails the start
        // before anything in the kernel changed.
        let failures = daemon.vips.reconcile(&vips::claims(&daemon.config)).await;
        if !failures.is_empty() {
            daemon.vips.release_all().await;
            let reasons: Vec<String> = failures
                .iter()
                .map(|(claim, e)| format!("cannot own VIP {} on {}: {e}", claim.vip, claim.iface))
                .collect();
            return Err(reasons.join("; "));
        }
        for owner in daemon.vips.owners() {
            info!(
                "VIP {} on {} owned and announced",
                owner.vip(),
                owner.iface()
            );
        }
        daemon.reconcile().await;
        let executes = execute_configs(&daemon.config);
        daemon.instances = Instances::start(&executes).await;
        daemon.lock().daemon_state = DaemonState::Running;
        info!("first round of checks applied; director is running");
        readiness.ready();
        Ok(daemon)
    }

    /// `syncdaemon=master|backup`: the kernel's connection sync daemon, so
    /// a failover keeps established connections. Already running with the
    /// same settings is fine (the kernel says EEXIST, which is success).
    async fn start_sync_daemon(&self) {
        let Some(sync) = self.config.global.sync_daemon() else {
            return;
        };
        match self.ipvs.start_daemon(&sync).await {
            Ok(()) => info!(
                "IPVS sync daemon started ({:?} on {})",
                sync.state, sync.mcast_ifname
            ),
            Err(e) => error!("cannot start the IPVS sync daemon: {e}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every real has had a result, or the longest check's
    /// budget has passed: "running" then means the table reflects checks.
    async fn first_round(&mut self) {
        let mut waiting: BTreeSet<RealKey> = checks::planned_keys(&self.config, &self.plan)
            .into_iter()
            .collect();
        let deadline = tokio::time::Instant::now() + checks::first_round_budget(&self.plan);
        while !waiting.is_empty() {
            let result = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                r = self.results.recv() => r,
            };
            let Some(result) = result else { break };
            for obs in checks::observations(&self.config, self.planned(&result), &result) {
                waiting.remove(&obs.key);
                self.observe(obs);
            }
        }
        self.scan_maintenance();
    }

    /// Records one observation; true when the real went up or down.
    fn observe(&mut self, obs: crate::director::state::Observation) -> bool {
        let transition = self.lock().state.observe(obs);
        match transition {
            Some(t) => {
                self.announce(&t);
                true
            }
            None => false,
        }
    }

    /// The planned check a result belongs to, if it is still planned.
    fn planned(&self, result: &CheckResult) -> Option<&crate::check::from_config::PlannedCheck> {
        let position = *self.plan_index.get(&result.id)?;
        self.plan.checks.get(position)
    }

    /// Logs a readiness change and writes the monitor file.
    fn announce(&self, t: &Transition) {
        let shared = self.lock();
        let Some(v) = shared.state.virtual_of(&t.key) else {
            return;
        };
        let vcfg = &self.config.virtuals[v.index];
        let port = shared.state.config_port(&t.key).unwrap_or(t.key.port);
        let real = addr_port(t.key.addr, port);
        let word = if t.up { "up" } else { "down" };
        info!("real server {real} ({}) is {word}: {}", v.id, t.reason);
        if let Some(path) = &vcfg.monitorfile {
            let server = t.key.addr.to_string();
            let port_text = port.to_string();
            let check = shared
                .state
                .health(&t.key)
                .map(|h| h.check.clone())
                .unwrap_or_default();
            let id = monitorfile::RealId {
                check: &check,
                protocol: vcfg.protocol.as_str(),
                server: &server,
                port: &port_text,
                ..Default::default()
            };
            let line = monitorfile::line(
                &log::perl_localtime(log::now_secs()),
                std::process::id(),
                &id,
                t.up,
                Some(&t.reason),
            );
            if let Err(e) = monitorfile::append(Path::new(&path.value), &line) {
                warn!("cannot write monitorfile {}: {e}", path.value);
            }
        }
    }

    fn scan_maintenance(&mut self) {
        let Some(dir) = self
            .config
            .global
            .maintenancedir
            .as_ref()
            .map(|d| d.value.clone())
        else {
            return;
        };
        let keys: Vec<(RealKey, u16)> = {
            let shared = self.lock();
            shared
                .state
                .keys()
                .map(|k| (*k, shared.state.config_port(k).unwrap_or(k.port)))
                .collect()
        };
        for (key, port) in keys {
            let addr = key.addr.to_string();
            let on = Path::new(&dir).join(format!("{addr}:{port}")).exists()
                || Path::new(&dir).join(&addr).exists();
            let transition = self.lock().state.set_maintenance(&key, on);
            if let Some(t) = transition {
                self.announce(&t);
            }
        }
    }

    /// Dump, diff, apply: the only writer to the kernel.
    async fn reconcile(&mut self) {
        let observed = match self.ipvs.services().await {
            Ok(o) => o,
            Err(e) => {
                error!("cannot read the IPVS table: {e}");
                return;
            }
        };
        let (desired, mut managed, edges) = {
            let mut shared = self.lock();
            let edges = shared.state.fallback_edges();
            (shared.state.desired(), shared.state.managed_keys(), edges)
        };
        self.run_fallback_commands(&edges);
        managed.extend(self.retired.iter().copied());
        let ops = plan(&desired, &observed, &managed);
        if !ops.is_empty() {
            let fallbacks = self.fallback_addrs();
            for op in &ops {
                let line = describe(op, &fallbacks);
                info!("{line}");
                self.email_alert(op_service(op), &line);
            }
            let ipvs_ops: Vec<IpvsOp> = ops.iter().map(to_ipvs).collect();
            for (op, result) in ipvs_ops.iter().zip(self.ipvs.apply_all(&ipvs_ops).await) {
                if let Err(e) = result {
                    error!("{op}: {e}");
                }
            }
            self.retired.clear();
        }
        let kernel = self.ipvs.services().await.unwrap_or(observed);
        self.lock().kernel = kernel;
    }

    /// ldirectord mails each Added/Restored/Quiescent/Deleted event to
    /// `emailalert` (the virtual's, else the global one) when the daemon's
    /// state is in `emailalertstatus`. Sending never blocks the director.
    fn email_alert(&self, key: ServiceKey, line: &str) {
        let (state, index) = {
            let shared = self.lock();
            let index = shared
                .state
                .virtuals
                .iter()
                .find(|v| v.service.key == key)
                .map(|v| v.index);
            (shared.daemon_state, index)
        };
        let Some(v) = index.and_then(|i| self.config.virtuals.get(i)) else {
            return;
        };
        let global = &self.config.global;
        let Some(to) = v
            .emailalert
            .as_ref()
            .or(global.emailalert.as_ref())
            .map(|t| t.value.clone())
        else {
            return;
        };
        let statuses = v
            .emailalertstatus
            .as_ref()
            .map(|s| s.value)
            .unwrap_or_else(|| global.emailalertstatus());
        let bit = match state {
            DaemonState::Starting => config::EmailAlertStatus::STARTING,
            DaemonState::Running => config::EmailAlertStatus::RUNNING,
            DaemonState::Stopping => config::EmailAlertStatus::STOPPING,
            DaemonState::Reloading => config::EmailAlertStatus::RELOADING,
        };
        if !statuses.contains(bit) {
            return;
        }
        let hostname = email::hostname();
        let subject = match &v.servicename {
            Some(name) => format!("[{}] {line}", name.value),
            None => line.to_owned(),
        };
        let alert = email::Alert {
            server: v
                .smtp
                .as_ref()
                .or(global.smtp.as_ref())
                .map(|s| s.value.clone())
                .unwrap_or_else(|| "localhost".to_owned()),
            from: global
                .emailalertfrom
                .as_ref()
                .map(|f| f.value.clone())
                .unwrap_or_else(|| format!("root@{hostname}")),
            to,
            body: email::body(
                &hostname,
                &subject,
                &format!("{state:?}").to_lowercase(),
                Some(&v.id()),
            ),
            subject,
        };
        tokio::spawn(async move {
            if let Err(e) = email::send(&alert, Duration::from_secs(30)).await {
                warn!("email alert to {} not sent: {e}", alert.to);
            }
        });
    }

    fn fallback_addrs(&self) -> Vec<(ServiceKey, std::net::IpAddr, u16)> {
        self.lock()
            .state
            .virtuals
            .iter()
            .filter_map(|v| v.fallback.as_ref().map(|f| (v.service.key, f.addr, f.port)))
            .collect()
    }

    fn run_fallback_commands(&self, edges: &[(usize, bool)]) {
        let commands: Vec<(String, bool)> = {
            let shared = self.lock();
            edges
                .iter()
                .filter_map(|(i, down)| {
                    let v = shared.state.virtuals.get(*i)?;
                    Some((v.fallback_command.clone()?, *down))
                })
                .collect()
        };
        for (command, down) in commands {
            let arg = if down { "start" } else { "stop" };
            run_command(&command, arg);
        }
    }

    async fn run(mut self, signals: Signals) -> i32 {
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = signals;
        self.serve_control();
        self.serve_metrics();
        let mut watcher = self.config_watcher();
        let mut config_digest = file_digest(&self.options.config_path);
        let mut drift = tokio::time::interval(DRIFT_CHECK_INTERVAL);
        drift.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(Duration::from_secs(1));
        // Under systemd's WatchdogSec the loop itself proves it is alive:
        // a wedged loop stops the pings and systemd restarts the director.
        let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
        loop {
            let mut dirty = false;
            tokio::select! {
                _ = term.recv() => { info!("Exiting on signal TERM"); break; }
                _ = int.recv() => { info!("Exiting on signal INT"); break; }
                _ = hup.recv() => { info!("Reloading configuration on signal HUP"); self.reload().await; }
                Some(reply) = self.reload_requests.recv() => {
                    let outcome = self.reload().await;
                    let _ = reply.send(outcome);
                }
                _ = watcher.changed() => {
                    // inotify also fires for a touch or a rewrite with the
                    // same bytes; ldirectord compares a digest too.
                    let digest = file_digest(&self.options.config_path);
                    if digest != config_digest {
                        config_digest = digest;
                        self.config_file_changed().await;
                        watcher = self.config_watcher();
                    }
                }
                result = self.results.recv() => {
                    if let Some(result) = result {
                        // Every result already waiting goes into the same
                        // reconcile: one dump/diff/apply per burst of
                        // transitions (a start, a switch failing), not one
                        // per real while the others' results queue behind
                        // it. Bounded so a flood still reconciles.
                        let limit = self.plan.checks.len().max(1);
                        for result in take_pending(result, &mut self.results, limit) {
                            // Only an up/down transition changes the desired
                            // table; rebuilding it per result was O(reals) on
                            // every one of thousands of results a second.
                            for obs in checks::observations(&self.config, self.planned(&result), &result) {
                                dirty |= self.observe(obs);
                            }
                        }
                    }
                }
                _ = maintenance.tick() => {
                    let before = self.lock().state.desired();
                    self.scan_maintenance();
                    dirty = self.lock().state.desired() != before;
                    self.resend_inaccessible_alerts();
                }
                _ = drift.tick() => dirty = true,
                _ = async { watchdog.as_mut()?.tick().await; Some(()) }, if watchdog.is_some() => {
                    notify::notify("WATCHDOG=1");
                }
            }
            if dirty {
                self.reconcile().await;
            }
        }
        self.shutdown().await;
        0
    }

    /// Watches the config file when `autoreload` or `callback` needs it.
    fn config_watcher(&self) -> ConfigWatcher {
        let global = &self.config.global;
        ConfigWatcher::new(
            &self.options.config_path,
            global.autoreload() || global.callback.is_some(),
        )
    }

    /// The file's bytes changed: reload with `autoreload=yes`, then run the
    /// `callback` as `CALLBACK CONFIGFILE`, as ldirectord does.
    async fn config_file_changed(&mut self) {
        let callback = self
            .config
            .global
            .callback
            .as_ref()
            .map(|c| c.value.clone());
        if self.config.global.autoreload() {
            info!("Configuration file changed; reloading");
            self.reload().await;
        } else {
            info!("Configuration file changed");
        }
        if let Some(callback) = callback {
            run_command(&callback, &self.options.config_path.display().to_string());
        }
    }

    /// `emailalertfreq`: repeats "Inaccessible real server" for each real
    /// that stays down, every `emailalertfreq` seconds. The first alert is
    /// the state change's own; the clock starts there.
    fn resend_inaccessible_alerts(&mut self) {
        let report = snapshot(&self.shared, &self.options.config_name);
        let now = tokio::time::Instant::now();
        let mut down_now = BTreeSet::new();
        let mut due = Vec::new();
        for virtual_status in &report.virtuals {
            let frequency = self.emailalertfreq(virtual_status.key);
            if frequency == 0 {
                continue;
            }
            for real in virtual_status.reals.iter().filter(|r| !r.up) {
                let id = (virtual_status.key, real.addr, real.port);
                down_now.insert(id);
                let since = *self.inaccessible.entry(id).or_insert(now);
                if now.duration_since(since) >= Duration::from_secs(frequency) {
                    due.push(id);
                }
            }
        }
        self.inaccessible.retain(|id, _| down_now.contains(id));
        for (key, addr, port) in due {
            self.inaccessible.insert((key, addr, port), now);
            let virtual_id = self.virtual_config(key).map(|v| v.id()).unwrap_or_default();
            self.email_alert(
                key,
                &format!(
                    "Inaccessible real server: {} ({virtual_id})",
                    addr_port(addr, port)
                ),
            );
        }
    }

    fn virtual_config(&self, key: ServiceKey) -> Option<&config::Virtual> {
        let index = self
            .lock()
            .state
            .virtuals
            .iter()
            .find(|v| v.service.key == key)
            .map(|v| v.index)?;
        self.config.virtuals.get(index)
    }

    /// The virtual's `emailalertfreq`, else the global one (0: off).
    fn emailalertfreq(&self, key: ServiceKey) -> u64 {
        self.virtual_config(key)
            .and_then(|v| v.emailalertfreq.as_ref().map(|f| f.value))
            .unwrap_or_else(|| self.config.global.emailalertfreq())
    }

    /// Parse first; on any error keep running the old config untouched.
    async fn reload(&mut self) -> String {
        notify::reloading();
        let previous = std::mem::replace(&mut self.lock().daemon_state, DaemonState::Reloading);
        let outcome = self.reload_config().await;
        self.lock().daemon_state = previous;
        notify::notify("READY=1");
        outcome
    }

    async fn reload_config(&mut self) -> String {
        let parsed = match config::parse_file(&self.options.config_path, &SystemEnvironment::new())
        {
            Ok(p) => p,
            Err(e) => {
                let errors: Vec<String> = match &e {
                    config::ConfigError::Invalid(diags) => {
                        diags.iter().map(|d| d.to_string()).collect()
                    }
                    other => vec![other.to_string()],
                };
                for line in &errors {
                    error!("reload refused, keeping the running configuration: {line}");
                }
                self.lock().reload_errors = errors.clone();
                return serde_json::json!({"accepted": false, "errors": errors}).to_string();
            }
        };
        for warning in &parsed.warnings {
            warn!("{warning}");
        }
        let config = parsed.config;
        let plan = CheckPlan::from_config(&config);
        let labels = checks::labels(&config);
        let kernel = self.ipvs.services().await.unwrap_or_default();
        let retired = {
            let mut shared = self.lock();
            let old_keys = shared.state.managed_keys();
            let next = shared
                .state
                .reconfigure(managed_virtuals(&config), &kernel, |v| {
                    labels.get(&v.service.key).cloned().unwrap_or_default()
                });
            let new_keys = next.managed_keys();
            shared.state = next;
            shared.reload_errors.clear();
            old_keys.difference(&new_keys).copied().collect()
        };
        self.retired = retired;
        // Unchanged checks keep running (and their health); changed ones
        // restart under their new definition.
        self.scheduler.apply(&plan);
        self.plan_index = plan.index();
        self.plan = plan;
        self.config = Arc::new(config);
        self.reconcile().await;
        for (claim, e) in self.vips.reconcile(&vips::claims(&self.config)).await {
            error!("cannot own VIP {} on {}: {e}", claim.vip, claim.iface);
        }
        let executes = execute_configs(&self.config);
        self.instances.follow(&executes).await;
        info!("configuration reloaded");
        serde_json::json!({"accepted": true}).to_string()
    }

    fn serve_control(&self) {
        let path = control::socket_path(Path::new(SOCKET_DIR), &self.options.config_path);
        let listener = match control::bind(&path) {
            Ok(l) => l,
            Err(e) => {
                warn!("control socket unavailable: {e}");
                return;
            }
        };
        let shared = self.shared.clone();
        let config_name = self.options.config_path.display().to_string();
        let reload = self.reload_sender.clone();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            control::serve(listener, stop, move |request| {
                let shared = shared.clone();
                let config_name = config_name.clone();
                let reload = reload.clone();
                async move {
                    match request {
                        Request::Status => {
                            let report = snapshot(&shared, &config_name);
                            serde_json::to_string(&report).unwrap_or_default()
                        }
                        Request::Reload => {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            if reload.send(tx).await.is_err() {
                                return "{\"accepted\":false}".to_owned();
                            }
                            rx.await.unwrap_or_default()
                        }
                    }
                }
            })
            .await;
        });
        let stop = self.stop.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            let _ = std::fs::remove_file(&path);
        });
    }

    fn serve_metrics(&self) {
        let Some(addr) = self.config.global.metrics_listen() else {
            return;
        };
        let shared = self.shared.clone();
        let config_name = self.options.config_path.display().to_string();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    warn!("metrics: cannot listen on {addr}: {e}");
                    return;
                }
            };
            info!("metrics on http://{addr}/metrics");
            let render = move || {
                let report = snapshot(&shared, &config_name);
                let kernel = shared.lock().map(|s| s.kernel.clone()).unwrap_or_default();
                metrics::render(&report, &kernel)
            };
            metrics::serve(listener, stop, Arc::new(render)).await;
        });
    }

    async fn shutdown(mut self) {
        self.lock().daemon_state = DaemonState::Stopping;
        notify::notify("STOPPING=1");
        self.stop.cancel();
        self.instances.stop_all().await;
        // The VIP goes first: clients stop arriving before the table empties.
        for (claim, e) in self.vips.release_all().await {
            error!("cannot release VIP {} on {}: {e}", claim.vip, claim.iface);
        }
        let (virtuals, active_fallbacks) = {
            let shared = self.lock();
            let active: Vec<String> = shared
                .state
                .virtuals
                .iter()
                .filter(|v| {
                    shared
                        .state
                        .report(DaemonState::Stopping, "", &[])
                        .virtuals
                        .iter()
                        .any(|s| s.key == v.service.key && s.reals.iter().all(|r| !r.up))
                })
                .filter_map(|v| v.fallback_command.clone())
                .collect();
            (shared.state.virtuals.clone(), active)
        };
        // ldirectord leaves fallbackcommand running at exit; stop it so a
        // sorry page does not outlive the director.
        for command in active_fallbacks {
            run_command(&command, "stop");
        }
        let mut ops = Vec::new();
        for v in virtuals.iter().filter(|v| v.cleanstop) {
            ops.push(IpvsOp::DeleteService(v.service.key));
        }
        if !ops.is_empty() {
            for (op, result) in ops.iter().zip(self.ipvs.apply_all(&ops).await) {
                match result {
                    Ok(()) => info!("cleanstop: {op}"),
                    Err(e) => error!("cleanstop: {op}: {e}"),
                }
            }
        }
        // Waits for external check programs to be gone too.
        self.scheduler.shutdown().await;
        info!("Exiting from ldirectord");
    }
}

/// `first` and whatever else is already waiting on `receiver`, at most
/// `limit` items in all, without waiting for more: the event loop's burst.
pub fn take_pending<T>(
    first: T,
    receiver: &mut tokio::sync::mpsc::UnboundedReceiver<T>,
    limit: usize,
) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < limit {
        match receiver.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    batch
}

/// The `execute=` lines' config names.
fn execute_configs(config: &Config) -> Vec<String> {
    config
        .global
        .execute
        .iter()
        .map(|e| e.value.clone())
        .collect()
}

/// A digest of the file's bytes (None when unreadable), to tell a real
/// change from a touch.
fn file_digest(path: &Path) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

fn snapshot(shared: &Arc<Mutex<Shared>>, config_name: &str) -> StatusReport {
    let shared = shared.lock().unwrap_or_else(|p| p.into_inner());
    shared
        .state
        .report(shared.daemon_state, config_name, &shared.reload_errors)
}

/// Runs `fallbackcommand` (or similar) with one argument, detached, as
/// ldirectord does with `system_wrapper`; its outcome is only logged.
fn run_command(command: &str, arg: &str) {
    let line = format!("{command} {arg}");
    match std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .spawn()
    {
        Ok(mut child) => {
            info!("Running fallbackcommand: {line}");
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(e) => error!("cannot run {line}: {e}"),
    }
}

fn op_service(op: &Op) -> ServiceKey {
    match op {
        Op::AddService(s) | Op::EditService(s) => s.key,
        Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _, _) => *k,
    }
}

fn to_ipvs(op: &Op) -> IpvsOp {
    match op {
        Op::AddService(s) => IpvsOp::AddService(s.clone()),
        Op::EditService(s) => IpvsOp::EditService(s.clone()),
        Op::DelService(k) => IpvsOp::DeleteService(*k),
        Op::AddDest(k, d) => IpvsOp::AddDestination {
            service: *k,
            dest: d.clone(),
        },
        Op::EditDest(k, d) => IpvsOp::EditDestination {
            service: *k,
            dest: d.clone(),
        },
        Op::DelDest(k, a, p) => IpvsOp::DeleteDestination {
            service: *k,
            addr: *a,
            port: *p,
        },
    }
}

/// ldirectord's wording for what an operation does.
fn describe(op: &Op, fallbacks: &[(ServiceKey, std::net::IpAddr, u16)]) -> String {
    let tag = |k: &ServiceKey, a: &std::net::IpAddr, p: u16| {
        if fallbacks
            .iter()
            .any(|(fk, fa, fp)| fk == k && fa == a && *fp == p)
        {
            "fallback"
        } else {
            "real"
        }
    };
    match op {
        Op::AddDest(k, d) if d.weight == 0 => format!(
            "Readd Quiescent {} server: {} ({k}) (Weight set to 0)",
            tag(k, &d.addr, d.port),
            addr_port(d.addr, d.port)
        ),
        Op::AddDest(k, d) => format!(
            "Added {} server: {} ({k}) (Weight set to {})",
            tag(k, &d.addr, d.port),
            addr_port(d.addr, d.port),
            d.weight
        ),
        Op::EditDest(k, d) if d.weight == 0 => format!(
            "Quiescent {} server: {} ({k}) (Weight set to 0)",
            tag(k, &d.addr, d.port),
            addr_port(d.addr, d.port)
        ),
        Op::EditDest(k, d) => format!(
            "Restored {} server: {} ({k}) (Weight set to {})",
            tag(k, &d.addr, d.port),
            addr_port(d.addr, d.port),
            d.weight
        ),
        Op::DelDest(k, a, p) => format!(
            "Deleted {} server: {} ({k})",
            tag(k, a, *p),
            addr_port(*a, *p)
        ),
        Op::AddService(s) => format!(
            "Added virtual server: {} (scheduler {})",
            s.key, s.scheduler
        ),
        Op::EditService(s) => format!(
            "Updated virtual server: {} (scheduler {})",
            s.key, s.scheduler
        ),
        Op::DelService(k) => format!("Deleted virtual server: {k}"),
    }
}

/// `autoreload=yes`: inotify on the config file's directory (editors
/// replace files by rename, so watching the file itself loses track).
struct ConfigWatcher {
    inner: Option<(tokio::io::unix::AsyncFd<InotifyFd>, std::ffi::OsString)>,
}

impl ConfigWatcher {
    fn new(path: &Path, enabled: bool) -> Self {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        if !enabled {
            return ConfigWatcher { inner: None };
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).and_then(|i| {
            i.add_watch(
                dir,
                AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_MOVED_TO
                    | AddWatchFlags::IN_CREATE,
            )
            .map(|_| i)
        });
        match inotify.map_err(std::io::Error::from).and_then(|i| {
            // SAFETY: InotifyFd owns the descriptor for its whole life and
            // always returns the same one.
            unsafe { tokio::io::unix::AsyncFd::register(InotifyFd(i)) }
                .map_err(std::io::Error::from)
        }) {
            Ok(fd) => ConfigWatcher {
                inner: Some((fd, name)),
            },
            Err(e) => {
                warn!("autoreload: cannot watch {}: {e}", dir.display());
                ConfigWatcher { inner: None }
            }
        }
    }

    /// Resolves when the config file was written or replaced.
    async fn changed(&mut self) {
        let Some((fd, name)) = self.inner.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut guard) = fd.readable_mut().await else {
                return std::future::pending().await;
            };
            match guard.get_inner().0.read_events() {
                Ok(events) => {
                    guard.clear_ready();
                    if events
                        .iter()
                        .any(|e| e.name.as_deref() == Some(name.as_os_str()))
                    {
                        // Let the writer finish a burst of writes.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        while guard_drain(fd) {}
                        return;
                    }
                }
                Err(_) => guard.clear_ready(),
            }
        }
    }
}

fn guard_drain(fd: &tokio::io::unix::AsyncFd<InotifyFd>) -> bool {
    fd.get_ref()
        .0
        .read_events()
        .map(|e| !e.is_empty())
        .unwrap_or(false)
}

/// tokio's AsyncFd wants AsRawFd; nix's Inotify offers AsFd.
struct InotifyFd(nix::sys::inotify::Inotify);

impl std::os::fd::AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

/// `status --verify-kernel`: every virtual service the director manages
/// (`keys`) must be in the kernel's table. 0 when it is, 1 with the reason
/// on stderr if not.
pub fn verify_kernel(keys: &[ServiceKey]) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        let ipvs = match IpvsHandle::connect().await {
            Ok(h) => h,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        let kernel = match ipvs.services().await {
            Ok(k) => k,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        for key in keys {
            if !kernel.iter().any(|e| e.service.key == *key) {
                eprintln!("virtual service {key} is missing from the kernel's IPVS table");
                return 1;
            }
        }
        debug!("kernel table holds every configured virtual service");
        0
    })
}

#[cfg(test)]
mod tests {
    use super::take_pending;

    #[test]
    fn take_pending_takes_what_waits_up_to_the_limit() {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        for i in 1..=5 {
            sender.send(i).unwrap();
        }
        assert_eq!(take_pending(0, &mut receiver, 4), vec![0, 1, 2, 3]);
        // Nothing is lost: the rest waits for the next round.
        assert_eq!(take_pending(9, &mut receiver, 100), vec![9, 4, 5]);
        // An empty channel: just the first, no waiting.
        assert_eq!(take_pending(7, &mut receiver, 100), vec![7]);
        drop(sender);
        assert_eq!(take_pending(8, &mut receiver, 100), vec![8]);
    }
}
