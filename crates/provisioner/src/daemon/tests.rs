//! The daemon loop against an in-memory job source, on tokio's paused clock.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::archive::tests::tar_of;
use crate::echo::EchoProvisioner;
use crate::model::{ApplyComplete, ParseComplete, PlanComplete};
use crate::provisioner::BoxFuture;

#[derive(Default)]
struct Fake {
    jobs: Mutex<VecDeque<AcquiredJob>>,
    /// Canceled when the queue runs dry (if `stop_when_idle`).
    idle: CancelToken,
    stop_when_idle: bool,
    acquires: Mutex<Vec<Instant>>,
    acquire_errors: Mutex<VecDeque<SourceError>>,
    updates: Mutex<Vec<(Uuid, Vec<LogLine>, Instant)>>,
    update_errors: Mutex<VecDeque<SourceError>>,
    /// An update carrying a line with this output cancels its job.
    cancel_on_output: Mutex<Option<String>>,
    canceled: Mutex<HashSet<Uuid>>,
    completes: AtomicUsize,
    complete_errors: Mutex<VecDeque<SourceError>>,
    completed: Mutex<Vec<(Uuid, CompletedJob, Instant)>>,
    failed: Mutex<Vec<(Uuid, FailedJob, Instant)>>,
}

impl Fake {
    fn new(jobs: Vec<AcquiredJob>) -> Arc<Self> {
        Arc::new(Self {
            jobs: Mutex::new(jobs.into()),
            stop_when_idle: true,
            ..Self::default()
        })
    }

    fn completed(&self) -> Vec<CompletedJob> {
        self.completed
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.1.clone())
            .collect()
    }

    fn failed(&self) -> Vec<FailedJob> {
        self.failed
            .lock()
            .unwrap()
            .iter()
            .map(|f| f.1.clone())
            .collect()
    }

    fn logged(&self) -> Vec<String> {
        self.updates
            .lock()
            .unwrap()
            .iter()
            .flat_map(|u| u.1.iter().map(|l| l.output.clone()))
            .collect()
    }
}

impl JobSource for Fake {
    async fn acquire(&self, wait: Duration) -> Result<Option<AcquiredJob>, SourceError> {
        self.acquires.lock().unwrap().push(Instant::now());
        if let Some(e) = self.acquire_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        let next = self.jobs.lock().unwrap().pop_front();
        match next {
            Some(job) => Ok(Some(job)),
            None => {
                if self.stop_when_idle {
                    self.idle.cancel();
                }
                tokio::time::sleep(wait).await;
                Ok(None)
            }
        }
    }

    async fn update(&self, job: Uuid, logs: Vec<LogLine>) -> Result<bool, SourceError> {
        if let Some(e) = self.update_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        let trigger = self.cancel_on_output.lock().unwrap().clone();
        if trigger.is_some_and(|t| logs.iter().any(|l| l.output == t)) {
            self.canceled.lock().unwrap().insert(job);
        }
        self.updates
            .lock()
            .unwrap()
            .push((job, logs, Instant::now()));
        Ok(self.canceled.lock().unwrap().contains(&job))
    }

    async fn complete(&self, job: Uuid, result: CompletedJob) -> Result<(), SourceError> {
        self.completes.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.complete_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.completed
            .lock()
            .unwrap()
            .push((job, result, Instant::now()));
        Ok(())
    }

    async fn fail(&self, job: Uuid, failure: FailedJob) -> Result<(), SourceError> {
        self.failed
            .lock()
            .unwrap()
            .push((job, failure, Instant::now()));
        Ok(())
    }
}

fn tar_json(files: &[(&str, serde_json::Value)]) -> Vec<u8> {
    let texts: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, v)| {
            let bytes = match v {
                serde_json::Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            };
            (n.to_string(), bytes)
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = texts
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    tar_of(&refs)
}

