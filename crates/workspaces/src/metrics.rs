//! The workspaces area's metrics (04 §7), recorded into the shared registry.

use hangar_core::metrics::{Kind, Registry};

pub const JOBS_CURRENT: &str = "coderd_provisionerd_jobs_current";
pub const JOB_TIMINGS: &str = "coderd_provisionerd_job_timings_seconds";
pub const BUILDS_TOTAL: &str = "coderd_workspace_builds_total";
pub const JOBS_PENDING: &str = "hangar_provisioner_jobs_pending";
pub const DAEMONS: &str = "hangar_provisioner_daemons";
pub const ACQUIRE_TOTAL: &str = "hangar_provisioner_acquire_total";
pub const HUNG_JOBS_TOTAL: &str = "hangar_provisioner_hung_jobs_total";
pub const LIFECYCLE_BUILDS_TOTAL: &str = "hangar_lifecycle_builds_total";

/// Declares every family so `/metrics` lists them before the first event.
pub fn declare(r: &Registry) {
    r.declare(
        JOBS_CURRENT,
        Kind::Gauge,
        "The number of jobs the built-in provisioner daemons of this replica are running.",
    );
    r.declare(
        JOB_TIMINGS,
        Kind::Histogram,
        "The time built-in provisioner daemons took to run jobs, by outcome.",
    );
    r.declare(
        BUILDS_TOTAL,
        Kind::Counter,
        "Workspace builds completed, by template, transition and status.",
    );
    r.declare(
        JOBS_PENDING,
        Kind::Gauge,
        "Provisioner jobs waiting for a daemon (refreshed every 15 s).",
    );
    r.declare(
        DAEMONS,
        Kind::Gauge,
        "Provisioner daemons by status: idle, busy, offline (refreshed every 15 s).",
    );
    r.declare(
        ACQUIRE_TOTAL,
        Kind::Counter,
        "Acquire attempts of built-in daemons by result: acquired or empty.",
    );
    r.declare(
        HUNG_JOBS_TOTAL,
        Kind::Counter,
        "Jobs the hung-job detector failed.",
    );
    r.declare(
        LIFECYCLE_BUILDS_TOTAL,
        Kind::Counter,
        "Builds the lifecycle executor started, by reason and result.",
    );
}
