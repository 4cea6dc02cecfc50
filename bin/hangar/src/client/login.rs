//! `hangar login`, `logout` and `whoami`: getting a session, dropping it, and showing it.

use anyhow::{Result, anyhow, bail};
use clap::Args;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::http::{ApiClient, ApiError, api_status};
use super::models::{User, decode};
use super::output::{OutputFormat, print_json};
use super::{Context, Io, non_empty};

/// The exact refusal of 02 §5 when the first user would need prompts but nobody can answer.
const NON_INTERACTIVE_FIRST_USER: &str =
    "the initial user cannot be created in non-interactive mode. use the API";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// URL of the deployment; a bare host gets https:// (http:// for localhost and 127.x).
    /// Defaults to --url or the stored URL.
    #[arg(value_name = "URL")]
    pub server_url: Option<String>,

    /// Username of the first user, when the deployment has none yet.
    #[arg(long, env = "HANGAR_FIRST_USER_USERNAME")]
    pub first_user_username: Option<String>,

    /// Email of the first user, when the deployment has none yet.
    #[arg(long, env = "HANGAR_FIRST_USER_EMAIL")]
    pub first_user_email: Option<String>,

    /// Password of the first user, when the deployment has none yet.
    #[arg(long, env = "HANGAR_FIRST_USER_PASSWORD", hide_env_values = true)]
    pub first_user_password: Option<String>,

    /// Full name of the first user (optional).
    #[arg(long, env = "HANGAR_FIRST_USER_FULL_NAME")]
    pub first_user_full_name: Option<String>,

    /// Email to log in with (with --password) instead of a token.
    #[arg(long, env = "HANGAR_EMAIL")]
    pub email: Option<String>,

    /// Password to log in with (with --email).
    #[arg(long, env = "HANGAR_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Store --token itself as the session instead of swapping it for a new session key.
    #[arg(long)]
    pub use_token_as_session: bool,
}

