//! The validation half of job completion (04 §6.4): what a provisioner reported is checked
//! here before the store writes it; a failure turns into a failed job with that text.

use hangar_provisioner::model::{AiTask, Parameter, Resource, Variable};
use std::collections::HashSet;

/// A completion refused by the rules: the job fails with `error` (and `error_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub error: String,
    pub error_code: Option<String>,
}

impl Rejected {
    fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            error_code: None,
        }
    }
}

/// Agents, tokens, monitors and apps of one job's resources.
pub fn check_resources(resources: &[Resource], build: bool) -> Result<(), Rejected> {
    let mut agent_names = HashSet::new();
    let mut slugs = HashSet::new();
    for r in resources {
        for a in &r.agents {
            crate::rules::validate_agent_name(&a.name).map_err(Rejected::new)?;
            if !agent_names.insert(a.name.to_lowercase()) {
                return Err(Rejected::new(format!("duplicate agent name: {}", a.name)));
            }
            if build
                && let Some(t) = &a.token
                && uuid::Uuid::parse_str(t).is_err()
            {
                return Err(Rejected::new("invalid auth token format; must be uuid"));
            }
            if let Some(m) = &a.resources_monitoring {
                let mut paths = HashSet::new();
                for v in &m.volumes {
                    if !paths.insert(v.path.as_str()) {
                        return Err(Rejected::new(format!(
                            "duplicate volume monitor path {:?}",
                            v.path
                        )));
                    }
                }
            }
            for app in &a.apps {
                crate::rules::validate_app_slug(&app.slug).map_err(Rejected::new)?;
                if !slugs.insert(app.slug.as_str()) {
                    return Err(Rejected::new(format!(
                        "duplicate app slug, must be unique per template: {:?}",
                        app.slug
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Parameters must have unique names; required variables need values.
pub fn check_import(
    parameters: &[Parameter],
    variables: &[Variable],
    resources: &[Resource],
) -> Result<(), Rejected> {
    let mut seen = HashSet::new();
    for p in parameters {
        if !seen.insert(p.name.as_str()) {
            return Err(Rejected::new(format!(
                "coder_parameter names must be unique but {:?} appears multiple times",
                p.name
            )));
        }
    }
    let missing: Vec<&str> = variables
        .iter()
        .filter(|v| v.required && v.value.is_empty() && v.default_value.is_empty())
        .map(|v| v.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Rejected {
            error: format!(
                "required template variables need values: {}",
                missing.join(", ")
            ),
            error_code: Some("REQUIRED_TEMPLATE_VARIABLES".into()),
        });
    }
    check_resources(resources, false)
}

/// The AI task rule of a build: returns the provisioner id of the sidebar app, if any.
pub fn check_ai_tasks(
    tasks: &[AiTask],
    resources: &[Resource],
) -> Result<Option<String>, Rejected> {
    match tasks {
        [] => Ok(None),
        [task] => {
            let exists = resources
                .iter()
                .flat_map(|r| &r.agents)
                .flat_map(|a| &a.apps)
                .any(|app| app.id == task.sidebar_app_id);
            if exists {
                Ok(Some(task.sidebar_app_id.clone()))
            } else {
                Err(Rejected::new(format!(
                    "coder_ai_task sidebar_app {:?} does not match any coder_app",
                    task.sidebar_app_id
                )))
            }
        }
        many => Err(Rejected::new(format!(
            "at most one coder_ai_task is supported per build, but {} are declared",
            many.len()
        ))),
    }
}
