//! The provisioner daemon loop (04 §6.5) and the job wire shapes of 04 §4.8.
//!
//! [`run`] acquires one job at a time from a [`JobSource`] (the in-process one calls the
//! `JobStore`; the HTTP one in `bin/hangar` calls `/provisionerd/...`), unpacks its archive,
//! runs the provisioner as its own tokio task, streams its logs in batches, and reports the
//! result with `complete` or `fail`.
//!
//! - Logs go out every `log_flush_interval` or once `log_batch` lines are waiting, never more
//!   than `log_batch` lines per `update`; an empty `update` is sent when nothing else went out
//!   for `heartbeat`, so the job never looks hung.
//! - `update` answering `canceled` cancels the provisioner's token; it gets `cancel_grace` to
//!   return (handing back any state), is aborted after that, and the job is failed with
//!   `canceled` (the server ignores the text of a canceled job).
//! - A provisioner error fails the job with its message, code and state; a panic fails it with
//!   `internal provisioner error` and the daemon carries on.
//! - Transient source errors are retried with backoff (`retry_min` → `retry_max`, 1 s → 30 s);
//!   `complete` and `fail` are retried until the source answers, and a `Conflict` (the job is
//!   no longer held by this daemon) ends the job without further calls.
//! - Shutdown stops acquiring (an in-flight `acquire` is dropped, so `acquire` must be
//!   cancel-safe), gives the running job `shutdown_grace` to finish, then cancels it as above
//!   and fails it with `provisioner daemon shut down during the job`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinError;
use tokio::time::{Instant, sleep_until};
use uuid::Uuid;

use crate::archive::Archive;
use crate::model::{
    AiTask, LogLine, NameValue, Parameter, PresetDef, Resource, ResourceReplacement, Transition,
    Variable,
};
use crate::provisioner::{
    ApplyRequest, CANCELED, CancelToken, JobMetadata, LogSink, PlanRequest, ProvisionError,
    Provisioner,
};

/// The error of a job still running when the daemon's shutdown grace ran out.
pub const SHUTDOWN_ERROR: &str = "provisioner daemon shut down during the job";
/// The error of a job whose provisioner panicked.
pub const PANIC_ERROR: &str = "internal provisioner error";

/// `provisioner_job_type` (04 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    TemplateVersionImport,
    WorkspaceBuild,
    /// Never created by Hangar; a daemon that receives one fails it.
    TemplateVersionDryRun,
}

/// A job handed to a daemon (04 §4.8). Byte fields are base64 (standard alphabet) in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquiredJob {
    pub job_id: Uuid,
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// `echo` or `terraform`; text so an unknown type still reaches the daemon, which fails it.
    pub provisioner: String,
    pub organization_id: Uuid,
    #[serde(with = "b64")]
    pub template_source_archive: Vec<u8>,
    pub template_version_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_build_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
    #[serde(default, with = "b64_opt", skip_serializing_if = "Option::is_none")]
    pub state: Option<Vec<u8>>,
    #[serde(default)]
    pub rich_parameter_values: Vec<NameValue>,
    #[serde(default)]
    pub variable_values: Vec<NameValue>,
    #[serde(default)]
    pub previous_agent_tokens: BTreeMap<String, Uuid>,
    #[serde(default)]
    pub metadata: JobMetadata,
}

/// The result of a succeeded job: `{"template_import": {..}}` or `{"workspace_build": {..}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompletedJob {
    TemplateImport {
        #[serde(default)]
        resources: Vec<Resource>,
        #[serde(default)]
        parameters: Vec<Parameter>,
        #[serde(default)]
        variables: Vec<Variable>,
        #[serde(default)]
        presets: Vec<PresetDef>,
        #[serde(default)]
        has_ai_tasks: bool,
        #[serde(default)]
        readme: String,
    },
    WorkspaceBuild {
        #[serde(default, with = "b64")]
        state: Vec<u8>,
        #[serde(default)]
        resources: Vec<Resource>,
        #[serde(default)]
        ai_tasks: Vec<AiTask>,
        #[serde(default)]
        resource_replacements: Vec<ResourceReplacement>,
    },
}

