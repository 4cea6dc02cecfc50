//! [`OAuth2Store`] on both backends (03 §2). `text[]` columns are JSON arrays in SQLite; they
//! travel as JSON text either way (`array_to_json` / `jsonb_array_elements_text` on
//! PostgreSQL).

use crate::Db;
use crate::sql::{Ctx, Row, Target};
use hangar_core::StoreError;
use hangar_identity::model::ApiKey;
use hangar_oauth2_provider::model::{App, AppSecret, Code, Rotation, Token};
use hangar_oauth2_provider::store::{OAuth2Store, SweepKind, Usage};
use serde_json::json;
use std::sync::LazyLock;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

const ARRAYS: [&str; 4] = ["redirect_uris", "grant_types", "response_types", "contacts"];

/// The app columns, arrays as JSON text; built once per backend.
fn app_cols(c: &Ctx) -> &'static str {
    static POSTGRES: LazyLock<String> = LazyLock::new(|| build_app_cols(true));
    static SQLITE: LazyLock<String> = LazyLock::new(|| build_app_cols(false));
    if c.is_postgres() { &POSTGRES } else { &SQLITE }
}

/// `cols` (a `", "` list) read from table alias `table` as `<prefix><col>`.
fn aliased(cols: &str, table: &str, prefix: &str) -> String {
    cols.split(", ")
        .map(|col| format!("{table}.{col} AS {prefix}{col}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn build_app_cols(postgres: bool) -> String {
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
        cols.push(if postgres {
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

impl Db {
    async fn insert_app_on<T: Target>(&self, t: &T, a: &App) -> R<()> {
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
        c.exec(t, &sql, values).await?;
        Ok(())
    }

    async fn insert_secret_on<T: Target>(&self, t: &T, s: &AppSecret) -> R<()> {
        let c = &self.ctx;
        c.exec(
            t,
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
}

impl OAuth2Store for Db {
    async fn insert_app(&self, a: &App) -> R<()> {
        self.insert_app_on(&self.conn, a).await
    }

    async fn register_app(&self, a: &App, secret: Option<&AppSecret>) -> R<()> {
        let tx = self.begin().await?;
        self.insert_app_on(&tx, a).await?;
        if let Some(s) = secret {
            self.insert_secret_on(&tx, s).await?;
        }
        tx.commit().await?;
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
        self.insert_secret_on(&self.conn, s).await
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

    async fn client_by_id(
        &self,
        app: Uuid,
        secret_prefix: Option<&[u8]>,
    ) -> R<Option<(App, Option<AppSecret>)>> {
        let c = &self.ctx;
        static SECRET: LazyLock<String> = LazyLock::new(|| aliased(SECRET_COLS, "s", "s_"));
        let secret_cols = SECRET.as_str();
        let sql = format!(
            "SELECT {}, {secret_cols} FROM oauth2_provider_apps a \
             LEFT JOIN oauth2_provider_app_secrets s ON s.app_id = a.id AND s.secret_prefix = $2 \
             WHERE a.id = $1",
            app_cols(c)
        );
        // No prefix: an empty one matches no secret (prefixes are 10 characters).
        let prefix = secret_prefix.unwrap_or_default().to_vec();
        let Some(r) = c
            .one(&self.conn, &sql, vec![c.uuid(app), c.bytes(prefix)])
            .await?
        else {
            return Ok(None);
        };
        let secret = match r.opt_uuid("s_id")? {
            None => None,
            Some(id) => Some(AppSecret {
                id,
                created_at: r.ts("s_created_at")?,
                last_used_at: r.opt_ts("s_last_used_at")?,
                hashed_secret: r.bytes("s_hashed_secret")?,
                display_secret: r.string("s_display_secret")?,
                app_id: r.uuid("s_app_id")?,
                secret_prefix: r.bytes("s_secret_prefix")?,
            }),
        };
        Ok(Some((app_from(&r)?, secret)))
    }

    async fn replace_unused_codes_and_insert(&self, code: &Code) -> R<()> {
        self.replace_codes_impl(code).await
    }

    async fn code_by_prefix(&self, prefix: &[u8], app: Uuid) -> R<Option<Code>> {
        self.code_by_prefix_impl(prefix, app).await
    }

    async fn consume_code(&self, id: Uuid, now: chrono::DateTime<chrono::Utc>) -> R<bool> {
        self.consume_code_impl(id, now).await
    }

    async fn issue_tokens(
        &self,
        key: &ApiKey,
        token: &Token,
        code: Option<Uuid>,
        usage: Usage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> R<()> {
        self.issue_tokens_impl(key, token, code, usage, now).await
    }

    async fn live_token_by_prefix(&self, prefix: &[u8]) -> R<Option<Token>> {
        let c = &self.ctx;
        static TOKEN: LazyLock<String> = LazyLock::new(|| aliased(TOKEN_COLS, "t", ""));
        let cols = TOKEN.as_str();
        let sql = format!(
            "SELECT {cols} FROM oauth2_provider_app_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.hash_prefix = $1 AND u.deleted = FALSE AND u.status <> 'suspended'::user_status"
        );
        c.one(&self.conn, &sql, vec![c.bytes(prefix.to_vec())])
            .await?
            .map(|r| token_from(&r))
            .transpose()
    }

    async fn token_by_prefix(&self, prefix: &[u8]) -> R<Option<Token>> {
        self.one_token("hash_prefix", self.ctx.bytes(prefix.to_vec()))
            .await
    }

    async fn token_by_api_key(&self, key_id: &str) -> R<Option<Token>> {
        self.one_token("api_key_id", self.ctx.text(key_id)).await
    }

    async fn rotation_by_prefix(&self, prefix: &[u8]) -> R<Option<Rotation>> {
        self.rotation_by_prefix_impl(prefix).await
    }

    async fn rotate(
        &self,
        old: &Token,
        key: &ApiKey,
        new: &Token,
        usage: Usage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> R<()> {
        self.rotate_impl(old, key, new, usage, now).await
    }

    async fn revoke_family(&self, family: Uuid) -> R<u64> {
        let tx = self.begin().await?;
        let n = self.revoke_family_in(&tx, family).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn revoke_code_family(&self, code: Uuid) -> R<u64> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        // Waits for an exchange holding the code row; once it is gone, a later exchange of
        // the code finds nothing to issue against.
        c.exec(
            &tx,
            "DELETE FROM oauth2_provider_app_codes WHERE id = $1",
            vec![c.uuid(code)],
        )
        .await?;
        let n = self.revoke_family_in(&tx, code).await?;
        tx.commit().await?;
        Ok(n)
    }

    async fn delete_token(&self, id: Uuid) -> R<bool> {
        Ok(self
            .delete_tokens_where("id = $1", vec![self.ctx.uuid(id)])
            .await?
            > 0)
    }

    async fn sweep(
        &self,
        kind: SweepKind,
        now: chrono::DateTime<chrono::Utc>,
        unused_before: chrono::DateTime<chrono::Utc>,
    ) -> R<Option<u64>> {
        let c = &self.ctx;
        let (sql, values) = match kind {
            SweepKind::Codes => (
                "DELETE FROM oauth2_provider_app_codes WHERE id IN \
                 (SELECT id FROM oauth2_provider_app_codes WHERE expires_at < $1 LIMIT 1000)",
                vec![c.ts(now)],
            ),
            SweepKind::Tokens => (
                "DELETE FROM oauth2_provider_app_tokens WHERE id IN \
                 (SELECT id FROM oauth2_provider_app_tokens WHERE expires_at < $1 LIMIT 1000)",
                vec![c.ts(now)],
            ),
            SweepKind::Rotations => (
                "DELETE FROM oauth2_provider_app_token_rotations WHERE hash_prefix IN \
                 (SELECT hash_prefix FROM oauth2_provider_app_token_rotations WHERE expires_at < $1 LIMIT 1000)",
                vec![c.ts(now)],
            ),
            SweepKind::Clients => (
                "DELETE FROM oauth2_provider_apps WHERE id IN (SELECT a.id FROM oauth2_provider_apps a \
                   WHERE a.dynamically_registered AND COALESCE(a.last_used_at, a.created_at) < $1 \
                     AND NOT EXISTS (SELECT 1 FROM oauth2_provider_app_tokens t WHERE t.app_id = a.id) LIMIT 1000)",
                vec![c.ts(unused_before)],
            ),
        };
        let tx = self.begin().await?;
        if !self
            .try_xact_lock(&tx, hangar_core::locks::OAUTH2_SWEEP)
            .await?
        {
            return Ok(None);
        }
        let n = c.exec(&tx, sql, values).await?;
        tx.commit().await?;
        Ok(Some(n))
    }

    async fn delete_user_app_grants(&self, user: Uuid, app: Uuid) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        for table in ["oauth2_provider_app_codes", "oauth2_provider_app_tokens"] {
            c.exec(
                &tx,
                &format!("DELETE FROM {table} WHERE user_id = $1 AND app_id = $2"),
                vec![c.uuid(user), c.uuid(app)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

const CODE_COLS: &str = "id, created_at, expires_at, secret_prefix, hashed_secret, user_id, app_id, \
     resource_uri, code_challenge, code_challenge_method, redirect_uri, consumed_at";

fn code_from(r: &Row) -> R<Code> {
    Ok(Code {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        expires_at: r.ts("expires_at")?,
        secret_prefix: r.bytes("secret_prefix")?,
        hashed_secret: r.bytes("hashed_secret")?,
        user_id: r.uuid("user_id")?,
        app_id: r.uuid("app_id")?,
        resource_uri: r.opt_string("resource_uri")?,
        code_challenge: r.opt_string("code_challenge")?,
        code_challenge_method: r.opt_string("code_challenge_method")?,
        redirect_uri: r.opt_string("redirect_uri")?,
        consumed_at: r.opt_ts("consumed_at")?,
    })
}

const TOKEN_COLS: &str = "id, created_at, expires_at, hash_prefix, refresh_hash, app_secret_id, \
     api_key_id, audience, user_id, app_id, family_id";

fn token_from(r: &Row) -> R<Token> {
    Ok(Token {
        id: r.uuid("id")?,
        created_at: r.ts("created_at")?,
        expires_at: r.ts("expires_at")?,
        hash_prefix: r.bytes("hash_prefix")?,
        refresh_hash: r.bytes("refresh_hash")?,
        app_secret_id: r.opt_uuid("app_secret_id")?,
        api_key_id: r.string("api_key_id")?,
        audience: r.opt_string("audience")?,
        user_id: r.uuid("user_id")?,
        app_id: r.uuid("app_id")?,
        family_id: r.uuid("family_id")?,
    })
}

impl Db {
    /// Inserts `key` and `token` inside `tx`.
    async fn insert_grant(&self, tx: &crate::Tx, key: &ApiKey, t: &Token) -> R<()> {
        let c = &self.ctx;
        let (sql, values) = crate::identity::api_key_insert(c, key);
        c.exec(tx, &sql, values).await?;
        c.exec(
            tx,
            &format!("INSERT INTO oauth2_provider_app_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
            vec![
                c.uuid(t.id),
                c.ts(t.created_at),
                c.ts(t.expires_at),
                c.bytes(t.hash_prefix.clone()),
                c.bytes(t.refresh_hash.clone()),
                c.opt_uuid(t.app_secret_id),
                c.text(&t.api_key_id),
                c.opt_text(t.audience.clone()),
                c.uuid(t.user_id),
                c.uuid(t.app_id),
                c.uuid(t.family_id),
            ],
        )
        .await?;
        Ok(())
    }

    /// Writes the usage timestamps the provider found stale.
    async fn mark_used(
        &self,
        tx: &crate::Tx,
        usage: Usage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let rows = [
            ("oauth2_provider_apps", usage.app),
            ("oauth2_provider_app_secrets", usage.secret),
        ];
        for (table, id) in rows {
            if let Some(id) = id {
                c.exec(
                    tx,
                    &format!("UPDATE {table} SET last_used_at = $1 WHERE id = $2"),
                    vec![c.ts(now), c.uuid(id)],
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn one_token(&self, filter: &str, v: sea_orm::Value) -> R<Option<Token>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {TOKEN_COLS} FROM oauth2_provider_app_tokens WHERE {filter} = $1"),
            vec![v],
        )
        .await?
        .map(|r| token_from(&r))
        .transpose()
    }
}

/// The grant-side half of [`OAuth2Store`], split from the management half for reading.
impl Db {
    pub(crate) async fn replace_codes_impl(&self, code: &Code) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        c.exec(
            &tx,
            "DELETE FROM oauth2_provider_app_codes WHERE app_id = $1 AND user_id = $2 AND consumed_at IS NULL",
            vec![c.uuid(code.app_id), c.uuid(code.user_id)],
        )
        .await?;
        c.exec(
            &tx,
            &format!("INSERT INTO oauth2_provider_app_codes ({CODE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
            vec![
                c.uuid(code.id),
                c.ts(code.created_at),
                c.ts(code.expires_at),
                c.bytes(code.secret_prefix.clone()),
                c.bytes(code.hashed_secret.clone()),
                c.uuid(code.user_id),
                c.uuid(code.app_id),
                c.opt_text(code.resource_uri.clone()),
                c.opt_text(code.code_challenge.clone()),
                c.opt_text(code.code_challenge_method.clone()),
                c.opt_text(code.redirect_uri.clone()),
                c.opt_ts(code.consumed_at),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn code_by_prefix_impl(&self, prefix: &[u8], app: Uuid) -> R<Option<Code>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            &format!("SELECT {CODE_COLS} FROM oauth2_provider_app_codes WHERE secret_prefix = $1 AND app_id = $2"),
            vec![c.bytes(prefix.to_vec()), c.uuid(app)],
        )
        .await?
        .map(|r| code_from(&r))
        .transpose()
    }

    pub(crate) async fn consume_code_impl(
        &self,
        id: Uuid,
        now: chrono::DateTime<chrono::Utc>,
    ) -> R<bool> {
        let c = &self.ctx;
        let n = c
            .exec(
                &self.conn,
                "UPDATE oauth2_provider_app_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL",
                vec![c.ts(now), c.uuid(id)],
            )
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn issue_tokens_impl(
        &self,
        key: &ApiKey,
        t: &Token,
        code: Option<Uuid>,
        usage: Usage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        self.lock_grant(&tx, t).await?;
        if let Some(code) = code {
            let lock = if c.is_postgres() { " FOR UPDATE" } else { "" };
            let held = c
                .one(
                    &tx,
                    &format!("SELECT id FROM oauth2_provider_app_codes WHERE id = $1{lock}"),
                    vec![c.uuid(code)],
                )
                .await?;
            if held.is_none() {
                return Err(StoreError::Conflict {
                    constraint: "oauth2_code_revoked".into(),
                });
            }
        }
        // The earlier grant of this user and app goes: its key, and with it (FK) its token row.
        c.exec(
            &tx,
            "DELETE FROM api_keys WHERE user_id = $1 AND token_name = $2 AND login_type = 'oauth2_provider_app'::login_type",
            vec![c.uuid(key.user_id), c.text(&key.token_name)],
        )
        .await?;
        self.insert_grant(&tx, key, t).await?;
        self.mark_used(&tx, usage, now).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn rotate_impl(
        &self,
        old: &Token,
        key: &ApiKey,
        new: &Token,
        usage: Usage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        self.lock_grant(&tx, new).await?;
        self.lock_family(&tx, old.family_id).await?;
        let gone = c
            .exec(
                &tx,
                "DELETE FROM oauth2_provider_app_tokens WHERE id = $1",
                vec![c.uuid(old.id)],
            )
            .await?;
        if gone == 0 {
            return Err(StoreError::Conflict {
                constraint: "oauth2_token_rotated".into(),
            });
        }
        c.exec(
            &tx,
            "INSERT INTO oauth2_provider_app_token_rotations (hash_prefix, refresh_hash, family_id, app_id, user_id, rotated_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                c.bytes(old.hash_prefix.clone()),
                c.bytes(old.refresh_hash.clone()),
                c.uuid(old.family_id),
                c.uuid(old.app_id),
                c.uuid(old.user_id),
                c.ts(now),
                c.ts(old.expires_at),
            ],
        )
        .await?;
        self.insert_grant(&tx, key, new).await?;
        self.mark_used(&tx, usage, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Db {
    pub(crate) async fn rotation_by_prefix_impl(&self, prefix: &[u8]) -> R<Option<Rotation>> {
        let c = &self.ctx;
        c.one(
            &self.conn,
            "SELECT hash_prefix, refresh_hash, family_id, app_id, user_id, rotated_at, expires_at \
             FROM oauth2_provider_app_token_rotations WHERE hash_prefix = $1",
            vec![c.bytes(prefix.to_vec())],
        )
        .await?
        .map(|r| {
            Ok(Rotation {
                hash_prefix: r.bytes("hash_prefix")?,
                refresh_hash: r.bytes("refresh_hash")?,
                family_id: r.uuid("family_id")?,
                app_id: r.uuid("app_id")?,
                user_id: r.uuid("user_id")?,
                rotated_at: r.ts("rotated_at")?,
                expires_at: r.ts("expires_at")?,
            })
        })
        .transpose()
    }

    /// PostgreSQL: serialises the writes of one user's grants of one app (SQLite's
    /// `BEGIN IMMEDIATE` already serialises every write transaction).
    async fn lock_grant(&self, tx: &crate::Tx, t: &Token) -> R<()> {
        self.xact_lock(
            tx,
            hangar_core::locks::OAUTH2_GRANT_CLASS,
            format!("{}:{}", t.user_id, t.app_id),
        )
        .await
    }

    /// PostgreSQL: serialises the rotations and the revocation of one token family.
    async fn lock_family(&self, tx: &crate::Tx, family: Uuid) -> R<()> {
        self.xact_lock(
            tx,
            hangar_core::locks::OAUTH2_FAMILY_CLASS,
            family.to_string(),
        )
        .await
    }

    async fn xact_lock(&self, tx: &crate::Tx, class: i32, key: String) -> R<()> {
        let c = &self.ctx;
        if c.is_postgres() {
            c.one(
                tx,
                "SELECT pg_advisory_xact_lock($1, hashtext($2)) IS NULL AS locked",
                vec![c.i32(class), c.text(key)],
            )
            .await?;
        }
        Ok(())
    }

    async fn revoke_family_in(&self, tx: &crate::Tx, family: Uuid) -> R<u64> {
        let c = &self.ctx;
        self.lock_family(tx, family).await?;
        c.exec(
            tx,
            "DELETE FROM oauth2_provider_app_tokens WHERE family_id = $1",
            vec![c.uuid(family)],
        )
        .await
    }

    pub(crate) async fn delete_tokens_where(
        &self,
        filter: &str,
        values: Vec<sea_orm::Value>,
    ) -> R<u64> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            &format!("DELETE FROM oauth2_provider_app_tokens WHERE {filter}"),
            values,
        )
        .await
    }
}
