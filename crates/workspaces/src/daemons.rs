//! Built-in provisioner daemons (04 §6.5): the daemon loop of `hangar-provisioner` driven by
//! an in-process [`JobSource`] that calls the store directly, plus the completion rules.

use crate::completion;
use crate::metrics;
use crate::model::{JobType, LogLevel, LogSource, ProvisionerType, Transition};
use crate::rules::untagged;
use crate::service::Workspaces;
use crate::store::{
    AcquireRequest, BuildResult, DaemonRegistration, ImportResult, NewLog, WorkspaceStore,
};
use hangar_core::{Clock, StoreError};
use hangar_provisioner::daemon::{
    AcquiredJob, CompletedJob, DaemonConfig, FailedJob, JobSource, SourceError,
};
use hangar_provisioner::model::{LogLine, NameValue};
use hangar_provisioner::provisioner::JobMetadata;
use hangar_provisioner::{CancelToken, EchoProvisioner, Provisioner};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// One built-in daemon's view of the job queue.
pub struct InProcessSource<S, C: ?Sized> {
    ws: Arc<Workspaces<S, C>>,
    daemon_id: Uuid,
    organization_id: Uuid,
    access_url: String,
    /// The job this daemon runs, for the job metrics (a daemon runs one at a time).
    running: std::sync::Mutex<Option<Running>>,
}

/// What the metrics need to know about the running job when it ends.
struct Running {
    started: Instant,
    provisioner: String,
    /// Template name and transition of a build job.
    build: Option<(String, &'static str)>,
}

fn source_err(e: StoreError) -> SourceError {
    match e {
        StoreError::Conflict { constraint } if constraint == "job_not_held" => {
            SourceError::Conflict
        }
        StoreError::NotFound => SourceError::Conflict,
        other => SourceError::Transient(other.to_string()),
    }
}

fn level(l: hangar_provisioner::model::LogLevel) -> LogLevel {
    use hangar_provisioner::model::LogLevel as P;
    match l {
        P::Trace => LogLevel::Trace,
        P::Debug => LogLevel::Debug,
        P::Info => LogLevel::Info,
        P::Warn => LogLevel::Warn,
        P::Error => LogLevel::Error,
    }
}

fn transition(t: Transition) -> hangar_provisioner::model::Transition {
    use hangar_provisioner::model::Transition as P;
    match t {
        Transition::Start => P::Start,
        Transition::Stop => P::Stop,
        Transition::Delete => P::Delete,
    }
}

impl<S: WorkspaceStore, C: Clock + ?Sized> InProcessSource<S, C> {
    fn running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Job metrics at acquire: one more running job of this provisioner.
    fn started(&self, job: &AcquiredJob, is_build: bool) {
        let build = is_build.then(|| {
            let t = match job.transition {
                Some(hangar_provisioner::model::Transition::Stop) => "stop",
                Some(hangar_provisioner::model::Transition::Delete) => "delete",
                _ => "start",
            };
            (job.metadata.template_name.clone(), t)
        });
        self.ws.metrics().add(
            metrics::JOBS_CURRENT,
            &[("provisioner", &job.provisioner)],
            1.0,
        );
        *self.running() = Some(Running {
            started: Instant::now(),
            provisioner: job.provisioner.clone(),
            build,
        });
    }

    /// Job metrics once the job's outcome is stored.
    fn finished(&self, succeeded: bool) {
        let Some(r) = self.running().take() else {
            return;
        };
        let m = self.ws.metrics();
        let status = if succeeded { "success" } else { "failed" };
        m.add(
            metrics::JOBS_CURRENT,
            &[("provisioner", &r.provisioner)],
            -1.0,
        );
        m.observe(
            metrics::JOB_TIMINGS,
            &[("provisioner", &r.provisioner), ("status", status)],
            r.started.elapsed().as_secs_f64(),
        );
        if let Some((template, transition)) = &r.build {
            m.inc(
                metrics::BUILDS_TOTAL,
                &[
                    ("template_name", template),
                    ("workspace_transition", transition),
                    ("status", status),
                ],
            );
        }
    }

