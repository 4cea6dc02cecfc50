//! Following a provisioner job to its end (04 §5, build-log streaming): the queue position
//! while it waits, each stage and log line as it runs, then `==> Done [<n>s]` or the job's
//! error. The job and its logs are polled (the server also offers a WebSocket `follow`; polling
//! keeps the client free of a WebSocket stack and needs no reconnect logic).
//!
//! The first Ctrl-C asks the server to cancel the job and keeps following it to its end; a
//! second one stops at once with [`Interrupted`] (the caller exits 130).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use chrono::DateTime;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Io;
use super::http::ApiClient;
use super::models::{ProvisionerJob, ProvisionerJobLog, decode};

/// How often the job and its logs are fetched.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How long a job is followed before giving up; no job the CLI starts should take this long.
pub const MAX_FOLLOW: Duration = Duration::from_secs(3600);

/// The object a job belongs to: a template version (its import) or a workspace build.
#[derive(Debug, Clone)]
pub enum JobOwner {
    Version(String),
    Build(String),
}

impl JobOwner {
    fn collection(&self) -> &'static str {
        match self {
            Self::Version(_) => "templateversions",
            Self::Build(_) => "workspacebuilds",
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::Version(id) | Self::Build(id) => id,
        }
    }
}

/// A job that failed or was canceled. Displayed as the CLI reports it, `error: <message>`:
/// `main` prints errors without a prefix of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailed {
    message: String,
}

impl JobFailed {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The failure without the `error: ` prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JobFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)
    }
}

impl std::error::Error for JobFailed {}

/// Puts `context: ` before the message of a [`JobFailed`]; other errors pass unchanged.
pub fn job_failure_context(err: anyhow::Error, context: &str) -> anyhow::Error {
    match err.downcast_ref::<JobFailed>() {
        Some(failed) => JobFailed::new(format!("{context}: {}", failed.message())).into(),
        None => err,
    }
}

/// The user pressed Ctrl-C twice: the command stops at once and exits 130.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Where a job's state comes from; the HTTP API in real use.
pub trait JobSource {
    /// The owner object (template version or workspace build) with its `job` inside.
    fn fetch(&self) -> impl Future<Output = Result<Value>>;
    /// The job's logs with an id above `after`, oldest first.
    fn logs(&self, after: i64) -> impl Future<Output = Result<Vec<ProvisionerJobLog>>>;
    /// Asks the server to cancel the job.
    fn cancel(&self) -> impl Future<Output = Result<()>>;
}

/// A job followed through `/api/v2`.
pub struct HttpJobSource<'a> {
    client: &'a ApiClient,
    owner: JobOwner,
}

impl JobSource for HttpJobSource<'_> {
    async fn fetch(&self) -> Result<Value> {
        self.client
            .get(&[self.owner.collection(), self.owner.id()])
            .await
    }

    async fn logs(&self, after: i64) -> Result<Vec<ProvisionerJobLog>> {
        let mut url = self
            .client
            .endpoint(&[self.owner.collection(), self.owner.id(), "logs"])?;
        url.query_pairs_mut()
            .append_pair("after", &after.to_string());
        decode(&self.client.get_url(url).await?, "a list of job logs")
    }

    async fn cancel(&self) -> Result<()> {
        self.client
            .patch(
                &[self.owner.collection(), self.owner.id(), "cancel"],
                &json!({}),
            )
            .await
            .map(|_| ())
    }
}

/// A source of Ctrl-C presses.
pub trait Interrupts {
    /// Resolves at the next press.
    fn next(&mut self) -> impl Future<Output = ()>;
}

/// The real Ctrl-C (SIGINT).
pub struct CtrlC;

impl Interrupts for CtrlC {
    async fn next(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a signal handler there are no presses to wait for.
            std::future::pending::<()>().await;
        }
    }
}

/// How a job is followed.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// Show `debug` and `trace` log lines too.
    pub verbose: bool,
    /// Print the progress on stderr, keeping stdout for a JSON result.
    pub to_stderr: bool,
    pub poll_interval: Duration,
    pub max_wait: Duration,
}

impl FollowOptions {
    pub fn new(verbose: bool, to_stderr: bool) -> Self {
        Self {
            verbose,
            to_stderr,
            poll_interval: POLL_INTERVAL,
            max_wait: MAX_FOLLOW,
        }
    }
}

