//! `hangar users`: list, show, create, suspend, activate and delete.

use anyhow::{Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};

use super::http::ApiClient;
use super::models::{User, decode, role_names};
use super::orgs::{OrgArg, fetch_org};
use super::output::{OutputFormat, Table, format_time, print_json, render_fields};
use super::{Context, Io, non_empty};

/// Length of a generated password: 20 of 62 characters is ~119 bits.
const GENERATED_PASSWORD_LEN: usize = 20;
const PASSWORD_CHARSET: &[u8; 62] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users.
    #[command(visible_alias = "ls")]
    List,
    /// Show one user.
    Show {
        /// Id or username of the user, or `me`.
        user: String,
    },
    /// Create a user and print the instructions to share with them.
    Create(CreateArgs),
    /// Suspend a user: their sessions and tokens stop working.
    Suspend {
        /// Id or username of the user.
        user: String,
    },
    /// Activate a suspended or dormant user.
    Activate {
        /// Id or username of the user.
        user: String,
    },
    /// Delete a user.
    #[command(visible_alias = "rm")]
    Delete {
        /// Id or username of the user.
        user: String,
    },
}

/// How a created user will authenticate. GitHub and OIDC are not offered: Hangar refuses
/// them (02 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoginType {
    Password,
    None,
}

impl LoginType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::None => "none",
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Email of the new user (prompted for on a terminal when missing).
    #[arg(short = 'e', long)]
    email: Option<String>,
    /// Username of the new user (prompted for on a terminal when missing).
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Full name of the new user.
    #[arg(short = 'n', long)]
    full_name: Option<String>,
    /// Password [default: 20 random characters]; not allowed with --login-type none.
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// How the user will log in.
    #[arg(long, value_enum, default_value_t = LoginType::Password)]
    login_type: LoginType,
    #[command(flatten)]
    org: OrgArg,
}

pub async fn run(ctx: &Context<'_>, io: &mut Io<'_>, cmd: UsersCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        UsersCommand::List => list(ctx, io, &client).await,
        UsersCommand::Show { user } => show(ctx, io, &client, &user).await,
        UsersCommand::Create(args) => create(io, &client, args).await,
        UsersCommand::Suspend { user } => {
            set_status(io, &client, &user, StatusChange::Suspend).await
        }
        UsersCommand::Activate { user } => {
            set_status(io, &client, &user, StatusChange::Activate).await
        }
        UsersCommand::Delete { user } => delete(io, &client, &user).await,
    }
}

async fn fetch_user(client: &ApiClient, user: &str) -> Result<User> {
    decode(&client.get(&["users", user]).await?, "a user")
}

async fn list(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient) -> Result<()> {
    let value = client.get(&["users"]).await?;
    let users = value
        .get("users")
        .cloned()
        .ok_or_else(|| anyhow!("unexpected answer from the server (expected {{users, count}})"))?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &users);
    }
    let users: Vec<User> = decode(&users, "a list of users")?;
    if users.is_empty() {
        return io.eprintln("No users found.");
    }
    io.print(&users_table(&users).render())
}

fn users_table(users: &[User]) -> Table {
    let mut table = Table::new(&["USERNAME", "EMAIL", "CREATED AT", "STATUS"]);
    for user in users {
        table.row(vec![
            user.username.clone(),
            user.email.clone(),
            format_time(&user.created_at),
            user.status.clone(),
        ]);
    }
    table
}

async fn show(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient, user: &str) -> Result<()> {
    let value = client.get(&["users", user]).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let user: User = decode(&value, "a user")?;
    io.print(&render_fields(&[
        ("ID", user.id),
        ("Username", user.username),
        ("Name", user.name),
        ("Email", user.email),
        ("Status", user.status),
        ("Login type", user.login_type),
        ("Roles", role_names(&user.roles)),
        ("Organizations", user.organization_ids.join(", ")),
        ("Created at", format_time(&user.created_at)),
        ("Last seen at", format_time(&user.last_seen_at)),
    ]))
}

