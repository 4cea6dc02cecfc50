//! The provisioning data shapes of 04 §3: what a provisioner returns from `parse`, `plan` and
//! `apply`, and what `CompletedJob` carries to the server.
//!
//! JSON uses Coder's snake_case field names. Every struct except [`PresetDef`] (whose `name` is
//! required, 04 §6.6) fills missing fields with the defaults the spec gives, so an echo template
//! may write only the fields it cares about; the server validates what it stores (04 §6.4).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A workspace transition (`workspace_transition`, 04 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    #[default]
    Start,
    Stop,
    Delete,
}

impl Transition {
    /// The wire and database text: `start`, `stop` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Start => "start",
            Transition::Stop => "stop",
            Transition::Delete => "delete",
        }
    }
}

impl std::fmt::Display for Transition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `{name, value}` pair: a rich parameter value, a variable value or a preset parameter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

impl NameValue {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A resource (`workspace_resources`, 04 §2.9).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub r#type: String,
    pub hide: bool,
    pub icon: String,
    pub daily_cost: i32,
    pub instance_type: Option<String>,
    pub metadata: Vec<MetadataItem>,
    pub agents: Vec<Agent>,
}

/// One `workspace_resource_metadata` row. `value` is nullable like its column (`null` or a
/// missing key is NULL).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataItem {
    pub key: String,
    pub value: Option<String>,
    pub sensitive: bool,
}

/// An agent (`workspace_agents`, 04 §2.9). `token` is the agent's auth token as text; the
/// server checks that it is a UUID (04 §6.4). The echo provisioner always fills it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Agent {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(alias = "os")]
    pub operating_system: String,
    #[serde(alias = "arch")]
    pub architecture: String,
    pub directory: String,
    pub env: BTreeMap<String, String>,
    pub apps: Vec<App>,
    pub devcontainers: Vec<Devcontainer>,
    pub resources_monitoring: Option<ResourcesMonitoring>,
    pub connection_timeout_seconds: i32,
    pub troubleshooting_url: String,
    pub motd_file: String,
    /// `None` = the column default (`vscode, web_terminal, ssh_helper, port_forwarding_helper`).
    pub display_apps: Option<DisplayApps>,
    pub order: i32,
}

/// Coder's `display_apps` block. Missing keys take Coder's defaults (all on except
/// `vscode_insiders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DisplayApps {
    pub vscode: bool,
    pub vscode_insiders: bool,
    pub web_terminal: bool,
    pub ssh_helper: bool,
    pub port_forwarding_helper: bool,
}

impl Default for DisplayApps {
    fn default() -> Self {
        Self {
            vscode: true,
            vscode_insiders: false,
            web_terminal: true,
            ssh_helper: true,
            port_forwarding_helper: true,
        }
    }
}

