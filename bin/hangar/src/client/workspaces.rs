//! Workspace commands (04 §5): `create`, `list`, `show`, `start`, `stop` and `delete`.

use std::fmt;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use super::http::ApiClient;
use super::jobs::{self, FollowOptions, JobOwner};
use super::models::{
    TemplateVersionParameter, Workspace, WorkspaceAppStatus, WorkspaceBuild, decode,
};
use super::orgs::OrgArg;
use super::output::{OutputFormat, Table, format_time, print_json};
use super::templates::{fetch_template, name_values, parse_name_value};
use super::{Context, Io};

/// The search `hangar list` uses without `--all` or `--search`.
const DEFAULT_SEARCH: &str = "owner:me";

/// A workspace as typed on the command line: `name` (yours) or `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceRef {
    /// A username, or `me`.
    pub owner: String,
    pub name: String,
}

impl fmt::Display for WorkspaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.owner == "me" {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.owner, self.name)
        }
    }
}

/// Parses `name` or `owner/name`; used as a clap value parser.
pub fn parse_workspace_ref(raw: &str) -> Result<WorkspaceRef, String> {
    let raw = raw.trim();
    let bad = || format!("invalid workspace {raw:?}: expected <name> or <owner>/<name>");
    let (owner, name) = match raw.split_once('/') {
        Some((owner, name)) => (owner, name),
        None => ("me", raw),
    };
    if owner.is_empty() || name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    Ok(WorkspaceRef {
        owner: owner.to_owned(),
        name: name.to_owned(),
    })
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the workspace, or `<owner>/<name>` (prompted for on a terminal when missing).
    #[arg(value_parser = parse_workspace_ref)]
    workspace: Option<WorkspaceRef>,
    /// Template to create the workspace from (prompted for on a terminal when missing).
    #[arg(short = 't', long)]
    template: Option<String>,
    /// Value of a template parameter, as `name=value`; repeatable.
    #[arg(long = "parameter", value_name = "NAME=VALUE", value_parser = parse_name_value)]
    parameters: Vec<(String, String)>,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Show debug and trace lines of the build log.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    org: OrgArg,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List every workspace you can see, not only yours.
    #[arg(short = 'a', long)]
    all: bool,
    /// Search query, e.g. `owner:alice status:running` [default: owner:me].
    #[arg(long)]
    search: Option<String>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The workspace: `name` or `owner/name`.
    #[arg(value_parser = parse_workspace_ref)]
    workspace: WorkspaceRef,
    /// Show debug and trace lines of the build log.
    #[arg(long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    build: BuildArgs,
    /// Delete the workspace without destroying its resources (needs template:update).
    #[arg(long)]
    orphan: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    yes: bool,
}

/// The transitions a build can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Start,
    Stop,
    Delete,
}

impl Transition {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Delete => "delete",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Start => "started",
            Self::Stop => "stopped",
            Self::Delete => "deleted",
        }
    }
}

pub async fn create(ctx: &Context<'_>, io: &mut Io<'_>, args: CreateArgs) -> Result<()> {
    let client = ctx.client()?;
    let template_name = match (&args.template, io.interactive()) {
        (Some(t), _) => t.clone(),
        (None, true) => io.prompt("Template")?,
        (None, false) => bail!("a template is required: pass --template <name>"),
    };
    let template = fetch_template(&client, &args.org.org, &template_name).await?;
    let workspace = match (args.workspace, io.interactive()) {
        (Some(w), _) => w,
        (None, true) => {
            parse_workspace_ref(&io.prompt("Name of the workspace")?).map_err(|e| anyhow!(e))?
        }
        (None, false) => bail!("a workspace name is required: hangar create <name> -t <template>"),
    };
    let mut parameters = args.parameters;
    if io.interactive() {
        ask_missing_parameters(io, &client, &template.active_version_id, &mut parameters).await?;
    }
    if !args.yes && io.interactive() && !io.confirm("Confirm create?")? {
        bail!("Creation canceled.");
    }
    let body = json!({
        "name": workspace.name,
        "template_id": template.id,
        "rich_parameter_values": name_values(&parameters),
    });
    let created = client
        .post(&["users", &workspace.owner, "workspaces"], &body)
        .await?;
    let ws: Workspace = decode(&created, "a workspace")?;
    let build = ws
        .latest_build
        .as_ref()
        .ok_or_else(|| anyhow!("the server created workspace {} without a build", ws.name))?;
    let json_output = ctx.output() == OutputFormat::Json;
    let finished = jobs::follow(
        io,
        &client,
        JobOwner::Build(build.id.clone()),
        FollowOptions::new(args.verbose, json_output),
    )
    .await?;
    if json_output {
        return print_json(io, &client.get(&["workspaces", &ws.id]).await?);
    }
    let finished: WorkspaceBuild = decode(&finished, "a workspace build")?;
    io.println(&format!(
        "The {} workspace has been created at {}!",
        ws.name,
        finished_at(&finished)
    ))
}

