//! Records of the workspace area as the domain sees them.

use chrono::{DateTime, Utc};
use hangar_core::text_enum;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

text_enum!(Transition { Start = "start", Stop = "stop", Delete = "delete" });
text_enum!(JobStatus {
    Pending = "pending",
    Running = "running",
    Succeeded = "succeeded",
    Canceling = "canceling",
    Canceled = "canceled",
    Failed = "failed",
    Unknown = "unknown",
});
text_enum!(JobType {
    TemplateVersionImport = "template_version_import",
    WorkspaceBuild = "workspace_build",
    TemplateVersionDryRun = "template_version_dry_run",
});
text_enum!(ProvisionerType { Echo = "echo", Terraform = "terraform" });
text_enum!(BuildReason {
    Initiator = "initiator",
    Autostart = "autostart",
    Autostop = "autostop",
    Dormancy = "dormancy",
    Failedstop = "failedstop",
    Autodelete = "autodelete",
});
text_enum!(WorkspaceStatus {
    Pending = "pending",
    Starting = "starting",
    Running = "running",
    Stopping = "stopping",
    Stopped = "stopped",
    Failed = "failed",
    Canceling = "canceling",
    Canceled = "canceled",
    Deleting = "deleting",
    Deleted = "deleted",
});
text_enum!(LogLevel { Trace = "trace", Debug = "debug", Info = "info", Warn = "warn", Error = "error" });
text_enum!(LogSource { ProvisionerDaemon = "provisioner_daemon", Provisioner = "provisioner" });
text_enum!(AutomaticUpdates { Always = "always", Never = "never" });

impl JobStatus {
    /// Still in flight: a new build must wait.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            JobStatus::Pending | JobStatus::Running | JobStatus::Canceling
        )
    }

    pub fn is_completed(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Canceled | JobStatus::Failed
        )
    }
}

pub type Tags = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub id: Uuid,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub mimetype: String,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub organization_id: Uuid,
    pub deleted: bool,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub provisioner: ProvisionerType,
    pub active_version_id: Uuid,
    pub created_by: Uuid,
    /// Nanoseconds.
    pub default_ttl: i64,
    pub allow_user_cancel_workspace_jobs: bool,
    pub require_active_version: bool,
    pub deprecated: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateVersion {
    pub id: Uuid,
    pub template_id: Option<Uuid>,
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub message: String,
    pub readme: String,
    pub job_id: Uuid,
    pub created_by: Uuid,
    pub archived: bool,
    pub has_ai_task: Option<bool>,
}

/// The job's `input` column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_version_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_build_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_prebuild: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_prebuild_claim: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Variable values given at version creation (template imports).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_variable_values: Vec<NameValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionerJob {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub error_code: Option<String>,
    pub organization_id: Uuid,
    pub initiator_id: Uuid,
    pub provisioner: ProvisionerType,
    pub job_type: JobType,
    pub file_id: Uuid,
    pub input: JobInput,
    pub worker_id: Option<Uuid>,
    pub tags: Tags,
    pub logs_length: i32,
    pub logs_overflowed: bool,
    pub status: JobStatus,
}

/// A job with its place in the queue (04 §6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedJob {
    pub job: ProvisionerJob,
    pub queue_position: i64,
    pub queue_size: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobLog {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub log_source: LogSource,
    pub log_level: LogLevel,
    pub stage: String,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub owner_id: Uuid,
    pub organization_id: Uuid,
    pub template_id: Uuid,
    pub deleted: bool,
    pub name: String,
    pub autostart_schedule: Option<String>,
    /// Nanoseconds.
    pub ttl: Option<i64>,
    pub last_used_at: DateTime<Utc>,
    pub automatic_updates: AutomaticUpdates,
    pub next_start_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceBuild {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub workspace_id: Uuid,
    pub template_version_id: Uuid,
    pub build_number: i32,
    pub transition: Transition,
    pub initiator_id: Uuid,
    pub provisioner_state: Option<Vec<u8>>,
    pub job_id: Uuid,
    pub deadline: DateTime<Utc>,
    pub max_deadline: DateTime<Utc>,
    pub reason: BuildReason,
    pub daily_cost: i32,
    pub template_version_preset_id: Option<Uuid>,
    pub has_ai_task: Option<bool>,
    pub ai_task_sidebar_app_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceResource {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub job_id: Uuid,
    pub transition: Transition,
    pub resource_type: String,
    pub name: String,
    pub hide: bool,
    pub icon: String,
    pub daily_cost: i32,
    pub metadata: Vec<ResourceMetadata>,
    pub agents: Vec<WorkspaceAgent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceMetadata {
    pub key: String,
    pub value: String,
    pub sensitive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceAgent {
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub name: String,
    pub resource_id: Uuid,
    pub auth_token: Uuid,
    pub architecture: String,
    pub operating_system: String,
    pub environment_variables: BTreeMap<String, String>,
    pub directory: String,
    pub expanded_directory: String,
    pub version: String,
    pub api_version: String,
    pub lifecycle_state: String,
    pub first_connected_at: Option<DateTime<Utc>>,
    pub last_connected_at: Option<DateTime<Utc>>,
    pub disconnected_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ready_at: Option<DateTime<Utc>>,
    pub connection_timeout_seconds: i32,
    pub troubleshooting_url: String,
    pub apps: Vec<WorkspaceApp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceApp {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub slug: String,
    pub display_name: String,
    pub icon: String,
    pub command: Option<String>,
    pub url: Option<String>,
    pub healthcheck_url: String,
    pub healthcheck_interval: i32,
    pub healthcheck_threshold: i32,
    pub health: String,
    pub subdomain: bool,
    pub sharing_level: String,
    pub external: bool,
    pub display_order: i32,
    pub hidden: bool,
    pub open_in: String,
    pub display_group: Option<String>,
}

/// A workspace with what its JSON needs: owner, org and template names, latest build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRow {
    pub workspace: Workspace,
    pub owner_name: String,
    pub owner_avatar_url: String,
    pub organization_name: String,
    pub template: Template,
    pub latest_build: Option<BuildRow>,
}

/// A build with its job and the names its JSON carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRow {
    pub build: WorkspaceBuild,
    pub job: QueuedJob,
    pub workspace_name: String,
    pub workspace_owner_id: Uuid,
    pub workspace_owner_name: String,
    pub template_version_name: String,
    pub initiator_name: String,
    pub resources: Vec<WorkspaceResource>,
}