fn job(job_type: JobType, archive: Vec<u8>) -> AcquiredJob {
    AcquiredJob {
        job_id: Uuid::new_v4(),
        job_type,
        provisioner: "echo".to_owned(),
        organization_id: Uuid::new_v4(),
        template_source_archive: archive,
        template_version_id: Uuid::new_v4(),
        workspace_build_id: None,
        transition: None,
        state: None,
        rich_parameter_values: Vec::new(),
        variable_values: Vec::new(),
        previous_agent_tokens: BTreeMap::new(),
        metadata: JobMetadata::default(),
    }
}

fn import_job(files: &[(&str, serde_json::Value)]) -> AcquiredJob {
    job(JobType::TemplateVersionImport, tar_json(files))
}

fn build_job(files: &[(&str, serde_json::Value)], transition: Transition) -> AcquiredJob {
    AcquiredJob {
        workspace_build_id: Some(Uuid::new_v4()),
        transition: Some(transition),
        ..job(JobType::WorkspaceBuild, tar_json(files))
    }
}

fn echo() -> Vec<Arc<dyn Provisioner>> {
    vec![Arc::new(EchoProvisioner)]
}

async fn run_until_idle(fake: &Arc<Fake>, provisioners: Vec<Arc<dyn Provisioner>>) {
    let shutdown = fake.idle.clone();
    tokio::time::timeout(
        Duration::from_secs(3600),
        run(
            fake.clone(),
            provisioners,
            DaemonConfig::default(),
            shutdown,
        ),
    )
    .await
    .expect("the daemon stops once the queue is empty");
}

#[tokio::test(start_paused = true)]
async fn template_import_parses_then_plans() {
    let mut j = import_job(&[
        (
            "parse.json",
            json!({"logs": [{"stage": "Parse", "output": "parsing"}],
                   "variables": [{"name": "region", "default_value": "eu"},
                                 {"name": "secret", "required": true, "sensitive": true},
                                 {"name": "unset", "required": true}]}),
        ),
        (
            "plan.json",
            json!({"logs": [{"output": "planning"}],
                   "resources": [{"name": "dev", "type": "null_resource",
                                  "agents": [{"name": "main", "apps": [{"id": "a1", "slug": "code"}]}]}],
                   "parameters": [{"name": "AI Prompt"}],
                   "presets": [{"name": "dev", "default": true}],
                   "ai_tasks": [{"id": "t", "sidebar_app_id": "a1"}]}),
        ),
        ("README.md", json!("# Template")),
    ]);
    j.variable_values = vec![NameValue::new("secret", "s3")];
    let fake = Fake::new(vec![j]);
    run_until_idle(&fake, echo()).await;

    assert_eq!(fake.failed(), []);
    let [
        CompletedJob::TemplateImport {
            resources,
            parameters,
            variables,
            presets,
            has_ai_tasks,
            readme,
        },
    ] = &fake.completed()[..]
    else {
        panic!("one template import expected: {:?}", fake.completed());
    };
    assert_eq!(resources[0].agents[0].apps[0].slug, "code");
    assert_eq!(parameters[0].name, "AI Prompt");
    assert_eq!(presets[0].name, "dev");
    assert!(*has_ai_tasks);
    assert_eq!(readme, "# Template");
    let values: Vec<(&str, &str)> = variables
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(values, [("region", "eu"), ("secret", "s3"), ("unset", "")]);
    assert_eq!(fake.logged(), ["parsing", "planning"]);
}