/// Turns what the user typed into the deployment URL. A bare host gets `https://`, except
/// local addresses, which almost never have TLS; query and fragment are dropped because the
/// API paths are appended to the URL.
pub fn normalize_url(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    if raw.is_empty() {
        bail!("the deployment URL is empty");
    }
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        let lower = raw.to_ascii_lowercase();
        let scheme = if lower.starts_with("localhost") || lower.starts_with("127.") {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{raw}")
    };
    let mut url =
        Url::parse(&with_scheme).map_err(|e| anyhow!("invalid deployment URL {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("invalid deployment URL {raw:?}: the scheme must be http or https");
    }
    if url.host_str().is_none_or(str::is_empty) {
        bail!("invalid deployment URL {raw:?}: it has no host");
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

pub async fn login(ctx: &Context<'_>, io: &mut Io<'_>, args: LoginArgs) -> Result<()> {
    let raw_url = match non_empty(args.server_url.as_deref()) {
        Some(url) => url.to_owned(),
        None => ctx
            .deployment_url()?
            .ok_or_else(|| anyhow!("no deployment URL given: run 'hangar login <url>'"))?,
    };
    let anonymous = ApiClient::new(normalize_url(&raw_url)?, None)?;

    // An explicit --email wins over a token that may only be lingering in the environment.
    let token = if !has_first_user(&anonymous).await? {
        io.println("Your Hangar deployment hasn't been set up!")?;
        create_first_user(&anonymous, io, &args).await?
    } else if let (None, Some(token)) = (
        non_empty(args.email.as_deref()),
        non_empty(ctx.global.token.as_deref()),
    ) {
        if args.use_token_as_session {
            token.to_owned()
        } else {
            new_session_key(&anonymous.with_token(token.to_owned())).await?
        }
    } else {
        password_login(&anonymous, io, &args).await?
    };

    let client = anonymous.with_token(token.clone());
    let me: User = decode(&client.get(&["users", "me"]).await?, "a user")?;
    ctx.config.write_url(&client.base_display())?;
    ctx.config.write_session(&token)?;
    io.println(&format!(
        "Welcome to Hangar, {}! You're authenticated.",
        me.username
    ))
}

/// Whether the deployment has its first user. A 404 only counts as "no" when it carries the
/// API's own message, so a wrong URL that answers 404 for everything is reported as such.
async fn has_first_user(client: &ApiClient) -> Result<bool> {
    match client.get(&["users", "first"]).await {
        Ok(_) => Ok(true),
        Err(err) if api_status(&err) == Some(StatusCode::NOT_FOUND) => {
            let from_hangar = err
                .downcast_ref::<ApiError>()
                .is_some_and(|e| e.message.contains("initial user"));
            if from_hangar {
                Ok(false)
            } else {
                bail!(
                    "{} does not look like a Hangar deployment: GET /api/v2/users/first answered 404",
                    client.base_display()
                )
            }
        }
        Err(err) => Err(err),
    }
}

/// Creates the owner of an empty deployment from the flags, prompting for what is missing
/// when someone can answer, and returns a session token for it.
async fn create_first_user(
    client: &ApiClient,
    io: &mut Io<'_>,
    args: &LoginArgs,
) -> Result<String> {
    let mut username = non_empty(args.first_user_username.as_deref()).map(str::to_owned);
    let mut email = non_empty(args.first_user_email.as_deref()).map(str::to_owned);
    let mut password = args.first_user_password.clone().filter(|p| !p.is_empty());
    let mut name = non_empty(args.first_user_full_name.as_deref()).map(str::to_owned);

    if username.is_none() || email.is_none() || password.is_none() {
        if !io.interactive() {
            bail!(NON_INTERACTIVE_FIRST_USER);
        }
        if username.is_none() {
            username = Some(io.prompt("What username would you like?")?);
        }
        if email.is_none() {
            email = Some(io.prompt("What's your email?")?);
        }
        if name.is_none() {
            name = Some(io.prompt_optional("What is your full name? (optional)")?);
        }
        if password.is_none() {
            password = Some(io.prompt_secret("Enter a password", true)?);
        }
    }
    let (Some(username), Some(email), Some(password)) = (username, email, password) else {
        bail!(NON_INTERACTIVE_FIRST_USER);
    };

    client
        .post(
            &["users", "first"],
            &json!({
                "email": email,
                "username": username,
                "name": name.unwrap_or_default(),
                "password": password,
                "trial": false,
            }),
        )
        .await?;
    session_from_password(client, &email, &password).await
}

/// Logs in with `--email`/`--password`, prompting for them when someone can answer.
async fn password_login(client: &ApiClient, io: &mut Io<'_>, args: &LoginArgs) -> Result<String> {
    let email = match non_empty(args.email.as_deref()) {
        Some(email) => email.to_owned(),
        None if io.interactive() => io.prompt("Email")?,
        None => bail!("no credentials given: pass --token, or --email and --password"),
    };
    let password = match args.password.as_deref().filter(|p| !p.is_empty()) {
        Some(password) => password.to_owned(),
        None if io.interactive() => io.prompt_secret("Password", false)?,
        None => bail!("no password given: pass --password with --email"),
    };
    session_from_password(client, &email, &password).await
}

async fn session_from_password(client: &ApiClient, email: &str, password: &str) -> Result<String> {
    #[derive(Deserialize)]
    struct LoginResponse {
        session_token: String,
    }
    let body = client
        .post(
            &["users", "login"],
            &json!({ "email": email, "password": password }),
        )
        .await?;
    Ok(decode::<LoginResponse>(&body, "a session token")?.session_token)
}

/// Trades a token for a fresh session key of the same user, so logging out later deletes
/// only the key this login made and never the token the user pasted.
async fn new_session_key(client: &ApiClient) -> Result<String> {
    #[derive(Deserialize)]
    struct KeyResponse {
        key: String,
    }
    let body = client.post(&["users", "me", "keys"], &json!({})).await?;
    Ok(decode::<KeyResponse>(&body, "an API key")?.key)
}

/// Deletes the session key on the server and the local files. The files go even when the
/// server cannot be told, so the machine is logged out either way; a key the server already
/// rejects (401) needs no deleting.
pub async fn logout(ctx: &Context<'_>, io: &mut Io<'_>) -> Result<()> {
    let client = ctx.client()?;
    let api_result = match client.post(&["users", "logout"], &json!({})).await {
        Err(err) if api_status(&err) == Some(StatusCode::UNAUTHORIZED) => Ok(()),
        other => other.map(|_| ()),
    };
    let files_result = ctx.config.clear();
    let problems: Vec<String> = [
        api_result.err().map(|e| format!("logout API: {e:#}")),
        files_result.err().map(|e| format!("{e:#}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        bail!("Failed to log out.\n{}", problems.join("\n"));
    }
    io.eprintln("You are no longer logged in. You can log in using 'hangar login <url>'.")
}

pub async fn whoami(ctx: &Context<'_>, io: &mut Io<'_>) -> Result<()> {
    let client = ctx.client()?;
    let value = client.get(&["users", "me"]).await?;
    match ctx.output() {
        OutputFormat::Json => print_json(io, &value),
        OutputFormat::Table => {
            let user: User = decode(&value, "a user")?;
            io.println(&format!(
                "Hangar is running at {}, You're authenticated as {} !",
                client.base_display(),
                user.username
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(raw: &str) -> String {
        normalize_url(raw)
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn bare_hosts_get_a_scheme() {
        assert_eq!(
            normalized("hangar.example.com"),
            "https://hangar.example.com/"
        );
        assert_eq!(
            normalized("hangar.example.com:8443/base"),
            "https://hangar.example.com:8443/base"
        );
        assert_eq!(normalized("localhost:3000"), "http://localhost:3000/");
        assert_eq!(normalized("LOCALHOST"), "http://localhost/");
        assert_eq!(
            normalized("localhost.example.com"),
            "http://localhost.example.com/"
        );
        assert_eq!(normalized("127.0.0.1:3000"), "http://127.0.0.1:3000/");
        assert_eq!(normalized("10.0.0.1"), "https://10.0.0.1/");
    }

    #[test]
    fn explicit_schemes_are_kept() {
        assert_eq!(
            normalized("http://hangar.example.com"),
            "http://hangar.example.com/"
        );
        assert_eq!(
            normalized("https://localhost:3000/"),
            "https://localhost:3000/"
        );
        assert_eq!(normalized("  https://h.io/?x=1#y  "), "https://h.io/");
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(normalize_url("").is_err());
        assert!(normalize_url("ftp://hangar.example.com").is_err());
        assert!(normalize_url("https://").is_err());
        assert!(normalize_url("http://exa mple.com").is_err());
    }
}
