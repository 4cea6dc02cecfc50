//! `hangar tokens`: create, list and remove personal access tokens.

use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::json;

use super::duration::parse_go_duration;
use super::http::ApiClient;
use super::models::{ApiKey, decode};
use super::output::{OutputFormat, Table, format_time, print_json};
use super::{Context, Io};

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (and nothing else).
    Create(CreateArgs),
    /// List your tokens.
    #[command(visible_alias = "ls")]
    List {
        /// List every user's tokens (owners only) and add an OWNER column.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Delete a token, given its name, its id, or the token itself.
    #[command(visible_aliases = ["rm", "delete"])]
    Remove {
        /// Name, id or full token. (Not called `token`: that id belongs to the global
        /// `--token` flag, and clap would merge the two.)
        #[arg(value_name = "NAME|ID|TOKEN")]
        target: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the token [default: the server uses the key id].
    #[arg(short = 'n', long, env = "HANGAR_TOKEN_NAME")]
    name: Option<String>,
    /// Lifetime as a Go duration, e.g. 720h or 1h30m [default: the server's, at most 720h].
    #[arg(short = 'l', long, env = "HANGAR_TOKEN_LIFETIME", value_parser = parse_go_duration)]
    lifetime: Option<i64>,
}

pub async fn run(ctx: &Context<'_>, io: &mut Io<'_>, cmd: TokensCommand) -> Result<()> {
    let client = ctx.client()?;
    match cmd {
        TokensCommand::Create(args) => create(io, &client, args).await,
        TokensCommand::List { all } => list(ctx, io, &client, all).await,
        TokensCommand::Remove { target } => remove(io, &client, &target).await,
    }
}

async fn create(io: &mut Io<'_>, client: &ApiClient, args: CreateArgs) -> Result<()> {
    #[derive(Deserialize)]
    struct KeyResponse {
        key: String,
    }
    // A lifetime of 0 asks the server for its default (02 §4.3).
    let body = json!({
        "token_name": args.name.unwrap_or_default(),
        "lifetime": args.lifetime.unwrap_or(0),
        "scope": "all",
    });
    let created = client
        .post(&["users", "me", "keys", "tokens"], &body)
        .await?;
    io.println(&decode::<KeyResponse>(&created, "an API key")?.key)
}

async fn fetch_tokens(client: &ApiClient, all: bool) -> Result<serde_json::Value> {
    let mut url = client.endpoint(&["users", "me", "keys", "tokens"])?;
    if all {
        url.query_pairs_mut().append_pair("include_all", "true");
    }
    client.get_url(url).await
}

async fn list(ctx: &Context<'_>, io: &mut Io<'_>, client: &ApiClient, all: bool) -> Result<()> {
    let value = fetch_tokens(client, all).await?;
    if ctx.output() == OutputFormat::Json {
        return print_json(io, &value);
    }
    let tokens: Vec<ApiKey> = decode(&value, "a list of tokens")?;
    if tokens.is_empty() {
        return io.eprintln("No tokens found.");
    }
    io.print(&tokens_table(&tokens, all).render())
}

fn tokens_table(tokens: &[ApiKey], with_owner: bool) -> Table {
    let mut header = vec!["ID", "NAME", "LAST USED", "EXPIRES AT", "CREATED AT"];
    if with_owner {
        header.push("OWNER");
    }
    let mut table = Table::new(&header);
    for token in tokens {
        let mut row = vec![
            token.id.clone(),
            token.token_name.clone(),
            format_time(&token.last_used),
            format_time(&token.expires_at),
            format_time(&token.created_at),
        ];
        if with_owner {
            row.push(token.username.clone());
        }
        table.row(row);
    }
    table
}

async fn remove(io: &mut Io<'_>, client: &ApiClient, needle: &str) -> Result<()> {
    let tokens: Vec<ApiKey> = decode(&fetch_tokens(client, false).await?, "a list of tokens")?;
    let token = find_token(&tokens, needle)
        .ok_or_else(|| anyhow!("no token named {needle:?} or with that id was found"))?;
    client.delete(&["users", "me", "keys", &token.id]).await?;
    io.println("Token has been deleted.")
}

/// Finds the token the user meant: by name first (names are what people type), then by id,
/// then by the id part of a full `<id>-<secret>` token.
fn find_token<'a>(tokens: &'a [ApiKey], needle: &str) -> Option<&'a ApiKey> {
    tokens
        .iter()
        .find(|t| t.token_name == needle)
        .or_else(|| tokens.iter().find(|t| t.id == needle))
        .or_else(|| {
            let (id, _secret) = needle.split_once('-')?;
            tokens.iter().find(|t| t.id == id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, name: &str) -> ApiKey {
        ApiKey {
            id: id.into(),
            token_name: name.into(),
            last_used: "0001-01-01T00:00:00Z".into(),
            expires_at: "2024-02-01T00:00:00Z".into(),
            created_at: "2024-01-02T00:00:00Z".into(),
            username: "admin".into(),
        }
    }

    #[test]
    fn matches_name_then_id_then_token_prefix() {
        // A token named like another token's id must win over that id.
        let tokens = vec![key("AAAAAAAAAA", "ci"), key("BBBBBBBBBB", "AAAAAAAAAA")];
        let id = |needle: &str| find_token(&tokens, needle).map(|t| t.id.as_str());
        assert_eq!(id("ci"), Some("AAAAAAAAAA"));
        assert_eq!(id("AAAAAAAAAA"), Some("BBBBBBBBBB"));
        assert_eq!(id("BBBBBBBBBB"), Some("BBBBBBBBBB"));
        assert_eq!(id("BBBBBBBBBB-0123456789abcdefghijkl"), Some("BBBBBBBBBB"));
        assert_eq!(id("CCCCCCCCCC-0123456789abcdefghijkl"), None);
        assert_eq!(id("nope"), None);
    }

    #[test]
    fn tokens_table_adds_owner_only_for_all() {
        let tokens = vec![key("AAAAAAAAAA", "ci")];
        assert_eq!(
            tokens_table(&tokens, false).render(),
            "ID          NAME  LAST USED  EXPIRES AT            CREATED AT\n\
             AAAAAAAAAA  ci    never      2024-02-01T00:00:00Z  2024-01-02T00:00:00Z\n"
        );
        assert!(tokens_table(&tokens, true).render().starts_with(
            "ID          NAME  LAST USED  EXPIRES AT            CREATED AT            OWNER\n"
        ));
    }

    #[test]
    fn lifetime_flag_is_in_nanoseconds() {
        assert_eq!(parse_go_duration("720h"), Ok(2_592_000_000_000_000));
        assert_eq!(parse_go_duration("24h"), Ok(86_400_000_000_000));
    }
}
