//! `hangar templates`: push a directory as a template (version), list templates and their
//! versions (04 §5).

use std::path::PathBuf;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{ArgAction, Args, Subcommand, ValueEnum};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::archive::pack_dir;
use super::http::{ApiClient, api_status};
use super::jobs::{self, FollowOptions, JobOwner, job_failure_context};
use super::models::{Template, TemplateVersion, decode};
use super::orgs::OrgArg;
use super::output::{OutputFormat, Table, format_time, print_json};
use super::{Context, Io};

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Create a template from a directory, or push a new version of an existing one.
    Push(PushArgs),
    /// List the templates you can see.
    #[command(visible_alias = "ls")]
    List,
    /// List the versions of a template, oldest first.
    Versions {
        /// Name of the template.
        template: String,
        #[command(flatten)]
        org: OrgArg,
    },
}

/// The provisioner a version is imported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provisioner {
    Terraform,
    Echo,
}

impl Provisioner {
    fn as_str(self) -> &'static str {
        match self {
            Self::Terraform => "terraform",
            Self::Echo => "echo",
        }
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Name of the template [default: the directory's base name].
    name: Option<String>,
    /// Directory holding the template files.
    #[arg(short = 'd', long, default_value = ".")]
    directory: PathBuf,
    /// Message describing the new version.
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Value of a template variable, as `name=value`; repeatable.
    #[arg(long = "variable", value_name = "NAME=VALUE", value_parser = parse_name_value)]
    variables: Vec<(String, String)>,
    /// Make the new version the active one (`--activate=false` leaves it as it is).
    #[arg(
        long,
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    activate: bool,
    /// Provisioner that imports and builds the template.
    #[arg(long, value_enum, default_value_t = Provisioner::Terraform)]
    provisioner: Provisioner,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    yes: bool,
    /// Show debug and trace lines of the import log.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    org: OrgArg,
}

/// Parses a `name=value` flag; the value may be empty or hold more `=`.
pub fn parse_name_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got {raw:?}")),
    }
}

/// `[{name, value}]`, the API's shape of parameter and variable values.
pub fn name_values(pairs: &[(String, String)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect(),
    )
}

pub async fn run(ctx: &Context<'_>, io: &mut Io<'_>, cmd: TemplatesCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TemplatesCommand::Push(args) => push(ctx, io, &client, args).await,
        TemplatesCommand::List => list(ctx, io, &client).await,
        TemplatesCommand::Versions { template, org } => {
            versions(ctx, io, &client, &org.org, &template).await
        }
    }
}

/// The template named `name` in `org`, or `None` when there is none.
pub async fn find_template(client: &ApiClient, org: &str, name: &str) -> Result<Option<Template>> {
    match client.get(&["organizations", org, "templates", name]).await {
        Ok(value) => decode(&value, "a template").map(Some),
        Err(err) if api_status(&err) == Some(StatusCode::NOT_FOUND) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Like [`find_template`], but a missing template is an error.
pub async fn fetch_template(client: &ApiClient, org: &str, name: &str) -> Result<Template> {
    find_template(client, org, name)
        .await?
        .ok_or_else(|| anyhow!("template {name:?} not found in organization {org:?}"))
}

async fn push(
    ctx: &Context<'_>,
    io: &mut Io<'_>,
    client: &ApiClient,
    args: PushArgs,
) -> Result<()> {
    let dir = std::fs::canonicalize(&args.directory)
        .with_context(|| format!("cannot read {}", args.directory.display()))?;
    let name = match &args.name {
        Some(name) => name.clone(),
        None => dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                anyhow!(
                    "cannot name the template after {}: give a name",
                    dir.display()
                )
            })?,
    };
    if !args.yes && io.interactive() && !io.confirm(&format!("Upload \"{}\"?", dir.display()))? {
        bail!("Upload canceled.");
    }
    let shown = dir.display().to_string();
    let packed = tokio::task::spawn_blocking(move || pack_dir(&dir))
        .await
        .with_context(|| format!("cannot pack {shown}"))??;
    for skipped in &packed.skipped {
        io.eprintln(&format!(
            "Skipped {skipped}: only regular files and directories are uploaded."
        ))?;
    }
    let uploaded = client
        .post_bytes(&["files"], "application/x-tar", packed.bytes)
        .await?;
    let file_id = uploaded
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("unexpected answer from the server (expected {{\"hash\": id}})"))?;

    let org = args.org.org.as_str();
    let existing = find_template(client, org, &name).await?;
    let mut body = json!({
        "file_id": file_id,
        "provisioner": args.provisioner.as_str(),
        "storage_method": "file",
        "message": args.message.clone().unwrap_or_default(),
        "user_variable_values": name_values(&args.variables),
    });
    if let (Some(template), Some(obj)) = (&existing, body.as_object_mut()) {
        obj.insert("template_id".into(), json!(template.id));
    }
    let created = client
        .post(&["organizations", org, "templateversions"], &body)
        .await?;
    let version: TemplateVersion = decode(&created, "a template version")?;

    let json_output = ctx.output() == OutputFormat::Json;
    let imported = jobs::follow(
        io,
        client,
        JobOwner::Version(version.id.clone()),
        FollowOptions::new(args.verbose, json_output),
    )
    .await
    .map_err(|e| job_failure_context(e, "template import failed"))?;

    match existing {
        None => {
            let value = client
                .post(
                    &["organizations", org, "templates"],
                    &json!({"name": name, "template_version_id": version.id}),
                )
                .await?;
            if json_output {
                return print_json(io, &value);
            }
            let template: Template = decode(&value, "a template")?;
            io.println(&format!(
                "The \"{}\" template has been created at {}!",
                template.name,
                format_time(&template.created_at)
            ))
        }
        Some(template) if args.activate => {
            client
                .patch(
                    &["templates", &template.id, "versions"],
                    &json!({"id": version.id}),
                )
                .await?;
            let value = client.get(&["templates", &template.id]).await?;
            if json_output {
                return print_json(io, &value);
            }
            let template: Template = decode(&value, "a template")?;
            io.println(&format!(
                "Updated version at {}!",
                format_time(&template.updated_at)
            ))
        }
        Some(template) => {
            if json_output {
                return print_json(io, &imported);
            }
            let version: TemplateVersion = decode(&imported, "a template version")?;
            io.println(&format!(
                "Version {} of template \"{}\" was uploaded; the active version is unchanged.",
                version.name, template.name
            ))
        }
    }
}

