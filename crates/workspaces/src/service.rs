//! The workspace service: every rule of 04 §4 and §6.2–6.3 that is not HTTP. Handlers
//! resolve users and orgs through `hangar-identity`, then call one method here.

use crate::error::WorkspaceError;
use crate::model::*;
use crate::rules::{self, NameKind};
use crate::store::{CancelOutcome, WorkspaceQuery, WorkspaceStore};
use chrono::{DateTime, TimeDelta, Utc};
use hangar_core::rbac::{self, Action, Object, Resource, Visibility};
use hangar_core::wire::Validation;
use hangar_core::{Clock, PREBUILDS_SYSTEM_USER_ID, StoreError};
use hangar_identity::service::Caller;
use hangar_identity::{Organization, User};
use ring::digest;
use std::sync::Arc;
use uuid::Uuid;

type Result<T> = std::result::Result<T, WorkspaceError>;

/// Uploads larger than this are refused (04 §4.1).
pub const MAX_FILE_BYTES: usize = 104_857_600;

pub struct Workspaces<S, C: ?Sized = dyn Clock> {
    store: S,
    clock: Arc<C>,
    /// Wakes in-process daemons when a job is queued.
    job_posted: tokio::sync::Notify,
    metrics: Arc<hangar_core::metrics::Registry>,
}

/// `POST /organizations/{org}/templateversions`.
#[derive(Debug, Clone, Default)]
pub struct CreateVersion {
    pub file_id: Uuid,
    pub provisioner: String,
    pub name: Option<String>,
    pub message: String,
    pub template_id: Option<Uuid>,
    pub tags: Tags,
    pub user_variable_values: Vec<NameValue>,
}

/// `POST /organizations/{org}/templates`.
#[derive(Debug, Clone, Default)]
pub struct CreateTemplate {
    pub name: String,
    pub template_version_id: Uuid,
    pub display_name: String,
    pub description: String,
    pub icon: String,
    pub default_ttl_ms: i64,
    pub allow_user_cancel_workspace_jobs: Option<bool>,
    pub require_active_version: bool,
}

/// `POST /users/{user}/workspaces`.
#[derive(Debug, Clone, Default)]
pub struct CreateWorkspace {
    pub name: String,
    pub template_id: Option<Uuid>,
    pub template_version_id: Option<Uuid>,
    pub rich_parameter_values: Vec<NameValue>,
    pub autostart_schedule: Option<String>,
    pub ttl_ms: Option<i64>,
    pub automatic_updates: Option<AutomaticUpdates>,
}

/// `POST /workspaces/{w}/builds`.
#[derive(Debug, Clone)]
pub struct CreateBuild {
    pub transition: Transition,
    pub template_version_id: Option<Uuid>,
    pub rich_parameter_values: Vec<NameValue>,
    pub orphan: bool,
    pub log_level: Option<String>,
    pub reason: BuildReason,
}

fn sentinel() -> DateTime<Utc> {
    hangar_core::clock::never()
}

/// Adjective-noun names for versions created without one.
fn generated_version_name(seed: &Uuid) -> String {
    const ADJ: [&str; 16] = [
        "amazing", "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "jolly", "keen",
        "lucid", "merry", "nifty", "proud", "quick", "sunny",
    ];
    const NOUN: [&str; 16] = [
        "albatross",
        "badger",
        "cheetah",
        "dolphin",
        "eagle",
        "falcon",
        "gecko",
        "heron",
        "ibis",
        "jaguar",
        "koala",
        "lemur",
        "marmot",
        "narwhal",
        "otter",
        "puffin",
    ];
    let b = seed.as_bytes();
    format!(
        "{}_{}{}",
        ADJ[usize::from(b[0] % 16)],
        NOUN[usize::from(b[1] % 16)],
        b[2] % 100
    )
}

impl<S: WorkspaceStore, C: Clock + ?Sized> Workspaces<S, C> {
    pub fn new(store: S, clock: Arc<C>) -> Self {
        Self {
            store,
            clock,
            job_posted: tokio::sync::Notify::new(),
            metrics: Arc::new(hangar_core::metrics::Registry::new()),
        }
    }

    /// Records this area's metrics into `registry` (declaring them there).
    pub fn with_metrics(mut self, registry: Arc<hangar_core::metrics::Registry>) -> Self {
        crate::metrics::declare(&registry);
        self.metrics = registry;
        self
    }