/// Prompts for the required parameters of the template's active version that no
/// `--parameter` gave.
async fn ask_missing_parameters(
    io: &mut Io<'_>,
    client: &ApiClient,
    version_id: &str,
    given: &mut Vec<(String, String)>,
) -> Result<()> {
    let value = client
        .get(&["templateversions", version_id, "rich-parameters"])
        .await?;
    let params: Vec<TemplateVersionParameter> = decode(&value, "a list of parameters")?;
    for param in params.iter().filter(|p| p.required) {
        if given.iter().any(|(name, _)| *name == param.name) {
            continue;
        }
        let label = if param.display_name.is_empty() {
            &param.name
        } else {
            &param.display_name
        };
        if !param.description.is_empty() {
            io.eprintln(&param.description)?;
        }
        let answer = io.prompt(label)?;
        given.push((param.name.clone(), answer));
    }
    Ok(())
}

pub async fn list(ctx: &Context<'_>, io: &mut Io<'_>, args: ListArgs) -> Result<()> {
    let client = ctx.client()?;
    let query = search_query(args.all, args.search.as_deref());
    let mut url = client.endpoint(&["workspaces"])?;
    if !query.is_empty() {
        url.query_pairs_mut().append_pair("q", query);
    }
    let value = client.get_url(url).await?;
    let workspaces = value.get("workspaces").cloned().ok_or_else(|| {
        anyhow!("unexpected answer from the server (expected {{workspaces, count}})")
    })?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &workspaces);
    }
    let workspaces: Vec<Workspace> = decode(&workspaces, "a list of workspaces")?;
    if workspaces.is_empty() {
        return io.eprintln("No workspaces found!");
    }
    io.print(&workspaces_table(&workspaces).render())
}

/// `--search` wins; `--all` alone searches everything; neither means your own workspaces.
fn search_query(all: bool, search: Option<&str>) -> &str {
    match (search, all) {
        (Some(search), _) => search.trim(),
        (None, true) => "",
        (None, false) => DEFAULT_SEARCH,
    }
}

fn workspaces_table(workspaces: &[Workspace]) -> Table {
    let mut table = Table::new(&[
        "WORKSPACE",
        "TEMPLATE",
        "STATUS",
        "HEALTHY",
        "LAST BUILT",
        "OUTDATED",
        "APP STATUS",
    ]);
    for ws in workspaces {
        let status = ws
            .latest_build
            .as_ref()
            .map(|b| b.status.clone())
            .unwrap_or_default();
        let healthy = if status == "running" {
            ws.health.healthy.to_string()
        } else {
            String::new()
        };
        table.row(vec![
            format!("{}/{}", ws.owner_name, ws.name),
            ws.template_name.clone(),
            status,
            healthy,
            ws.latest_build
                .as_ref()
                .map(|b| format_time(&b.created_at))
                .unwrap_or_default(),
            ws.outdated.to_string(),
            app_status_cell(ws),
        ]);
    }
    table
}

/// The text of an app status: its message, or its state when the message is empty.
fn app_status_text(status: &WorkspaceAppStatus) -> &str {
    if status.message.trim().is_empty() {
        &status.state
    } else {
        &status.message
    }
}

/// The slug of the app `app_id` in the workspace's latest build (its id when not found).
fn app_slug(ws: &Workspace, app_id: &str) -> String {
    ws.latest_build
        .iter()
        .flat_map(|b| &b.resources)
        .flat_map(|r| &r.agents)
        .flat_map(|a| &a.apps)
        .find(|app| app.id == app_id)
        .map_or_else(|| app_id.to_owned(), |app| app.slug.clone())
}

