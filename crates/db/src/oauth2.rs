//! [`OAuth2Store`] on both backends (03 §2). `text[]` columns are JSON arrays in SQLite; they
//! travel as JSON text either way (`array_to_json` / `jsonb_array_elements_text` on
//! PostgreSQL).

use crate::Db;
use crate::sql::{Ctx, Row};
use hangar_core::StoreError;
use hangar_oauth2_provider::model::{App, AppSecret};
use hangar_oauth2_provider::store::OAuth2Store;
use serde_json::json;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

const ARRAYS: [&str; 4] = ["redirect_uris", "grant_types", "response_types", "contacts"];

/// The app columns, arrays as JSON text.
fn app_cols(c: &Ctx) -> String {
    let mut cols = vec![
        "a.id",
        "a.created_at",
        "a.updated_at",
        "a.client_id_issued_at",
        "a.name",
        "a.icon",
        "a.callback_url",
        "a.client_type",
        "a.token_endpoint_auth_method",
        "a.dynamically_registered",
        "a.scope",
        "a.client_secret_expires_at",
        "a.last_used_at",
        "a.client_uri",
        "a.logo_uri",
        "a.tos_uri",
        "a.policy_uri",
        "a.jwks_uri",
        "a.software_id",
        "a.software_version",
        "a.registration_client_uri",
        "a.jwks::text AS jwks",
        "a.registration_access_token",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    for a in ARRAYS {
        cols.push(if c.is_postgres() {
            format!("array_to_json(a.{a})::text AS {a}")
        } else {
            format!("a.{a} AS {a}")
        });
    }
    cols.join(", ")
}

/// A JSON-array parameter as the column's type.
fn array_param(c: &Ctx, marker: &str) -> String {
    if c.is_postgres() {
        format!("ARRAY(SELECT jsonb_array_elements_text({marker}::jsonb))")
    } else {
        marker.to_owned()
    }
}

fn app_from(r: &Row) -> R<App> {
    let jwks: Option<String> = r.opt_string("jwks")?;
    Ok(App {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        client_id_issued_at: r.ts("client_id_issued_at")?,
        name: r.string("name")?,
        icon: r.string("icon")?,
        callback_url: r.string("callback_url")?,
        redirect_uris: r.json("redirect_uris")?,
        client_type: r.string("client_type")?,
        token_endpoint_auth_method: r.string("token_endpoint_auth_method")?,
        dynamically_registered: r.bool("dynamically_registered")?,
        grant_types: r.json("grant_types")?,
        response_types: r.json("response_types")?,
        contacts: r.json("contacts")?,
        scope: r.string("scope")?,
        client_secret_expires_at: r.opt_ts("client_secret_expires_at")?,
        last_used_at: r.opt_ts("last_used_at")?,
        client_uri: r.opt_string("client_uri")?,
        logo_uri: r.opt_string("logo_uri")?,
        tos_uri: r.opt_string("tos_uri")?,
        policy_uri: r.opt_string("policy_uri")?,
        jwks_uri: r.opt_string("jwks_uri")?,
        software_id: r.opt_string("software_id")?,
        software_version: r.opt_string("software_version")?,
        registration_client_uri: r.opt_string("registration_client_uri")?,
        jwks: jwks
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| StoreError::Other(format!("decode jwks: {e}")))?,
        registration_access_token: r.opt_bytes("registration_access_token")?,
    })
}

fn secret_from(r: &Row) -> R<AppSecret> {
    Ok(AppSecret {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        last_used_at: r.opt_ts("last_used_at")?,
        hashed_secret: r.bytes("hashed_secret")?,
        display_secret: r.string("display_secret")?,
        app_id: r.uuid("app_id")?,
        secret_prefix: r.bytes("secret_prefix")?,
    })
}

const SECRET_COLS: &str =
    "id, created_at, last_used_at, hashed_secret, display_secret, app_id, secret_prefix";

/// The values of every app column but `id`/`created_at`, in [`APP_WRITE_COLS`] order.
fn app_values(c: &Ctx, a: &App) -> Vec<sea_orm::Value> {
    vec![
        c.ts(a.updated_at),
        c.ts(a.client_id_issued_at),
        c.text(&a.name),
        c.text(&a.icon),
        c.text(&a.callback_url),
        c.json(&json!(a.redirect_uris)),
        c.text(&a.client_type),
        c.text(&a.token_endpoint_auth_method),
        c.bool(a.dynamically_registered),
        c.json(&json!(a.grant_types)),
        c.json(&json!(a.response_types)),
        c.json(&json!(a.contacts)),
        c.text(&a.scope),
        c.opt_ts(a.client_secret_expires_at),
        c.opt_ts(a.last_used_at),
        c.opt_text(a.client_uri.clone()),
        c.opt_text(a.logo_uri.clone()),
        c.opt_text(a.tos_uri.clone()),
        c.opt_text(a.policy_uri.clone()),
        c.opt_text(a.jwks_uri.clone()),
        c.opt_text(a.software_id.clone()),
        c.opt_text(a.software_version.clone()),
        c.opt_text(a.registration_client_uri.clone()),
        c.opt_text(a.jwks.as_ref().map(|j| j.to_string())),
        c.opt_bytes(a.registration_access_token.clone()),
    ]
}

