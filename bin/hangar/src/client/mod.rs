//! The command-line client half of `hangar`: `login`, `logout`, `whoami`, `users`,
//! `organizations` and `tokens` (02 §5), `templates` and the workspace commands (04 §5), all
//! thin callers of the `/api/v2` HTTP API.
//!
//! Everything a command prints goes through [`Io`], so the commands can be driven in-process
//! with captured output as well as from a terminal.

mod archive;
mod config;
pub(crate) mod duration;
mod http;
mod jobs;
mod login;
mod models;
mod oauth2;
mod orgs;
mod output;
mod templates;
mod term;
mod tokens;
mod users;
mod workspaces;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

pub use output::OutputFormat;
pub use term::Io;

use config::ConfigDir;
use http::ApiClient;

/// Shown whenever a command needs a session and none is configured (02 §5).
pub const NOT_LOGGED_IN: &str = "You are not logged in. Try logging in using 'hangar login <url>'.";

/// Flags every client command accepts; each overrides what the config directory holds.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global Options")]
pub struct GlobalArgs {
    /// URL of the Hangar deployment; overrides the `url` file of the config directory.
    #[arg(long, env = "HANGAR_URL", global = true)]
    pub url: Option<String>,

    /// Session token; overrides the `session` file of the config directory.
    #[arg(
        long,
        env = "HANGAR_SESSION_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Output format of list and show commands; with json, commands that build print the
    /// resulting object and stream their logs on stderr.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table, global = true)]
    pub output: OutputFormat,

    /// Directory holding the `url` and `session` files
    /// [default: $XDG_CONFIG_HOME/hangar, else $HOME/.config/hangar].
    #[arg(long = "global-config", env = "HANGAR_CONFIG_DIR", global = true)]
    pub global_config: Option<PathBuf>,
}

/// The client subcommands of `hangar`.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Authenticate with a Hangar deployment (creating its first user on an empty server).
    Login(login::LoginArgs),
    /// End the current session and forget the stored URL and token.
    Logout,
    /// Show the deployment URL and the user you are authenticated as.
    Whoami,
    /// Manage users.
    #[command(subcommand, visible_alias = "user")]
    Users(users::UsersCommand),
    /// Manage organizations.
    #[command(
        subcommand,
        visible_alias = "orgs",
        aliases = ["organization", "org"]
    )]
    Organizations(orgs::OrgsCommand),
    /// Manage the OAuth2 provider's apps and secrets.
    #[command(subcommand)]
    Oauth2(oauth2::OAuth2Command),
    /// Manage personal access tokens.
    #[command(subcommand, visible_alias = "token")]
    Tokens(tokens::TokensCommand),
    /// Manage templates.
    #[command(subcommand, visible_alias = "template")]
    Templates(templates::TemplatesCommand),
    /// Create a workspace from a template.
    Create(workspaces::CreateArgs),
    /// List workspaces.
    #[command(visible_alias = "ls")]
    List(workspaces::ListArgs),
    /// Show a workspace: its build, resources, agents and apps.
    Show {
        /// The workspace: `name` or `owner/name`.
        #[arg(value_parser = workspaces::parse_workspace_ref)]
        workspace: workspaces::WorkspaceRef,
    },
    /// Start a workspace.
    Start(workspaces::BuildArgs),
    /// Stop a workspace.
    Stop(workspaces::BuildArgs),
    /// Delete a workspace.
    #[command(visible_alias = "rm")]
    Delete(workspaces::DeleteArgs),
}

/// Runs one client command against the real stdin, stdout and stderr.
pub async fn run(cmd: ClientCommand, global: &GlobalArgs) -> Result<()> {
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut io = Io::new(
        &mut stdout,
        &mut stderr,
        &mut stdin,
        term::stdin_is_terminal(),
    );
    let result = run_with_io(cmd, global, &mut io).await;
    io.flush()?;
    if result.as_ref().is_err_and(|e| e.is::<jobs::Interrupted>()) {
        // A second Ctrl-C while following a job: stop at once, as the shell expects.
        std::process::exit(130);
    }
    result
}

/// Runs one client command with the given streams, so tests can capture what it prints.
pub async fn run_with_io(cmd: ClientCommand, global: &GlobalArgs, io: &mut Io<'_>) -> Result<()> {
    let ctx = Context {
        config: ConfigDir::resolve(global.global_config.as_deref())?,
        global,
    };
    match cmd {
        ClientCommand::Login(args) => login::login(&ctx, io, args).await,
        ClientCommand::Logout => login::logout(&ctx, io).await,
        ClientCommand::Whoami => login::whoami(&ctx, io).await,
        ClientCommand::Users(cmd) => users::run(&ctx, io, cmd).await,
        ClientCommand::Organizations(cmd) => orgs::run(&ctx, io, cmd).await,
        ClientCommand::Tokens(cmd) => tokens::run(&ctx, io, cmd).await,
        ClientCommand::Oauth2(cmd) => oauth2::run(&ctx, io, cmd).await,
        ClientCommand::Templates(cmd) => templates::run(&ctx, io, cmd).await,
        ClientCommand::Create(args) => workspaces::create(&ctx, io, args).await,
        ClientCommand::List(args) => workspaces::list(&ctx, io, args).await,
        ClientCommand::Show { workspace } => workspaces::show(&ctx, io, &workspace).await,
        ClientCommand::Start(args) => {
            workspaces::start_or_stop(&ctx, io, args, workspaces::Transition::Start).await
        }
        ClientCommand::Stop(args) => {
            workspaces::start_or_stop(&ctx, io, args, workspaces::Transition::Stop).await
        }
        ClientCommand::Delete(args) => workspaces::delete(&ctx, io, args).await,
    }
}