async fn list(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient) -> Result<()> {
    let value = client.get(&["templates"]).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let templates: Vec<Template> = decode(&value, "a list of templates")?;
    if templates.is_empty() {
        return io.eprintln("No templates found.");
    }
    io.print(&templates_table(&templates).render())
}

fn templates_table(templates: &[Template]) -> Table {
    let mut table = Table::new(&["NAME", "ORGANIZATION NAME", "LAST UPDATED", "USED BY"]);
    for t in templates {
        table.row(vec![
            t.name.clone(),
            t.organization_name.clone(),
            format_time(&t.updated_at),
            format!("{} developer(s)", t.active_user_count),
        ]);
    }
    table
}

async fn versions(
    ctx: &Context<'_>,
    io: &mut Io<'_>,
    client: &ApiClient,
    org: &str,
    name: &str,
) -> Result<()> {
    let template = fetch_template(client, org, name).await?;
    let value = client.get(&["templates", &template.id, "versions"]).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let versions: Vec<TemplateVersion> = decode(&value, "a list of template versions")?;
    io.print(&versions_table(&versions, &template.active_version_id).render())
}

fn versions_table(versions: &[TemplateVersion], active_id: &str) -> Table {
    let mut table = Table::new(&["NAME", "CREATED AT", "CREATED BY", "STATUS", "ACTIVE"]);
    for v in versions {
        table.row(vec![
            v.name.clone(),
            format_time(&v.created_at),
            v.created_by.username.clone(),
            v.job.status.clone(),
            if v.id == active_id {
                "Active".to_owned()
            } else {
                String::new()
            },
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_flags() {
        assert_eq!(
            parse_name_value("region=eu=west"),
            Ok(("region".into(), "eu=west".into()))
        );
        assert_eq!(parse_name_value("empty="), Ok(("empty".into(), "".into())));
        assert!(parse_name_value("novalue").is_err());
        assert!(parse_name_value("=x").is_err());
        assert_eq!(
            name_values(&[("a".into(), "1".into())]),
            json!([{"name": "a", "value": "1"}])
        );
    }

    #[test]
    fn templates_table_counts_developers() {
        let t = Template {
            name: "docker".into(),
            organization_name: "default".into(),
            updated_at: "2024-01-02T03:04:05.5Z".into(),
            active_user_count: 2,
            ..Template::default()
        };
        assert_eq!(
            templates_table(&[t]).render(),
            "NAME    ORGANIZATION NAME  LAST UPDATED          USED BY\n\
             docker  default            2024-01-02T03:04:05Z  2 developer(s)\n"
        );
    }

    #[test]
    fn versions_table_marks_the_active_one() {
        let mut v1 = TemplateVersion {
            id: "1".into(),
            name: "v1".into(),
            created_at: "2024-01-02T03:04:05Z".into(),
            ..TemplateVersion::default()
        };
        v1.created_by.username = "admin".into();
        v1.job.status = "succeeded".into();
        let mut v2 = v1.clone();
        v2.id = "2".into();
        v2.name = "v2".into();
        v2.job.status = "failed".into();
        let text = versions_table(&[v1, v2], "1").render();
        assert_eq!(
            text,
            "NAME  CREATED AT            CREATED BY  STATUS     ACTIVE\n\
             v1    2024-01-02T03:04:05Z  admin       succeeded  Active\n\
             v2    2024-01-02T03:04:05Z  admin       failed\n"
        );
    }
}