impl DisplayApps {
    /// The enabled apps as the `display_app` enum texts, in Coder's order.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.vscode, "vscode"),
            (self.vscode_insiders, "vscode_insiders"),
            (self.web_terminal, "web_terminal"),
            (self.ssh_helper, "ssh_helper"),
            (self.port_forwarding_helper, "port_forwarding_helper"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// `resources_monitoring` of an agent (04 §2.11).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourcesMonitoring {
    pub memory: Option<MemoryMonitor>,
    pub volumes: Vec<VolumeMonitor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryMonitor {
    pub enabled: bool,
    pub threshold: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeMonitor {
    pub path: String,
    pub enabled: bool,
    pub threshold: i32,
}

/// An app (`workspace_apps`, 04 §2.9). `id` is the provisioner-side id; the server gives each
/// row a new id and uses this one only to resolve an AI task's sidebar app (04 §9).
/// `sharing_level` and `open_in` stay text here; the server checks them against its enums.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct App {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub icon: String,
    pub subdomain: bool,
    pub healthcheck: Option<Healthcheck>,
    pub sharing_level: String,
    pub external: bool,
    pub hidden: bool,
    pub open_in: String,
    pub group: Option<String>,
    pub order: i32,
}

impl Default for App {
    fn default() -> Self {
        Self {
            id: String::new(),
            slug: String::new(),
            display_name: String::new(),
            url: None,
            command: None,
            icon: String::new(),
            subdomain: false,
            healthcheck: None,
            sharing_level: "owner".to_owned(),
            external: false,
            hidden: false,
            open_in: "slim-window".to_owned(),
            group: None,
            order: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    pub url: String,
    pub interval: i32,
    pub threshold: i32,
}

/// A dev container (`workspace_agent_devcontainers`, 04 §2.11); `name` is the Terraform
/// resource name, `config_path` is `""` when not given.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Devcontainer {
    pub name: String,
    pub workspace_folder: String,
    pub config_path: String,
}

/// A `coder_ai_task`; `sidebar_app_id` is a provisioner-side [`App::id`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AiTask {
    pub id: String,
    pub sidebar_app_id: String,
}

fn default_type_string() -> String {
    "string".to_owned()
}

/// A `coder_parameter` (the `template_version_parameters` columns, 04 §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parameter {
    pub name: String,
    pub display_name: String,
    pub description: String,
    /// `string|number|bool|list(string)`; default `string`.
    #[serde(rename = "type")]
    pub r#type: String,
    pub mutable: bool,
    pub default_value: String,
    pub icon: String,
    pub options: Vec<ParameterOption>,
    pub validation_regex: String,
    pub validation_error: String,
    pub validation_min: Option<i32>,
    pub validation_max: Option<i32>,
    /// `""`, `increasing` or `decreasing`.
    pub validation_monotonic: String,
    pub required: bool,
    pub ephemeral: bool,
    pub display_order: i32,
}

impl Default for Parameter {
    fn default() -> Self {
        Self {
            name: String::new(),
            display_name: String::new(),
            description: String::new(),
            r#type: default_type_string(),
            mutable: false,
            default_value: String::new(),
            icon: String::new(),
            options: Vec::new(),
            validation_regex: String::new(),
            validation_error: String::new(),
            validation_min: None,
            validation_max: None,
            validation_monotonic: String::new(),
            required: false,
            ephemeral: false,
            display_order: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParameterOption {
    pub name: String,
    pub description: String,
    pub value: String,
    pub icon: String,
}

/// A Terraform `variable` (`template_version_variables`, 04 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Variable {
    pub name: String,
    pub description: String,
    /// `string|number|bool`; default `string`.
    #[serde(rename = "type")]
    pub r#type: String,
    pub value: String,
    pub default_value: String,
    pub required: bool,
    pub sensitive: bool,
}

impl Default for Variable {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: String::new(),
            r#type: default_type_string(),
            value: String::new(),
            default_value: String::new(),
            required: false,
            sensitive: false,
        }
    }
}

/// The JSON form of a `coder_workspace_preset` (04 §6.6). Only `name` is required; it is
/// validated by 05 §2.6 at completion, not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresetDef {
    pub name: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
    /// A list (not a map) so duplicates stay visible to 05's check.
    #[serde(default)]
    pub parameters: Vec<NameValue>,
    /// `None` = no `prebuilds` block (`desired_instances` NULL).
    #[serde(default)]
    pub prebuilds: Option<PrebuildsDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PrebuildsDef {
    pub instances: i32,
    /// `None` = ttl 0.
    pub expiration_policy: Option<ExpirationPolicy>,
    /// `None` = no timezone and no schedules.
    pub scheduling: Option<Scheduling>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExpirationPolicy {
    /// Seconds.
    pub ttl: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Scheduling {
    pub timezone: String,
    pub schedule: Vec<ScheduleDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScheduleDef {
    pub cron: String,
    pub instances: i32,
}

/// A resource the plan would replace, with the attribute paths that force it (05's claim
/// notification).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourceReplacement {
    pub resource: String,
    pub paths: Vec<String>,
}

/// `log_level` (04 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One provisioner log line. `created_at` is `None` when the provisioner has no clock; the
/// server stamps it then (all time comes from `hangar_core::Clock`, which this crate does not
/// read for logs).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LogLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    pub level: LogLevel,
    pub stage: String,
    pub output: String,
}

impl LogLine {
    pub fn new(level: LogLevel, stage: impl Into<String>, output: impl Into<String>) -> Self {
        Self {
            created_at: None,
            level,
            stage: stage.into(),
            output: output.into(),
        }
    }
}

/// What `parse` returns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParseComplete {
    pub readme: String,
    pub variables: Vec<Variable>,
}

/// What `plan` returns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanComplete {
    pub resources: Vec<Resource>,
    pub parameters: Vec<Parameter>,
    pub variables: Vec<Variable>,
    pub presets: Vec<PresetDef>,
    pub has_ai_tasks: bool,
    pub ai_tasks: Vec<AiTask>,
    pub resource_replacements: Vec<ResourceReplacement>,
    pub readme: String,
}