const APP_WRITE_COLS: [&str; 25] = [
    "updated_at",
    "client_id_issued_at",
    "name",
    "icon",
    "callback_url",
    "redirect_uris",
    "client_type",
    "token_endpoint_auth_method",
    "dynamically_registered",
    "grant_types",
    "response_types",
    "contacts",
    "scope",
    "client_secret_expires_at",
    "last_used_at",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "software_id",
    "software_version",
    "registration_client_uri",
    "jwks",
    "registration_access_token",
];

/// The `$n` marker of column `col` (1-based after `offset`), cast where the type needs it.
fn marker(c: &Ctx, col: &str, n: usize) -> String {
    let m = format!("${n}");
    match col {
        "redirect_uris" | "grant_types" | "response_types" | "contacts" => array_param(c, &m),
        "jwks" => format!("{m}::jsonb"),
        _ => m,
    }
}

impl OAuth2Store for Db {
    async fn insert_app(&self, a: &App) -> R<()> {
        let c = &self.ctx;
        let mut values = vec![c.uuid(a.id), c.ts(a.created_at)];
        values.extend(app_values(c, a));
        let markers: Vec<String> = APP_WRITE_COLS
            .iter()
            .enumerate()
            .map(|(i, col)| marker(c, col, i + 3))
            .collect();
        let sql = format!(
            "INSERT INTO oauth2_provider_apps (id, created_at, {}) VALUES ($1, $2, {})",
            APP_WRITE_COLS.join(", "),
            markers.join(", ")
        );
        c.exec(&self.conn, &sql, values).await?;
        Ok(())
    }

    async fn update_app(&self, a: &App) -> R<()> {
        let c = &self.ctx;
        let mut values = app_values(c, a);
        values.push(c.uuid(a.id));
        let sets: Vec<String> = APP_WRITE_COLS
            .iter()
            .enumerate()
            .map(|(i, col)| format!("{col} = {}", marker(c, col, i + 1)))
            .collect();
        let sql = format!(
            "UPDATE oauth2_provider_apps SET {} WHERE id = ${}",
            sets.join(", "),
            APP_WRITE_COLS.len() + 1
        );
        c.exec(&self.conn, &sql, values).await?;
        Ok(())
    }

    async fn app_by_id(&self, id: Uuid) -> R<Option<App>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {} FROM oauth2_provider_apps a WHERE a.id = $1",
            app_cols(c)
        );
        c.one(&self.conn, &sql, vec![c.uuid(id)])
            .await?
            .map(|r| app_from(&r))
            .transpose()
    }

    async fn list_apps(&self, user: Option<Uuid>) -> R<Vec<App>> {
        let c = &self.ctx;
        let (filter, values) = match user {
            Some(u) => (
                " WHERE EXISTS (SELECT 1 FROM oauth2_provider_app_tokens t WHERE t.app_id = a.id AND t.user_id = $1)",
                vec![c.uuid(u)],
            ),
            None => ("", vec![]),
        };
        let sql = format!(
            "SELECT {} FROM oauth2_provider_apps a{filter} ORDER BY a.name, a.id",
            app_cols(c)
        );
        c.all(&self.conn, &sql, values)
            .await?
            .iter()
            .map(app_from)
            .collect()
    }

    async fn delete_app(&self, id: Uuid) -> R<bool> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        // Token rows first, so their trigger removes the API keys on both backends.
        c.exec(
            &tx,
            "DELETE FROM oauth2_provider_app_tokens WHERE app_id = $1",
            vec![c.uuid(id)],
        )
        .await?;
        let n = c
            .exec(
                &tx,
                "DELETE FROM oauth2_provider_apps WHERE id = $1",
                vec![c.uuid(id)],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn insert_secret(&self, s: &AppSecret) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            &format!("INSERT INTO oauth2_provider_app_secrets ({SECRET_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            vec![
                c.uuid(s.id),
                c.ts(s.created_at),
                c.opt_ts(s.last_used_at),
                c.bytes(s.hashed_secret.clone()),
                c.text(&s.display_secret),
                c.uuid(s.app_id),
                c.bytes(s.secret_prefix.clone()),
            ],
        )
        .await?;
        Ok(())
    }

    async fn secrets_of(&self, app: Uuid) -> R<Vec<AppSecret>> {
        let c = &self.ctx;
        c.all(
            &self.conn,
            &format!("SELECT {SECRET_COLS} FROM oauth2_provider_app_secrets WHERE app_id = $1 ORDER BY created_at, id"),
            vec![c.uuid(app)],
        )
        .await?
        .iter()
        .map(secret_from)
        .collect()
    }

    async fn delete_secret(&self, app: Uuid, id: Uuid) -> R<bool> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        c.exec(
            &tx,
            "DELETE FROM oauth2_provider_app_tokens WHERE app_secret_id = $1 AND app_id = $2",
            vec![c.uuid(id), c.uuid(app)],
        )
        .await?;
        let n = c
            .exec(
                &tx,
                "DELETE FROM oauth2_provider_app_secrets WHERE id = $1 AND app_id = $2",
                vec![c.uuid(id), c.uuid(app)],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }
}