    /// Everything a daemon needs to run the job (04 §4.8 AcquiredJob).
    async fn describe(&self, job: crate::model::ProvisionerJob) -> Result<AcquiredJob, StoreError> {
        let store = self.ws.store();
        let archive = store
            .file_by_id(job.file_id)
            .await?
            .ok_or(StoreError::NotFound)?
            .data;
        let mut metadata = JobMetadata {
            access_url: self.access_url.clone(),
            ..Default::default()
        };
        let job_type = match job.job_type {
            JobType::TemplateVersionImport => {
                hangar_provisioner::daemon::JobType::TemplateVersionImport
            }
            JobType::WorkspaceBuild => hangar_provisioner::daemon::JobType::WorkspaceBuild,
            JobType::TemplateVersionDryRun => {
                hangar_provisioner::daemon::JobType::TemplateVersionDryRun
            }
        };
        let mut acquired = AcquiredJob {
            job_id: job.id,
            job_type,
            provisioner: job.provisioner.as_str().to_string(),
            organization_id: job.organization_id,
            template_source_archive: archive,
            template_version_id: Uuid::nil(),
            workspace_build_id: None,
            transition: None,
            state: None,
            rich_parameter_values: vec![],
            variable_values: vec![],
            previous_agent_tokens: BTreeMap::new(),
            metadata: JobMetadata::default(),
        };
        if let Some(version) = job.input.template_version_id {
            let v = store
                .version_by_id(version)
                .await?
                .ok_or(StoreError::NotFound)?;
            acquired.template_version_id = v.id;
            metadata.template_version_name = v.name;
            acquired.variable_values = job
                .input
                .user_variable_values
                .iter()
                .map(|nv| NameValue {
                    name: nv.name.clone(),
                    value: nv.value.clone(),
                })
                .collect();
        }
        if let Some(build_id) = job.input.workspace_build_id {
            let row = store
                .build_rows(vec![build_id], self.ws.now())
                .await?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)?;
            let b = &row.build;
            let ws = store
                .workspace_by_id(b.workspace_id, true)
                .await?
                .ok_or(StoreError::NotFound)?;
            let template = store.template_by_id(ws.template_id).await?;
            acquired.template_version_id = b.template_version_id;
            acquired.workspace_build_id = Some(b.id);
            acquired.transition = Some(transition(b.transition));
            acquired.rich_parameter_values = store
                .build_parameters(b.id)
                .await?
                .into_iter()
                .map(|p| NameValue {
                    name: p.name,
                    value: p.value,
                })
                .collect();
            if b.build_number > 1
                && let Some(prev_id) = store.build_by_number(ws.id, b.build_number - 1).await?
                && let Some(prev) = store
                    .build_rows(vec![prev_id], self.ws.now())
                    .await?
                    .into_iter()
                    .next()
            {
                acquired.state = prev.build.provisioner_state.clone();
                // Terraform keeps an unchanged agent's token across start → start.
                if prev.build.transition == Transition::Start
                    && prev.job.job.status == crate::model::JobStatus::Succeeded
                {
                    for a in prev.resources.iter().flat_map(|r| &r.agents) {
                        acquired
                            .previous_agent_tokens
                            .insert(a.name.clone(), a.auth_token);
                    }
                }
            }
            metadata.workspace_id = Some(ws.id);
            metadata.workspace_name = ws.name.clone();
            metadata.workspace_owner_id = Some(ws.owner_id);
            metadata.workspace_owner_name = row.workspace_owner_name.clone();
            metadata.template_version_name = row.template_version_name.clone();
            metadata.workspace_build_id = Some(b.id);
            metadata.is_prebuild = job.input.is_prebuild;
            metadata.is_prebuild_claim = job.input.is_prebuild_claim;
            if let Some(t) = template {
                metadata.template_id = Some(t.id);
                metadata.template_name = t.name;
            }
        }
        acquired.metadata = metadata;
        Ok(acquired)
    }
}

