//! The storage contract of the workspace area, implemented by `crates/db` on both backends.
//! Methods that change several rows are one transaction inside the store.

use crate::model::*;
use chrono::{DateTime, Utc};
use hangar_core::StoreError;
use std::future::Future;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

/// What a completed template import writes (04 §6.4).
#[derive(Debug, Clone)]
pub struct ImportResult {
    pub readme: String,
    pub has_ai_task: bool,
    pub resources: Vec<hangar_provisioner::model::Resource>,
    pub parameters: Vec<hangar_provisioner::model::Parameter>,
    pub variables: Vec<hangar_provisioner::model::Variable>,
}

/// What a completed workspace build writes (04 §6.4).
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub state: Vec<u8>,
    pub resources: Vec<hangar_provisioner::model::Resource>,
    /// The provisioner's app id of the AI task's sidebar app, when there is one task.
    pub ai_task_sidebar_app: Option<String>,
    pub has_ai_task: bool,
}

/// How a cancel request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Canceled,
    Canceling,
    AlreadyCompleted,
    AlreadyCanceled,
}

/// A daemon asking for work.
#[derive(Debug, Clone)]
pub struct AcquireRequest {
    pub daemon_id: Uuid,
    pub organization_id: Uuid,
    pub provisioners: Vec<ProvisionerType>,
    pub tags: Tags,
    pub now: DateTime<Utc>,
}

/// A daemon registering itself (04 §4.8, §6.5).
#[derive(Debug, Clone)]
pub struct DaemonRegistration {
    pub name: String,
    pub organization_id: Uuid,
    pub provisioners: Vec<ProvisionerType>,
    pub tags: Tags,
    pub key_id: Option<Uuid>,
    pub version: String,
    pub now: DateTime<Utc>,
}

/// A log line to append.
#[derive(Debug, Clone)]
pub struct NewLog {
    pub created_at: DateTime<Utc>,
    pub source: LogSource,
    pub level: LogLevel,
    pub stage: String,
    pub output: String,
}

