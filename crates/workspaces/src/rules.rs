//! Pure rules of the workspace area: names, statuses, tags, search queries (04 §3, §8).

use crate::model::{JobStatus, Transition, WorkspaceStatus};
use hangar_core::wire::Validation;
use std::collections::BTreeMap;

/// A daemon not seen for this long is offline and no longer counts for queue positions
/// (04 §6.1, §7).
pub const STALE_DAEMON: chrono::TimeDelta = chrono::TimeDelta::seconds(90);

/// `^[a-zA-Z0-9]+(?:<sep>[a-zA-Z0-9]+)*$` with `seps` as the allowed single separators.
fn segmented(value: &str, seps: &[char]) -> bool {
    let mut prev_sep = true;
    for ch in value.chars() {
        if ch.is_ascii_alphanumeric() {
            prev_sep = false;
        } else if seps.contains(&ch) && !prev_sep {
            prev_sep = true;
        } else {
            return false;
        }
    }
    !value.is_empty() && !prev_sep
}

/// Which name rule applies (04 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Workspace,
    Template,
    TemplateVersion,
}

/// Validates a name; the error is the validation of 04 §8.
pub fn validate_name(kind: NameKind, value: &str) -> Result<(), Validation> {
    let (ok, tag) = match kind {
        NameKind::Workspace => (
            value.len() <= 32 && segmented(value, &['-']),
            "workspace_name",
        ),
        NameKind::Template => (
            value.len() <= 32 && segmented(value, &['-']),
            "template_name",
        ),
        NameKind::TemplateVersion => (
            value.len() <= 64 && segmented(value, &['_', '.', '-']),
            "template_version_name",
        ),
    };
    if ok {
        Ok(())
    } else {
        Err(Validation::new(
            "name",
            format!("Validation failed for tag {tag:?} with value: {value:?}"),
        ))
    }
}

/// `(?i)^[a-z0-9](-?[a-z0-9])*$`, at most 64 characters: agent names.
pub fn validate_agent_name(name: &str) -> Result<(), String> {
    const RE: &str = "(?i)^[a-z0-9](-?[a-z0-9])*$";
    if name.is_empty() {
        return Err("agent name cannot be empty".into());
    }
    if name.contains('_') {
        return Err(format!(
            "agent name {name:?} contains underscores which are no longer supported, please use hyphens instead (regex: {RE:?})"
        ));
    }
    if name.len() > 64 || !segmented(name, &['-']) {
        return Err(format!("agent name {name:?} does not match regex {RE:?}"));
    }
    Ok(())
}

/// `^[a-z0-9](-?[a-z0-9])*$`: app slugs.
pub fn validate_app_slug(slug: &str) -> Result<(), String> {
    let lower = slug.chars().all(|c| !c.is_ascii_uppercase());
    if lower && segmented(slug, &['-']) {
        Ok(())
    } else {
        Err(format!(
            "app slug {slug:?} does not match regex \"^[a-z0-9](-?[a-z0-9])*$\""
        ))
    }
}

/// A build's status from its job's status and transition (04 §4.9).
pub fn build_status(job: JobStatus, transition: Transition) -> WorkspaceStatus {
    use WorkspaceStatus as W;
    match (job, transition) {
        (JobStatus::Pending, _) => W::Pending,
        (JobStatus::Running, Transition::Start) => W::Starting,
        (JobStatus::Running, Transition::Stop) => W::Stopping,
        (JobStatus::Running, Transition::Delete) => W::Deleting,
        (JobStatus::Succeeded, Transition::Start) => W::Running,
        (JobStatus::Succeeded, Transition::Stop) => W::Stopped,
        (JobStatus::Succeeded, Transition::Delete) => W::Deleted,
        (JobStatus::Canceling, _) => W::Canceling,
        (JobStatus::Canceled, _) => W::Canceled,
        (JobStatus::Failed, _) | (JobStatus::Unknown, _) => W::Failed,
    }
}

pub type Tags = BTreeMap<String, String>;

fn tag_ok(s: &str, min: usize) -> bool {
    s.len() >= min
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b))
}

/// Tag normalisation (04 §2.13): `scope` defaults to `organization`, which clears `owner`;
/// `scope=user` sets `owner` to the initiator.
pub fn normalize_tags(mut tags: Tags, initiator: uuid::Uuid) -> Result<Tags, Validation> {
    if tags.len() > 32 {
        return Err(Validation::new("tags", "at most 32 tags are allowed"));
    }
    for (k, v) in &tags {
        if !tag_ok(k, 1) || !tag_ok(v, 0) {
            return Err(Validation::new("tags", format!("invalid tag {k:?}")));
        }
    }
    let scope = tags
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "organization".into());
    match scope.as_str() {
        "user" => {
            tags.insert("owner".into(), initiator.to_string());
        }
        _ => {
            tags.insert("scope".into(), "organization".into());
            tags.insert("owner".into(), String::new());
        }
    }
    Ok(tags)
}

/// The canonical untagged set.
pub fn untagged() -> Tags {
    [
        ("owner".to_string(), String::new()),
        ("scope".to_string(), "organization".to_string()),
    ]
    .into()
}