/// What `apply` returns. `state` is the opaque provisioner state stored on the build.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApplyComplete {
    pub state: Vec<u8>,
    pub resources: Vec<Resource>,
    pub ai_tasks: Vec<AiTask>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_defaults_and_aliases() {
        let r: Resource = serde_json::from_value(json!({
            "name": "dev", "type": "null_resource",
            "agents": [{"name": "main", "os": "linux", "arch": "amd64",
                        "apps": [{"slug": "code"}]}]
        }))
        .unwrap();
        let agent = &r.agents[0];
        assert_eq!(agent.operating_system, "linux");
        assert_eq!(agent.architecture, "amd64");
        assert_eq!(agent.token, None);
        assert_eq!(agent.apps[0].sharing_level, "owner");
        assert_eq!(agent.apps[0].open_in, "slim-window");
        assert!(!r.hide);

        let out = serde_json::to_value(&r).unwrap();
        assert_eq!(out["type"], "null_resource");
        assert_eq!(out["agents"][0]["operating_system"], "linux");
        assert_eq!(out["agents"][0]["architecture"], "amd64");
        assert!(out["agents"][0].get("token").is_none());
    }

    #[test]
    fn preset_requires_name_and_defaults_the_rest() {
        assert!(serde_json::from_value::<PresetDef>(json!({"default": true})).is_err());
        let p: PresetDef = serde_json::from_value(json!({
            "name": "dev",
            "prebuilds": {"instances": 2, "scheduling": {"timezone": "Europe/Paris"}}
        }))
        .unwrap();
        assert!(!p.default);
        assert!(p.parameters.is_empty());
        let pb = p.prebuilds.unwrap();
        assert_eq!(pb.instances, 2);
        assert_eq!(pb.expiration_policy, None);
        assert!(pb.scheduling.unwrap().schedule.is_empty());
        let bare: PresetDef = serde_json::from_value(json!({"name": "x"})).unwrap();
        assert_eq!(bare.prebuilds, None);
    }

    #[test]
    fn parameter_and_variable_types_default_to_string() {
        let p: Parameter = serde_json::from_value(json!({"name": "region"})).unwrap();
        assert_eq!(p.r#type, "string");
        assert_eq!(p.validation_min, None);
        let v: Variable = serde_json::from_value(json!({"name": "v"})).unwrap();
        assert_eq!(v.r#type, "string");
    }

    #[test]
    fn log_line_level_defaults_to_info() {
        let l: LogLine = serde_json::from_value(json!({"output": "hi"})).unwrap();
        assert_eq!(l.level, LogLevel::Info);
        assert!(serde_json::from_value::<LogLine>(json!({"level": "loud"})).is_err());
        assert_eq!(
            serde_json::to_value(LogLine::new(LogLevel::Warn, "s", "o")).unwrap(),
            json!({"level": "warn", "stage": "s", "output": "o"})
        );
    }

    #[test]
    fn display_apps_names() {
        assert_eq!(
            DisplayApps::default().names(),
            [
                "vscode",
                "web_terminal",
                "ssh_helper",
                "port_forwarding_helper"
            ]
        );
    }
}
