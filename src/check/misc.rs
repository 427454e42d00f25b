// SPDX-License-Identifier: GPL-2.0-or-later
//! The check types without a protocol of their own: `on`, `off`,
//! `service=none`, the combined `checktype=N`, and a checker that reports
//! why a spec could not be built.

use std::sync::atomic::{AtomicU32, Ordering};

use futures::future::BoxFuture;

use super::{CheckError, CheckTarget, Checker};

/// `checktype=on` and `service=none`: always up.
pub struct OnChecker;

impl Checker for OnChecker {
    fn name(&self) -> &'static str {
        "on"
    }

    fn check<'a>(&'a self, _target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async { Ok(()) })
    }
}

/// `checktype=off`: nothing is ever brought up.
pub struct OffChecker;

impl Checker for OffChecker {
    fn name(&self) -> &'static str {
        "off"
    }

    fn check<'a>(&'a self, _target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async { Err(CheckError::Other("checktype is off".into())) })
    }
}

/// A spec that cannot be probed (bad receive regex, service not available):
/// every check fails with the same reason, so the operator sees why.
pub struct BrokenChecker {
    name: &'static str,
    error: CheckError,
}

impl BrokenChecker {
    pub fn new(name: &'static str, error: CheckError) -> Self {
        BrokenChecker { name, error }
    }
}

impl Checker for BrokenChecker {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check<'a>(&'a self, _target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        let error = self.error.clone();
        Box::pin(async move { Err(error) })
    }
}

/// `checktype=N`: a negotiate first, then N connects, then a negotiate
/// again; a failed connect forces the next check to be a negotiate, and a
/// failed negotiate is retried as a negotiate (ldirectord `num_connects`).
///
/// The counter lives in the checker, which the scheduler keeps for as long
/// as the spec is unchanged, so the rhythm survives a reload.
pub struct CombinedChecker {
    connects: u32,
    connects_done: AtomicU32,
    connect: Box<dyn Checker>,
    negotiate: Box<dyn Checker>,
}

/// "Negotiate next" marker, as ldirectord's 999999.
const NEGOTIATE_NEXT: u32 = u32::MAX;

impl CombinedChecker {
    pub fn new(connects: u32, connect: Box<dyn Checker>, negotiate: Box<dyn Checker>) -> Self {
        CombinedChecker {
            connects,
            connects_done: AtomicU32::new(NEGOTIATE_NEXT),
            connect,
            negotiate,
        }
    }

    /// True when the next check will be a negotiate.
    pub fn negotiates_next(&self) -> bool {
        self.connects_done.load(Ordering::Relaxed) >= self.connects
    }
}

impl Checker for CombinedChecker {
    fn name(&self) -> &'static str {
        "combined"
    }

    fn check<'a>(&'a self, target: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
        Box::pin(async move {
            if self.negotiates_next() {
                let result = self.negotiate.check(target).await;
                if result.is_ok() {
                    self.connects_done.store(0, Ordering::Relaxed);
                }
                result
            } else {
                let result = self.connect.check(target).await;
                if result.is_ok() {
                    self.connects_done.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.connects_done.store(NEGOTIATE_NEXT, Ordering::Relaxed);
                }
                result
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records which checker ran and answers from a script.
    struct Scripted {
        label: &'static str,
        log: Arc<Mutex<Vec<&'static str>>>,
        answers: Mutex<Vec<bool>>,
    }

    impl Checker for Scripted {
        fn name(&self) -> &'static str {
            self.label
        }

        fn check<'a>(&'a self, _t: &'a CheckTarget) -> BoxFuture<'a, Result<(), CheckError>> {
            self.log.lock().unwrap().push(self.label);
            let ok = self.answers.lock().unwrap().pop().unwrap_or(true);
            Box::pin(async move {
                if ok {
                    Ok(())
                } else {
                    Err(CheckError::Refused)
                }
            })
        }
    }

    fn target() -> CheckTarget {
        CheckTarget {
            addr: "127.0.1.1:80".parse().unwrap(),
            virtual_addr: None,
            virtual_port: 0,
            real_port: 80,
        }
    }

    fn combined(
        connects: u32,
        connect_answers: Vec<bool>,
        negotiate_answers: Vec<bool>,
    ) -> (CombinedChecker, Arc<Mutex<Vec<&'static str>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        // Answers are popped from the end: reverse so they read in order.
        let scripted = |label, mut answers: Vec<bool>| {
            answers.reverse();
            Box::new(Scripted {
                label,
                log: log.clone(),
                answers: Mutex::new(answers),
            })
        };
        let checker = CombinedChecker::new(
            connects,
            scripted("C", connect_answers),
            scripted("N", negotiate_answers),
        );
        (checker, log)
    }

    #[tokio::test]
    async fn negotiate_then_n_connects_then_negotiate() {
        let (checker, log) = combined(2, vec![], vec![]);
        for _ in 0..7 {
            checker.check(&target()).await.unwrap();
        }
        assert_eq!(*log.lock().unwrap(), ["N", "C", "C", "N", "C", "C", "N"]);
    }

    #[tokio::test]
    async fn failed_connect_forces_a_negotiate() {
        let (checker, log) = combined(3, vec![true, false, true], vec![true, true]);
        for _ in 0..5 {
            let _ = checker.check(&target()).await;
        }
        assert_eq!(*log.lock().unwrap(), ["N", "C", "C", "N", "C"]);
    }

    #[tokio::test]
    async fn failed_negotiate_is_retried_as_negotiate() {
        let (checker, log) = combined(1, vec![], vec![false, false, true]);
        for _ in 0..4 {
            let _ = checker.check(&target()).await;
        }
        assert_eq!(*log.lock().unwrap(), ["N", "N", "N", "C"]);
    }

    #[tokio::test]
    async fn on_off_and_broken() {
        assert_eq!(OnChecker.check(&target()).await, Ok(()));
        let off = OffChecker.check(&target()).await.unwrap_err();
        assert_eq!(off.to_string(), "checktype is off");
        let broken =
            BrokenChecker::new("x", CheckError::Other("service smtp not built yet".into()));
        assert_eq!(
            broken.check(&target()).await.unwrap_err().to_string(),
            "service smtp not built yet"
        );
    }
}