/// The `APP STATUS` cell: `<slug>: <text>`, empty when no app reported a status.
fn app_status_cell(ws: &Workspace) -> String {
    match &ws.latest_app_status {
        Some(status) => format!(
            "{}: {}",
            app_slug(ws, &status.app_id),
            app_status_text(status)
        ),
        None => String::new(),
    }
}

async fn fetch_workspace(
    client: &ApiClient,
    workspace: &WorkspaceRef,
) -> Result<(Value, Workspace)> {
    let value = client
        .get(&["users", &workspace.owner, "workspace", &workspace.name])
        .await?;
    let ws = decode(&value, "a workspace")?;
    Ok((value, ws))
}

pub async fn show(ctx: &Context<'_>, io: &mut Io<'_>, workspace: &WorkspaceRef) -> Result<()> {
    let client = ctx.client()?;
    let (value, ws) = fetch_workspace(&client, workspace).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    io.print(&show_text(&ws))
}

fn show_text(ws: &Workspace) -> String {
    let mut text = match &ws.latest_build {
        Some(b) => format!("{} ({}, build {})\n", ws.name, b.status, b.build_number),
        None => format!("{} (no builds)\n", ws.name),
    };
    for resource in ws
        .latest_build
        .iter()
        .flat_map(|b| &b.resources)
        .filter(|r| !r.hide)
    {
        text.push_str(&format!(
            "  resource {}.{}\n",
            resource.resource_type, resource.name
        ));
        for agent in &resource.agents {
            text.push_str(&format!(
                "    agent {} ({}, {})\n",
                agent.name, agent.status, agent.lifecycle_state
            ));
            for app in &agent.apps {
                let target = app.url.as_deref().or(app.command.as_deref()).unwrap_or("");
                let line = format!("      {}  {}  {}", app.slug, app.health, target);
                text.push_str(line.trim_end());
                text.push('\n');
            }
        }
    }
    match &ws.latest_app_status {
        Some(status) => text.push_str(&format!(
            "Latest app status: {} ({}, app {})\n",
            app_status_text(status),
            status.state,
            app_slug(ws, &status.app_id)
        )),
        None => text.push_str("Latest app status: none\n"),
    }
    text
}

pub async fn start_or_stop(
    ctx: &Context<'_>,
    io: &mut Io<'_>,
    args: BuildArgs,
    transition: Transition,
) -> Result<()> {
    let client = ctx.client()?;
    let (_, ws) = fetch_workspace(&client, &args.workspace).await?;
    build(ctx, io, &client, &ws, transition, false, args.verbose).await
}

pub async fn delete(ctx: &Context<'_>, io: &mut Io<'_>, args: DeleteArgs) -> Result<()> {
    let client = ctx.client()?;
    let (_, ws) = fetch_workspace(&client, &args.build.workspace).await?;
    if !args.yes {
        if !io.interactive() {
            bail!(
                "refusing to delete workspace {} without confirmation: pass -y (--yes)",
                ws.name
            );
        }
        if !io.confirm(&format!("Confirm delete workspace {}?", ws.name))? {
            bail!("Deletion canceled.");
        }
    }
    let verbose = args.build.verbose;
    build(
        ctx,
        io,
        &client,
        &ws,
        Transition::Delete,
        args.orphan,
        verbose,
    )
    .await
}

/// Starts a build of `ws`, follows it and prints how it ended.
async fn build(
    ctx: &Context<'_>,
    io: &mut Io<'_>,
    client: &ApiClient,
    ws: &Workspace,
    transition: Transition,
    orphan: bool,
    verbose: bool,
) -> Result<()> {
    let mut body = json!({"transition": transition.as_str()});
    if orphan && let Some(obj) = body.as_object_mut() {
        obj.insert("orphan".into(), json!(true));
    }
    let created = client
        .post(&["workspaces", &ws.id, "builds"], &body)
        .await?;
    let build: WorkspaceBuild = decode(&created, "a workspace build")?;
    let json_output = ctx.output() == OutputFormat::Json;
    let finished = jobs::follow(
        io,
        client,
        JobOwner::Build(build.id),
        FollowOptions::new(verbose, json_output),
    )
    .await?;
    if json_output {
        return print_json(io, &finished);
    }
    let finished: WorkspaceBuild = decode(&finished, "a workspace build")?;
    io.println(&format!(
        "The {} workspace has been {} at {}!",
        ws.name,
        transition.done(),
        finished_at(&finished)
    ))
}

