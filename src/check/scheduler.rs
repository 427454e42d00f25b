// SPDX-License-Identifier: GPL-2.0-or-later
//! Runs every distinct check of a [`CheckPlan`] concurrently, each on its
//! own interval, and publishes every result on a channel.
//!
//! - **One task per distinct check.** A real shared by several virtuals
//!   with the same check is probed once per interval; the daemon fans the
//!   result out with [`PlannedCheck::members`].
//! - **Nothing waits for anything else.** Each task probes its real, waits
//!   for its next tick, and probes again; a hung real costs its own task
//!   and nothing more. A probe is bounded by the checker's own timeout and,
//!   as a last resort, by the spec's budget plus a second.
//! - **A check never overlaps itself.** The next probe of a check starts
//!   only after the previous one finished: a probe still running at its
//!   next due time delays that tick (the result reports how late it
//!   started) and the ticks it overran are skipped, never queued. So at
//!   most one probe per distinct check is in flight, and memory stays
//!   bounded by the number of checks however starved the runtime is.
//! - **Spread out.** A check's first run is at an offset within its
//!   interval taken from its id (a hash), so thousands of checks do not
//!   fire at once, and the offset is the same after a reload.
//! - **Reload keeps what did not change.** [`Scheduler::apply`] leaves
//!   running the tasks whose spec and interval are unchanged (a combined
//!   check keeps its rhythm), stops the ones that are gone and starts the
//!   new ones.
//!
//! ```no_run
//! # async fn demo(config: ldirector::config::Config) {
//! use ldirector::check::from_config::CheckPlan;
//! use ldirector::check::scheduler::Scheduler;
//!
//! let (mut scheduler, mut results) = Scheduler::new();
//! scheduler.apply(&CheckPlan::from_config(&config));
//! while let Some(result) = results.recv().await {
//!     println!("{} up={} {:?}", result.id, result.outcome.is_ok(), result.latency);
//! }
//! # }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::from_config::{CheckPlan, PlannedCheck, SpecId};
use super::{build_checker, CheckError, CheckSpec, Checker};

/// Builds the checker a task runs ([`build_checker`] in production; tests
/// substitute probes whose timing they control).
type CheckerFactory = Arc<dyn Fn(&CheckSpec) -> Box<dyn Checker> + Send + Sync>;

/// Extra time a probe gets beyond its spec's budget before the scheduler
/// gives up on it (the checker's own timeout should have fired first).
const LAST_RESORT_GRACE: Duration = Duration::from_secs(1);

/// One probe's result.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    /// Which check ([`PlannedCheck::id`]).
    pub id: SpecId,
    /// Up, or down with the reason.
    pub outcome: Result<(), CheckError>,
    /// How long the probe took.
    pub latency: Duration,
    /// When the probe finished (wall clock, for status output).
    pub at: SystemTime,
    /// How late the probe started against its schedule (runtime lag).
    pub late_by: Duration,
}

impl CheckResult {
    pub fn is_up(&self) -> bool {
        self.outcome.is_ok()
    }
}

struct Running {
    interval: Duration,
    spec: Arc<CheckSpec>,
    stop: CancellationToken,
}

/// The set of running checks. Create it inside a tokio runtime.
pub struct Scheduler {
    running: HashMap<SpecId, Running>,
    results: mpsc::UnboundedSender<CheckResult>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    build: CheckerFactory,
    /// Where the check tasks run: the caller's runtime, or one of their own
    /// ([`Scheduler::on_runtime`]).
    runtime: tokio::runtime::Handle,
}

impl Scheduler {
    /// A scheduler with no checks, and the receiving end of its results.
    ///
    /// The channel is unbounded so a slow consumer never delays a probe;
    /// it holds at most a few results per check if the consumer keeps up
    /// with one result per check per interval.
    pub fn new() -> (Scheduler, mpsc::UnboundedReceiver<CheckResult>) {
        Scheduler::with_factory(Arc::new(build_checker))
    }

    /// As [`Scheduler::new`], with the check tasks on `runtime`. The daemon
    /// gives its checks a runtime of their own, so that thousands of check
    /// tasks never queue ahead of its event loop, the IPVS socket or the
    /// control socket: a real's weight reaches the kernel as soon as its
    /// result is in, however busy the checks are.
    pub fn on_runtime(
        runtime: tokio::runtime::Handle,
    ) -> (Scheduler, mpsc::UnboundedReceiver<CheckResult>) {
        let (mut scheduler, receiver) = Scheduler::new();
        scheduler.runtime = runtime;
        (scheduler, receiver)
    }

    fn with_factory(build: CheckerFactory) -> (Scheduler, mpsc::UnboundedReceiver<CheckResult>) {
        let (results, receiver) = mpsc::unbounded_channel();
        let scheduler = Scheduler {
            running: HashMap::new(),
            results,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            build,
            runtime: tokio::runtime::Handle::current(),
        };
        (scheduler, receiver)
    }

