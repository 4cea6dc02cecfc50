//! The echo provisioner (04 §6.6): the archive holds the answers as JSON files.
//!
//! Files: `parse.json`, `plan.json`, `apply.json`, and per transition `plan.<t>.json` /
//! `apply.<t>.json` (`t` = `start|stop|delete`), which win over the generic ones. Each file is
//! `{"logs": [..], "error": "", "sleep_ms": 0, "wait_for_cancel": false, ..payload}` (plus an
//! optional `error_code`, a Hangar extension). A step emits its logs, sleeps `sleep_ms`, blocks
//! until canceled when `wait_for_cancel` is set, fails when `error` is non-empty, and otherwise
//! returns its payload. A missing file is an empty success; a missing plan is derived from the
//! apply file of the same transition (its payload only: resources and AI tasks, with
//! `has_ai_tasks` = any AI task). An agent without a `token` gets the one of
//! `previous_agent_tokens` on a `start` apply, else a new v4 UUID. `readme` defaults to the
//! archive's root `README.md`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::archive::Archive;
use crate::model::{
    AiTask, ApplyComplete, LogLine, Parameter, ParseComplete, PlanComplete, PresetDef, Resource,
    ResourceReplacement, Transition, Variable,
};
use crate::provisioner::{
    ApplyRequest, BoxFuture, CancelToken, LogSink, PlanRequest, ProvisionError, Provisioner,
};

/// The `echo` provisioner. Stateless; one instance serves any number of jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoProvisioner;

impl EchoProvisioner {
    pub const KIND: &'static str = "echo";

    pub fn new() -> Self {
        Self
    }
}

/// One echo file: the step controls and the payload of its call.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Step<T> {
    logs: Vec<LogLine>,
    error: String,
    error_code: Option<String>,
    sleep_ms: u64,
    wait_for_cancel: bool,
    #[serde(flatten)]
    payload: T,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ParsePayload {
    readme: Option<String>,
    variables: Vec<Variable>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PlanPayload {
    resources: Vec<Resource>,
    parameters: Vec<Parameter>,
    variables: Vec<Variable>,
    presets: Vec<PresetDef>,
    has_ai_tasks: Option<bool>,
    ai_tasks: Vec<AiTask>,
    resource_replacements: Vec<ResourceReplacement>,
    readme: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApplyPayload {
    resources: Vec<Resource>,
    ai_tasks: Vec<AiTask>,
    /// A string is stored as its UTF-8 bytes; any other JSON value as its compact text;
    /// missing or `null` as empty state.
    state: Option<serde_json::Value>,
}

/// Reads `name` from the archive; `Ok(None)` when it is absent.
fn load<T: DeserializeOwned + Default>(
    archive: &Archive,
    name: &str,
) -> Result<Option<Step<T>>, ProvisionError> {
    let Some(bytes) = archive.file(name) else {
        return Ok(None);
    };
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| ProvisionError::new(format!("echo provisioner: invalid {name}: {e}")))
}

/// The transition-specific file if present, else the generic one; with the name it came from.
fn load_for<T: DeserializeOwned + Default>(
    archive: &Archive,
    call: &str,
    transition: Transition,
) -> Result<Option<Step<T>>, ProvisionError> {
    match load(archive, &format!("{call}.{transition}.json"))? {
        Some(step) => Ok(Some(step)),
        None => load(archive, &format!("{call}.json")),
    }
}

/// Emits the logs, honours `sleep_ms` and `wait_for_cancel`, then fails or yields the payload.
async fn run_step<T>(
    step: Step<T>,
    logs: &LogSink,
    cancel: &CancelToken,
) -> Result<T, ProvisionError> {
    for line in step.logs {
        logs.log(line);
    }
    if step.sleep_ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(step.sleep_ms)) => {}
            () = cancel.canceled() => return Err(ProvisionError::canceled()),
        }
    }
    if step.wait_for_cancel {
        cancel.canceled().await;
        return Err(ProvisionError::canceled());
    }
    if !step.error.is_empty() {
        return Err(ProvisionError {
            message: step.error,
            error_code: step.error_code,
            state: None,
        });
    }
    Ok(step.payload)
}