/// Follows the job of `owner` through the API, reacting to the real Ctrl-C, and returns the
/// owner object as it is once the job succeeded.
pub async fn follow(
    io: &mut Io<'_>,
    client: &ApiClient,
    owner: JobOwner,
    options: FollowOptions,
) -> Result<Value> {
    let source = HttpJobSource { client, owner };
    follow_with(io, &source, &mut CtrlC, options).await
}

/// Follows a job to its end: `Ok` with the final owner object when it succeeded,
/// [`JobFailed`] when it failed or was canceled, [`Interrupted`] at the second Ctrl-C.
pub async fn follow_with(
    io: &mut Io<'_>,
    source: &impl JobSource,
    interrupts: &mut impl Interrupts,
    options: FollowOptions,
) -> Result<Value> {
    let mut follower = Follower {
        io,
        options,
        last_log_id: 0,
        stage: None,
        queued: None,
        canceling: false,
    };
    let started = Instant::now();
    let deadline = started + options.max_wait;
    loop {
        if Instant::now() >= deadline {
            bail!(
                "gave up following the job after {}s; it is still running on the server",
                options.max_wait.as_secs()
            );
        }
        let after = follower.last_log_id;
        let step = async move {
            let owner = source.fetch().await?;
            let job = job_of(&owner)?;
            // A pending job has no logs yet.
            let logs = if job.status == "pending" {
                Vec::new()
            } else {
                source.logs(after).await?
            };
            Ok::<_, anyhow::Error>((owner, job, logs))
        };
        match race(interrupts, step).await {
            Raced::Interrupted => {
                follower.interrupted(source, interrupts).await?;
                continue;
            }
            Raced::Done(step) => {
                let (owner, job, logs) = step?;
                follower.show(&job, &logs)?;
                if job.is_completed() {
                    return follower.finish(owner, &job, started);
                }
            }
        }
        if let Raced::Interrupted =
            race(interrupts, tokio::time::sleep(options.poll_interval)).await
        {
            follower.interrupted(source, interrupts).await?;
        }
    }
}

enum Raced<T> {
    Done(T),
    Interrupted,
}

/// Runs `work` unless a Ctrl-C comes first, in which case `work` is dropped.
async fn race<T>(interrupts: &mut impl Interrupts, work: impl Future<Output = T>) -> Raced<T> {
    tokio::select! {
        biased;
        () = interrupts.next() => Raced::Interrupted,
        value = work => Raced::Done(value),
    }
}

struct Follower<'a, 'io> {
    io: &'a mut Io<'io>,
    options: FollowOptions,
    last_log_id: i64,
    /// The stage whose header was printed last.
    stage: Option<String>,
    /// The queue position and size printed last.
    queued: Option<(i64, i64)>,
    canceling: bool,
}

impl Follower<'_, '_> {
    fn line(&mut self, text: &str) -> Result<()> {
        if self.options.to_stderr {
            self.io.eprintln(text)
        } else {
            self.io.println(text)
        }
    }

    /// Prints what is new: the queue position while pending, then stage headers and logs.
    fn show(&mut self, job: &ProvisionerJob, logs: &[ProvisionerJobLog]) -> Result<()> {
        if job.status == "pending" {
            let position = (job.queue_position, job.queue_size);
            if self.queued != Some(position) {
                self.queued = Some(position);
                self.line(&format!(
                    "==> Queued (position {} of {})",
                    position.0, position.1
                ))?;
            }
        }
        for log in logs {
            self.last_log_id = self.last_log_id.max(log.id);
            if !self.options.verbose && matches!(log.log_level.as_str(), "debug" | "trace") {
                continue;
            }
            if !log.stage.is_empty() && self.stage.as_deref() != Some(log.stage.as_str()) {
                self.stage = Some(log.stage.clone());
                self.line(&format!("==> {}", log.stage))?;
            }
            self.line(&format!("    {}", log.output))?;
        }
        Ok(())
    }