/// `provisioner_tagset_contains` (04 §2.13), the Rust twin of the SQL.
pub fn tagset_contains(daemon: &Tags, job: &Tags) -> bool {
    if *job == untagged() {
        return *daemon == untagged();
    }
    job.iter().all(|(k, v)| daemon.get(k) == Some(v))
}

/// The text a client shows for an app status: its message, or the state when empty.
pub fn app_status_display<'a>(message: &'a str, state: &'a str) -> &'a str {
    if message.is_empty() { state } else { message }
}

/// A parsed `GET /workspaces?q=` (04 §4.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceFilter {
    /// `me` is resolved by the caller.
    pub owner: Option<String>,
    pub organization: Option<String>,
    pub template: Option<String>,
    pub name: Option<String>,
    pub status: Option<WorkspaceStatus>,
    pub outdated: Option<bool>,
    pub has_ai_task: Option<bool>,
    pub id: Option<uuid::Uuid>,
}

pub fn parse_workspace_query(q: &str) -> Result<WorkspaceFilter, Vec<Validation>> {
    let mut f = WorkspaceFilter::default();
    let mut errors = vec![];
    let bad = |detail: String| Validation::new("q", detail);
    let parse_bool = |v: &str| match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    for term in q.split_whitespace() {
        let (key, value) = term.split_once(':').unwrap_or(("name", term));
        if value.is_empty() {
            errors.push(bad(format!("Query element {term:?} has an empty value")));
            continue;
        }
        match key {
            "owner" => f.owner = Some(value.to_string()),
            "organization" => f.organization = Some(value.to_string()),
            "template" => f.template = Some(value.to_string()),
            "name" => f.name = Some(value.to_string()),
            "status" => match value.parse() {
                Ok(s) => f.status = Some(s),
                Err(_) => errors.push(bad(format!(
                    "Query param \"status\" has invalid value {value:?}"
                ))),
            },
            "outdated" | "has-ai-task" => match parse_bool(value) {
                Some(b) if key == "outdated" => f.outdated = Some(b),
                Some(b) => f.has_ai_task = Some(b),
                None => errors.push(bad(format!("Query param {key:?} must be a valid boolean"))),
            },
            "id" => match uuid::Uuid::parse_str(value) {
                Ok(id) => f.id = Some(id),
                Err(_) => errors.push(bad("Query param \"id\" must be a valid uuid".to_string())),
            },
            other => errors.push(bad(format!("{other:?} is not a valid query param"))),
        }
    }
    if errors.is_empty() {
        Ok(f)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name(NameKind::Workspace, "dev-1").is_ok());
        assert_eq!(
            validate_name(NameKind::Workspace, "my_ws")
                .unwrap_err()
                .detail,
            "Validation failed for tag \"workspace_name\" with value: \"my_ws\""
        );
        assert!(validate_name(NameKind::TemplateVersion, "v1.2_rc-3").is_ok());
        assert!(validate_name(NameKind::TemplateVersion, "v1..2").is_err());
        assert!(validate_agent_name("main").is_ok());
        assert_eq!(
            validate_agent_name("my_agent").unwrap_err(),
            "agent name \"my_agent\" contains underscores which are no longer supported, please use hyphens instead (regex: \"(?i)^[a-z0-9](-?[a-z0-9])*$\")"
        );
        assert!(validate_app_slug("code").is_ok());
        assert_eq!(
            validate_app_slug("My_App").unwrap_err(),
            "app slug \"My_App\" does not match regex \"^[a-z0-9](-?[a-z0-9])*$\""
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(
            build_status(JobStatus::Running, Transition::Stop),
            WorkspaceStatus::Stopping
        );
        assert_eq!(
            build_status(JobStatus::Succeeded, Transition::Delete),
            WorkspaceStatus::Deleted
        );
        assert_eq!(
            build_status(JobStatus::Canceled, Transition::Start),
            WorkspaceStatus::Canceled
        );
    }

    fn t(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tags() {
        assert!(tagset_contains(
            &t(&[("a", "1"), ("b", "2")]),
            &t(&[("a", "1")])
        ));
        assert!(!tagset_contains(
            &t(&[("a", "1")]),
            &t(&[("a", "1"), ("b", "2")])
        ));
        let tagged_daemon = t(&[("foo", "bar"), ("owner", ""), ("scope", "organization")]);
        assert!(!tagset_contains(&tagged_daemon, &untagged()));
        assert!(tagset_contains(&untagged(), &untagged()));
        assert!(tagset_contains(&tagged_daemon, &t(&[])));
        let u = uuid::Uuid::new_v4();
        assert_eq!(
            normalize_tags(t(&[("env", "gpu")]), u).unwrap(),
            t(&[("env", "gpu"), ("owner", ""), ("scope", "organization")])
        );
        assert_eq!(
            normalize_tags(t(&[("scope", "user")]), u).unwrap()["owner"],
            u.to_string()
        );
        assert!(normalize_tags(t(&[("bad key", "x")]), u).is_err());
    }

    #[test]
    fn queries() {
        let f = parse_workspace_query("owner:me status:running dev").unwrap();
        assert_eq!(f.owner.as_deref(), Some("me"));
        assert_eq!(f.status, Some(WorkspaceStatus::Running));
        assert_eq!(f.name.as_deref(), Some("dev"));
        assert!(parse_workspace_query("foo:bar").is_err());
        assert!(parse_workspace_query("outdated:maybe").is_err());
    }
}