fn readme_or_archive(given: Option<String>, archive: &Archive) -> String {
    given.unwrap_or_else(|| {
        archive
            .file("README.md")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    })
}

/// Gives every agent without a token one: the previous token of a same-named agent when
/// `previous` has it (the caller passes an empty map unless the token rule applies), else a
/// new v4 UUID.
fn assign_tokens(resources: &mut [Resource], previous: &BTreeMap<String, Uuid>) {
    for agent in resources.iter_mut().flat_map(|r| r.agents.iter_mut()) {
        if agent.token.as_deref().is_some_and(|t| !t.is_empty()) {
            continue;
        }
        let token = previous
            .get(&agent.name)
            .copied()
            .unwrap_or_else(Uuid::new_v4);
        agent.token = Some(token.to_string());
    }
}

fn state_bytes(state: Option<serde_json::Value>) -> Vec<u8> {
    match state {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::String(s)) => s.into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    }
}

impl EchoProvisioner {
    async fn do_parse(
        &self,
        archive: &Archive,
        logs: &LogSink,
        cancel: &CancelToken,
    ) -> Result<ParseComplete, ProvisionError> {
        let payload = match load::<ParsePayload>(archive, "parse.json")? {
            Some(step) => run_step(step, logs, cancel).await?,
            None => ParsePayload::default(),
        };
        Ok(ParseComplete {
            readme: readme_or_archive(payload.readme, archive),
            variables: payload.variables,
        })
    }

    async fn do_plan(
        &self,
        archive: &Archive,
        request: PlanRequest,
        logs: &LogSink,
        cancel: &CancelToken,
    ) -> Result<PlanComplete, ProvisionError> {
        let payload = match load_for::<PlanPayload>(archive, "plan", request.transition)? {
            Some(step) => run_step(step, logs, cancel).await?,
            None => match load_for::<ApplyPayload>(archive, "apply", request.transition)? {
                Some(apply) => PlanPayload {
                    resources: apply.payload.resources,
                    ai_tasks: apply.payload.ai_tasks,
                    ..PlanPayload::default()
                },
                None => PlanPayload::default(),
            },
        };
        let mut resources = payload.resources;
        assign_tokens(&mut resources, &BTreeMap::new());
        let has_ai_tasks = payload.has_ai_tasks.unwrap_or(!payload.ai_tasks.is_empty());
        Ok(PlanComplete {
            resources,
            parameters: payload.parameters,
            variables: payload.variables,
            presets: payload.presets,
            has_ai_tasks,
            ai_tasks: payload.ai_tasks,
            resource_replacements: payload.resource_replacements,
            readme: readme_or_archive(payload.readme, archive),
        })
    }

    async fn do_apply(
        &self,
        archive: &Archive,
        request: ApplyRequest,
        logs: &LogSink,
        cancel: &CancelToken,
    ) -> Result<ApplyComplete, ProvisionError> {
        let payload = match load_for::<ApplyPayload>(archive, "apply", request.transition)? {
            Some(step) => run_step(step, logs, cancel).await?,
            None => ApplyPayload::default(),
        };
        let mut resources = payload.resources;
        let previous = if request.transition == Transition::Start {
            request.previous_agent_tokens
        } else {
            BTreeMap::new()
        };
        assign_tokens(&mut resources, &previous);
        Ok(ApplyComplete {
            state: state_bytes(payload.state),
            resources,
            ai_tasks: payload.ai_tasks,
        })
    }
}