pub trait WorkspaceStore: Send + Sync + 'static {
    // --- files ---
    /// Stores the bytes once per (hash, creator); returns the row and whether it is new.
    fn insert_file(&self, file: File) -> impl Future<Output = R<(File, bool)>> + Send;
    fn file_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<File>>> + Send;

    // --- template versions and templates ---
    /// Inserts the version and its import job in one transaction, after locking the org.
    fn insert_version_with_job(
        &self,
        version: TemplateVersion,
        job: ProvisionerJob,
    ) -> impl Future<Output = R<()>> + Send;
    fn version_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<TemplateVersion>>> + Send;
    fn version_by_name(
        &self,
        template: Uuid,
        name: &str,
    ) -> impl Future<Output = R<Option<TemplateVersion>>> + Send;
    fn versions_of_template(
        &self,
        template: Uuid,
    ) -> impl Future<Output = R<Vec<TemplateVersion>>> + Send;
    /// Inserts the template and points the version at it (one transaction).
    fn insert_template(&self, template: Template) -> impl Future<Output = R<Template>> + Send;
    /// A live template.
    fn template_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<Template>>> + Send;
    fn template_by_name(
        &self,
        org: Uuid,
        name: &str,
    ) -> impl Future<Output = R<Option<Template>>> + Send;
    /// Live templates, of one org or all, ordered by `lower(name)`.
    fn list_templates(&self, org: Option<Uuid>) -> impl Future<Output = R<Vec<Template>>> + Send;
    fn set_active_version(
        &self,
        template: Uuid,
        version: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn soft_delete_template(
        &self,
        template: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Live workspaces of the template not owned by the prebuilds user.
    fn template_workspace_count(&self, template: Uuid) -> impl Future<Output = R<i64>> + Send;
    fn template_version_parameters(
        &self,
        version: Uuid,
    ) -> impl Future<Output = R<Vec<hangar_provisioner::model::Parameter>>> + Send;

    // --- jobs ---
    fn job_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<ProvisionerJob>>> + Send;
    /// Jobs with queue position and size, ordered by `created_at` (04 §6.1).
    fn queue_positions(
        &self,
        ids: Vec<Uuid>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Vec<QueuedJob>>> + Send;
    /// Takes the oldest matching pending job for the daemon (`FOR UPDATE SKIP LOCKED`).
    fn acquire(
        &self,
        req: AcquireRequest,
    ) -> impl Future<Output = R<Option<ProvisionerJob>>> + Send;
    /// Appends logs (whole batch or nothing, within the 1 MiB limit), refreshes the job's
    /// liveness stamp; returns whether the job was canceled. `Conflict` unless `daemon`
    /// holds the running job.
    fn append_logs(
        &self,
        job: Uuid,
        daemon: Uuid,
        logs: Vec<NewLog>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<bool>> + Send;
    fn job_logs(&self, job: Uuid, after: i64) -> impl Future<Output = R<Vec<JobLog>>> + Send;
    fn cancel_job(
        &self,
        job: Uuid,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<CancelOutcome>> + Send;
    /// Completes an import in one transaction; `Conflict { "job_not_held" }` unless the
    /// daemon holds the uncompleted job.
    fn complete_import(
        &self,
        job: Uuid,
        daemon: Uuid,
        result: ImportResult,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn complete_build(
        &self,
        job: Uuid,
        daemon: Option<Uuid>,
        result: BuildResult,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Fails (or, when canceled, finishes as canceled) a job the daemon holds; a build keeps
    /// the given state or the previous build's.
    fn fail_job(
        &self,
        job: Uuid,
        daemon: Uuid,
        error: String,
        error_code: Option<String>,
        state: Option<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn register_daemon(&self, reg: DaemonRegistration) -> impl Future<Output = R<Uuid>> + Send;
    fn resources_of_job(&self, job: Uuid)
    -> impl Future<Output = R<Vec<WorkspaceResource>>> + Send;

    // --- workspaces and builds ---
    /// Inserts the workspace, its first build, the job and the parameters (one transaction).
    fn insert_workspace(
        &self,
        ws: Workspace,
        build: WorkspaceBuild,
        job: ProvisionerJob,
        params: Vec<NameValue>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Inserts a build for an existing workspace after locking it and checking its latest
    /// build is not active (`Conflict { "build_active" }`), in one transaction.
    fn insert_build(
        &self,
        build: WorkspaceBuild,
        job: ProvisionerJob,
        params: Vec<NameValue>,
    ) -> impl Future<Output = R<()>> + Send;
    fn workspace_by_id(
        &self,
        id: Uuid,
        include_deleted: bool,
    ) -> impl Future<Output = R<Option<Workspace>>> + Send;
    fn workspace_by_owner_and_name(
        &self,
        owner: Uuid,
        name: &str,
    ) -> impl Future<Output = R<Option<Workspace>>> + Send;
    fn workspace_rows(
        &self,
        ids: Vec<Uuid>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Vec<WorkspaceRow>>> + Send;
    /// Ids of live workspaces matching the filter, in listing order, with the total.
    fn list_workspace_ids(
        &self,
        q: WorkspaceQuery,
    ) -> impl Future<Output = R<(Vec<Uuid>, u64)>> + Send;
    fn build_rows(
        &self,
        ids: Vec<Uuid>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Vec<BuildRow>>> + Send;
    fn build_ids_of_workspace(
        &self,
        ws: Uuid,
        limit: u64,
        offset: u64,
    ) -> impl Future<Output = R<Vec<Uuid>>> + Send;
    fn build_by_number(
        &self,
        ws: Uuid,
        number: i32,
    ) -> impl Future<Output = R<Option<Uuid>>> + Send;
    fn build_parameters(&self, build: Uuid) -> impl Future<Output = R<Vec<NameValue>>> + Send;
    fn set_autostart(
        &self,
        ws: Uuid,
        schedule: Option<String>,
        next_start_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn set_ttl(
        &self,
        ws: Uuid,
        ttl: Option<i64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;

    // --- background loops ---
    /// Live, non-prebuild workspaces whose latest build may need an autostop (deadline
    /// passed) or autostart (`next_start_at` passed). `None` when another replica holds
    /// advisory lock 21.
    fn lifecycle_candidates(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Option<Vec<Uuid>>>> + Send;
    /// Completes `running` jobs not updated since `hung_before` with `error`, and
    /// `canceling` ones not updated since `cancel_before` as canceled; builds keep the
    /// previous build's state. Empty when another replica holds lock 20.
    fn fail_hung_jobs(
        &self,
        hung_before: DateTime<Utc>,
        cancel_before: DateTime<Utc>,
        error: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<Vec<Uuid>>> + Send;

    /// Pending jobs and daemons by status, for the queue gauges (04 §7): a daemon not seen
    /// since `stale_before` is offline, one holding a running or canceling job busy.
    fn provisioner_stats(
        &self,
        stale_before: DateTime<Utc>,
    ) -> impl Future<Output = R<ProvisionerStats>> + Send;
}

/// The queue gauges' figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProvisionerStats {
    pub pending_jobs: i64,
    pub idle_daemons: i64,
    pub busy_daemons: i64,
    pub offline_daemons: i64,
}

/// A resolved workspace listing query.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceQuery {
    pub owner_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    pub template_name: Option<String>,
    pub name_contains: Option<String>,
    pub status: Option<WorkspaceStatus>,
    pub outdated: Option<bool>,
    pub has_ai_task: Option<bool>,
    pub id: Option<Uuid>,
    /// RBAC: `None` = everything; otherwise workspaces in these orgs or owned by `owner`.
    pub visible_orgs: Option<Vec<Uuid>>,
    pub visible_owner: Option<Uuid>,
    pub limit: u64,
    pub offset: u64,
}