#[tokio::test(start_paused = true)]
async fn workspace_build_plans_applies_and_batches_logs() {
    let logs: Vec<serde_json::Value> = (0..120)
        .map(|i| json!({"output": format!("line {i}")}))
        .collect();
    let token = Uuid::new_v4();
    let mut j = build_job(
        &[
            (
                "plan.json",
                json!({"resource_replacements": [{"resource": "docker_container.dev", "paths": ["image"]}]}),
            ),
            (
                "apply.json",
                json!({"logs": logs, "state": "opaque",
                       "resources": [{"name": "dev", "agents": [{"name": "main"}, {"name": "side"}]}],
                       "ai_tasks": []}),
            ),
        ],
        Transition::Start,
    );
    j.state = Some(b"previous".to_vec());
    j.previous_agent_tokens = BTreeMap::from([("main".to_owned(), token)]);
    let fake = Fake::new(vec![j]);
    run_until_idle(&fake, echo()).await;

    assert_eq!(fake.failed(), []);
    let [
        CompletedJob::WorkspaceBuild {
            state,
            resources,
            ai_tasks,
            resource_replacements,
        },
    ] = &fake.completed()[..]
    else {
        panic!("one build expected: {:?}", fake.completed());
    };
    assert_eq!(state, b"opaque");
    assert!(ai_tasks.is_empty());
    assert_eq!(resource_replacements[0].resource, "docker_container.dev");
    let agents = &resources[0].agents;
    assert_eq!(agents[0].token.as_deref(), Some(token.to_string().as_str()));
    assert_ne!(agents[1].token.as_deref(), Some(token.to_string().as_str()));

    let expected: Vec<String> = (0..120).map(|i| format!("line {i}")).collect();
    assert_eq!(fake.logged(), expected);
    let batches: Vec<usize> = fake
        .updates
        .lock()
        .unwrap()
        .iter()
        .map(|u| u.1.len())
        .collect();
    assert!(batches.iter().all(|n| *n <= 50), "{batches:?}");
    assert!(
        batches.iter().filter(|n| **n > 0).count() >= 3,
        "{batches:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_step_fails_the_job_with_its_logs() {
    let fake = Fake::new(vec![build_job(
        &[(
            "plan.stop.json",
            json!({"logs": [{"level": "error", "output": "no way"}],
                   "error": "boom", "error_code": "SOME_CODE"}),
        )],
        Transition::Stop,
    )]);
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.completed(), []);
    assert_eq!(
        fake.failed(),
        [FailedJob {
            error: "boom".into(),
            error_code: Some("SOME_CODE".into()),
            state: None
        }]
    );
    assert_eq!(fake.logged(), ["no way"]);
}

#[tokio::test(start_paused = true)]
async fn cancel_from_update_stops_the_provisioner_and_fails_the_job() {
    let fake = Fake::new(vec![build_job(
        &[(
            "apply.json",
            json!({"logs": [{"output": "waiting"}], "wait_for_cancel": true}),
        )],
        Transition::Start,
    )]);
    *fake.cancel_on_output.lock().unwrap() = Some("waiting".into());
    let start = Instant::now();
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.completed(), []);
    assert_eq!(fake.failed(), [FailedJob::new("canceled")]);
    let failed_at = fake.failed.lock().unwrap()[0].2;
    assert!(
        failed_at - start < Duration::from_secs(1),
        "{:?}",
        failed_at - start
    );
}

/// A provisioner that logs, then ignores cancellation forever.
struct Stubborn;

impl Provisioner for Stubborn {
    fn kind(&self) -> &'static str {
        "echo"
    }
    fn parse<'a>(
        &'a self,
        _: &'a Archive,
        _: &'a LogSink,
        _: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ParseComplete, ProvisionError>> {
        Box::pin(std::future::pending())
    }
    fn plan<'a>(
        &'a self,
        _: &'a Archive,
        _: PlanRequest,
        logs: &'a LogSink,
        _: &'a CancelToken,
    ) -> BoxFuture<'a, Result<PlanComplete, ProvisionError>> {
        logs.info("Planning", "waiting");
        Box::pin(std::future::pending())
    }
    fn apply<'a>(
        &'a self,
        _: &'a Archive,
        _: ApplyRequest,
        _: &'a LogSink,
        _: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ApplyComplete, ProvisionError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_provisioner_ignoring_cancel_is_aborted_after_the_grace() {
    let fake = Fake::new(vec![build_job(&[], Transition::Start)]);
    *fake.cancel_on_output.lock().unwrap() = Some("waiting".into());
    let start = Instant::now();
    run_until_idle(&fake, vec![Arc::new(Stubborn)]).await;
    assert_eq!(fake.failed(), [FailedJob::new("canceled")]);
    let took = fake.failed.lock().unwrap()[0].2 - start;
    let grace = DaemonConfig::default().cancel_grace;
    assert!(
        took >= grace && took < grace + Duration::from_secs(1),
        "{took:?}"
    );
}

