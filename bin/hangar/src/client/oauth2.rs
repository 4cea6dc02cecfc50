//! `hangar oauth2 apps`: the OAuth2 provider's apps and their secrets (03 §6), through the
//! management API. Apps are named by id; a name works too when exactly one app has it.

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::ApiClient;
use super::models::decode;
use super::output::{OutputFormat, Table, format_time, print_json};
use super::{Context, Io};

#[derive(Debug, Subcommand)]
pub enum OAuth2Command {
    /// Manage OAuth2 apps (site owners).
    #[command(subcommand, visible_alias = "app")]
    Apps(AppsCommand),
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// List OAuth2 apps.
    #[command(visible_alias = "ls")]
    List,
    /// Create an OAuth2 app.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long = "callback-url")]
        callback_url: String,
        #[arg(long, default_value = "")]
        icon: String,
    },
    /// Delete an OAuth2 app and every token issued to it.
    #[command(visible_aliases = ["rm", "remove"])]
    Delete { app: String },
    /// Manage an app's client secrets.
    #[command(subcommand, visible_alias = "secret")]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create a secret and print it once.
    Create { app: String },
    /// List an app's secrets (the last 6 characters of each).
    #[command(visible_alias = "ls")]
    List { app: String },
    /// Delete a secret and the tokens issued with it.
    #[command(visible_aliases = ["rm", "remove"])]
    Delete { app: String, secret: String },
}

#[derive(Debug, Deserialize)]
struct App {
    id: String,
    name: String,
    callback_url: String,
    dynamically_registered: bool,
}

#[derive(Debug, Deserialize)]
struct Secret {
    id: String,
    last_used_at: Option<String>,
    client_secret_truncated: String,
}

pub async fn run(ctx: &Context<'_>, io: &mut Io<'_>, cmd: OAuth2Command) -> Result<()> {
    let client = ctx.client()?;
    let OAuth2Command::Apps(cmd) = cmd;
    match cmd {
        AppsCommand::List => {
            let value = client.get(&["oauth2-provider", "apps"]).await?;
            if ctx.output() == OutputFormat::Json {
                return print_json(io, &value);
            }
            let apps: Vec<App> = decode(&value, "a list of OAuth2 apps")?;
            if apps.is_empty() {
                return io.eprintln("No OAuth2 apps found.");
            }
            let mut table = Table::new(&["ID", "NAME", "CALLBACK URL", "DYNAMIC"]);
            for a in &apps {
                table.row(vec![
                    a.id.clone(),
                    a.name.clone(),
                    a.callback_url.clone(),
                    a.dynamically_registered.to_string(),
                ]);
            }
            io.print(&table.render())
        }
        AppsCommand::Create {
            name,
            callback_url,
            icon,
        } => {
            let body = json!({"name": name, "callback_url": callback_url, "icon": icon});
            let value = client.post(&["oauth2-provider", "apps"], &body).await?;
            if ctx.output() == OutputFormat::Json {
                return print_json(io, &value);
            }
            let app: App = decode(&value, "an OAuth2 app")?;
            io.println(&format!(
                "Created OAuth2 app {:?} with client ID {}.",
                app.name, app.id
            ))
        }
        AppsCommand::Delete { app } => {
            let id = resolve(&client, &app).await?;
            client.delete(&["oauth2-provider", "apps", &id]).await?;
            io.println(&format!("Deleted OAuth2 app {app}."))
        }
        AppsCommand::Secrets(cmd) => secrets(ctx, io, &client, cmd).await,
    }
}

async fn secrets(
    ctx: &Context<'_>,
    io: &mut Io<'_>,
    client: &ApiClient,
    cmd: SecretsCommand,
) -> Result<()> {
    match cmd {
        SecretsCommand::Create { app } => {
            let id = resolve(client, &app).await?;
            let value = client
                .post(&["oauth2-provider", "apps", &id, "secrets"], &json!({}))
                .await?;
            if ctx.output() == OutputFormat::Json {
                return print_json(io, &value);
            }
            let field = |k: &str| {
                value
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            io.println(&format!(
                "Created secret {}. It will not be shown again:",
                field("id")
            ))?;
            io.println(&field("client_secret_full"))
        }
        SecretsCommand::List { app } => {
            let id = resolve(client, &app).await?;
            let value = client
                .get(&["oauth2-provider", "apps", &id, "secrets"])
                .await?;
            if ctx.output() == OutputFormat::Json {
                return print_json(io, &value);
            }
            let list: Vec<Secret> = decode(&value, "a list of secrets")?;
            if list.is_empty() {
                return io.eprintln("No secrets found.");
            }
            let mut table = Table::new(&["ID", "LAST USED", "SECRET"]);
            for s in &list {
                table.row(vec![
                    s.id.clone(),
                    s.last_used_at
                        .as_deref()
                        .map(format_time)
                        .unwrap_or_else(|| "never".into()),
                    format!("…{}", s.client_secret_truncated),
                ]);
            }
            io.print(&table.render())
        }
        SecretsCommand::Delete { app, secret } => {
            let id = resolve(client, &app).await?;
            client
                .delete(&["oauth2-provider", "apps", &id, "secrets", &secret])
                .await?;
            io.println(&format!("Deleted secret {secret}."))
        }
    }
}

/// The id of the app the user named: an id as given, else the one app with that name.
async fn resolve(client: &ApiClient, app: &str) -> Result<String> {
    if uuid::Uuid::parse_str(app).is_ok() {
        return Ok(app.to_owned());
    }
    let apps: Vec<App> = decode(
        &client.get(&["oauth2-provider", "apps"]).await?,
        "a list of OAuth2 apps",
    )?;
    let matches: Vec<&App> = apps.iter().filter(|a| a.name == app).collect();
    match matches.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(anyhow!("no OAuth2 app is named {app:?}")),
        _ => bail!("several OAuth2 apps are named {app:?}; use the id"),
    }
}