    /// The first Ctrl-C cancels the job; the second gives up at once.
    async fn interrupted(
        &mut self,
        source: &impl JobSource,
        interrupts: &mut impl Interrupts,
    ) -> Result<()> {
        if self.canceling {
            return Err(Interrupted.into());
        }
        self.canceling = true;
        match race(interrupts, source.cancel()).await {
            Raced::Interrupted => return Err(Interrupted.into()),
            // Most often the job finished meanwhile; following it shows how it ended.
            Raced::Done(Err(err)) => self
                .io
                .eprintln(&format!("cannot cancel the job: {err:#}"))?,
            Raced::Done(Ok(())) => {}
        }
        self.line("==> Canceling...")
    }

    fn finish(&mut self, owner: Value, job: &ProvisionerJob, started: Instant) -> Result<Value> {
        if job.status == "succeeded" {
            let seconds = job_seconds(job).unwrap_or_else(|| started.elapsed().as_secs());
            self.line(&format!("==> Done [{seconds}s]"))?;
            return Ok(owner);
        }
        let message = match job.error.as_deref().map(str::trim) {
            Some(error) if !error.is_empty() => error.to_owned(),
            _ if job.status == "canceled" => "the job was canceled".to_owned(),
            _ => format!("the job ended with status {:?}", job.status),
        };
        Err(JobFailed::new(message).into())
    }
}

/// Whole seconds the job ran by the server's clock, when it says.
fn job_seconds(job: &ProvisionerJob) -> Option<u64> {
    let start = job.started_at.as_deref().unwrap_or(&job.created_at);
    let start = DateTime::parse_from_rfc3339(start).ok()?;
    let end = DateTime::parse_from_rfc3339(job.completed_at.as_deref()?).ok()?;
    u64::try_from((end - start).num_seconds()).ok()
}