/// A provisioner that panics on every call.
struct Panicker;

impl Provisioner for Panicker {
    fn kind(&self) -> &'static str {
        "terraform"
    }
    fn parse<'a>(
        &'a self,
        _: &'a Archive,
        _: &'a LogSink,
        _: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ParseComplete, ProvisionError>> {
        Box::pin(async { panic!("parse bug") })
    }
    fn plan<'a>(
        &'a self,
        _: &'a Archive,
        _: PlanRequest,
        _: &'a LogSink,
        _: &'a CancelToken,
    ) -> BoxFuture<'a, Result<PlanComplete, ProvisionError>> {
        Box::pin(async { panic!("plan bug") })
    }
    fn apply<'a>(
        &'a self,
        _: &'a Archive,
        _: ApplyRequest,
        _: &'a LogSink,
        _: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ApplyComplete, ProvisionError>> {
        Box::pin(async { panic!("apply bug") })
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_fails_the_job_and_the_daemon_goes_on() {
    let panicking = AcquiredJob {
        provisioner: "terraform".into(),
        ..import_job(&[])
    };
    let fine = import_job(&[]);
    let fake = Fake::new(vec![panicking, fine]);
    run_until_idle(&fake, vec![Arc::new(Panicker), Arc::new(EchoProvisioner)]).await;
    assert_eq!(fake.failed(), [FailedJob::new(PANIC_ERROR)]);
    assert_eq!(fake.completed().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_grace_then_fails_the_job() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(
            vec![build_job(
                &[(
                    "apply.json",
                    json!({"logs": [{"output": "waiting"}], "wait_for_cancel": true}),
                )],
                Transition::Start,
            )]
            .into(),
        ),
        ..Fake::default()
    });
    let shutdown = CancelToken::new();
    let daemon = tokio::spawn(run(
        fake.clone(),
        echo(),
        DaemonConfig::default(),
        shutdown.clone(),
    ));
    while fake.logged().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let requested = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fake.failed(), [FailedJob::new(SHUTDOWN_ERROR)]);
    let took = fake.failed.lock().unwrap()[0].2 - requested;
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(61),
        "{took:?}"
    );
    assert_eq!(
        fake.acquires.lock().unwrap().len(),
        1,
        "no acquire after shutdown"
    );
    // Heartbeats kept the job alive while it waited.
    assert!(fake.updates.lock().unwrap().len() >= 4);
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_a_job_that_finishes_in_time_complete() {
    let fake = Arc::new(Fake {
        jobs: Mutex::new(
            vec![build_job(
                &[("apply.json", json!({"sleep_ms": 5000, "state": "s"}))],
                Transition::Start,
            )]
            .into(),
        ),
        ..Fake::default()
    });
    let shutdown = CancelToken::new();
    let daemon = tokio::spawn(run(
        fake.clone(),
        echo(),
        DaemonConfig::default(),
        shutdown.clone(),
    ));
    while fake.acquires.lock().unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    let requested = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(600), daemon)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fake.failed(), []);
    assert_eq!(fake.completed().len(), 1);
    assert!(requested.elapsed() < Duration::from_secs(6));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_flow_while_the_provisioner_is_quiet() {
    let fake = Fake::new(vec![build_job(
        &[("apply.json", json!({"sleep_ms": 100_000}))],
        Transition::Start,
    )]);
    let start = Instant::now();
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.completed().len(), 1);
    let mut stamps = vec![start];
    stamps.extend(fake.updates.lock().unwrap().iter().map(|u| u.2));
    assert!(stamps.len() >= 7, "{} updates", stamps.len() - 1);
    let cfg = DaemonConfig::default();
    for pair in stamps.windows(2) {
        assert!(
            pair[1] - pair[0] <= cfg.heartbeat + cfg.log_flush_interval,
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test(start_paused = true)]
async fn complete_is_retried_on_transient_errors_with_backoff() {
    let fake = Fake::new(vec![import_job(&[])]);
    fake.complete_errors.lock().unwrap().extend([
        SourceError::Transient("down".into()),
        SourceError::Transient("down".into()),
    ]);
    let start = Instant::now();
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.completes.load(Ordering::SeqCst), 3);
    assert_eq!(fake.completed().len(), 1);
    let took = fake.completed.lock().unwrap()[0].2 - start;
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn complete_stops_retrying_on_conflict() {
    let fake = Fake::new(vec![import_job(&[])]);
    fake.complete_errors
        .lock()
        .unwrap()
        .push_back(SourceError::Conflict);
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.completes.load(Ordering::SeqCst), 1);
    assert_eq!(fake.completed(), []);
    assert_eq!(fake.failed(), []);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_result_fails_the_job() {
    let fake = Fake::new(vec![import_job(&[])]);
    fake.complete_errors
        .lock()
        .unwrap()
        .push_back(SourceError::Rejected("bad JSON".into()));
    run_until_idle(&fake, echo()).await;
    assert_eq!(
        fake.failed(),
        [FailedJob::new(
            "the server rejected the job result: bad JSON"
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_errors_back_off() {
    let fake = Fake::new(vec![import_job(&[])]);
    fake.acquire_errors.lock().unwrap().extend([
        SourceError::Transient("a".into()),
        SourceError::Transient("b".into()),
        SourceError::Transient("c".into()),
    ]);
    let start = Instant::now();
    run_until_idle(&fake, echo()).await;
    let offsets: Vec<u64> = fake
        .acquires
        .lock()
        .unwrap()
        .iter()
        .map(|t| (*t - start).as_secs())
        .collect();
    assert_eq!(&offsets[..4], [0, 1, 3, 7]);
    assert_eq!(fake.completed().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_job_is_dropped_silently() {
    let fake = Fake::new(vec![build_job(
        &[(
            "apply.json",
            json!({"logs": [{"output": "x"}], "wait_for_cancel": true}),
        )],
        Transition::Start,
    )]);
    fake.update_errors
        .lock()
        .unwrap()
        .push_back(SourceError::Conflict);
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.completed(), []);
    assert_eq!(fake.failed(), []);
}

#[tokio::test(start_paused = true)]
async fn transient_update_errors_keep_the_logs() {
    let fake = Fake::new(vec![build_job(
        &[("apply.json", json!({"logs": [{"output": "kept"}]}))],
        Transition::Start,
    )]);
    fake.update_errors
        .lock()
        .unwrap()
        .push_back(SourceError::Transient("down".into()));
    run_until_idle(&fake, echo()).await;
    assert_eq!(fake.logged(), ["kept"]);
    assert_eq!(fake.completed().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_bad_archive_or_type_fails_the_job() {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..7].copy_from_slice(b"../evil");
    h.set_size(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::io::empty()).unwrap();
    let evil = job(JobType::TemplateVersionImport, b.into_inner().unwrap());
    let unknown = AcquiredJob {
        provisioner: "pulumi".into(),
        ..import_job(&[])
    };
    let dry_run = job(JobType::TemplateVersionDryRun, tar_json(&[]));
    let fake = Fake::new(vec![evil, unknown, dry_run]);
    run_until_idle(&fake, echo()).await;
    assert_eq!(
        fake.failed(),
        [
            FailedJob::new(r#"entry "../evil": path escapes the archive"#),
            FailedJob::new(r#"provisioner type "pulumi" is not served by this daemon"#),
            FailedJob::new("template version dry-run jobs are not supported"),
        ]
    );
}

#[test]
fn acquired_job_json_shape() {
    let id = Uuid::new_v4();
    let text = json!({
        "job_id": id, "type": "workspace_build", "provisioner": "echo",
        "organization_id": id, "template_source_archive": "aGk=",
        "template_version_id": id, "workspace_build_id": id, "transition": "stop",
        "state": "c3Q=",
        "rich_parameter_values": [{"name": "region", "value": "eu"}],
        "variable_values": [],
        "previous_agent_tokens": {"main": id},
        "metadata": {"access_url": "http://h", "workspace_id": id, "workspace_name": "w",
                     "workspace_owner_id": id, "workspace_owner_name": "o",
                     "template_id": id, "template_name": "t", "template_version_name": "v",
                     "workspace_build_id": id, "is_prebuild": false, "is_prebuild_claim": true}
    });
    let j: AcquiredJob = serde_json::from_value(text.clone()).unwrap();
    assert_eq!(j.template_source_archive, b"hi");
    assert_eq!(j.state.as_deref(), Some(&b"st"[..]));
    assert_eq!(j.transition, Some(Transition::Stop));
    assert!(j.metadata.is_prebuild_claim);
    assert_eq!(serde_json::to_value(&j).unwrap(), text);

    let import = json!({
        "job_id": id, "type": "template_version_import", "provisioner": "terraform",
        "organization_id": id, "template_source_archive": "", "template_version_id": id,
        "rich_parameter_values": [], "variable_values": [{"name": "v", "value": "1"}],
        "previous_agent_tokens": {},
        "metadata": {"access_url": "", "workspace_id": null, "workspace_name": "",
                     "workspace_owner_id": null, "workspace_owner_name": "",
                     "template_id": null, "template_name": "", "template_version_name": "v1",
                     "workspace_build_id": null, "is_prebuild": false, "is_prebuild_claim": false}
    });
    let j: AcquiredJob = serde_json::from_value(import.clone()).unwrap();
    assert_eq!(j.job_type, JobType::TemplateVersionImport);
    assert_eq!(j.state, None);
    assert_eq!(serde_json::to_value(&j).unwrap(), import);
}

#[test]
fn completed_and_failed_job_json_shapes() {
    let build = CompletedJob::WorkspaceBuild {
        state: b"st".to_vec(),
        resources: vec![],
        ai_tasks: vec![],
        resource_replacements: vec![],
    };
    let v = serde_json::to_value(&build).unwrap();
    assert_eq!(
        v,
        json!({"workspace_build": {"state": "c3Q=", "resources": [], "ai_tasks": [], "resource_replacements": []}})
    );
    assert_eq!(serde_json::from_value::<CompletedJob>(v).unwrap(), build);

    let import: CompletedJob =
        serde_json::from_value(json!({"template_import": {"readme": "r"}})).unwrap();
    assert_eq!(
        serde_json::to_value(&import).unwrap(),
        json!({"template_import": {"resources": [], "parameters": [], "variables": [],
                                   "presets": [], "has_ai_tasks": false, "readme": "r"}})
    );

    assert_eq!(
        serde_json::to_value(FailedJob::new("x")).unwrap(),
        json!({"error": "x"})
    );
    let f = FailedJob {
        error: "x".into(),
        error_code: Some("C".into()),
        state: Some(b"st".to_vec()),
    };
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v, json!({"error": "x", "error_code": "C", "state": "c3Q="}));
    assert_eq!(serde_json::from_value::<FailedJob>(v).unwrap(), f);
    assert_eq!(
        serde_json::to_value(UpdateJobResponse { canceled: true }).unwrap(),
        json!({"canceled": true})
    );
}