    /// Makes the running checks those of `plan`: unchanged ones keep
    /// running, removed ones stop, new ones start (each at its offset
    /// within its interval).
    pub fn apply(&mut self, plan: &CheckPlan) {
        let wanted: HashMap<SpecId, &PlannedCheck> =
            plan.checks.iter().map(|check| (check.id, check)).collect();
        self.running.retain(|id, running| {
            let keep = wanted.get(id).is_some_and(|check| {
                check.interval == running.interval && check.spec == running.spec
            });
            if !keep {
                running.stop.cancel();
            }
            keep
        });
        for check in &plan.checks {
            if self.running.contains_key(&check.id) {
                continue;
            }
            let stop = self.shutdown.child_token();
            self.tracker.spawn_on(
                run_check(
                    check.id,
                    check.spec.clone(),
                    self.build.clone(),
                    check.interval,
                    first_offset(check.id, check.interval),
                    self.results.clone(),
                    stop.clone(),
                ),
                &self.runtime,
            );
            self.running.insert(
                check.id,
                Running {
                    interval: check.interval,
                    spec: check.spec.clone(),
                    stop,
                },
            );
        }
    }

    /// How many distinct checks are running.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Stops every check and waits until their tasks (and any external
    /// check programs they started) are gone.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Where in its interval a check first runs: spread evenly by its id (a
/// hash), and the same across reloads.
fn first_offset(id: SpecId, interval: Duration) -> Duration {
    let millis = interval.as_millis().max(1);
    Duration::from_millis((u128::from(id.0) % millis) as u64)
}

async fn run_check(
    id: SpecId,
    spec: Arc<CheckSpec>,
    build: CheckerFactory,
    interval: Duration,
    offset: Duration,
    results: mpsc::UnboundedSender<CheckResult>,
    stop: CancellationToken,
) {
    // Built inside the task, not in `apply`: a reload that starts
    // thousands of checks returns at once and the builds spread out.
    let checker = build(&spec);
    drop(build);
    let budget = spec.probe_budget() + LAST_RESORT_GRACE;
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, interval);
    // A probe that overran its interval is followed at once by one late
    // probe, then the schedule resumes; the ticks it overran are dropped,
    // not caught up in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // One probe at a time: the probe is awaited here, before the next
    // tick is even asked for.
    loop {
        let scheduled = tokio::select! {
            _ = stop.cancelled() => return,
            tick = ticks.tick() => tick,
        };
        let began = Instant::now();
        let probe = tokio::time::timeout(budget, checker.check(&spec.target));
        let outcome = tokio::select! {
            // Dropping the probe closes its sockets and kills an external
            // check's process group (kill_on_drop).
            _ = stop.cancelled() => return,
            outcome = probe => outcome.unwrap_or(Err(CheckError::Timeout(budget))),
        };
        let result = CheckResult {
            id,
            outcome,
            latency: began.elapsed(),
            at: SystemTime::now(),
            late_by: began.saturating_duration_since(scheduled),
        };
        if results.send(result).is_err() {
            return; // nobody listens any more
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::from_config::Member;
    use crate::check::spec::CheckKind;
    use std::net::SocketAddr;

    fn planned(kind: CheckKind, addr: &str, interval_ms: u64, id: u64) -> PlannedCheck {
        let addr: SocketAddr = addr.parse().unwrap();
        PlannedCheck {
            id: SpecId(id),
            spec: Arc::new(CheckSpec::new(kind, addr)),
            interval: Duration::from_millis(interval_ms),
            members: vec![Member {
                virtual_index: 0,
                real_index: 0,
                real: addr,
                failurecount: 1,
            }],
        }
    }

    #[test]
    fn offsets_stay_inside_the_interval() {
        let interval = Duration::from_secs(10);
        for id in [0, 1, 9_999, 10_000, u64::MAX] {
            assert!(first_offset(SpecId(id), interval) < interval);
        }
        assert_eq!(
            first_offset(SpecId(12_345), interval),
            Duration::from_millis(2_345)
        );
    }

    // No sockets here (on/off checks), so paused time is safe.
    #[tokio::test(start_paused = true)]
    async fn each_check_runs_on_its_own_interval() {
        let plan = CheckPlan {
            checks: vec![
                planned(CheckKind::On, "127.0.3.1:80", 1_000, 1),
                planned(CheckKind::Off, "127.0.3.2:80", 3_000, 2),
            ],
        };
        let (mut scheduler, mut results) = Scheduler::new();
        scheduler.apply(&plan);
        tokio::time::sleep(Duration::from_millis(9_500)).await;
        let mut seen = Vec::new();
        while let Ok(result) = results.try_recv() {
            seen.push(result);
        }
        let on: Vec<_> = seen.iter().filter(|r| r.id == SpecId(1)).collect();
        let off: Vec<_> = seen.iter().filter(|r| r.id == SpecId(2)).collect();
        // id 1: offset 1 ms, then every second: 10 runs in 9.5 s.
        assert_eq!(on.len(), 10);
        assert!(on.iter().all(|r| r.is_up()));
        // id 2: offset 2 ms, every 3 s: 0, 3, 6, 9 s.
        assert_eq!(off.len(), 4);
        assert_eq!(
            off[0].outcome.as_ref().unwrap_err().to_string(),
            "checktype is off"
        );
        scheduler.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn apply_keeps_unchanged_stops_removed_starts_new() {
        let a = planned(CheckKind::On, "127.0.3.1:80", 1_000, 1);
        let b = planned(CheckKind::On, "127.0.3.2:80", 1_000, 2);
        let c = planned(CheckKind::On, "127.0.3.3:80", 1_000, 3);
        let (mut scheduler, mut results) = Scheduler::new();
        scheduler.apply(&CheckPlan {
            checks: vec![a.clone(), b],
        });
        assert_eq!(scheduler.len(), 2);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        scheduler.apply(&CheckPlan { checks: vec![a, c] });
        assert_eq!(scheduler.len(), 2);
        while results.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let mut ids = Vec::new();
        while let Ok(result) = results.try_recv() {
            ids.push(result.id.0);
        }
        assert!(ids.contains(&1) && ids.contains(&3), "{ids:?}");
        assert!(!ids.contains(&2), "removed check still runs: {ids:?}");
        // The kept task was not restarted: it runs once per second, so two
        // more runs in two seconds (a restart would add an extra one).
        assert_eq!(ids.iter().filter(|id| **id == 1).count(), 2);
        scheduler.shutdown().await;
    }

    /// A probe that sleeps (paused time) and records how many probes of
    /// it run at once.
    struct SlowChecker {
        takes: Duration,
        in_flight: Arc<std::sync::atomic::AtomicUsize>,
        most_at_once: Arc<std::sync::atomic::AtomicUsize>,
        started: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Checker for SlowChecker {
        fn name(&self) -> &'static str {
            "slow"
        }

        fn check<'a>(
            &'a self,
            _target: &'a crate::check::CheckTarget,
        ) -> futures::future::BoxFuture<'a, Result<(), CheckError>> {
            use std::sync::atomic::Ordering::SeqCst;
            Box::pin(async move {
                self.started.fetch_add(1, SeqCst);
                let now = self.in_flight.fetch_add(1, SeqCst) + 1;
                self.most_at_once.fetch_max(now, SeqCst);
                // Counted out on drop too: a probe cut short by its budget
                // is over as well.
                struct Done<'a>(&'a std::sync::atomic::AtomicUsize);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, SeqCst);
                    }
                }
                let _done = Done(&self.in_flight);
                tokio::time::sleep(self.takes).await;
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_overrunning_its_interval_never_overlaps_itself() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_at_once = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let factory: CheckerFactory = {
            let (in_flight, most_at_once, started) =
                (in_flight.clone(), most_at_once.clone(), started.clone());
            Arc::new(move |_spec: &CheckSpec| -> Box<dyn Checker> {
                Box::new(SlowChecker {
                    takes: Duration::from_millis(2_500),
                    in_flight: in_flight.clone(),
                    most_at_once: most_at_once.clone(),
                    started: started.clone(),
                })
            })
        };
        let (mut scheduler, mut results) = Scheduler::with_factory(factory);
        // Due every second, takes 2.5 s (within a connect check's 5 s
        // budget); id 0: first run at once.
        scheduler.apply(&CheckPlan {
            checks: vec![planned(CheckKind::Connect, "127.0.3.1:80", 1_000, 0)],
        });
        tokio::time::sleep(Duration::from_millis(10_100)).await;
        assert_eq!(
            most_at_once.load(SeqCst),
            1,
            "probes of one check overlapped"
        );
        // Back to back: starts at 0, 2.5, 5, 7.5 and 10 s, not one per
        // second (11 with piling up).
        assert_eq!(started.load(SeqCst), 5);
        let mut late = Vec::new();
        while let Ok(result) = results.try_recv() {
            late.push(result.late_by);
        }
        // Four finished; every probe after the first started late against
        // the tick it overran (1.5 s or 2 s late), none on time.
        assert_eq!(late.len(), 4, "{late:?}");
        assert_eq!(late[0], Duration::ZERO);
        assert!(
            late[1..]
                .iter()
                .all(|l| *l >= Duration::from_millis(1_500) && *l <= Duration::from_millis(2_000)),
            "{late:?}"
        );
        scheduler.shutdown().await;
    }
}
