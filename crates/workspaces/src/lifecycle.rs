//! Background loops of the workspace area: the lifecycle executor (autostart/autostop,
//! 04 §6.12) and the hung-job detector (§6.5). Both are idempotent ticks driven by a runner
//! in the binary, safe to run on several replicas (the store takes the advisory locks).

use crate::model::{AutomaticUpdates, BuildReason, JobStatus, Transition};
use crate::service::{CreateBuild, Workspaces};
use crate::store::WorkspaceStore;
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::rbac::Subject;
use hangar_core::{Clock, StoreError};
use hangar_identity::service::Caller;
use hangar_identity::{ApiKey, ApiKeyScope, LoginType, User, UserStatus};
use uuid::Uuid;

/// A running job without updates for this long is hung.
pub const HUNG_AFTER: TimeDelta = TimeDelta::minutes(5);
pub const HUNG_ERROR: &str =
    "Build has been detected as hung. No updates have been received for 5 minutes.";

/// The next instant of an autostart schedule (`[CRON_TZ=<zone> ]<min> <hour> * * <dow>`)
/// after `after`, or `None` when the schedule does not parse.
pub fn next_start(schedule: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (tz, body) = match schedule.strip_prefix("CRON_TZ=") {
        Some(rest) => {
            let (zone, body) = rest.split_once(' ')?;
            (zone.parse::<chrono_tz::Tz>().ok()?, body)
        }
        None => (chrono_tz::UTC, schedule),
    };
    let cron = croner::Cron::new(body).parse().ok()?;
    let local = after.with_timezone(&tz);
    cron.find_next_occurrence(&local, false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What one lifecycle pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LifecycleReport {
    pub autostarted: Vec<Uuid>,
    pub autostopped: Vec<Uuid>,
    pub errors: usize,
}

/// The lifecycle executor acts for the owner but with the system subject (04 §6.12).
fn system_caller(owner: Uuid, now: DateTime<Utc>) -> Caller {
    Caller {
        subject: Subject::System("lifecycle-executor"),
        user: User {
            id: owner,
            email: String::new(),
            username: String::new(),
            name: String::new(),
            avatar_url: String::new(),
            hashed_password: vec![],
            created_at: now,
            updated_at: now,
            last_seen_at: now,
            status: UserStatus::Active,
            rbac_roles: vec![],
            login_type: LoginType::None,
            deleted: false,
            is_system: false,
        },
        key: ApiKey {
            id: String::new(),
            hashed_secret: vec![],
            user_id: owner,
            last_used: now,
            expires_at: now,
            created_at: now,
            updated_at: now,
            login_type: LoginType::None,
            lifetime_seconds: 0,
            ip_address: String::new(),
            scope: ApiKeyScope::All,
            token_name: String::new(),
        },
    }
}

impl<S: WorkspaceStore, C: Clock + ?Sized> Workspaces<S, C> {
    /// One pass of the lifecycle executor. An error on one workspace is logged and counted;
    /// the pass goes on.
    pub async fn lifecycle_tick(&self) -> Result<LifecycleReport, StoreError> {
        let now = self.now();
        let mut report = LifecycleReport::default();
        let Some(candidates) = self.store().lifecycle_candidates(now).await? else {
            return Ok(report); // another replica holds the lock
        };
        for id in candidates {
            let row = match self.workspace_row(id).await {
                Ok(r) => r,
                Err(_) => continue,
            };
            let Some(latest) = row.latest_build.as_ref() else {
                continue;
            };
            if latest.job.job.status != JobStatus::Succeeded {
                continue;
            }
            let ws = &row.workspace;
            let caller = system_caller(ws.owner_id, now);
            let (transition, reason) = match latest.build.transition {
                Transition::Start
                    if latest.build.deadline > hangar_core::clock::never()
                        && latest.build.deadline <= now =>
                {
                    (Transition::Stop, BuildReason::Autostop)
                }
                Transition::Stop if ws.next_start_at.is_some_and(|t| t <= now) => {
                    (Transition::Start, BuildReason::Autostart)
                }
                _ => continue,
            };
            let version = (transition == Transition::Start
                && (ws.automatic_updates == AutomaticUpdates::Always
                    || row.template.require_active_version))
                .then_some(row.template.active_version_id);
            let req = CreateBuild {
                transition,
                template_version_id: version,
                rich_parameter_values: vec![],
                orphan: false,
                log_level: None,
                reason,
            };
            let outcome = self.create_build(&caller, ws, req).await;
            let reason_label = if reason == BuildReason::Autostart {
                "autostart"
            } else {
                "autostop"
            };
            let result = if outcome.is_ok() { "ok" } else { "error" };
            self.metrics().inc(
                crate::metrics::LIFECYCLE_BUILDS_TOTAL,
                &[("reason", reason_label), ("result", result)],
            );
            match outcome {
                Ok(_) => {
                    if reason == BuildReason::Autostart {
                        let next = ws
                            .autostart_schedule
                            .as_deref()
                            .and_then(|s| next_start(s, now));
                        self.store()
                            .set_autostart(ws.id, ws.autostart_schedule.clone(), next, now)
                            .await?;
                        report.autostarted.push(ws.id);
                    } else {
                        report.autostopped.push(ws.id);
                    }
                }
                Err(e) => {
                    tracing::warn!(workspace_id = %ws.id, error = %e, "lifecycle build failed");
                    report.errors += 1;
                }
            }
        }
        Ok(report)
    }

    /// One pass of the hung-job detector; returns the jobs it failed.
    pub async fn hung_jobs_tick(
        &self,
        force_cancel_after: TimeDelta,
    ) -> Result<Vec<Uuid>, StoreError> {
        let now = self.now();
        let failed = self
            .store()
            .fail_hung_jobs(now - HUNG_AFTER, now - force_cancel_after, HUNG_ERROR, now)
            .await?;
        self.metrics()
            .add(crate::metrics::HUNG_JOBS_TOTAL, &[], failed.len() as f64);
        Ok(failed)
    }

    /// Refreshes the queue gauges (pending jobs, daemons by status) from the database.
    pub async fn refresh_queue_gauges(&self) -> Result<(), StoreError> {
        let stale_before = self.now() - crate::rules::STALE_DAEMON;
        let s = self.store().provisioner_stats(stale_before).await?;
        let m = self.metrics();
        m.set(crate::metrics::JOBS_PENDING, &[], s.pending_jobs as f64);
        for (status, n) in [
            ("idle", s.idle_daemons),
            ("busy", s.busy_daemons),
            ("offline", s.offline_daemons),
        ] {
            m.set(crate::metrics::DAEMONS, &[("status", status)], n as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let t: DateTime<Utc> = "2024-01-01T08:00:00Z".parse().unwrap(); // a Monday
        assert_eq!(
            next_start("30 9 * * 1-5", t).unwrap().to_rfc3339(),
            "2024-01-01T09:30:00+00:00"
        );
        let paris = next_start("CRON_TZ=Europe/Paris 30 9 * * 1-5", t).unwrap();
        assert_eq!(paris.to_rfc3339(), "2024-01-01T08:30:00+00:00");
        assert!(next_start("CRON_TZ=Nowhere/Else 30 9 * * *", t).is_none());
    }
}