/// When a build finished, by the server's clock.
fn finished_at(build: &WorkspaceBuild) -> String {
    format_time(
        build
            .job
            .completed_at
            .as_deref()
            .unwrap_or(&build.updated_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::models::{WorkspaceAgent, WorkspaceApp, WorkspaceResource};

    fn app_status(state: &str, message: &str) -> WorkspaceAppStatus {
        WorkspaceAppStatus {
            app_id: "app-1".into(),
            state: state.into(),
            message: message.into(),
        }
    }

    fn workspace(status: Option<WorkspaceAppStatus>) -> Workspace {
        let app = WorkspaceApp {
            id: "app-1".into(),
            slug: "code".into(),
            health: "healthy".into(),
            url: Some("http://localhost:13337".into()),
            command: None,
        };
        let agent = WorkspaceAgent {
            name: "main".into(),
            status: "connected".into(),
            lifecycle_state: "ready".into(),
            apps: vec![app],
        };
        let resource = WorkspaceResource {
            name: "dev".into(),
            resource_type: "hangar_test".into(),
            hide: false,
            agents: vec![agent],
        };
        Workspace {
            id: "w".into(),
            name: "dev".into(),
            owner_name: "admin".into(),
            template_name: "echo".into(),
            latest_build: Some(WorkspaceBuild {
                build_number: 2,
                status: "running".into(),
                created_at: "2024-01-02T03:04:05Z".into(),
                resources: vec![resource],
                ..WorkspaceBuild::default()
            }),
            latest_app_status: status,
            outdated: false,
            health: crate::client::models::WorkspaceHealth { healthy: true },
        }
    }

    #[test]
    fn workspace_refs() {
        let me = parse_workspace_ref("dev");
        assert_eq!(
            me,
            Ok(WorkspaceRef {
                owner: "me".into(),
                name: "dev".into()
            })
        );
        let other = parse_workspace_ref(" alice/dev ");
        assert_eq!(
            other,
            Ok(WorkspaceRef {
                owner: "alice".into(),
                name: "dev".into()
            })
        );
        assert_eq!(other.map(|w| w.to_string()).as_deref(), Ok("alice/dev"));
        for bad in ["", "/dev", "alice/", "a/b/c", "/"] {
            assert!(parse_workspace_ref(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn app_status_text_is_message_else_state_else_empty() {
        assert_eq!(
            app_status_cell(&workspace(Some(app_status("working", "Building the app")))),
            "code: Building the app"
        );
        assert_eq!(
            app_status_cell(&workspace(Some(app_status("idle", "")))),
            "code: idle"
        );
        assert_eq!(app_status_cell(&workspace(None)), "");
        let mut unknown = app_status("complete", "");
        unknown.app_id = "gone".into();
        assert_eq!(app_status_cell(&workspace(Some(unknown))), "gone: complete");
    }

    #[test]
    fn search_defaults_to_my_workspaces() {
        assert_eq!(search_query(false, None), "owner:me");
        assert_eq!(search_query(true, None), "");
        assert_eq!(
            search_query(true, Some("template:docker")),
            "template:docker"
        );
        assert_eq!(
            search_query(false, Some("status:running")),
            "status:running"
        );
    }

    #[test]
    fn list_table_shows_healthy_only_when_running() {
        let running = workspace(Some(app_status("idle", "")));
        let mut stopped = workspace(None);
        stopped.name = "old".into();
        if let Some(b) = stopped.latest_build.as_mut() {
            b.status = "stopped".into();
        }
        assert_eq!(
            workspaces_table(&[running, stopped]).render(),
            "WORKSPACE  TEMPLATE  STATUS   HEALTHY  LAST BUILT            OUTDATED  APP STATUS\n\
             admin/dev  echo      running  true     2024-01-02T03:04:05Z  false     code: idle\n\
             admin/old  echo      stopped           2024-01-02T03:04:05Z  false\n"
        );
    }

    #[test]
    fn show_lists_resources_agents_apps_and_the_app_status() {
        assert_eq!(
            show_text(&workspace(None)),
            "dev (running, build 2)\n  resource hangar_test.dev\n    agent main (connected, ready)\n      \
             code  healthy  http://localhost:13337\nLatest app status: none\n"
        );
        let text = show_text(&workspace(Some(app_status("working", "Compiling"))));
        assert!(
            text.ends_with("Latest app status: Compiling (working, app code)\n"),
            "{text}"
        );
    }
}