    pub fn metrics(&self) -> &hangar_core::metrics::Registry {
        &self.metrics
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Resolves when a job may have been queued (in-process daemons wait on it).
    pub async fn job_posted(&self) {
        self.job_posted.notified().await
    }

    fn notify_job_posted(&self) {
        self.job_posted.notify_waiters();
    }

    pub(crate) fn allowed(caller: &Caller, action: Action, object: Object) -> bool {
        rbac::authorize(&caller.subject, action, &object)
    }

    fn template_object(t: &Template) -> Object {
        Object::of(Resource::Template)
            .with_id(t.id)
            .in_org(t.organization_id)
    }

    pub(crate) fn workspace_object(w: &Workspace) -> Object {
        Object::of(Resource::Workspace)
            .with_id(w.id)
            .in_org(w.organization_id)
            .owned_by(w.owner_id)
    }

    // ------------------------------------------------------------------ files

    /// Stores an upload; returns its id and whether it is new (04 §4.1).
    pub async fn upload_file(
        &self,
        caller: &Caller,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(Uuid, bool)> {
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            ct.as_str(),
            "application/x-tar" | "application/zip" | "application/x-zip-compressed"
        ) {
            return Err(WorkspaceError::invalid(format!(
                "Unsupported content type header {content_type:?}."
            )));
        }
        if body.len() > MAX_FILE_BYTES {
            return Err(WorkspaceError::TooLarge);
        }
        if ct != "application/x-tar" {
            return Err(WorkspaceError::invalid_detail(
                format!("Unsupported content type header {content_type:?}."),
                "zip uploads are not supported yet; upload a tar archive",
            ));
        }
        hangar_provisioner::archive::Archive::from_tar(&body)
            .map_err(|e| WorkspaceError::invalid_detail("Invalid tar archive.", e.to_string()))?;
        let hash: String = digest::digest(&digest::SHA256, &body)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let file = File {
            id: Uuid::new_v4(),
            hash,
            created_at: self.now(),
            created_by: caller.user_id(),
            mimetype: "application/x-tar".into(),
            data: body,
        };
        let (stored, created) = self.store.insert_file(file).await?;
        Ok((stored.id, created))
    }

    pub async fn file(&self, caller: &Caller, id: Uuid) -> Result<File> {
        let f = self
            .store
            .file_by_id(id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        if f.created_by != caller.user_id()
            && !Self::allowed(caller, Action::Read, Object::of(Resource::Template))
        {
            return Err(WorkspaceError::NotFound);
        }
        Ok(f)
    }

    // ------------------------------------------------------------------ versions

    pub async fn create_version(
        &self,
        caller: &Caller,
        org: &Organization,
        req: CreateVersion,
    ) -> Result<(TemplateVersion, QueuedJob)> {
        if !Self::allowed(
            caller,
            Action::Create,
            Object::of(Resource::Template).in_org(org.id),
        ) {
            return Err(WorkspaceError::forbidden());
        }
        let provisioner: ProvisionerType = req.provisioner.parse().map_err(|_| {
            WorkspaceError::invalid_field(
                "Validation failed.",
                "provisioner",
                "must be one of: echo, terraform",
            )
        })?;
        let file = self.store.file_by_id(req.file_id).await?;
        let file = match file {
            Some(f)
                if f.created_by == caller.user_id()
                    || Self::allowed(
                        caller,
                        Action::Read,
                        Object::of(Resource::Template).in_org(org.id),
                    ) =>
            {
                f
            }
            _ => {
                return Err(WorkspaceError::invalid_field(
                    "File not found.",
                    "file_id",
                    "file not found",
                ));
            }
        };
        let template = match req.template_id {
            Some(id) => {
                let t = self
                    .store
                    .template_by_id(id)
                    .await?
                    .filter(|t| t.organization_id == org.id);
                Some(t.ok_or_else(|| {
                    WorkspaceError::invalid_field(
                        format!("Template {id:?} doesn't exist."),
                        "template_id",
                        "template not found",
                    )
                })?)
            }
            None => None,
        };
        let id = Uuid::new_v4();
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                rules::validate_name(NameKind::TemplateVersion, &n).map_err(|v| {
                    WorkspaceError::Invalid {
                        message: "Validation failed.".into(),
                        detail: v.detail.clone(),
                        validations: vec![v],
                    }
                })?;
                if let Some(t) = &template
                    && self.store.version_by_name(t.id, &n).await?.is_some()
                {
                    return Err(self.version_name_taken(&n));
                }
                n
            }
            None => {
                let mut n = generated_version_name(&id);
                if let Some(t) = &template {
                    while self.store.version_by_name(t.id, &n).await?.is_some() {
                        n = generated_version_name(&Uuid::new_v4());
                    }
                }
                n
            }
        };
        let tags = rules::normalize_tags(req.tags, caller.user_id()).map_err(|v| {
            WorkspaceError::Invalid {
                message: "Validation failed.".into(),
                detail: v.detail.clone(),
                validations: vec![v],
            }
        })?;
        let now = self.now();
        let job = ProvisionerJob {
            id: Uuid::new_v4(),
            created_at: now,
            updated_at: now,
            started_at: None,
            canceled_at: None,
            completed_at: None,
            error: None,
            error_code: None,
            organization_id: org.id,
            initiator_id: caller.user_id(),
            provisioner,
            job_type: JobType::TemplateVersionImport,
            file_id: file.id,
            input: JobInput {
                template_version_id: Some(id),
                user_variable_values: req.user_variable_values,
                ..Default::default()
            },
            worker_id: None,
            tags,
            logs_length: 0,
            logs_overflowed: false,
            status: JobStatus::Pending,
        };
        let version = TemplateVersion {
            id,
            template_id: template.map(|t| t.id),
            organization_id: org.id,
            created_at: now,
            updated_at: now,
            name: name.clone(),
            message: req.message,
            readme: String::new(),
            job_id: job.id,
            created_by: caller.user_id(),
            archived: false,
            has_ai_task: None,
        };
        match self
            .store
            .insert_version_with_job(version.clone(), job.clone())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict { constraint })
                if constraint.contains("template_versions_template_id_name") =>
            {
                return Err(self.version_name_taken(&name));
            }
            Err(StoreError::NotFound) => return Err(WorkspaceError::NotFound),
            Err(e) => return Err(e.into()),
        }
        // The answer describes the version as created: a daemon may already be running the
        // job, but the caller sees the pending job with its queue position.
        let queued = self.queued(job.id).await?;
        self.notify_job_posted();
        Ok((version, QueuedJob { job, ..queued }))
    }

    fn version_name_taken(&self, name: &str) -> WorkspaceError {
        WorkspaceError::Conflict {
            message: format!(
                "A template version with name {name:?} already exists for this template."
            ),
            detail: String::new(),
            validations: vec![Validation::new(
                "name",
                "This value is already in use and should be unique.",
            )],
        }
    }

    /// The version's import job, which must have succeeded (`refusal` otherwise).
    async fn succeeded_import(&self, v: &TemplateVersion, refusal: &str) -> Result<ProvisionerJob> {
        let job = self
            .store
            .job_by_id(v.job_id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        if job.status != JobStatus::Succeeded {
            return Err(WorkspaceError::invalid(refusal));
        }
        Ok(job)
    }

    /// A job with its queue position.
    pub async fn queued(&self, job: Uuid) -> Result<QueuedJob> {
        self.store
            .queue_positions(vec![job], self.now())
            .await?
            .into_iter()
            .next()
            .ok_or(WorkspaceError::NotFound)
    }

    /// A version the caller may read, with its job.
    pub async fn version(&self, caller: &Caller, id: Uuid) -> Result<(TemplateVersion, QueuedJob)> {
        let v = self
            .store
            .version_by_id(id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let readable = v.created_by == caller.user_id()
            || Self::allowed(
                caller,
                Action::Read,
                Object::of(Resource::Template).in_org(v.organization_id),
            );
        if !readable {
            return Err(WorkspaceError::NotFound);
        }
        let job = self.queued(v.job_id).await?;
        // The version was read before the job: if the job finished in between, read the
        // version again so its completion fields (readme, has_ai_task) match the job.
        let v = if job.job.status.is_completed() {
            self.store.version_by_id(id).await?.unwrap_or(v)
        } else {
            v
        };
        Ok((v, job))
    }

    pub async fn version_resources(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Vec<WorkspaceResource>> {
        let (v, _) = self.version(caller, id).await?;
        Ok(self.store.resources_of_job(v.job_id).await?)
    }

    pub async fn version_parameters(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Vec<hangar_provisioner::model::Parameter>> {
        let (v, job) = self.version(caller, id).await?;
        if job.job.status != JobStatus::Succeeded {
            return Err(WorkspaceError::invalid("Job hasn't completed!"));
        }
        Ok(self.store.template_version_parameters(v.id).await?)
    }

    // ------------------------------------------------------------------ templates

    pub async fn create_template(
        &self,
        caller: &Caller,
        org: &Organization,
        req: CreateTemplate,
    ) -> Result<Template> {
        if !Self::allowed(
            caller,
            Action::Create,
            Object::of(Resource::Template).in_org(org.id),
        ) {
            return Err(WorkspaceError::forbidden());
        }
        rules::validate_name(NameKind::Template, &req.name).map_err(|v| {
            WorkspaceError::Invalid {
                message: "Validation failed.".into(),
                detail: v.detail.clone(),
                validations: vec![v],
            }
        })?;
        let version = self
            .store
            .version_by_id(req.template_version_id)
            .await?
            .filter(|v| v.organization_id == org.id)
            .ok_or_else(|| {
                WorkspaceError::invalid_field(
                    "Template version not found.",
                    "template_version_id",
                    "not found",
                )
            })?;
        if version.template_id.is_some() {
            return Err(WorkspaceError::invalid(
                "Template version already belongs to a template.",
            ));
        }
        let job = self
            .succeeded_import(
                &version,
                "The template version import job has not succeeded.",
            )
            .await?;
        if self
            .store
            .template_by_name(org.id, &req.name)
            .await?
            .is_some()
        {
            return Err(self.template_name_taken(&req.name));
        }
        let now = self.now();
        let t = Template {
            id: Uuid::new_v4(),
            created_at: now,
            updated_at: now,
            organization_id: org.id,
            deleted: false,
            name: req.name.clone(),
            display_name: req.display_name,
            description: req.description,
            icon: req.icon,
            provisioner: job.provisioner,
            active_version_id: version.id,
            created_by: caller.user_id(),
            default_ttl: req.default_ttl_ms.max(0).saturating_mul(1_000_000),
            allow_user_cancel_workspace_jobs: req.allow_user_cancel_workspace_jobs.unwrap_or(true),
            require_active_version: req.require_active_version,
            deprecated: String::new(),
        };
        match self.store.insert_template(t).await {
            Err(StoreError::Conflict { constraint })
                if constraint == "idx_templates_name_lower" =>
            {
                Err(self.template_name_taken(&req.name))
            }
            other => Ok(other?),
        }
    }

    fn template_name_taken(&self, name: &str) -> WorkspaceError {
        WorkspaceError::Conflict {
            message: format!("Template with name {name:?} already exists."),
            detail: "This value is already in use and should be unique.".into(),
            validations: vec![Validation::new(
                "name",
                "This value is already in use and should be unique.",
            )],
        }
    }

    pub async fn template(&self, caller: &Caller, id: Uuid) -> Result<Template> {
        let t = self
            .store
            .template_by_id(id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        if !Self::allowed(caller, Action::Read, Self::template_object(&t)) {
            return Err(WorkspaceError::NotFound);
        }
        Ok(t)
    }

    pub async fn template_by_name(
        &self,
        caller: &Caller,
        org: &Organization,
        name: &str,
    ) -> Result<Template> {
        let t = self
            .store
            .template_by_name(org.id, name)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        self.template(caller, t.id).await
    }

    pub async fn list_templates(
        &self,
        caller: &Caller,
        org: Option<&Organization>,
    ) -> Result<Vec<Template>> {
        let all = self.store.list_templates(org.map(|o| o.id)).await?;
        Ok(all
            .into_iter()
            .filter(|t| Self::allowed(caller, Action::Read, Self::template_object(t)))
            .collect())
    }

    pub async fn template_versions(
        &self,
        caller: &Caller,
        t: &Template,
    ) -> Result<Vec<(TemplateVersion, QueuedJob)>> {
        let versions = self.store.versions_of_template(t.id).await?;
        let jobs = self
            .store
            .queue_positions(versions.iter().map(|v| v.job_id).collect(), self.now())
            .await?;
        let _ = caller;
        Ok(versions
            .into_iter()
            .filter_map(|v| {
                jobs.iter()
                    .find(|j| j.job.id == v.job_id)
                    .cloned()
                    .map(|j| (v, j))
            })
            .collect())
    }

    pub async fn activate_version(
        &self,
        caller: &Caller,
        t: &Template,
        version: Uuid,
    ) -> Result<()> {
        if !Self::allowed(caller, Action::Update, Self::template_object(t)) {
            return Err(WorkspaceError::forbidden());
        }
        let v = self
            .store
            .version_by_id(version)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        if v.template_id != Some(t.id) {
            return Err(WorkspaceError::invalid(
                "The provided template version doesn't belong to the specified template.",
            ));
        }
        self.succeeded_import(
            &v,
            "The provided template version has not been imported successfully.",
        )
        .await?;
        self.store
            .set_active_version(t.id, v.id, self.now())
            .await?;
        Ok(())
    }

    pub async fn delete_template(&self, caller: &Caller, t: &Template) -> Result<()> {
        if !Self::allowed(caller, Action::Delete, Self::template_object(t)) {
            return Err(WorkspaceError::forbidden());
        }
        if self.store.template_workspace_count(t.id).await? > 0 {
            return Err(WorkspaceError::invalid(
                "All workspaces must be deleted before a template can be removed.",
            ));
        }
        self.store.soft_delete_template(t.id, self.now()).await?;
        Ok(())
    }

    // ------------------------------------------------------------------ jobs

    /// Cancels a job (04 §4.5). `template` decides whether the caller may cancel a build.
    pub async fn cancel_job(
        &self,
        caller: &Caller,
        job: &ProvisionerJob,
        template: Option<&Template>,
    ) -> Result<()> {
        if let Some(t) = template
            && !t.allow_user_cancel_workspace_jobs
            && !Self::allowed(caller, Action::Update, Self::template_object(t))
        {
            return Err(WorkspaceError::Forbidden(
                "User is not allowed to cancel workspace builds. Owner role is required.".into(),
            ));
        }
        match self.store.cancel_job(job.id, self.now()).await? {
            CancelOutcome::Canceled | CancelOutcome::Canceling => Ok(()),
            CancelOutcome::AlreadyCompleted => {
                Err(WorkspaceError::invalid("Job has already completed!"))
            }
            CancelOutcome::AlreadyCanceled => Err(WorkspaceError::invalid(
                "Job has already been marked as canceled!",
            )),
        }
    }

    pub async fn logs(&self, job: Uuid, after: i64) -> Result<Vec<JobLog>> {
        Ok(self.store.job_logs(job, after).await?)
    }

    // ------------------------------------------------------------------ workspaces

    /// Creates a workspace and its first `start` build (04 §6.3).
    pub async fn create_workspace(
        &self,
        caller: &Caller,
        owner: &User,
        org: &Organization,
        req: CreateWorkspace,
    ) -> Result<WorkspaceRow> {
        let object = Object::of(Resource::Workspace)
            .in_org(org.id)
            .owned_by(owner.id);
        if !Self::allowed(caller, Action::Create, object) {
            return Err(WorkspaceError::forbidden());
        }
        if req.template_id.is_some() == req.template_version_id.is_some() {
            return Err(WorkspaceError::invalid(
                "Exactly one of template_id or template_version_id must be set.",
            ));
        }
        rules::validate_name(NameKind::Workspace, &req.name).map_err(|v| {
            WorkspaceError::Invalid {
                message: "Validation failed.".into(),
                detail: v.detail.clone(),
                validations: vec![v],
            }
        })?;
        let (template, version_id) = if let Some(tid) = req.template_id {
            let t = self.readable_template(caller, tid, org).await?;
            let v = t.active_version_id;
            (t, v)
        } else {
            let vid = req.template_version_id.unwrap_or_default();
            let tid = self
                .store
                .version_by_id(vid)
                .await?
                .and_then(|v| v.template_id);
            let Some(tid) = tid else {
                return Err(WorkspaceError::invalid_field(
                    format!("Template version {vid:?} doesn't exist."),
                    "template_version_id",
                    "template version not found",
                ));
            };
            (self.readable_template(caller, tid, org).await?, vid)
        };
        if !template.deprecated.is_empty() {
            return Err(WorkspaceError::invalid(format!(
                "Template {:?} has been deprecated, and cannot be used to create a new workspace.",
                template.name
            )));
        }
        if self
            .store
            .workspace_by_owner_and_name(owner.id, &req.name)
            .await?
            .is_some()
        {
            return Err(self.workspace_name_taken(&req.name));
        }
        let ttl = match req.ttl_ms {
            Some(ms) => Some(validate_ttl(ms)?),
            None if template.default_ttl > 0 => Some(template.default_ttl),
            None => None,
        };
        let schedule = match req.autostart_schedule.filter(|s| !s.is_empty()) {
            Some(s) => Some(validate_schedule(&s)?),
            None => None,
        };
        let now = self.now();
        let ws = Workspace {
            id: Uuid::new_v4(),
            created_at: now,
            updated_at: now,
            owner_id: owner.id,
            organization_id: org.id,
            template_id: template.id,
            deleted: false,
            name: req.name.clone(),
            autostart_schedule: schedule,
            ttl,
            last_used_at: now,
            automatic_updates: req.automatic_updates.unwrap_or(AutomaticUpdates::Never),
            next_start_at: None,
        };
        let ws = Workspace {
            next_start_at: ws
                .autostart_schedule
                .as_deref()
                .and_then(|s| crate::lifecycle::next_start(s, now)),
            ..ws
        };
        let params = self
            .resolve_parameters(version_id, &[], &req.rich_parameter_values)
            .await?;
        let (build, job) = self
            .new_build(
                caller,
                &ws,
                version_id,
                Transition::Start,
                1,
                BuildReason::Initiator,
                None,
            )
            .await?;
        match self
            .store
            .insert_workspace(ws.clone(), build.clone(), job.clone(), params)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict { constraint })
                if constraint == "workspaces_owner_id_lower_idx" =>
            {
                return Err(self.workspace_name_taken(&req.name));
            }
            Err(StoreError::NotFound) => return Err(WorkspaceError::NotFound),
            Err(e) => return Err(e.into()),
        }
        let mut row = self.workspace_row(ws.id).await?;
        self.notify_job_posted();
        if let Some(lb) = row.latest_build.as_mut() {
            as_created(lb, build, job);
        }
        Ok(row)
    }

    async fn readable_template(
        &self,
        caller: &Caller,
        id: Uuid,
        org: &Organization,
    ) -> Result<Template> {
        let t = self
            .store
            .template_by_id(id)
            .await?
            .filter(|t| t.organization_id == org.id);
        match t {
            Some(t) if Self::allowed(caller, Action::Read, Self::template_object(&t)) => Ok(t),
            _ => Err(WorkspaceError::invalid_field(
                format!("Template {id:?} doesn't exist."),
                "template_id",
                "template not found",
            )),
        }
    }

    fn workspace_name_taken(&self, name: &str) -> WorkspaceError {
        WorkspaceError::Conflict {
            message: format!("Workspace {name:?} already exists."),
            detail: String::new(),
            validations: vec![Validation::new(
                "name",
                "This value is already in use and should be unique.",
            )],
        }
    }

    /// Parameters: the previous values, then the request, then defaults; unknown names,
    /// immutable changes, missing required values and invalid values are refused.
    async fn resolve_parameters(
        &self,
        version: Uuid,
        previous: &[NameValue],
        given: &[NameValue],
    ) -> Result<Vec<NameValue>> {
        let defs = self.store.template_version_parameters(version).await?;
        let mut errors = vec![];
        let mut out: Vec<NameValue> = vec![];
        for g in given {
            if !defs.iter().any(|d| d.name == g.name) {
                errors.push(Validation::new(
                    "rich_parameter_values",
                    format!(
                        "parameter {:?}: not defined by the template version",
                        g.name
                    ),
                ));
            }
        }
        for d in &defs {
            let prev = previous.iter().find(|p| p.name == d.name);
            let new = given.iter().find(|p| p.name == d.name);
            if let (Some(p), Some(n)) = (prev, new)
                && !d.mutable
                && p.value != n.value
            {
                errors.push(Validation::new(
                    "rich_parameter_values",
                    format!("parameter {:?}: is not mutable", d.name),
                ));
            }
            let value = new
                .or(prev)
                .map(|p| p.value.clone())
                .unwrap_or_else(|| d.default_value.clone());
            if d.required && value.is_empty() && new.is_none() && prev.is_none() {
                errors.push(Validation::new(
                    "rich_parameter_values",
                    format!("parameter {:?}: a value is required", d.name),
                ));
                continue;
            }
            if let Err(reason) =
                crate::parameters::validate_value(d, &value, prev.map(|p| p.value.as_str()))
            {
                errors.push(Validation::new(
                    "rich_parameter_values",
                    format!("parameter {:?}: {reason}", d.name),
                ));
                continue;
            }
            out.push(NameValue {
                name: d.name.clone(),
                value,
            });
        }
        if !errors.is_empty() {
            return Err(WorkspaceError::Invalid {
                message: "Invalid rich parameter values.".into(),
                detail: String::new(),
                validations: errors,
            });
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn new_build(
        &self,
        caller: &Caller,
        ws: &Workspace,
        version: Uuid,
        transition: Transition,
        number: i32,
        reason: BuildReason,
        log_level: Option<String>,
    ) -> Result<(WorkspaceBuild, ProvisionerJob)> {
        let v = self
            .store
            .version_by_id(version)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        let import = self
            .succeeded_import(&v, "The template version import job has not succeeded.")
            .await?;
        let now = self.now();
        let build_id = Uuid::new_v4();
        let job = ProvisionerJob {
            id: Uuid::new_v4(),
            created_at: now,
            updated_at: now,
            started_at: None,
            canceled_at: None,
            completed_at: None,
            error: None,
            error_code: None,
            organization_id: ws.organization_id,
            initiator_id: caller.user_id(),
            provisioner: import.provisioner,
            job_type: JobType::WorkspaceBuild,
            file_id: import.file_id,
            input: JobInput {
                workspace_build_id: Some(build_id),
                is_prebuild: ws.owner_id == PREBUILDS_SYSTEM_USER_ID,
                log_level,
                ..Default::default()
            },
            worker_id: None,
            tags: import.tags.clone(),
            logs_length: 0,
            logs_overflowed: false,
            status: JobStatus::Pending,
        };
        let build = WorkspaceBuild {
            id: build_id,
            created_at: now,
            updated_at: now,
            workspace_id: ws.id,
            template_version_id: version,
            build_number: number,
            transition,
            initiator_id: caller.user_id(),
            provisioner_state: None,
            job_id: job.id,
            deadline: sentinel(),
            max_deadline: sentinel(),
            reason,
            daily_cost: 0,
            template_version_preset_id: None,
            has_ai_task: None,
            ai_task_sidebar_app_id: None,
        };
        Ok((build, job))
    }

    /// A workspace the caller may read. Deleted ones answer 410 unless asked for.
    pub async fn workspace(
        &self,
        caller: &Caller,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<Workspace> {
        let w = self
            .store
            .workspace_by_id(id, true)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        if !Self::allowed(caller, Action::Read, Self::workspace_object(&w)) {
            return Err(WorkspaceError::NotFound);
        }
        if w.deleted && !include_deleted {
            return Err(WorkspaceError::Gone(format!(
                "Workspace {:?} was deleted, you can view this workspace by specifying '?include_deleted=true' and trying again.",
                w.id.to_string()
            )));
        }
        Ok(w)
    }

    pub async fn workspace_by_name(
        &self,
        caller: &Caller,
        owner: &User,
        name: &str,
    ) -> Result<Workspace> {
        let w = self
            .store
            .workspace_by_owner_and_name(owner.id, name)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        self.workspace(caller, w.id, false).await
    }

    pub async fn workspace_row(&self, id: Uuid) -> Result<WorkspaceRow> {
        self.store
            .workspace_rows(vec![id], self.now())
            .await?
            .into_iter()
            .next()
            .ok_or(WorkspaceError::NotFound)
    }

    pub async fn list_workspaces(
        &self,
        caller: &Caller,
        mut q: WorkspaceQuery,
    ) -> Result<(Vec<WorkspaceRow>, u64)> {
        match rbac::visibility(&caller.subject, Action::Read, Resource::Workspace) {
            Visibility::All => {}
            Visibility::Scoped {
                org_ids, owner_id, ..
            } => {
                q.visible_orgs = Some(org_ids);
                q.visible_owner = owner_id;
            }
        }
        let (ids, total) = self.store.list_workspace_ids(q).await?;
        let rows = self.store.workspace_rows(ids, self.now()).await?;
        Ok((rows, total))
    }

    /// `POST /workspaces/{w}/builds` (04 §6.3).
    pub async fn create_build(
        &self,
        caller: &Caller,
        ws: &Workspace,
        req: CreateBuild,
    ) -> Result<BuildRow> {
        if ws.deleted {
            return Err(WorkspaceError::Gone(format!(
                "Workspace {:?} was deleted, you can view this workspace by specifying '?include_deleted=true' and trying again.",
                ws.id.to_string()
            )));
        }
        let template = self
            .store
            .template_by_id(ws.template_id)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        if req.orphan && req.transition != Transition::Delete {
            return Err(WorkspaceError::invalid(
                "Orphan is only permitted when deleting a workspace.",
            ));
        }
        if req.orphan && !Self::allowed(caller, Action::Update, Self::template_object(&template)) {
            return Err(WorkspaceError::forbidden());
        }
        let action = match req.transition {
            Transition::Start => Action::Start,
            Transition::Stop => Action::Stop,
            Transition::Delete => Action::Delete,
        };
        if !Self::allowed(caller, action, Self::workspace_object(ws)) {
            return Err(WorkspaceError::forbidden());
        }
        let row = self.workspace_row(ws.id).await?;
        let latest = row.latest_build.as_ref();
        if latest.is_some_and(|b| b.job.job.status.is_active()) {
            return Err(WorkspaceError::conflict(
                "A workspace build is already active.",
            ));
        }
        let version = match req.template_version_id {
            Some(v) => {
                let tv = self.store.version_by_id(v).await?;
                if tv.and_then(|tv| tv.template_id) != Some(template.id) {
                    return Err(WorkspaceError::invalid_field(
                        "Template version not found.",
                        "template_version_id",
                        "not a version of this template",
                    ));
                }
                v
            }
            None => latest
                .map(|b| b.build.template_version_id)
                .unwrap_or(template.active_version_id),
        };
        if req.transition == Transition::Start
            && template.require_active_version
            && version != template.active_version_id
            && !Self::allowed(caller, Action::Update, Self::template_object(&template))
        {
            return Err(WorkspaceError::Forbidden(
                "The template requires the active version.".into(),
            ));
        }
        let previous = match latest {
            Some(b) => self.store.build_parameters(b.build.id).await?,
            None => vec![],
        };
        let params = self
            .resolve_parameters(version, &previous, &req.rich_parameter_values)
            .await?;
        let number = latest.map_or(1, |b| b.build.build_number + 1);
        let (build, mut job) = self
            .new_build(
                caller,
                ws,
                version,
                req.transition,
                number,
                req.reason,
                req.log_level,
            )
            .await?;
        let now = self.now();
        if req.orphan {
            // An orphan delete finishes at once: no provisioner runs (04 §6.3 step 5).
            job.started_at = Some(now);
            job.completed_at = Some(now);
        }
        match self
            .store
            .insert_build(build.clone(), job.clone(), params)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict { constraint })
                if constraint == "build_active" || constraint.contains("build_number") =>
            {
                return Err(WorkspaceError::conflict(
                    "A workspace build is already active.",
                ));
            }
            Err(e) => return Err(e.into()),
        }
        if req.orphan {
            self.store
                .complete_build(
                    job.id,
                    None,
                    crate::store::BuildResult {
                        state: vec![],
                        resources: vec![],
                        ai_task_sidebar_app: None,
                        has_ai_task: false,
                    },
                    now,
                )
                .await?;
            return self.build_row(build.id).await;
        }
        let mut row = self.build_row(build.id).await?;
        self.notify_job_posted();
        as_created(&mut row, build, job);
        Ok(row)
    }

    pub async fn build_row(&self, id: Uuid) -> Result<BuildRow> {
        self.store
            .build_rows(vec![id], self.now())
            .await?
            .into_iter()
            .next()
            .ok_or(WorkspaceError::NotFound)
    }

    /// A build the caller may read, with its workspace.
    pub async fn build(&self, caller: &Caller, id: Uuid) -> Result<(BuildRow, Workspace)> {
        let b = self.build_row(id).await?;
        let w = self.workspace(caller, b.build.workspace_id, true).await?;
        Ok((b, w))
    }

    /// The parameter values a build was made with, after reading the build is authorized.
    pub async fn build_parameters(&self, caller: &Caller, id: Uuid) -> Result<Vec<NameValue>> {
        let b = self.build_row(id).await?;
        self.workspace(caller, b.build.workspace_id, true).await?;
        Ok(self.store.build_parameters(id).await?)
    }

    pub async fn builds(&self, ws: &Workspace, limit: u64, offset: u64) -> Result<Vec<BuildRow>> {
        let ids = self
            .store
            .build_ids_of_workspace(ws.id, limit, offset)
            .await?;
        let mut rows = self.store.build_rows(ids.clone(), self.now()).await?;
        rows.sort_by_key(|r| std::cmp::Reverse(r.build.build_number));
        Ok(rows)
    }

    pub async fn build_by_number(
        &self,
        caller: &Caller,
        ws: &Workspace,
        number: i32,
    ) -> Result<BuildRow> {
        let id = self
            .store
            .build_by_number(ws.id, number)
            .await?
            .ok_or(WorkspaceError::NotFound)?;
        Ok(self.build(caller, id).await?.0)
    }

    pub async fn set_ttl(
        &self,
        caller: &Caller,
        ws: &Workspace,
        ttl_ms: Option<i64>,
    ) -> Result<()> {
        if !Self::allowed(caller, Action::Update, Self::workspace_object(ws)) {
            return Err(WorkspaceError::forbidden());
        }
        let ttl = ttl_ms.map(validate_ttl).transpose()?;
        self.store.set_ttl(ws.id, ttl, self.now()).await?;
        Ok(())
    }

    pub async fn set_autostart(
        &self,
        caller: &Caller,
        ws: &Workspace,
        schedule: Option<String>,
    ) -> Result<()> {
        if !Self::allowed(caller, Action::Update, Self::workspace_object(ws)) {
            return Err(WorkspaceError::forbidden());
        }
        let schedule = schedule
            .filter(|s| !s.is_empty())
            .map(|s| validate_schedule(&s))
            .transpose()?;
        let now = self.now();
        let next = schedule
            .as_deref()
            .and_then(|s| crate::lifecycle::next_start(s, now));
        self.store.set_autostart(ws.id, schedule, next, now).await?;
        Ok(())
    }
}

/// Shows a just-created build as its transaction wrote it, even if a daemon already took
/// the job (the queue position stays the one read after the insert).
fn as_created(row: &mut BuildRow, build: WorkspaceBuild, job: ProvisionerJob) {
    if row.build.id == build.id {
        row.build = build;
        row.job.job = job;
        row.resources.clear();
    }
}

/// TTL: 1 minute to 30 days (04 §6.12); returns nanoseconds.
pub fn validate_ttl(ms: i64) -> Result<i64> {
    let d = TimeDelta::milliseconds(ms);
    if d < TimeDelta::minutes(1) || d > TimeDelta::days(30) {
        return Err(WorkspaceError::invalid_field(
            "Invalid TTL.",
            "ttl_ms",
            "ttl must be between 1 minute and 30 days",
        ));
    }
    Ok(ms.saturating_mul(1_000_000))
}

/// Autostart schedules: `[CRON_TZ=<zone> ]<minute> <hour> * * <dow>`.
pub fn validate_schedule(s: &str) -> Result<String> {
    let bad = || {
        WorkspaceError::invalid_field(
            "Invalid autostart schedule.",
            "schedule",
            format!("{s:?} is not a valid schedule"),
        )
    };
    let body = match s.strip_prefix("CRON_TZ=") {
        Some(rest) => rest.split_once(' ').map(|(_, b)| b).ok_or_else(bad)?,
        None => s,
    };
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [min, hour, dom, mon, dow] = fields.as_slice() else {
        return Err(bad());
    };
    let field_ok = |f: &str, max: u32| {
        f == "*"
            || f.split(',').all(|part| {
                part.split('-')
                    .all(|n| n.parse::<u32>().is_ok_and(|v| v <= max))
                    && part.split('-').count() <= 2
            })
    };
    if !(field_ok(min, 59) && field_ok(hour, 23) && *dom == "*" && *mon == "*" && field_ok(dow, 7))
    {
        return Err(bad());
    }
    // The zone must exist and croner must accept it: the executor relies on both.
    if crate::lifecycle::next_start(s, DateTime::<Utc>::UNIX_EPOCH).is_none() {
        return Err(bad());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_and_ttls() {
        assert!(validate_schedule("30 9 * * 1-5").is_ok());
        assert!(validate_schedule("CRON_TZ=Europe/Paris 30 9 * * 1-5").is_ok());
        assert!(
            matches!(validate_schedule("30 9 * * 1-5 *"), Err(WorkspaceError::Invalid { message, .. }) if message == "Invalid autostart schedule.")
        );
        assert!(validate_ttl(3_600_000).is_ok());
        assert!(validate_ttl(1_000).is_err());
    }

    #[test]
    fn generated_names_follow_the_rule() {
        for _ in 0..20 {
            let n = generated_version_name(&Uuid::new_v4());
            assert!(
                rules::validate_name(NameKind::TemplateVersion, &n).is_ok(),
                "{n}"
            );
        }
    }
}
