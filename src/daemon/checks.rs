// SPDX-License-Identifier: GPL-2.0-or-later
//! From check results to the director's world: a result is about a
//! distinct check ([`SpecId`]); the director keys health by real within a
//! service ([`RealKey`]). One result fans out to every real that shares it.

use std::collections::HashMap;
use std::time::Duration;

use crate::check::from_config::{CheckPlan, Member, PlannedCheck};
use crate::check::scheduler::CheckResult;
use crate::config::{CheckType, Config, Virtual};
use crate::director::managed::{kernel_port, service_key, RealKey};
use crate::director::state::Observation;
use crate::ipvs::ServiceKey;

/// ldirectord's description of a virtual's check (`negotiate:http`).
pub fn check_label(v: &Virtual) -> String {
    match v.checktype() {
        CheckType::Negotiate => format!("negotiate:{}", v.service),
        CheckType::Combined(n) => format!("combined({n}):{}", v.service),
        CheckType::External | CheckType::ExternalPerl => {
            format!("{}:{}", v.checktype().as_str(), v.checkcommand())
        }
        other => other.as_str().to_owned(),
    }
}

/// Check labels per managed service (foldhash: built at every reload).
pub fn labels(config: &Config) -> HashMap<ServiceKey, String, foldhash::fast::RandomState> {
    config
        .virtuals
        .iter()
        .map(|v| (service_key(v), check_label(v)))
        .collect()
}

/// The director's key for one member of a check.
pub fn member_key(config: &Config, member: &Member) -> Option<RealKey> {
    let v = config.virtuals.get(member.virtual_index)?;
    let real = v.reals.get(member.real_index)?;
    let service = service_key(v);
    Some(RealKey {
        service,
        addr: member.real.ip(),
        port: kernel_port(&service, real.forward, member.real.port()),
    })
}

/// Every real key the plan checks.
pub fn planned_keys(config: &Config, plan: &CheckPlan) -> Vec<RealKey> {
    plan.checks
        .iter()
        .flat_map(|c| c.members.iter())
        .filter_map(|m| member_key(config, m))
        .collect()
}

/// The observations one result stands for.
/// `check` is the planned check `result` came from (None: a check of an
/// earlier plan, which stands for nothing now).
pub fn observations(
    config: &Config,
    check: Option<&PlannedCheck>,
    result: &CheckResult,
) -> Vec<Observation> {
    let Some(check) = check else {
        return Vec::new();
    };
    let reason = match &result.outcome {
        Ok(()) => "check succeeded".to_owned(),
        Err(error) => error.to_string(),
    };
    check
        .members
        .iter()
        .filter_map(|m| member_key(config, m))
        .map(|key| Observation {
            key,
            success: result.is_up(),
            reason: reason.clone(),
            latency_ms: result.latency.as_secs_f64() * 1000.0,
            at: result.at,
        })
        .collect()
}

/// How long the daemon waits for a first result from every real before
/// it reports ready: the slowest check's budget plus scheduling slack
/// (first runs are spread over the interval).
pub fn first_round_budget(plan: &CheckPlan) -> Duration {
    plan.checks
        .iter()
        .map(|c| c.spec.probe_budget() + c.interval)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(2)
}