/// The `job` inside an owner object, typed.
fn job_of(owner: &Value) -> Result<ProvisionerJob> {
    let job = owner.get("job").ok_or_else(|| {
        anyhow!("unexpected answer from the server (expected an object with a job)")
    })?;
    decode(job, "a provisioner job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A job that moves through scripted states, one per fetch; the last one repeats.
    struct Script {
        states: Vec<Value>,
        logs: Vec<ProvisionerJobLog>,
        fetches: Cell<usize>,
        cancels: Cell<usize>,
        afters: RefCell<Vec<i64>>,
    }

    impl Script {
        fn new(states: Vec<Value>, logs: Vec<ProvisionerJobLog>) -> Self {
            Self {
                states,
                logs,
                fetches: Cell::new(0),
                cancels: Cell::new(0),
                afters: RefCell::new(Vec::new()),
            }
        }
    }

    impl JobSource for Script {
        async fn fetch(&self) -> Result<Value> {
            let n = self.fetches.get();
            self.fetches.set(n + 1);
            let state = self
                .states
                .get(n.min(self.states.len().saturating_sub(1)))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(state)
        }

        async fn logs(&self, after: i64) -> Result<Vec<ProvisionerJobLog>> {
            self.afters.borrow_mut().push(after);
            // Logs appear one fetch at a time, like a running job producing them.
            let visible = self.fetches.get();
            Ok(self
                .logs
                .iter()
                .filter(|l| l.id > after)
                .take(visible)
                .cloned()
                .collect())
        }

        async fn cancel(&self) -> Result<()> {
            self.cancels.set(self.cancels.get() + 1);
            Ok(())
        }
    }

    /// Never pressed.
    struct NoInterrupts;

    impl Interrupts for NoInterrupts {
        async fn next(&mut self) {
            std::future::pending::<()>().await;
        }
    }

    /// Pressed at once, `presses` times.
    struct Presses(usize);

    impl Interrupts for Presses {
        async fn next(&mut self) {
            if self.0 == 0 {
                std::future::pending::<()>().await;
            }
            self.0 -= 1;
        }
    }

    fn state(status: &str, extra: Value) -> Value {
        let mut job = json!({
            "id": "j", "status": status, "queue_position": 0, "queue_size": 0,
            "created_at": "2024-01-01T00:00:00Z",
        });
        if let (Some(job), Some(extra)) = (job.as_object_mut(), extra.as_object()) {
            job.extend(extra.clone());
        }
        json!({"id": "owner", "job": job})
    }

    fn log(id: i64, level: &str, stage: &str, output: &str) -> ProvisionerJobLog {
        ProvisionerJobLog {
            id,
            log_level: level.into(),
            stage: stage.into(),
            output: output.into(),
        }
    }

    fn options(verbose: bool) -> FollowOptions {
        FollowOptions {
            verbose,
            to_stderr: false,
            poll_interval: Duration::from_millis(1),
            max_wait: Duration::from_secs(10),
        }
    }

    async fn run(
        source: &Script,
        interrupts: &mut impl Interrupts,
        verbose: bool,
    ) -> (Result<Value>, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input: &[u8] = b"";
        let result = {
            let mut io = Io::new(&mut out, &mut err, &mut input, false);
            follow_with(&mut io, source, interrupts, options(verbose)).await
        };
        (
            result,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[tokio::test]
    async fn prints_queue_stages_and_logs_then_done() {
        let source = Script::new(
            vec![
                state("pending", json!({"queue_position": 2, "queue_size": 3})),
                state("pending", json!({"queue_position": 2, "queue_size": 3})),
                state("pending", json!({"queue_position": 1, "queue_size": 2})),
                state("running", json!({"started_at": "2024-01-01T00:00:01Z"})),
                state(
                    "succeeded",
                    json!({"started_at": "2024-01-01T00:00:01Z", "completed_at": "2024-01-01T00:00:04Z"}),
                ),
            ],
            vec![
                log(1, "info", "Planning", "plan line"),
                log(2, "debug", "Planning", "hidden debug"),
                log(3, "info", "Applying", "apply line"),
                log(4, "trace", "Cleaning", "hidden trace"),
            ],
        );
        let (result, out, err) = run(&source, &mut NoInterrupts, false).await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            out,
            "==> Queued (position 2 of 3)\n\
             ==> Queued (position 1 of 2)\n\
             ==> Planning\n    plan line\n\
             ==> Applying\n    apply line\n\
             ==> Done [3s]\n"
        );
        assert_eq!(err, "");
        // Each log is fetched once: `after` moves past hidden lines too.
        let afters = source.afters.borrow();
        assert_eq!(afters.first(), Some(&0));
        assert_eq!(afters.last(), Some(&4));
    }

    #[tokio::test]
    async fn verbose_shows_debug_and_trace() {
        let source = Script::new(
            vec![state("succeeded", json!({}))],
            vec![log(1, "debug", "Plan", "d"), log(2, "trace", "Plan", "t")],
        );
        let (result, out, _) = run(&source, &mut NoInterrupts, true).await;
        assert!(result.is_ok());
        assert!(out.starts_with("==> Plan\n    d\n"), "{out}");
    }

    #[tokio::test]
    async fn a_failed_job_is_an_error_line() {
        let source = Script::new(
            vec![state("failed", json!({"error": "boom"}))],
            vec![log(1, "error", "Apply", "it broke")],
        );
        let (result, out, _) = run(&source, &mut NoInterrupts, false).await;
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, "error: boom");
        assert_eq!(out, "==> Apply\n    it broke\n");
    }

    #[tokio::test]
    async fn failure_context_keeps_the_error_prefix_once() {
        let err = job_failure_context(JobFailed::new("boom").into(), "template import failed");
        assert_eq!(err.to_string(), "error: template import failed: boom");
        let other = job_failure_context(anyhow!("network"), "template import failed");
        assert_eq!(other.to_string(), "network");
    }

    #[tokio::test]
    async fn first_interrupt_cancels_and_keeps_following() {
        let source = Script::new(
            vec![state("running", json!({})), state("canceled", json!({}))],
            Vec::new(),
        );
        let (result, out, _) = run(&source, &mut Presses(1), false).await;
        assert_eq!(source.cancels.get(), 1);
        assert!(out.starts_with("==> Canceling...\n"), "{out}");
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, "error: the job was canceled");
    }

    #[tokio::test]
    async fn second_interrupt_stops_at_once() {
        let source = Script::new(vec![state("running", json!({}))], Vec::new());
        let (result, _, _) = run(&source, &mut Presses(2), false).await;
        assert!(
            result.as_ref().err().is_some_and(|e| e.is::<Interrupted>()),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn following_is_bounded() {
        let source = Script::new(vec![state("running", json!({}))], Vec::new());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input: &[u8] = b"";
        let mut io = Io::new(&mut out, &mut err, &mut input, false);
        let mut opts = options(false);
        opts.max_wait = Duration::from_millis(20);
        let result = follow_with(&mut io, &source, &mut NoInterrupts, opts).await;
        assert!(result.is_err());
    }
}
