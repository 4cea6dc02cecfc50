//! Queries of the background loops (04 §6.5, §6.12), each guarded on PostgreSQL by its
//! advisory lock so several replicas never do the same pass twice.

use crate::Db;
use chrono::{DateTime, Utc};
use hangar_core::{PREBUILDS_SYSTEM_USER_ID, StoreError, locks};
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

impl Db {
    /// Takes a transaction-scoped advisory lock; `false` when another session holds it.
    /// SQLite has one replica, so it always "gets" it.
    pub(crate) async fn try_xact_lock(&self, tx: &crate::Tx, id: i64) -> R<bool> {
        let c = &self.ctx;
        if !c.is_postgres() {
            return Ok(true);
        }
        let row = c
            .one(
                &tx,
                &format!("SELECT pg_try_advisory_xact_lock({id}) AS got"),
                vec![],
            )
            .await?;
        Ok(row.map(|r| r.bool("got")).transpose()?.unwrap_or(false))
    }

    pub(crate) async fn lifecycle_candidates_impl(
        &self,
        now: DateTime<Utc>,
    ) -> R<Option<Vec<Uuid>>> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        if !self
            .try_xact_lock(&tx, locks::WORKSPACE_LIFECYCLE_EXECUTOR)
            .await?
        {
            return Ok(None);
        }
        let rows = c
            .all(
                &tx,
                "SELECT w.id FROM workspaces w \
                   JOIN workspace_builds b ON b.id = (SELECT b2.id FROM workspace_builds b2 WHERE b2.workspace_id = w.id \
                     ORDER BY b2.build_number DESC LIMIT 1) \
                   JOIN provisioner_jobs j ON j.id = b.job_id \
                 WHERE w.deleted = FALSE AND w.owner_id <> $1 AND j.job_status = 'succeeded'::provisioner_job_status \
                   AND ((b.transition = 'start'::workspace_transition AND b.deadline > $2 AND b.deadline <= $3) \
                     OR (b.transition = 'stop'::workspace_transition AND w.next_start_at IS NOT NULL AND w.next_start_at <= $3)) \
                 ORDER BY w.id",
                vec![c.uuid(PREBUILDS_SYSTEM_USER_ID), c.ts(hangar_core::clock::never()), c.ts(now)],
            )
            .await?;
        let ids = rows.iter().map(|r| r.uuid("id")).collect::<R<Vec<_>>>()?;
        tx.commit().await?;
        Ok(Some(ids))
    }

    pub(crate) async fn provisioner_stats_impl(
        &self,
        stale_before: DateTime<Utc>,
    ) -> R<hangar_workspaces::store::ProvisionerStats> {
        let c = &self.ctx;
        let mut stats = hangar_workspaces::store::ProvisionerStats {
            pending_jobs: c
                .one(
                    &self.conn,
                    "SELECT COUNT(*) AS n FROM provisioner_jobs WHERE job_status = 'pending'::provisioner_job_status",
                    vec![],
                )
                .await?
                .map(|r| r.i64("n"))
                .transpose()?
                .unwrap_or(0),
            ..Default::default()
        };
        let rows = c
            .all(
                &self.conn,
                "SELECT s.status, COUNT(*) AS n FROM (SELECT CASE \
                     WHEN d.last_seen_at IS NULL OR d.last_seen_at < $1 THEN 'offline' \
                     WHEN EXISTS (SELECT 1 FROM provisioner_jobs j WHERE j.worker_id = d.id \
                       AND j.job_status IN ('running'::provisioner_job_status, 'canceling'::provisioner_job_status)) THEN 'busy' \
                     ELSE 'idle' END AS status FROM provisioner_daemons d) s \
                 GROUP BY s.status",
                vec![c.ts(stale_before)],
            )
            .await?;
        for r in rows {
            let n = r.i64("n")?;
            match r.string("status")?.as_str() {
                "offline" => stats.offline_daemons = n,
                "busy" => stats.busy_daemons = n,
                _ => stats.idle_daemons = n,
            }
        }
        Ok(stats)
    }

    pub(crate) async fn fail_hung_jobs_impl(
        &self,
        hung_before: DateTime<Utc>,
        cancel_before: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> R<Vec<Uuid>> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        if !self
            .try_xact_lock(&tx, locks::HUNG_PROVISIONER_JOBS)
            .await?
        {
            return Ok(vec![]);
        }
        let rows = c
            .all(
                &tx,
                "SELECT id, job_status::text AS job_status FROM provisioner_jobs \
                 WHERE (job_status = 'running'::provisioner_job_status AND updated_at < $1) \
                    OR (job_status = 'canceling'::provisioner_job_status AND updated_at < $2)",
                vec![c.ts(hung_before), c.ts(cancel_before)],
            )
            .await?;
        let mut failed = vec![];
        for r in rows {
            let id = r.uuid("id")?;
            let canceling = r.string("job_status")? == "canceling";
            let err = if canceling {
                None
            } else {
                Some(error.to_string())
            };
            c.exec(
                &tx,
                "UPDATE provisioner_jobs SET completed_at = $1, updated_at = $1, error = $2 WHERE id = $3",
                vec![c.ts(now), c.opt_text(err), c.uuid(id)],
            )
            .await?;
            if !canceling {
                c.exec(
                    &tx,
                    "INSERT INTO provisioner_job_logs (job_id, created_at, source, level, stage, output) \
                     VALUES ($1, $2, 'provisioner_daemon'::log_source, 'error'::log_level, 'Cleaning Up', $3)",
                    vec![c.uuid(id), c.ts(now), c.text(error)],
                )
                .await?;
            }
            // The build keeps the previous build's state (state is never lost).
            c.exec(
                &tx,
                "UPDATE workspace_builds SET provisioner_state = (SELECT p.provisioner_state FROM workspace_builds p \
                   WHERE p.workspace_id = workspace_builds.workspace_id AND p.build_number = workspace_builds.build_number - 1) \
                 WHERE job_id = $1 AND provisioner_state IS NULL",
                vec![c.uuid(id)],
            )
            .await?;
            failed.push(id);
        }
        tx.commit().await?;
        Ok(failed)
    }
}