impl Provisioner for EchoProvisioner {
    fn kind(&self) -> &'static str {
        Self::KIND
    }

    fn parse<'a>(
        &'a self,
        archive: &'a Archive,
        logs: &'a LogSink,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ParseComplete, ProvisionError>> {
        Box::pin(self.do_parse(archive, logs, cancel))
    }

    fn plan<'a>(
        &'a self,
        archive: &'a Archive,
        request: PlanRequest,
        logs: &'a LogSink,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, Result<PlanComplete, ProvisionError>> {
        Box::pin(self.do_plan(archive, request, logs, cancel))
    }

    fn apply<'a>(
        &'a self,
        archive: &'a Archive,
        request: ApplyRequest,
        logs: &'a LogSink,
        cancel: &'a CancelToken,
    ) -> BoxFuture<'a, Result<ApplyComplete, ProvisionError>> {
        Box::pin(self.do_apply(archive, request, logs, cancel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::tests::tar_of;
    use crate::model::LogLevel;
    use crate::provisioner::CANCELED;
    use serde_json::json;

    fn archive(files: &[(&str, serde_json::Value)]) -> Archive {
        let texts: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string().into_bytes()))
            .collect();
        let refs: Vec<(&str, &[u8])> = texts
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        Archive::from_tar(&tar_of(&refs)).unwrap()
    }

    fn plan_req(transition: Transition) -> PlanRequest {
        PlanRequest {
            transition,
            ..PlanRequest::default()
        }
    }

    fn apply_req(transition: Transition, previous: &[(&str, Uuid)]) -> ApplyRequest {
        ApplyRequest {
            transition,
            previous_agent_tokens: previous.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
            ..ApplyRequest::default()
        }
    }

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<LogLine>) -> Vec<LogLine> {
        let mut out = Vec::new();
        while let Ok(l) = rx.try_recv() {
            out.push(l);
        }
        out
    }

    fn one_agent() -> serde_json::Value {
        json!([{"name": "dev", "type": "null_resource", "agents": [{"name": "main"}]}])
    }

    #[tokio::test]
    async fn missing_files_are_an_empty_success() {
        let a = Archive::default();
        let (sink, _rx) = LogSink::channel();
        let c = CancelToken::new();
        let echo = EchoProvisioner;
        assert_eq!(
            echo.parse(&a, &sink, &c).await.unwrap(),
            ParseComplete::default()
        );
        assert_eq!(
            echo.plan(&a, plan_req(Transition::Start), &sink, &c)
                .await
                .unwrap(),
            PlanComplete::default()
        );
        assert_eq!(
            echo.apply(&a, apply_req(Transition::Stop, &[]), &sink, &c)
                .await
                .unwrap(),
            ApplyComplete::default()
        );
    }

    #[tokio::test]
    async fn parse_emits_logs_and_returns_payload() {
        let a = archive(&[
            (
                "parse.json",
                json!({"logs": [{"level": "debug", "stage": "Parse", "output": "one"},
                                {"output": "two"}],
                       "variables": [{"name": "region", "default_value": "eu"}]}),
            ),
            ("README.md", json!("ignored: parse.json has no readme")),
        ]);
        let (sink, mut rx) = LogSink::channel();
        let out = EchoProvisioner
            .parse(&a, &sink, &CancelToken::new())
            .await
            .unwrap();
        assert_eq!(out.variables[0].name, "region");
        assert_eq!(out.readme, "\"ignored: parse.json has no readme\"");
        let logs = drain(&mut rx);
        assert_eq!(logs.len(), 2);
        assert_eq!(
            (logs[0].level, logs[0].output.as_str()),
            (LogLevel::Debug, "one")
        );
        assert_eq!(logs[1].level, LogLevel::Info);

        let a = archive(&[("parse.json", json!({"readme": "# hi"}))]);
        let out = EchoProvisioner
            .parse(&a, &sink, &CancelToken::new())
            .await
            .unwrap();
        assert_eq!(out.readme, "# hi");
    }

    #[tokio::test]
    async fn transition_files_win_over_generic_ones() {
        let a = archive(&[
            ("plan.json", json!({"resources": [{"name": "generic"}]})),
            ("plan.stop.json", json!({"resources": [{"name": "stop"}]})),
            ("apply.json", json!({"state": "generic"})),
            ("apply.delete.json", json!({"state": {"deleted": true}})),
        ]);
        let (sink, _rx) = LogSink::channel();
        let c = CancelToken::new();
        let e = EchoProvisioner;
        let name = |p: PlanComplete| p.resources[0].name.clone();
        assert_eq!(
            name(
                e.plan(&a, plan_req(Transition::Start), &sink, &c)
                    .await
                    .unwrap()
            ),
            "generic"
        );
        assert_eq!(
            name(
                e.plan(&a, plan_req(Transition::Stop), &sink, &c)
                    .await
                    .unwrap()
            ),
            "stop"
        );
        let (ar, sk, ck) = (&a, &sink, &c);
        let state = move |t| async move {
            EchoProvisioner
                .apply(ar, apply_req(t, &[]), sk, ck)
                .await
                .unwrap()
                .state
        };
        assert_eq!(state(Transition::Start).await, b"generic");
        assert_eq!(state(Transition::Delete).await, br#"{"deleted":true}"#);
    }

    #[tokio::test]
    async fn missing_plan_is_derived_from_apply() {
        let a = archive(&[(
            "apply.json",
            json!({"logs": [{"output": "apply log"}], "error": "apply fails",
                   "resources": one_agent(),
                   "ai_tasks": [{"id": "t", "sidebar_app_id": "app"}]}),
        )]);
        let (sink, mut rx) = LogSink::channel();
        let plan = EchoProvisioner
            .plan(&a, plan_req(Transition::Start), &sink, &CancelToken::new())
            .await
            .unwrap();
        assert!(plan.has_ai_tasks);
        assert_eq!(plan.ai_tasks.len(), 1);
        assert_eq!(plan.resources[0].agents[0].name, "main");
        assert!(plan.resources[0].agents[0].token.is_some());
        // Only the payload is derived: no apply logs, no apply error.
        assert!(drain(&mut rx).is_empty());

        let explicit = archive(&[("plan.json", json!({"has_ai_tasks": true}))]);
        let plan = EchoProvisioner
            .plan(
                &explicit,
                plan_req(Transition::Start),
                &sink,
                &CancelToken::new(),
            )
            .await
            .unwrap();
        assert!(plan.has_ai_tasks && plan.ai_tasks.is_empty());
    }

    #[tokio::test]
    async fn error_fails_the_step_after_its_logs() {
        let a = archive(&[(
            "plan.json",
            json!({"logs": [{"level": "error", "output": "about to fail"}],
                   "error": "boom", "error_code": "REQUIRED_TEMPLATE_VARIABLES"}),
        )]);
        let (sink, mut rx) = LogSink::channel();
        let err = EchoProvisioner
            .plan(&a, plan_req(Transition::Start), &sink, &CancelToken::new())
            .await
            .unwrap_err();
        assert_eq!(err.message, "boom");
        assert_eq!(
            err.error_code.as_deref(),
            Some("REQUIRED_TEMPLATE_VARIABLES")
        );
        assert_eq!(drain(&mut rx)[0].output, "about to fail");
    }

    #[tokio::test]
    async fn wait_for_cancel_blocks_until_canceled() {
        let a = archive(&[(
            "apply.json",
            json!({"logs": [{"output": "waiting"}], "wait_for_cancel": true}),
        )]);
        let (sink, mut rx) = LogSink::channel();
        let cancel = CancelToken::new();
        let task = {
            let (a, sink, cancel) = (a.clone(), sink.clone(), cancel.clone());
            tokio::spawn(async move {
                EchoProvisioner
                    .apply(&a, apply_req(Transition::Start, &[]), &sink, &cancel)
                    .await
            })
        };
        assert_eq!(rx.recv().await.unwrap().output, "waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished());
        cancel.cancel();
        let err = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.message, CANCELED);
    }

    #[tokio::test(start_paused = true)]
    async fn sleep_ms_delays_and_is_cancelable() {
        let a = archive(&[("parse.json", json!({"sleep_ms": 5000}))]);
        let (sink, _rx) = LogSink::channel();
        let start = tokio::time::Instant::now();
        EchoProvisioner
            .parse(&a, &sink, &CancelToken::new())
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(5000));

        let cancel = CancelToken::new();
        cancel.cancel();
        let err = EchoProvisioner.parse(&a, &sink, &cancel).await.unwrap_err();
        assert_eq!(err.message, CANCELED);
    }

    #[tokio::test]
    async fn agent_tokens_follow_the_token_rule() {
        let previous = Uuid::new_v4();
        let a = archive(&[(
            "apply.json",
            json!({"resources": [{"name": "dev", "agents": [
                {"name": "main"},
                {"name": "other"},
                {"name": "fixed", "token": "11111111-1111-4111-8111-111111111111"}
            ]}]}),
        )]);
        let (sink, _rx) = LogSink::channel();
        let c = CancelToken::new();
        let (ar, sk, ck) = (&a, &sink, &c);
        let tokens = move |t: Transition| async move {
            let out = EchoProvisioner
                .apply(ar, apply_req(t, &[("main", previous)]), sk, ck)
                .await
                .unwrap();
            out.resources[0]
                .agents
                .iter()
                .map(|ag| ag.token.clone().unwrap())
                .collect::<Vec<_>>()
        };
        let start = tokens(Transition::Start).await;
        assert_eq!(start[0], previous.to_string());
        assert_ne!(start[1], previous.to_string());
        assert_eq!(Uuid::parse_str(&start[1]).unwrap().get_version_num(), 4);
        assert_eq!(start[2], "11111111-1111-4111-8111-111111111111");

        let stop = tokens(Transition::Stop).await;
        assert_ne!(stop[0], previous.to_string());
        assert_eq!(Uuid::parse_str(&stop[0]).unwrap().get_version_num(), 4);
        assert_eq!(stop[2], "11111111-1111-4111-8111-111111111111");
    }

    #[tokio::test]
    async fn bad_json_names_the_file() {
        let bad = tar_of(&[("plan.start.json", &b"{\"resources\": 3"[..])]);
        let a = Archive::from_tar(&bad).unwrap();
        let (sink, _rx) = LogSink::channel();
        let err = EchoProvisioner
            .plan(&a, plan_req(Transition::Start), &sink, &CancelToken::new())
            .await
            .unwrap_err();
        assert!(
            err.message
                .starts_with("echo provisioner: invalid plan.start.json: "),
            "{}",
            err.message
        );

        let a = archive(&[("apply.json", json!({"resources": "nope"}))]);
        let err = EchoProvisioner
            .apply(
                &a,
                apply_req(Transition::Start, &[]),
                &sink,
                &CancelToken::new(),
            )
            .await
            .unwrap_err();
        assert!(
            err.message
                .starts_with("echo provisioner: invalid apply.json: "),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn plan_carries_parameters_presets_and_replacements() {
        let a = archive(&[(
            "plan.json",
            json!({
                "parameters": [{"name": "AI Prompt", "mutable": true}],
                "presets": [{"name": "dev", "parameters": [{"name": "region", "value": "eu"}]}],
                "resource_replacements": [{"resource": "docker_container.dev", "paths": ["image"]}],
                "variables": [{"name": "v", "required": true}]
            }),
        )]);
        let (sink, _rx) = LogSink::channel();
        let plan = EchoProvisioner
            .plan(&a, plan_req(Transition::Start), &sink, &CancelToken::new())
            .await
            .unwrap();
        assert_eq!(plan.parameters[0].name, "AI Prompt");
        assert_eq!(plan.presets[0].parameters[0].value, "eu");
        assert_eq!(plan.resource_replacements[0].paths, ["image"]);
        assert!(plan.variables[0].required);
        assert!(!plan.has_ai_tasks);
    }
}