async fn create(io: &mut Io<'_>, client: &ApiClient, args: CreateArgs) -> Result<()> {
    let username = required(io, args.username.as_deref(), "--username", "Username")?;
    let email = required(io, args.email.as_deref(), "--email", "Email")?;
    let name = non_empty(args.full_name.as_deref())
        .unwrap_or_default()
        .to_owned();
    let given_password = args.password.filter(|p| !p.is_empty());
    let password = match (args.login_type, given_password) {
        (LoginType::None, Some(_)) => bail!("a password cannot be set for login type \"none\""),
        (LoginType::None, None) => String::new(),
        (LoginType::Password, Some(password)) => password,
        (LoginType::Password, None) => generate_password()?,
    };
    let org = fetch_org(client, &args.org.org).await?;

    let created: User = decode(
        &client
            .post(
                &["users"],
                &json!({
                    "email": email,
                    "username": username,
                    "name": name,
                    "password": password,
                    "login_type": args.login_type.as_str(),
                    "organization_ids": [org.id],
                }),
            )
            .await?,
        "a user",
    )?;

    let how_to_log_in = match args.login_type {
        LoginType::Password => format!("Your password is: {password}"),
        LoginType::None => {
            "Login has been disabled for this user. Contact your administrator to authenticate."
                .to_owned()
        }
    };
    io.eprintln(&format!(
        "A new user has been created!\n\
         Share the instructions below to get them started.\n\
         ---\n\
         Run 'hangar login {}' to authenticate.\n\
         \n\
         Your email is: {}\n\
         {how_to_log_in}\n\
         ---",
        client.base_display(),
        created.email,
    ))
}

/// A flag's value, else an answer to a prompt, else (without a terminal) an error naming it.
fn required(io: &mut Io<'_>, value: Option<&str>, flag: &str, label: &str) -> Result<String> {
    match non_empty(value) {
        Some(value) => Ok(value.to_owned()),
        None if io.interactive() => io.prompt(label),
        None => bail!("{flag} is required"),
    }
}

/// 20 uniformly random characters of `[A-Za-z0-9]` from the OS generator; bytes ≥ 248 are
/// dropped so the modulo does not favour the first letters.
fn generate_password() -> Result<String> {
    let rng = SystemRandom::new();
    let mut password = String::with_capacity(GENERATED_PASSWORD_LEN);
    let mut buf = [0u8; 32];
    while password.len() < GENERATED_PASSWORD_LEN {
        rng.fill(&mut buf)
            .map_err(|_| anyhow!("the system random number generator failed"))?;
        for byte in buf.iter().filter(|b| usize::from(**b) < 248) {
            if password.len() == GENERATED_PASSWORD_LEN {
                break;
            }
            let index = usize::from(*byte) % PASSWORD_CHARSET.len();
            password.push(char::from(PASSWORD_CHARSET[index]));
        }
    }
    Ok(password)
}

#[derive(Debug, Clone, Copy)]
enum StatusChange {
    Suspend,
    Activate,
}

impl StatusChange {
    /// The status the user ends up with, as the API spells it.
    fn status(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Activate => "active",
        }
    }

    /// The last segment of `PUT /users/{user}/status/…`.
    fn verb(self) -> &'static str {
        match self {
            Self::Suspend => "suspend",
            Self::Activate => "activate",
        }
    }

    fn past_tense(self) -> &'static str {
        match self {
            Self::Suspend => "suspended",
            Self::Activate => "activated",
        }
    }
}

async fn set_status(
    io: &mut Io<'_>,
    client: &ApiClient,
    user: &str,
    change: StatusChange,
) -> Result<()> {
    let user = fetch_user(client, user).await?;
    if user.status == change.status() {
        return io.println(&format!("User status is already {:?}", change.status()));
    }
    let updated: Value = client
        .put(&["users", &user.id, "status", change.verb()])
        .await?;
    let username = updated
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or(&user.username);
    io.println(&format!(
        "User {username} has been {}!",
        change.past_tense()
    ))
}

async fn delete(io: &mut Io<'_>, client: &ApiClient, user: &str) -> Result<()> {
    let user = fetch_user(client, user).await?;
    client.delete(&["users", &user.id]).await?;
    io.eprintln(&format!("Successfully deleted {}.", user.username))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_20_alphanumerics_and_differ() -> Result<()> {
        let a = generate_password()?;
        let b = generate_password()?;
        assert_eq!(a.len(), GENERATED_PASSWORD_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        Ok(())
    }

    #[test]
    fn users_table_has_the_spec_columns() -> Result<()> {
        let users: Vec<User> = decode(
            &json!([{
                "id": "u1", "username": "admin", "email": "admin@example.com",
                "created_at": "2024-01-02T03:04:05.123Z", "status": "active"
            }]),
            "users",
        )?;
        assert_eq!(
            users_table(&users).render(),
            "USERNAME  EMAIL              CREATED AT            STATUS\n\
             admin     admin@example.com  2024-01-02T03:04:05Z  active\n"
        );
        Ok(())
    }

    #[test]
    fn missing_flags_fail_without_a_terminal() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input: &[u8] = b"";
        let mut io = Io::new(&mut out, &mut err, &mut input, false);
        let result = required(&mut io, None, "--email", "Email");
        assert_eq!(
            result.err().map(|e| e.to_string()).as_deref(),
            Some("--email is required")
        );
    }
}