/// What every command needs besides its own arguments.
struct Context<'a> {
    config: ConfigDir,
    global: &'a GlobalArgs,
}

impl Context<'_> {
    fn output(&self) -> OutputFormat {
        self.global.output
    }

    /// The deployment URL: the `--url` flag (or `HANGAR_URL`), else the `url` file.
    fn deployment_url(&self) -> Result<Option<String>> {
        match non_empty(self.global.url.as_deref()) {
            Some(url) => Ok(Some(url.to_owned())),
            None => self.config.url(),
        }
    }

    /// An API client carrying the session token; fails with [`NOT_LOGGED_IN`] without one.
    fn client(&self) -> Result<ApiClient> {
        let token = match non_empty(self.global.token.as_deref()) {
            Some(token) => Some(token.to_owned()),
            None => self.config.session()?,
        };
        let (Some(url), Some(token)) = (self.deployment_url()?, token) else {
            bail!(NOT_LOGGED_IN);
        };
        ApiClient::new(login::normalize_url(&url)?, Some(token))
    }
}

/// Treats an empty flag or environment value like an absent one.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The shape `main.rs` gives the client: global flags plus the client subcommands.
    #[derive(Debug, Parser)]
    #[command(name = "hangar")]
    struct TestCli {
        #[command(flatten)]
        global: GlobalArgs,
        #[command(subcommand)]
        command: ClientCommand,
    }

    fn parse(args: &[&str]) -> Result<TestCli, clap::Error> {
        TestCli::try_parse_from(std::iter::once("hangar").chain(args.iter().copied()))
    }

    #[test]
    fn cli_definition_is_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn positionals_do_not_leak_into_global_flags() -> Result<(), clap::Error> {
        let cli = parse(&["tokens", "rm", "ci"])?;
        assert_ne!(cli.global.token.as_deref(), Some("ci"));
        assert!(matches!(
            cli.command,
            ClientCommand::Tokens(tokens::TokensCommand::Remove { ref target }) if target == "ci"
        ));

        let cli = parse(&["login", "hangar.example.com"])?;
        assert_ne!(cli.global.url.as_deref(), Some("hangar.example.com"));
        assert!(matches!(
            cli.command,
            ClientCommand::Login(ref args) if args.server_url.as_deref() == Some("hangar.example.com")
        ));
        Ok(())
    }

    #[test]
    fn global_flags_are_accepted_after_subcommands() -> Result<(), clap::Error> {
        let cli = parse(&[
            "orgs",
            "members",
            "-o",
            "json",
            "--url",
            "http://localhost:3000",
            "--token",
            "t",
        ])?;
        assert_eq!(cli.global.output, OutputFormat::Json);
        assert_eq!(cli.global.url.as_deref(), Some("http://localhost:3000"));
        assert_eq!(cli.global.token.as_deref(), Some("t"));
        assert!(matches!(cli.command, ClientCommand::Organizations(_)));
        Ok(())
    }

    #[test]
    fn template_and_workspace_commands_parse() -> Result<(), clap::Error> {
        let cli = parse(&[
            "templates",
            "push",
            "echo",
            "-d",
            "/tmp/t",
            "--provisioner",
            "echo",
            "--variable",
            "a=1",
            "--activate=false",
            "-y",
        ])?;
        let ClientCommand::Templates(templates::TemplatesCommand::Push(push)) = cli.command else {
            panic!("not a push: {:?}", cli.command);
        };
        let debug = format!("{push:?}");
        assert!(debug.contains("activate: false") && debug.contains("Some(\"echo\")"));
        // A bare `--activate` means true and never swallows the template name.
        let cli = parse(&["templates", "push", "--activate", "echo"])?;
        let debug = format!("{:?}", cli.command);
        assert!(debug.contains("activate: true") && debug.contains("Some(\"echo\")"));

        assert!(matches!(
            parse(&["show", "alice/dev"])?.command,
            ClientCommand::Show { ref workspace } if workspace.owner == "alice" && workspace.name == "dev"
        ));
        assert!(matches!(
            parse(&["delete", "dev", "-y", "--orphan"])?.command,
            ClientCommand::Delete(_)
        ));
        assert!(matches!(
            parse(&[
                "create",
                "dev",
                "-t",
                "echo",
                "--parameter",
                "region=eu",
                "-y"
            ])?
            .command,
            ClientCommand::Create(_)
        ));
        assert!(matches!(
            parse(&["ls", "--all"])?.command,
            ClientCommand::List(_)
        ));
        Ok(())
    }

    #[test]
    fn bad_values_are_refused_by_the_parser() {
        assert!(parse(&["show", "a/b/c"]).is_err());
        assert!(parse(&["create", "dev", "--parameter", "novalue"]).is_err());
        assert!(parse(&["templates", "push", "--provisioner", "docker"]).is_err());
        assert!(parse(&["tokens", "create", "--lifetime", "30 days"]).is_err());
        assert!(parse(&["users", "create", "--login-type", "github"]).is_err());
        assert!(parse(&["-o", "yaml", "users", "list"]).is_err());
    }
}