impl<S: WorkspaceStore, C: Clock + ?Sized> JobSource for InProcessSource<S, C> {
    async fn acquire(&self, wait: Duration) -> Result<Option<AcquiredJob>, SourceError> {
        let deadline = Instant::now() + wait;
        loop {
            let req = AcquireRequest {
                daemon_id: self.daemon_id,
                organization_id: self.organization_id,
                provisioners: vec![ProvisionerType::Echo],
                tags: untagged(),
                now: self.ws.now(),
            };
            let acquired = self.ws.store().acquire(req).await.map_err(source_err)?;
            let result = if acquired.is_some() {
                "acquired"
            } else {
                "empty"
            };
            self.ws
                .metrics()
                .inc(metrics::ACQUIRE_TOTAL, &[("result", result)]);
            if let Some(job) = acquired {
                let id = job.id;
                let is_build = job.job_type == JobType::WorkspaceBuild;
                return match self.describe(job).await {
                    Ok(a) => {
                        self.started(&a, is_build);
                        Ok(Some(a))
                    }
                    Err(e) => {
                        // The job cannot be described (e.g. its file is gone): fail it so it
                        // does not sit in `running` until the hung detector.
                        let now = self.ws.now();
                        let _ = self
                            .ws
                            .store()
                            .fail_job(
                                id,
                                self.daemon_id,
                                format!("preparing the job failed: {e}"),
                                None,
                                None,
                                now,
                            )
                            .await;
                        Ok(None)
                    }
                };
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                _ = self.ws.job_posted() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    async fn update(&self, job: Uuid, logs: Vec<LogLine>) -> Result<bool, SourceError> {
        let now = self.ws.now();
        let logs = logs
            .into_iter()
            .map(|l| NewLog {
                created_at: l.created_at.unwrap_or(now),
                source: LogSource::Provisioner,
                level: level(l.level),
                stage: l.stage,
                output: l.output,
            })
            .collect();
        self.ws
            .store()
            .append_logs(job, self.daemon_id, logs, now)
            .await
            .map_err(source_err)
    }

    async fn complete(&self, job: Uuid, result: CompletedJob) -> Result<(), SourceError> {
        let now = self.ws.now();
        let store = self.ws.store();
        let mut succeeded = false;
        let outcome = match result {
            CompletedJob::TemplateImport {
                resources,
                parameters,
                variables,
                has_ai_tasks,
                readme,
                ..
            } => match completion::check_import(&parameters, &variables, &resources) {
                Ok(()) => {
                    succeeded = true;
                    let r = ImportResult {
                        readme,
                        has_ai_task: has_ai_tasks,
                        resources,
                        parameters,
                        variables,
                    };
                    store.complete_import(job, self.daemon_id, r, now).await
                }
                Err(rej) => {
                    store
                        .fail_job(job, self.daemon_id, rej.error, rej.error_code, None, now)
                        .await
                }
            },
            CompletedJob::WorkspaceBuild {
                state,
                resources,
                ai_tasks,
                ..
            } => {
                let checked = completion::check_resources(&resources, true)
                    .and_then(|()| completion::check_ai_tasks(&ai_tasks, &resources));
                match checked {
                    Ok(sidebar) => {
                        succeeded = true;
                        let has_ai_task = sidebar.is_some();
                        let r = BuildResult {
                            state,
                            resources,
                            ai_task_sidebar_app: sidebar,
                            has_ai_task,
                        };
                        store
                            .complete_build(job, Some(self.daemon_id), r, now)
                            .await
                    }
                    Err(rej) => {
                        store
                            .fail_job(
                                job,
                                self.daemon_id,
                                rej.error,
                                rej.error_code,
                                Some(state),
                                now,
                            )
                            .await
                    }
                }
            }
        };
        if outcome.is_ok() {
            self.finished(succeeded);
        }
        outcome.map_err(source_err)
    }

    async fn fail(&self, job: Uuid, failure: FailedJob) -> Result<(), SourceError> {
        let now = self.ws.now();
        let outcome = self
            .ws
            .store()
            .fail_job(
                job,
                self.daemon_id,
                failure.error,
                failure.error_code,
                failure.state,
                now,
            )
            .await;
        if outcome.is_ok() {
            self.finished(false);
        }
        outcome.map_err(source_err)
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hangar".into())
}

/// Registers and starts `count` built-in daemons for `organization_id` (the default org).
/// They stop when `shutdown` is canceled.
pub async fn spawn_builtin<S: WorkspaceStore, C: Clock + ?Sized>(
    ws: Arc<Workspaces<S, C>>,
    count: usize,
    organization_id: Uuid,
    access_url: String,
    shutdown: CancelToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, StoreError> {
    let host = hostname();
    let mut handles = vec![];
    for n in 0..count {
        let name = format!("{host}-{n}");
        let daemon_id = ws
            .store()
            .register_daemon(DaemonRegistration {
                name: name.clone(),
                organization_id,
                provisioners: vec![ProvisionerType::Echo],
                tags: untagged(),
                key_id: None,
                version: env!("CARGO_PKG_VERSION").into(),
                now: ws.now(),
            })
            .await?;
        let source = InProcessSource {
            ws: ws.clone(),
            daemon_id,
            organization_id,
            access_url: access_url.clone(),
            running: std::sync::Mutex::new(None),
        };
        let provisioners: Vec<Arc<dyn Provisioner>> = vec![Arc::new(EchoProvisioner)];
        // In process, a heartbeat is cheap; a short one lets a cancel reach the job within ~2 s.
        let cfg = DaemonConfig {
            name,
            poll_wait: Duration::from_secs(10),
            heartbeat: Duration::from_secs(2),
            ..DaemonConfig::default()
        };
        let token = shutdown.clone();
        handles.push(tokio::spawn(hangar_provisioner::daemon::run(
            source,
            provisioners,
            cfg,
            token,
        )));
    }
    Ok(handles)
}
