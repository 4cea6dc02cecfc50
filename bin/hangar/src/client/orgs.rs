//! `hangar organizations` (`orgs`): list, show, create, delete, and list members.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::http::ApiClient;
use super::models::{Member, Organization, decode, role_names};
use super::output::{OutputFormat, Table, print_json, render_fields};
use super::{Context, Io};

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// List the organizations you can see.
    #[command(visible_alias = "ls")]
    List,
    /// Show one organization.
    Show {
        /// Id or name of the organization.
        #[arg(default_value = "default")]
        organization: String,
    },
    /// Create an organization; you become its first member.
    Create(CreateArgs),
    /// Delete an organization (it must hold no workspaces, templates, groups or other members).
    #[command(visible_alias = "rm")]
    Delete {
        /// Id or name of the organization.
        organization: String,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// List the members of an organization.
    Members(OrgArg),
}

/// The `--org` flag of org-scoped commands.
#[derive(Debug, Clone, Args)]
pub struct OrgArg {
    /// Id or name of the organization.
    #[arg(
        short = 'O',
        long = "org",
        env = "HANGAR_ORGANIZATION",
        default_value = "default"
    )]
    pub org: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the new organization.
    name: String,
    /// Display name [default: the name].
    #[arg(long)]
    display_name: Option<String>,
    /// Description of the organization.
    #[arg(long)]
    description: Option<String>,
    /// Icon URL.
    #[arg(long)]
    icon: Option<String>,
}

pub async fn run(ctx: &Context<'_>, io: &mut Io<'_>, cmd: OrgsCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        OrgsCommand::List => list(ctx, io, &client).await,
        OrgsCommand::Show { organization } => show(ctx, io, &client, &organization).await,
        OrgsCommand::Create(args) => create(io, &client, args).await,
        OrgsCommand::Delete { organization, yes } => delete(io, &client, &organization, yes).await,
        OrgsCommand::Members(OrgArg { org }) => members(ctx, io, &client, &org).await,
    }
}

/// Looks an organization up by id, name or `default`.
pub async fn fetch_org(client: &ApiClient, organization: &str) -> Result<Organization> {
    decode(
        &client.get(&["organizations", organization]).await?,
        "an organization",
    )
}

async fn list(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient) -> Result<()> {
    let value = client.get(&["organizations"]).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let orgs: Vec<Organization> = decode(&value, "a list of organizations")?;
    if orgs.is_empty() {
        return io.eprintln("No organizations found.");
    }
    io.print(&org_table(&orgs).render())
}

fn org_table(orgs: &[Organization]) -> Table {
    let mut table = Table::new(&["NAME", "DISPLAY NAME", "ID", "DEFAULT"]);
    for org in orgs {
        table.row(vec![
            org.name.clone(),
            org.display_name.clone(),
            org.id.clone(),
            org.is_default.to_string(),
        ]);
    }
    table
}

async fn show(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient, org: &str) -> Result<()> {
    let value = client.get(&["organizations", org]).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let org: Organization = decode(&value, "an organization")?;
    io.print(&org_fields(&org))
}

async fn create(io: &mut Io<'_>, client: &ApiClient, args: CreateArgs) -> Result<()> {
    let mut body = Map::new();
    body.insert("name".into(), Value::String(args.name));
    // Only what was given is sent, so the server applies its own defaults to the rest.
    for (field, value) in [
        ("display_name", args.display_name),
        ("description", args.description),
        ("icon", args.icon),
    ] {
        if let Some(value) = value {
            body.insert(field.into(), Value::String(value));
        }
    }
    let created = client
        .post(&["organizations"], &Value::Object(body))
        .await?;
    let org: Organization = decode(&created, "an organization")?;
    io.println(&format!("Organization {} ({}) created.", org.name, org.id))
}

async fn delete(io: &mut Io<'_>, client: &ApiClient, organization: &str, yes: bool) -> Result<()> {
    let org = fetch_org(client, organization).await?;
    // Only ask when someone can answer; scripts without a terminal proceed as with --yes.
    if !yes
        && io.interactive()
        && !io.confirm(&format!(
            "Delete organization {}? This cannot be undone.",
            org.name
        ))?
    {
        bail!("Deletion canceled.");
    }
    client.delete(&["organizations", &org.id]).await?;
    io.println(&format!("Organization {} has been deleted.", org.name))
}

async fn members(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient, org: &str) -> Result<()> {
    let value = client.get(&["organizations", org, "members"]).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let members: Vec<Member> = decode(&value, "a list of members")?;
    if members.is_empty() {
        return io.eprintln("No members found.");
    }
    let mut table = Table::new(&["USERNAME", "EMAIL", "ROLES"]);
    for member in &members {
        table.row(vec![
            member.username.clone(),
            member.email.clone(),
            role_names(member.global_roles.iter().chain(&member.roles)),
        ]);
    }
    io.print(&table.render())
}

fn org_fields(org: &Organization) -> String {
    render_fields(&[
        ("Name", org.name.clone()),
        ("Display name", org.display_name.clone()),
        ("ID", org.id.clone()),
        ("Default", org.is_default.to_string()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_table_lists_name_display_name_id_default() {
        let orgs = vec![Organization {
            id: "6a1b".into(),
            name: "hangar".into(),
            display_name: "Hangar".into(),
            is_default: true,
        }];
        assert_eq!(
            org_table(&orgs).render(),
            "NAME    DISPLAY NAME  ID    DEFAULT\nhangar  Hangar        6a1b  true\n"
        );
        assert!(org_fields(&orgs[0]).starts_with("Name:          hangar\n"));
    }
}