/// The body of `fail`: `{error, error_code?, state?}` (state base64).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FailedJob {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, with = "b64_opt", skip_serializing_if = "Option::is_none")]
    pub state: Option<Vec<u8>>,
}

impl FailedJob {
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            ..Self::default()
        }
    }
}

impl From<ProvisionError> for FailedJob {
    fn from(e: ProvisionError) -> Self {
        Self {
            error: e.message,
            error_code: e.error_code,
            state: e.state,
        }
    }
}

/// The body of `POST /provisionerd/jobs/{job}/update`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateJob {
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

/// The answer to `update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateJobResponse {
    pub canceled: bool,
}

/// What can go wrong talking to the job source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The job is not (or no longer) held by this daemon, or is already completed (409).
    #[error("job is not held by this daemon")]
    Conflict,
    /// The source refused the request itself (400, e.g. a result it cannot read); retrying the
    /// same request cannot help.
    #[error("request rejected: {0}")]
    Rejected(String),
    /// Anything worth retrying: network errors, 5xx, a database hiccup.
    #[error("transient error: {0}")]
    Transient(String),
}

/// Where a daemon gets jobs and reports on them (04 §3).
pub trait JobSource: Send + Sync {
    /// Waits up to `wait` for a job; `None` when there was none. Dropping the returned future
    /// must not leave a job held by this daemon (it is dropped on shutdown).
    fn acquire(
        &self,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<AcquiredJob>, SourceError>> + Send;

    /// Appends logs (possibly none: a heartbeat); `Ok(true)` when the job was canceled.
    fn update(
        &self,
        job: Uuid,
        logs: Vec<LogLine>,
    ) -> impl Future<Output = Result<bool, SourceError>> + Send;

    fn complete(
        &self,
        job: Uuid,
        result: CompletedJob,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    fn fail(
        &self,
        job: Uuid,
        failure: FailedJob,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;
}

impl<T: JobSource> JobSource for Arc<T> {
    fn acquire(
        &self,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<AcquiredJob>, SourceError>> + Send {
        (**self).acquire(wait)
    }
    fn update(
        &self,
        job: Uuid,
        logs: Vec<LogLine>,
    ) -> impl Future<Output = Result<bool, SourceError>> + Send {
        (**self).update(job, logs)
    }
    fn complete(
        &self,
        job: Uuid,
        result: CompletedJob,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        (**self).complete(job, result)
    }
    fn fail(
        &self,
        job: Uuid,
        failure: FailedJob,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        (**self).fail(job, failure)
    }
}

/// Daemon settings; [`Default`] gives the 04 §6.5 values.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// For logs only.
    pub name: String,
    /// How long one `acquire` may wait (`--poll-wait`, 30 s).
    pub poll_wait: Duration,
    /// Logs are sent at least this often while there are any (250 ms).
    pub log_flush_interval: Duration,
    /// Logs are sent once this many are waiting, and at most this many per `update` (50).
    pub log_batch: usize,
    /// An empty `update` goes out when nothing was sent for this long (15 s; must stay under
    /// the server's 30 s).
    pub heartbeat: Duration,
    /// How long a running job may go on after shutdown is requested (60 s).
    pub shutdown_grace: Duration,
    /// How long a canceled provisioner may take to return before it is aborted (10 s).
    pub cancel_grace: Duration,
    /// First and largest retry delay for transient source errors (1 s, 30 s).
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            name: "provisioner".to_owned(),
            poll_wait: Duration::from_secs(30),
            log_flush_interval: Duration::from_millis(250),
            log_batch: 50,
            heartbeat: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(60),
            cancel_grace: Duration::from_secs(10),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// Runs the daemon until `shutdown` is canceled and the running job (if any) is over.
pub async fn run<S: JobSource>(
    source: S,
    provisioners: Vec<Arc<dyn Provisioner>>,
    cfg: DaemonConfig,
    shutdown: CancelToken,
) {
    let mut backoff = Backoff::new(&cfg);
    tracing::info!(daemon = %cfg.name, "provisioner daemon started");
    while !shutdown.is_canceled() {
        let acquired = tokio::select! {
            biased;
            r = source.acquire(cfg.poll_wait) => r,
            () = shutdown.canceled() => break,
        };
        match acquired {
            Ok(Some(job)) => {
                backoff.reset();
                run_job(&source, &provisioners, &cfg, &shutdown, job).await;
            }
            Ok(None) => backoff.reset(),
            Err(e) => {
                let delay = backoff.next();
                tracing::warn!(daemon = %cfg.name, error = %e, ?delay, "acquiring a job failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.canceled() => break,
                }
            }
        }
    }
    tracing::info!(daemon = %cfg.name, "provisioner daemon stopped");
}

struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(cfg: &DaemonConfig) -> Self {
        Self {
            min: cfg.retry_min,
            max: cfg.retry_max.max(cfg.retry_min),
            next: cfg.retry_min,
        }
    }

    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

enum Outcome {
    Complete(CompletedJob),
    Fail(FailedJob),
    /// The source no longer considers the job ours; say nothing more about it.
    Lost,
}

async fn run_job<S: JobSource>(
    source: &S,
    provisioners: &[Arc<dyn Provisioner>],
    cfg: &DaemonConfig,
    shutdown: &CancelToken,
    mut job: AcquiredJob,
) {
    let id = job.job_id;
    tracing::info!(daemon = %cfg.name, job = %id, kind = ?job.job_type, "acquired job");
    let outcome = match prepare(provisioners, &mut job) {
        Err(failed) => Outcome::Fail(failed),
        Ok((provisioner, archive)) => {
            supervise(source, cfg, shutdown, provisioner, archive, job).await
        }
    };
    match outcome {
        Outcome::Complete(result) => {
            match deliver(cfg, shutdown, || source.complete(id, result.clone())).await {
                Ok(()) => tracing::info!(daemon = %cfg.name, job = %id, "job completed"),
                Err(SourceError::Rejected(message)) => {
                    tracing::warn!(daemon = %cfg.name, job = %id, %message, "job result rejected");
                    let failed =
                        FailedJob::new(format!("the server rejected the job result: {message}"));
                    report_failure(source, cfg, shutdown, id, failed).await;
                }
                Err(e) => {
                    tracing::warn!(daemon = %cfg.name, job = %id, error = %e, "completing the job failed")
                }
            }
        }
        Outcome::Fail(failed) => report_failure(source, cfg, shutdown, id, failed).await,
        Outcome::Lost => {
            tracing::warn!(daemon = %cfg.name, job = %id, "job is no longer held by this daemon")
        }
    }
}

async fn report_failure<S: JobSource>(
    source: &S,
    cfg: &DaemonConfig,
    shutdown: &CancelToken,
    id: Uuid,
    failed: FailedJob,
) {
    tracing::info!(daemon = %cfg.name, job = %id, error = %failed.error, "job failed");
    if let Err(e) = deliver(cfg, shutdown, || source.fail(id, failed.clone())).await {
        tracing::warn!(daemon = %cfg.name, job = %id, error = %e, "reporting the failure failed");
    }
}

/// Retries `op` on transient errors until it succeeds or fails otherwise. Once shutdown is
/// requested it gives up after `shutdown_grace` more of retrying.
async fn deliver<F, Fut>(
    cfg: &DaemonConfig,
    shutdown: &CancelToken,
    mut op: F,
) -> Result<(), SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), SourceError>>,
{
    let mut backoff = Backoff::new(cfg);
    let mut give_up_at = None;
    loop {
        match op().await {
            Err(SourceError::Transient(message)) => {
                if shutdown.is_canceled() {
                    let at = *give_up_at.get_or_insert_with(|| Instant::now() + cfg.shutdown_grace);
                    if Instant::now() >= at {
                        return Err(SourceError::Transient(message));
                    }
                }
                let delay = backoff.next();
                tracing::warn!(daemon = %cfg.name, %message, ?delay, "job source unavailable; retrying");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// Finds the provisioner and unpacks the archive (moved out of the job).
fn prepare(
    provisioners: &[Arc<dyn Provisioner>],
    job: &mut AcquiredJob,
) -> Result<(Arc<dyn Provisioner>, Archive), FailedJob> {
    let provisioner = provisioners
        .iter()
        .find(|p| p.kind() == job.provisioner)
        .cloned()
        .ok_or_else(|| {
            FailedJob::new(format!(
                "provisioner type \"{}\" is not served by this daemon",
                job.provisioner
            ))
        })?;
    match job.job_type {
        JobType::TemplateVersionImport => {}
        JobType::WorkspaceBuild if job.transition.is_some() => {}
        JobType::WorkspaceBuild => {
            return Err(FailedJob::new("workspace build job has no transition"));
        }
        JobType::TemplateVersionDryRun => {
            return Err(FailedJob::new(
                "template version dry-run jobs are not supported",
            ));
        }
    }
    let bytes = std::mem::take(&mut job.template_source_archive);
    let archive = Archive::from_tar(&bytes).map_err(|e| FailedJob::new(e.to_string()))?;
    Ok((provisioner, archive))
}

/// Runs the provisioner work for one job; what the job's outcome is.
async fn work(
    provisioner: Arc<dyn Provisioner>,
    archive: Archive,
    job: AcquiredJob,
    logs: LogSink,
    cancel: CancelToken,
) -> Result<CompletedJob, ProvisionError> {
    let p = provisioner.as_ref();
    match (job.job_type, job.transition) {
        (JobType::WorkspaceBuild, Some(transition)) => {
            let plan = p
                .plan(
                    &archive,
                    PlanRequest {
                        transition,
                        parameters: job.rich_parameter_values.clone(),
                        variable_values: job.variable_values.clone(),
                        metadata: job.metadata.clone(),
                    },
                    &logs,
                    &cancel,
                )
                .await?;
            let apply = p
                .apply(
                    &archive,
                    ApplyRequest {
                        transition,
                        parameters: job.rich_parameter_values,
                        variable_values: job.variable_values,
                        metadata: job.metadata,
                        state: job.state.unwrap_or_default(),
                        previous_agent_tokens: job.previous_agent_tokens,
                    },
                    &logs,
                    &cancel,
                )
                .await?;
            Ok(CompletedJob::WorkspaceBuild {
                state: apply.state,
                resources: apply.resources,
                ai_tasks: apply.ai_tasks,
                resource_replacements: plan.resource_replacements,
            })
        }
        (JobType::TemplateVersionImport, _) => {
            let parse = p.parse(&archive, &logs, &cancel).await?;
            let plan = p
                .plan(
                    &archive,
                    PlanRequest {
                        transition: Transition::Start,
                        parameters: job.rich_parameter_values,
                        variable_values: job.variable_values.clone(),
                        metadata: job.metadata,
                    },
                    &logs,
                    &cancel,
                )
                .await?;
            let readme = if parse.readme.is_empty() {
                plan.readme
            } else {
                parse.readme
            };
            Ok(CompletedJob::TemplateImport {
                resources: plan.resources,
                parameters: plan.parameters,
                variables: merge_variables(parse.variables, plan.variables, &job.variable_values),
                presets: plan.presets,
                has_ai_tasks: plan.has_ai_tasks,
                readme,
            })
        }
        // `prepare` refuses every other combination.
        _ => Err(ProvisionError::new("unsupported job")),
    }
}

/// The template's variables (those of `parse`, then any more `plan` declared) with their
/// values: the given value, else the provisioner's value, else the default. The server fails
/// the import when a required one ends up empty (04 §6.4).
fn merge_variables(
    parsed: Vec<Variable>,
    planned: Vec<Variable>,
    given: &[NameValue],
) -> Vec<Variable> {
    let mut out: Vec<Variable> = Vec::with_capacity(parsed.len() + planned.len());
    for v in parsed.into_iter().chain(planned) {
        if out.iter().all(|o| o.name != v.name) {
            out.push(v);
        }
    }
    for v in &mut out {
        if let Some(g) = given.iter().find(|g| g.name == v.name) {
            v.value = g.value.clone();
        } else if v.value.is_empty() {
            v.value = v.default_value.clone();
        }
    }
    out
}

/// Why the daemon stopped a running provisioner.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Canceled,
    Shutdown,
}

impl StopReason {
    fn error(self) -> &'static str {
        match self {
            StopReason::Canceled => CANCELED,
            StopReason::Shutdown => SHUTDOWN_ERROR,
        }
    }
}

struct Lost;

/// Log buffering and `update` calls for one job.
struct Updates<'a, S> {
    source: &'a S,
    cfg: &'a DaemonConfig,
    job: Uuid,
    buffer: Vec<LogLine>,
    last_sent: Instant,
    retry_at: Option<Instant>,
    backoff: Backoff,
    canceled: bool,
}

impl<S: JobSource> Updates<'_, S> {
    /// Sends the buffer in batches of at most `log_batch`; with `heartbeat`, sends an empty
    /// update when there is nothing else to send. Waits out a pending retry delay unless
    /// `force`.
    async fn flush(&mut self, heartbeat: bool, force: bool) -> Result<(), Lost> {
        if !force && self.retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        let batch = self.cfg.log_batch.max(1);
        let mut sent = false;
        loop {
            let n = self.buffer.len().min(batch);
            if n == 0 && (sent || !heartbeat) {
                return Ok(());
            }
            let logs = self.buffer[..n].to_vec();
            match self.source.update(self.job, logs).await {
                Ok(canceled) => {
                    self.buffer.drain(..n);
                    self.last_sent = Instant::now();
                    self.retry_at = None;
                    self.backoff.reset();
                    self.canceled |= canceled;
                }
                Err(SourceError::Conflict) => return Err(Lost),
                Err(SourceError::Rejected(message)) => {
                    tracing::warn!(job = %self.job, %message, lines = n, "log batch rejected; dropped");
                    self.buffer.drain(..n);
                }
                Err(SourceError::Transient(message)) => {
                    let delay = self.backoff.next();
                    tracing::warn!(job = %self.job, %message, ?delay, "sending logs failed");
                    self.retry_at = Some(Instant::now() + delay);
                    return Ok(());
                }
            }
            sent = true;
        }
    }

    fn heartbeat_due(&self) -> bool {
        self.last_sent.elapsed() >= self.cfg.heartbeat
    }
}

/// Spawns the provisioner work and watches it: logs, heartbeats, cancellation, shutdown.
async fn supervise<S: JobSource>(
    source: &S,
    cfg: &DaemonConfig,
    shutdown: &CancelToken,
    provisioner: Arc<dyn Provisioner>,
    archive: Archive,
    job: AcquiredJob,
) -> Outcome {
    let id = job.job_id;
    let (sink, mut rx) = LogSink::channel();
    let cancel = CancelToken::new();
    let mut task = tokio::spawn(work(provisioner, archive, job, sink, cancel.clone()));

    let mut updates = Updates {
        source,
        cfg,
        job: id,
        buffer: Vec::new(),
        last_sent: Instant::now(),
        retry_at: None,
        backoff: Backoff::new(cfg),
        canceled: false,
    };
    let mut tick = tokio::time::interval(cfg.log_flush_interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown_at: Option<Instant> = None;
    let mut stop: Option<StopReason> = None;
    let mut abort_at: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let batch = cfg.log_batch.max(1);

    let joined = loop {
        if stop.is_none() {
            let reason = if updates.canceled {
                Some(StopReason::Canceled)
            } else if shutdown_at.is_some_and(|at| Instant::now() >= at) {
                Some(StopReason::Shutdown)
            } else {
                None
            };
            if let Some(reason) = reason {
                tracing::info!(job = %id, error = reason.error(), "stopping the provisioner");
                stop = Some(reason);
                cancel.cancel();
                abort_at = Some(Instant::now() + cfg.cancel_grace);
            }
        }
        let mut lost = false;
        tokio::select! {
            biased;
            joined = &mut task => break joined,
            Some(line) = rx.recv() => {
                updates.buffer.push(line);
                if updates.buffer.len() >= batch {
                    lost = updates.flush(false, false).await.is_err();
                }
            }
            _ = tick.tick() => {
                let heartbeat = updates.heartbeat_due();
                if heartbeat || !updates.buffer.is_empty() {
                    lost = updates.flush(heartbeat, false).await.is_err();
                }
            }
            () = shutdown.canceled(), if shutdown_at.is_none() => {
                tracing::info!(job = %id, grace = ?cfg.shutdown_grace, "shutdown requested");
                shutdown_at = Some(Instant::now() + cfg.shutdown_grace);
            }
            // Wakes the loop so the check at its top stops the provisioner.
            () = sleep_until(shutdown_at.unwrap_or(far)), if shutdown_at.is_some() && stop.is_none() => {}
            () = sleep_until(abort_at.unwrap_or(far)), if abort_at.is_some() => {
                tracing::warn!(job = %id, "the provisioner did not stop in time; aborting it");
                abort_at = None;
                task.abort();
            }
        }
        if lost {
            cancel.cancel();
            task.abort();
            return Outcome::Lost;
        }
    };

    // The work is over: send what it logged, then report.
    while let Ok(line) = rx.try_recv() {
        updates.buffer.push(line);
    }
    let mut give_up_at = None;
    loop {
        if updates.flush(false, true).await.is_err() {
            return Outcome::Lost;
        }
        if updates.buffer.is_empty() {
            break;
        }
        if shutdown.is_canceled() {
            let at = *give_up_at.get_or_insert_with(|| Instant::now() + cfg.shutdown_grace);
            if Instant::now() >= at {
                tracing::warn!(job = %id, lines = updates.buffer.len(), "giving up on sending the last logs");
                break;
            }
        }
        if let Some(at) = updates.retry_at {
            tokio::time::sleep_until(at).await;
        }
    }
    if stop.is_none() && updates.canceled {
        stop = Some(StopReason::Canceled);
    }
    outcome(id, joined, stop)
}

fn outcome(
    id: Uuid,
    joined: Result<Result<CompletedJob, ProvisionError>, JoinError>,
    stop: Option<StopReason>,
) -> Outcome {
    let state = |r: &Result<Result<CompletedJob, ProvisionError>, JoinError>| match r {
        Ok(Ok(CompletedJob::WorkspaceBuild { state, .. })) => Some(state.clone()),
        Ok(Err(e)) => e.state.clone(),
        _ => None,
    };
    if let Some(reason) = stop {
        return Outcome::Fail(FailedJob {
            error: reason.error().to_owned(),
            error_code: None,
            state: state(&joined),
        });
    }
    match joined {
        Ok(Ok(result)) => Outcome::Complete(result),
        Ok(Err(e)) => Outcome::Fail(e.into()),
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(job = %id, panic = %message, "the provisioner panicked");
            Outcome::Fail(FailedJob::new(PANIC_ERROR))
        }
        Err(_) => Outcome::Fail(FailedJob::new(PANIC_ERROR)),
    }
}

/// `Vec<u8>` as a standard base64 string.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// `Option<Vec<u8>>` as a standard base64 string or `null`.
mod b64_opt {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests;
