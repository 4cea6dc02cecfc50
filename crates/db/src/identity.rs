//! [`IdentityStore`] on both backends.

use crate::sql::{Ctx, Params, Row};
use crate::{Db, Tx};
use chrono::{DateTime, Utc};
use hangar_core::{PREBUILDS_SYSTEM_USER_ID, Pagination, StoreError, locks};
use hangar_identity::model::*;
use hangar_identity::store::IdentityStore;
use std::collections::BTreeMap;
use uuid::Uuid;

type R<T> = Result<T, StoreError>;

/// User columns, aliased with a prefix so joins can select two tables' columns.
fn user_cols(t: &str, p: &str) -> String {
    format!(
        "{t}.id AS {p}id, {t}.email AS {p}email, {t}.username AS {p}username, {t}.name AS {p}name, \
         {t}.avatar_url AS {p}avatar_url, {t}.hashed_password AS {p}hashed_password, \
         {t}.created_at AS {p}created_at, {t}.updated_at AS {p}updated_at, {t}.last_seen_at AS {p}last_seen_at, \
         {t}.status::text AS {p}status, {t}.rbac_roles::text AS {p}rbac_roles, {t}.login_type::text AS {p}login_type, \
         {t}.deleted AS {p}deleted, {t}.is_system AS {p}is_system"
    )
}

fn user_from(r: &Row, p: &str) -> R<User> {
    let c = |name: &str| format!("{p}{name}");
    Ok(User {
        id: r.uuid(&c("id"))?,
        email: r.string(&c("email"))?,
        username: r.string(&c("username"))?,
        name: r.string(&c("name"))?,
        avatar_url: r.string(&c("avatar_url"))?,
        hashed_password: r.bytes(&c("hashed_password"))?,
        created_at: r.ts(&c("created_at"))?,
        updated_at: r.ts(&c("updated_at"))?,
        last_seen_at: r.ts(&c("last_seen_at"))?,
        status: r.parse(&c("status"))?,
        rbac_roles: r.json(&c("rbac_roles"))?,
        login_type: r.parse(&c("login_type"))?,
        deleted: r.bool(&c("deleted"))?,
        is_system: r.bool(&c("is_system"))?,
    })
}

fn key_cols(t: &str, p: &str) -> String {
    format!(
        "{t}.id AS {p}id, {t}.hashed_secret AS {p}hashed_secret, {t}.user_id AS {p}user_id, \
         {t}.last_used AS {p}last_used, {t}.expires_at AS {p}expires_at, {t}.created_at AS {p}created_at, \
         {t}.updated_at AS {p}updated_at, {t}.login_type::text AS {p}login_type, \
         {t}.lifetime_seconds AS {p}lifetime_seconds, {t}.ip_address::text AS {p}ip_address, \
         {t}.scope::text AS {p}scope, {t}.token_name AS {p}token_name"
    )
}

/// The INSERT of one API key row (also used inside the OAuth2 store's transactions).
pub(crate) fn api_key_insert(c: &Ctx, key: &ApiKey) -> (String, Vec<sea_orm::Value>) {
    (
        "INSERT INTO api_keys (id, hashed_secret, user_id, last_used, expires_at, created_at, updated_at, login_type, \
           lifetime_seconds, ip_address, scope, token_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::login_type, $9, $10::inet, $11::api_key_scope, $12)"
            .to_owned(),
        vec![
            c.text(&key.id),
            c.bytes(key.hashed_secret.clone()),
            c.uuid(key.user_id),
            c.ts(key.last_used),
            c.ts(key.expires_at),
            c.ts(key.created_at),
            c.ts(key.updated_at),
            c.text(key.login_type.as_str()),
            c.i64(key.lifetime_seconds),
            c.text(&key.ip_address),
            c.text(key.scope.as_str()),
            c.text(&key.token_name),
        ],
    )
}

fn key_from(r: &Row, p: &str) -> R<ApiKey> {
    let c = |name: &str| format!("{p}{name}");
    let ip = r.string(&c("ip_address"))?;
    Ok(ApiKey {
        id: r.string(&c("id"))?,
        hashed_secret: r.bytes(&c("hashed_secret"))?,
        user_id: r.uuid(&c("user_id"))?,
        last_used: r.ts(&c("last_used"))?,
        expires_at: r.ts(&c("expires_at"))?,
        created_at: r.ts(&c("created_at"))?,
        updated_at: r.ts(&c("updated_at"))?,
        login_type: r.parse(&c("login_type"))?,
        lifetime_seconds: r.i64(&c("lifetime_seconds"))?,
        // PostgreSQL's inet text form carries a /32 or /128 suffix for hosts.
        ip_address: ip
            .strip_suffix("/32")
            .or_else(|| ip.strip_suffix("/128"))
            .unwrap_or(&ip)
            .to_string(),
        scope: r.parse(&c("scope"))?,
        token_name: r.string(&c("token_name"))?,
    })
}

const ORG_COLS: &str = "o.id, o.name, o.display_name, o.description, o.icon, o.created_at, o.updated_at, o.is_default, o.deleted";

fn org_from(r: &Row) -> R<Organization> {
    Ok(Organization {
        id: r.uuid("id")?,
        name: r.string("name")?,
        display_name: r.string("display_name")?,
        description: r.string("description")?,
        icon: r.string("icon")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        is_default: r.bool("is_default")?,
        deleted: r.bool("deleted")?,
    })
}

const MEMBER_COLS: &str = "m.user_id AS m_user_id, m.organization_id AS m_organization_id, m.created_at AS m_created_at, \
     m.updated_at AS m_updated_at, m.roles::text AS m_roles";

fn member_from(r: &Row) -> R<Member> {
    Ok(Member {
        user_id: r.uuid("m_user_id")?,
        organization_id: r.uuid("m_organization_id")?,
        created_at: r.ts("m_created_at")?,
        updated_at: r.ts("m_updated_at")?,
        roles: r.json("m_roles")?,
    })
}

const GROUP_COLS: &str = "g.id, g.name, g.display_name, g.organization_id, g.avatar_url, g.quota_allowance, g.source::text AS source";

fn group_from(r: &Row) -> R<Group> {
    Ok(Group {
        id: r.uuid("id")?,
        name: r.string("name")?,
        display_name: r.string("display_name")?,
        organization_id: r.uuid("organization_id")?,
        avatar_url: r.string("avatar_url")?,
        quota_allowance: r.i32("quota_allowance")?,
        source: r.parse("source")?,
    })
}

/// SQLite's `RETURNING` cannot name a table alias; strip it.
fn unqualified(cols: &str, alias: &str) -> String {
    cols.replace(alias, "")
}

fn roles_json(roles: &[String]) -> serde_json::Value {
    serde_json::Value::from(roles.to_vec())
}

impl Db {
    async fn user_where(&self, clause: &str, values: Vec<sea_orm::Value>) -> R<Option<User>> {
        let sql = format!("SELECT {} FROM users u WHERE {clause}", user_cols("u", ""));
        self.ctx
            .one(&self.conn, &sql, values)
            .await?
            .map(|r| user_from(&r, ""))
            .transpose()
    }

    async fn insert_user_in(&self, tx: &Tx, u: &NewUser) -> R<User> {
        let c = &self.ctx;
        let sql = format!(
            "INSERT INTO users (id, email, username, name, hashed_password, created_at, updated_at, status, rbac_roles, login_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7::user_status, $8::jsonb, $9::login_type) RETURNING {}",
            user_cols("users", "")
        );
        let row = c
            .exec_returning(
                &tx,
                &sql,
                vec![
                    c.uuid(u.id),
                    c.text(&u.email),
                    c.text(&u.username),
                    c.text(&u.name),
                    c.bytes(u.hashed_password.clone()),
                    c.ts(u.now),
                    c.text(u.status.as_str()),
                    c.json(&roles_json(&u.rbac_roles)),
                    c.text(u.login_type.as_str()),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        user_from(&row, "")
    }

    async fn insert_member_in(
        &self,
        tx: &Tx,
        org: Uuid,
        user: Uuid,
        roles: &[String],
        now: DateTime<Utc>,
    ) -> R<Member> {
        let c = &self.ctx;
        let sql = format!(
            "INSERT INTO organization_members (user_id, organization_id, created_at, updated_at, roles) \
             VALUES ($1, $2, $3, $3, $4::jsonb) RETURNING {}",
            unqualified(MEMBER_COLS, "m.")
        );
        let row = c
            .exec_returning(
                &tx,
                &sql,
                vec![
                    c.uuid(user),
                    c.uuid(org),
                    c.ts(now),
                    c.json(&roles_json(roles)),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        member_from(&row)
    }

    /// `lock_live_organization` (02 §6): `FOR SHARE` on PostgreSQL; SQLite's immediate
    /// transaction already excludes other writers.
    pub async fn lock_live_organization(&self, tx: &Tx, org: Uuid) -> R<()> {
        let c = &self.ctx;
        let sql = c.pick(
            "SELECT id FROM organizations WHERE id = $1 AND deleted = FALSE FOR SHARE",
            "SELECT id FROM organizations WHERE id = $1 AND deleted = FALSE",
        );
        c.one(&tx, sql, vec![c.uuid(org)])
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn update_user_returning(
        &self,
        set: &str,
        id: Uuid,
        values: Vec<sea_orm::Value>,
    ) -> R<User> {
        let mut p = Params { values };
        let idp = p.push(self.ctx.uuid(id));
        let sql = format!(
            "UPDATE users SET {set} WHERE id = {idp} AND deleted = FALSE RETURNING {}",
            user_cols("users", "")
        );
        let row = self
            .ctx
            .exec_returning(&self.conn, &sql, p.values)
            .await?
            .ok_or(StoreError::NotFound)?;
        user_from(&row, "")
    }
}

impl IdentityStore for Db {
    async fn insert_first_user(&self, user: NewUser) -> R<(User, Uuid)> {
        let tx = self.begin().await?;
        let c = &self.ctx;
        if c.is_postgres() {
            c.one(
                &tx,
                &format!(
                    "SELECT pg_advisory_xact_lock({}) IS NULL AS locked",
                    locks::FIRST_USER
                ),
                vec![],
            )
            .await?;
        }
        let n = c
            .one(
                &tx,
                "SELECT count(*) AS n FROM users WHERE deleted = FALSE AND is_system = FALSE",
                vec![],
            )
            .await?
            .map(|r| r.i64("n"))
            .transpose()?
            .unwrap_or(0);
        if n > 0 {
            return Err(StoreError::Conflict {
                constraint: "first_user".into(),
            });
        }
        let org = c
            .one(
                &tx,
                "SELECT id FROM organizations WHERE is_default = TRUE AND deleted = FALSE",
                vec![],
            )
            .await?
            .ok_or(StoreError::NotFound)?
            .uuid("id")?;
        let created = self.insert_user_in(&tx, &user).await?;
        self.insert_member_in(&tx, org, created.id, &[], user.now)
            .await?;
        tx.commit().await?;
        Ok((created, org))
    }

    async fn insert_user(&self, user: NewUser, org_ids: Vec<Uuid>) -> R<User> {
        let tx = self.begin().await?;
        for org in &org_ids {
            self.lock_live_organization(&tx, *org).await?;
        }
        let created = self.insert_user_in(&tx, &user).await?;
        for org in &org_ids {
            self.insert_member_in(&tx, *org, created.id, &[], user.now)
                .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn count_users(&self, include_system: bool) -> R<u64> {
        let c = &self.ctx;
        let row = c
            .one(
                &self.conn,
                "SELECT count(*) AS n FROM users WHERE deleted = FALSE AND ($1 OR is_system = FALSE)",
                vec![c.bool(include_system)],
            )
            .await?;
        Ok(row.map(|r| r.i64("n")).transpose()?.unwrap_or(0) as u64)
    }

    async fn user_by_id(&self, id: Uuid) -> R<Option<User>> {
        self.user_where("u.id = $1 AND u.deleted = FALSE", vec![self.ctx.uuid(id)])
            .await
    }

    async fn user_by_username(&self, username: &str) -> R<Option<User>> {
        self.user_where(
            "lower(u.username) = lower($1) AND u.deleted = FALSE",
            vec![self.ctx.text(username)],
        )
        .await
    }

    async fn user_by_email(&self, email: &str) -> R<Option<User>> {
        self.user_where(
            "lower(u.email) = lower($1) AND u.deleted = FALSE",
            vec![self.ctx.text(email)],
        )
        .await
    }

    async fn users_by_ids(&self, ids: Vec<Uuid>) -> R<Vec<User>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut p = Params::default();
        let list: Vec<String> = ids.iter().map(|id| p.push(self.ctx.uuid(*id))).collect();
        let sql = format!(
            "SELECT {} FROM users u WHERE u.id IN ({})",
            user_cols("u", ""),
            list.join(", ")
        );
        self.ctx
            .all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(|r| user_from(r, ""))
            .collect()
    }

    async fn list_users(&self, filter: UserFilter, page: Pagination) -> R<(Vec<User>, u64)> {
        let c = &self.ctx;
        let mut p = Params::default();
        let mut clauses = vec!["u.deleted = FALSE".to_string()];
        if !filter.include_system {
            clauses.push("u.is_system = FALSE".into());
        }
        if !filter.search.is_empty() {
            let escaped = filter
                .search
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let ph = p.push(c.text(format!("%{escaped}%")));
            clauses.push(format!(
                "(lower(u.username) LIKE {ph} ESCAPE '\\' OR lower(u.email) LIKE {ph} ESCAPE '\\')"
            ));
        }
        if let Some(status) = filter.status {
            let ph = p.push(c.text(status.as_str()));
            clauses.push(format!("u.status = {ph}::user_status"));
        }
        if let Some(role) = &filter.role {
            let ph = p.push(c.text(role));
            clauses.push(format!(
                "{} ",
                if c.is_postgres() {
                    format!("u.rbac_roles ? {ph}")
                } else {
                    format!("EXISTS (SELECT 1 FROM json_each(u.rbac_roles) WHERE value = {ph})")
                }
            ));
        }
        if let Some(only) = filter.only {
            let ph = p.push(c.uuid(only));
            clauses.push(format!("u.id = {ph}"));
        }
        let base_where = clauses.join(" AND ");
        let base_len = p.values.len();
        let mut page_where = base_where.clone();
        if let Some(after) = page.after_id {
            let ph = p.push(c.uuid(after));
            page_where.push_str(&format!(
                " AND lower(u.username) > (SELECT lower(a.username) FROM users a WHERE a.id = {ph})"
            ));
        }
        let mut sql = format!(
            "SELECT {}, (SELECT count(*) FROM users u WHERE {base_where}) AS total_count FROM users u WHERE {page_where} \
             ORDER BY lower(u.username) ASC",
            user_cols("u", "")
        );
        if page.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", page.limit));
        } else if page.offset > 0 {
            sql.push_str(&format!(" LIMIT {}", i64::MAX));
        }
        if page.offset > 0 {
            sql.push_str(&format!(" OFFSET {}", page.offset));
        }
        let rows = c.all(&self.conn, &sql, p.values.clone()).await?;
        let total = match rows.first() {
            Some(r) => r.i64("total_count")? as u64,
            None => {
                let count_sql = format!("SELECT count(*) AS n FROM users u WHERE {base_where}");
                let vals = p.values[..base_len].to_vec();
                c.one(&self.conn, &count_sql, vals)
                    .await?
                    .map(|r| r.i64("n"))
                    .transpose()?
                    .unwrap_or(0) as u64
            }
        };
        let users = rows
            .iter()
            .map(|r| user_from(r, ""))
            .collect::<R<Vec<_>>>()?;
        Ok((users, total))
    }

    async fn update_user_status(
        &self,
        id: Uuid,
        status: UserStatus,
        now: DateTime<Utc>,
    ) -> R<User> {
        let c = &self.ctx;
        self.update_user_returning(
            "status = $1::user_status, updated_at = $2",
            id,
            vec![c.text(status.as_str()), c.ts(now)],
        )
        .await
    }

    async fn update_user_roles(&self, id: Uuid, roles: Vec<String>, now: DateTime<Utc>) -> R<User> {
        let c = &self.ctx;
        self.update_user_returning(
            "rbac_roles = $1::jsonb, updated_at = $2",
            id,
            vec![c.json(&roles_json(&roles)), c.ts(now)],
        )
        .await
    }

    async fn update_user_password(&self, id: Uuid, hashed: Vec<u8>, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let n = c
            .exec(
                &tx,
                "UPDATE users SET hashed_password = $1, updated_at = $2 WHERE id = $3 AND deleted = FALSE",
                vec![c.bytes(hashed), c.ts(now), c.uuid(id)],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        c.exec(
            &tx,
            "DELETE FROM api_keys WHERE user_id = $1",
            vec![c.uuid(id)],
        )
        .await?;
        tx.commit().await
    }

    async fn soft_delete_user(&self, id: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        let n = c
            .exec(
                &self.conn,
                "UPDATE users SET deleted = TRUE, updated_at = $1 WHERE id = $2 AND deleted = FALSE",
                vec![c.ts(now), c.uuid(id)],
            )
            .await?;
        if n == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn user_workspace_count(&self, id: Uuid) -> R<i64> {
        let c = &self.ctx;
        let row = c
            .one(
                &self.conn,
                "SELECT count(*) AS n FROM workspaces WHERE owner_id = $1 AND deleted = FALSE",
                vec![c.uuid(id)],
            )
            .await?;
        row.map(|r| r.i64("n")).transpose().map(|n| n.unwrap_or(0))
    }

    async fn auth_roles(&self, user_id: Uuid) -> R<AuthRoles> {
        let c = &self.ctx;
        let cached_at = match &c.auth_cache {
            Some(cache) => match cache.roles(user_id) {
                Some(hit) => return Ok(hit),
                None => Some(cache.generation()),
            },
            None => None,
        };
        let sql = c.pick(
            "SELECT u.status::text AS status, u.rbac_roles::text AS rbac_roles, \
               COALESCE((SELECT json_agg(json_build_array(m.organization_id::text, m.roles))::text \
                 FROM organization_members m JOIN organizations o ON o.id = m.organization_id AND o.deleted = FALSE \
                 WHERE m.user_id = u.id), '[]') AS orgs, \
               COALESCE((SELECT json_agg(gm.group_id::text)::text FROM group_members gm WHERE gm.user_id = u.id), '[]') AS grps \
             FROM users u WHERE u.id = $1",
            "SELECT u.status AS status, u.rbac_roles AS rbac_roles, \
               (SELECT json_group_array(json_array(m.organization_id, json(m.roles))) \
                 FROM organization_members m JOIN organizations o ON o.id = m.organization_id AND o.deleted = FALSE \
                 WHERE m.user_id = u.id) AS orgs, \
               (SELECT json_group_array(gm.group_id) FROM group_members gm WHERE gm.user_id = u.id) AS grps \
             FROM users u WHERE u.id = $1",
        );
        let row = c
            .one(&self.conn, sql, vec![c.uuid(user_id)])
            .await?
            .ok_or(StoreError::NotFound)?;
        let orgs: Vec<(Uuid, Vec<String>)> = row.json("orgs")?;
        let mut groups: Vec<Uuid> = row.json("grps")?;
        let org_roles: BTreeMap<Uuid, Vec<String>> = orgs.into_iter().collect();
        // Everyone groups: every member is in its org's Everyone group (id = org id).
        groups.extend(org_roles.keys().copied());
        let roles = AuthRoles {
            status: row.parse("status")?,
            site_roles: row.json("rbac_roles")?,
            org_roles,
            groups,
        };
        if let (Some(cache), Some(at)) = (&c.auth_cache, cached_at) {
            cache.put_roles(user_id, at, roles.clone());
        }
        Ok(roles)
    }

    async fn insert_api_key(&self, key: ApiKey) -> R<ApiKey> {
        let c = &self.ctx;
        let (sql, values) = api_key_insert(c, &key);
        let sql = format!("{sql} RETURNING {}", key_cols("api_keys", ""));
        let row = c
            .exec_returning(&self.conn, &sql, values)
            .await?
            .ok_or(StoreError::NotFound)?;
        key_from(&row, "")
    }

    async fn api_key_with_user(&self, id: &str) -> R<Option<KeyAndUser>> {
        let c = &self.ctx;
        let cached_at = match &c.auth_cache {
            Some(cache) => match cache.key(id) {
                Some(hit) => return Ok(Some(hit)),
                None => Some(cache.generation()),
            },
            None => None,
        };
        let sql = format!(
            "SELECT {}, {}, t.audience AS t_audience FROM api_keys k JOIN users u ON u.id = k.user_id \
             LEFT JOIN oauth2_provider_app_tokens t ON t.api_key_id = k.id WHERE k.id = $1",
            key_cols("k", "k_"),
            user_cols("u", "u_")
        );
        let row = c.one(&self.conn, &sql, vec![c.text(id)]).await?;
        let found = row
            .map(|r| {
                Ok::<_, StoreError>(KeyAndUser {
                    key: key_from(&r, "k_")?,
                    user: user_from(&r, "u_")?,
                    audience: r.opt_string("t_audience")?,
                })
            })
            .transpose()?;
        if let (Some(cache), Some(at), Some(v)) = (&c.auth_cache, cached_at, &found) {
            cache.put_key(id, at, v.clone());
        }
        Ok(found)
    }

    async fn api_key_by_id(&self, id: &str) -> R<Option<ApiKey>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {} FROM api_keys k WHERE k.id = $1",
            key_cols("k", "")
        );
        c.one(&self.conn, &sql, vec![c.text(id)])
            .await?
            .map(|r| key_from(&r, ""))
            .transpose()
    }

    async fn api_key_by_name(&self, user_id: Uuid, token_name: &str) -> R<Option<ApiKey>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {} FROM api_keys k WHERE k.user_id = $1 AND k.token_name = $2 AND k.login_type = 'token'::login_type",
            key_cols("k", "")
        );
        c.one(&self.conn, &sql, vec![c.uuid(user_id), c.text(token_name)])
            .await?
            .map(|r| key_from(&r, ""))
            .transpose()
    }

    async fn list_tokens(&self, user_id: Option<Uuid>) -> R<Vec<KeyWithOwner>> {
        let c = &self.ctx;
        let mut p = Params::default();
        let mut sql = format!(
            "SELECT {}, u.username AS username FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.login_type = 'token'::login_type",
            key_cols("k", "")
        );
        if let Some(u) = user_id {
            let ph = p.push(c.uuid(u));
            sql.push_str(&format!(" AND k.user_id = {ph}"));
        }
        sql.push_str(" ORDER BY k.created_at, k.id");
        c.all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(|r| {
                Ok(KeyWithOwner {
                    key: key_from(r, "")?,
                    username: r.string("username")?,
                })
            })
            .collect()
    }

    async fn delete_api_key(&self, id: &str) -> R<bool> {
        let c = &self.ctx;
        Ok(c.exec(
            &self.conn,
            "DELETE FROM api_keys WHERE id = $1",
            vec![c.text(id)],
        )
        .await?
            > 0)
    }

    async fn delete_application_connect_keys(&self, user_id: Uuid) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "DELETE FROM api_keys WHERE user_id = $1 AND scope = 'application_connect'::api_key_scope",
            vec![c.uuid(user_id)],
        )
        .await?;
        Ok(())
    }

    async fn touch_api_key(&self, t: KeyTouch) -> R<bool> {
        let c = &self.ctx;
        let (refresh_if, new_expiry) = match t.refresh {
            Some((threshold, to)) => (c.ts(threshold), c.ts(to)),
            // A threshold in the distant past never matches, and the expiry stays.
            None => (
                c.ts(hangar_core::clock::never()),
                c.ts(hangar_core::clock::never()),
            ),
        };
        let tx = self.begin().await?;
        let n = c
            .exec(
                &tx,
                "UPDATE api_keys SET last_used = $1, ip_address = $2::inet, updated_at = $1, \
                   expires_at = CASE WHEN expires_at <= $3 THEN $4 ELSE expires_at END \
                 WHERE id = $5 AND (last_used < $6 OR expires_at <= $3)",
                vec![
                    c.ts(t.now),
                    c.text(&t.ip),
                    refresh_if,
                    new_expiry,
                    c.text(&t.id),
                    c.ts(t.stale_before),
                ],
            )
            .await?;
        if n > 0 {
            c.exec(
                &tx,
                "UPDATE users SET last_seen_at = $1 WHERE id = $2",
                vec![c.ts(t.now), c.uuid(t.user_id)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn activate_dormant_user(&self, id: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "UPDATE users SET status = 'active'::user_status, updated_at = $1 WHERE id = $2 AND status = 'dormant'::user_status",
            vec![c.ts(now), c.uuid(id)],
        )
        .await?;
        Ok(())
    }

    async fn organization_by_id(&self, id: Uuid, include_deleted: bool) -> R<Option<Organization>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {ORG_COLS} FROM organizations o WHERE o.id = $1 AND ($2 OR o.deleted = FALSE)"
        );
        c.one(&self.conn, &sql, vec![c.uuid(id), c.bool(include_deleted)])
            .await?
            .map(|r| org_from(&r))
            .transpose()
    }

    async fn organization_by_name(&self, name: &str) -> R<Option<Organization>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {ORG_COLS} FROM organizations o WHERE lower(o.name) = lower($1) AND o.deleted = FALSE"
        );
        c.one(&self.conn, &sql, vec![c.text(name)])
            .await?
            .map(|r| org_from(&r))
            .transpose()
    }

    async fn default_organization(&self) -> R<Organization> {
        let sql = format!(
            "SELECT {ORG_COLS} FROM organizations o WHERE o.is_default = TRUE AND o.deleted = FALSE"
        );
        self.ctx
            .one(&self.conn, &sql, vec![])
            .await?
            .map(|r| org_from(&r))
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    async fn list_organizations(&self, only: Option<Vec<Uuid>>) -> R<Vec<Organization>> {
        let c = &self.ctx;
        let mut p = Params::default();
        let mut sql = format!("SELECT {ORG_COLS} FROM organizations o WHERE o.deleted = FALSE");
        if let Some(ids) = only {
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let list: Vec<String> = ids.iter().map(|id| p.push(c.uuid(*id))).collect();
            sql.push_str(&format!(" AND o.id IN ({})", list.join(", ")));
        }
        sql.push_str(" ORDER BY o.is_default DESC, lower(o.name)");
        c.all(&self.conn, &sql, p.values)
            .await?
            .iter()
            .map(org_from)
            .collect()
    }

    async fn user_organizations(&self, user_id: Uuid) -> R<Vec<Organization>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {ORG_COLS} FROM organizations o JOIN organization_members m ON m.organization_id = o.id \
             WHERE m.user_id = $1 AND o.deleted = FALSE ORDER BY o.is_default DESC, lower(o.name)"
        );
        c.all(&self.conn, &sql, vec![c.uuid(user_id)])
            .await?
            .iter()
            .map(org_from)
            .collect()
    }

    async fn insert_organization_with_creator(
        &self,
        org: Organization,
        creator: Uuid,
        creator_roles: Vec<String>,
    ) -> R<Organization> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let sql = format!(
            "INSERT INTO organizations (id, name, display_name, description, icon, created_at, updated_at, is_default) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, FALSE) RETURNING {}",
            unqualified(ORG_COLS, "o.")
        );
        let row = c
            .exec_returning(
                &tx,
                &sql,
                vec![
                    c.uuid(org.id),
                    c.text(&org.name),
                    c.text(&org.display_name),
                    c.text(&org.description),
                    c.text(&org.icon),
                    c.ts(org.created_at),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let created = org_from(&row)?;
        c.exec(
            &tx,
            "INSERT INTO groups (id, name, display_name, organization_id) VALUES ($1, 'Everyone', '', $1)",
            vec![c.uuid(org.id)],
        )
        .await?;
        self.insert_member_in(&tx, org.id, creator, &creator_roles, org.created_at)
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_organization(
        &self,
        id: Uuid,
        patch: OrganizationPatch,
        now: DateTime<Utc>,
    ) -> R<Organization> {
        let c = &self.ctx;
        let sql = format!(
            "UPDATE organizations SET name = COALESCE($1, name), display_name = COALESCE($2, display_name), \
               description = COALESCE($3, description), icon = COALESCE($4, icon), updated_at = $5 \
             WHERE id = $6 AND deleted = FALSE RETURNING {}",
            unqualified(ORG_COLS, "o.")
        );
        let row = c
            .exec_returning(
                &self.conn,
                &sql,
                vec![
                    c.opt_text(patch.name),
                    c.opt_text(patch.display_name),
                    c.opt_text(patch.description),
                    c.opt_text(patch.icon),
                    c.ts(now),
                    c.uuid(id),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        org_from(&row)
    }

    async fn soft_delete_organization(&self, id: Uuid, now: DateTime<Utc>) -> R<bool> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let result = c
            .exec(
                &tx,
                "UPDATE organizations SET deleted = TRUE, updated_at = $1 WHERE id = $2 AND is_default = FALSE AND deleted = FALSE",
                vec![c.ts(now), c.uuid(id)],
            )
            .await;
        match result {
            Ok(n) => {
                tx.commit().await?;
                Ok(n > 0)
            }
            // SQLite raised the bare tag; compose PostgreSQL's text from the same view, in
            // the same transaction.
            Err(StoreError::Violation { rule, message })
                if rule == "org_not_empty" && !c.is_postgres() =>
            {
                let counts = counts_in(self, &tx, id).await?;
                let text = counts
                    .trigger_message()
                    .map(|m| format!("hangar:org_not_empty: {m}"))
                    .unwrap_or(message);
                Err(StoreError::Violation {
                    rule,
                    message: text,
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn organization_resource_counts(&self, id: Uuid) -> R<ResourceCounts> {
        let c = &self.ctx;
        let row = c
            .one(
                &self.conn,
                "SELECT workspace_count, template_count, group_count, member_count, provisioner_key_count \
                 FROM organization_resource_counts WHERE organization_id = $1",
                vec![c.uuid(id)],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        counts_from(&row)
    }

    async fn insert_member(
        &self,
        org: Uuid,
        user: Uuid,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> R<Member> {
        let tx = self.begin().await?;
        self.lock_live_organization(&tx, org).await?;
        let m = self.insert_member_in(&tx, org, user, &roles, now).await?;
        tx.commit().await?;
        Ok(m)
    }

    async fn member(&self, org: Uuid, user: Uuid) -> R<Option<Member>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {MEMBER_COLS} FROM organization_members m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 AND m.user_id = $2 AND u.deleted = FALSE"
        );
        c.one(&self.conn, &sql, vec![c.uuid(org), c.uuid(user)])
            .await?
            .map(|r| member_from(&r))
            .transpose()
    }

    async fn list_members(&self, org: Uuid, include_system: bool) -> R<Vec<MemberWithUser>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {MEMBER_COLS}, {} FROM organization_members m JOIN users u ON u.id = m.user_id \
             WHERE m.organization_id = $1 AND u.deleted = FALSE AND ($2 OR u.is_system = FALSE) ORDER BY lower(u.username)",
            user_cols("u", "u_")
        );
        c.all(&self.conn, &sql, vec![c.uuid(org), c.bool(include_system)])
            .await?
            .iter()
            .map(|r| {
                Ok(MemberWithUser {
                    member: member_from(r)?,
                    user: user_from(r, "u_")?,
                })
            })
            .collect()
    }

    async fn delete_member(&self, org: Uuid, user: Uuid) -> R<bool> {
        let c = &self.ctx;
        let n = c
            .exec(
                &self.conn,
                "DELETE FROM organization_members WHERE organization_id = $1 AND user_id = $2",
                vec![c.uuid(org), c.uuid(user)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn update_member_roles(
        &self,
        org: Uuid,
        user: Uuid,
        roles: Vec<String>,
        now: DateTime<Utc>,
    ) -> R<Member> {
        let c = &self.ctx;
        let sql = format!(
            "UPDATE organization_members SET roles = $1::jsonb, updated_at = $2 \
             WHERE organization_id = $3 AND user_id = $4 RETURNING {}",
            unqualified(MEMBER_COLS, "m.")
        );
        let row = c
            .exec_returning(
                &self.conn,
                &sql,
                vec![
                    c.json(&roles_json(&roles)),
                    c.ts(now),
                    c.uuid(org),
                    c.uuid(user),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        member_from(&row)
    }

    async fn ensure_system_member(&self, org: Uuid, now: DateTime<Utc>) -> R<()> {
        let c = &self.ctx;
        c.exec(
            &self.conn,
            "INSERT INTO organization_members (user_id, organization_id, created_at, updated_at, roles) \
             VALUES ($1, $2, $3, $3, '[]'::jsonb) ON CONFLICT DO NOTHING",
            vec![c.uuid(PREBUILDS_SYSTEM_USER_ID), c.uuid(org), c.ts(now)],
        )
        .await?;
        Ok(())
    }

    async fn template_admins(&self, org: Uuid) -> R<Vec<User>> {
        let c = &self.ctx;
        let has = |col: &str, roles: &str| {
            if c.is_postgres() {
                format!("{col} ?| array[{roles}]")
            } else {
                format!("EXISTS (SELECT 1 FROM json_each({col}) WHERE value IN ({roles}))")
            }
        };
        let sql = format!(
            "SELECT {} FROM users u WHERE u.deleted = FALSE AND u.is_system = FALSE AND u.status = 'active'::user_status \
             AND ({} OR EXISTS (SELECT 1 FROM organization_members m WHERE m.user_id = u.id AND m.organization_id = $1 AND {})) \
             ORDER BY u.username",
            user_cols("u", ""),
            has("u.rbac_roles", "'owner', 'template-admin'"),
            has(
                "m.roles",
                "'organization-admin', 'organization-template-admin'"
            ),
        );
        c.all(&self.conn, &sql, vec![c.uuid(org)])
            .await?
            .iter()
            .map(|r| user_from(r, ""))
            .collect()
    }

    async fn insert_group(&self, g: Group) -> R<Group> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        self.lock_live_organization(&tx, g.organization_id).await?;
        let sql = format!(
            "INSERT INTO groups (id, name, display_name, organization_id, avatar_url, quota_allowance, source) \
             VALUES ($1, $2, $3, $4, $5, $6, $7::group_source) RETURNING {}",
            unqualified(GROUP_COLS, "g.")
        );
        let row = c
            .exec_returning(
                &tx,
                &sql,
                vec![
                    c.uuid(g.id),
                    c.text(&g.name),
                    c.text(&g.display_name),
                    c.uuid(g.organization_id),
                    c.text(&g.avatar_url),
                    c.i32(g.quota_allowance),
                    c.text(g.source.as_str()),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let g = group_from(&row)?;
        tx.commit().await?;
        Ok(g)
    }

    async fn group_by_id(&self, id: Uuid) -> R<Option<Group>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {GROUP_COLS} FROM groups g JOIN organizations o ON o.id = g.organization_id \
             WHERE g.id = $1 AND o.deleted = FALSE"
        );
        c.one(&self.conn, &sql, vec![c.uuid(id)])
            .await?
            .map(|r| group_from(&r))
            .transpose()
    }

    async fn list_groups(&self, org: Uuid) -> R<Vec<Group>> {
        let c = &self.ctx;
        let sql = format!(
            "SELECT {GROUP_COLS} FROM groups g WHERE g.organization_id = $1 ORDER BY lower(g.name)"
        );
        c.all(&self.conn, &sql, vec![c.uuid(org)])
            .await?
            .iter()
            .map(group_from)
            .collect()
    }

    async fn group_members(&self, group: &Group) -> R<Vec<User>> {
        let c = &self.ctx;
        let sql = if group.is_everyone() {
            format!(
                "SELECT {} FROM users u JOIN organization_members m ON m.user_id = u.id \
                 WHERE m.organization_id = $1 AND u.deleted = FALSE AND u.is_system = FALSE ORDER BY lower(u.username)",
                user_cols("u", "")
            )
        } else {
            format!(
                "SELECT {} FROM users u JOIN group_members gm ON gm.user_id = u.id \
                 WHERE gm.group_id = $1 AND u.deleted = FALSE AND u.is_system = FALSE ORDER BY lower(u.username)",
                user_cols("u", "")
            )
        };
        c.all(&self.conn, &sql, vec![c.uuid(group.id)])
            .await?
            .iter()
            .map(|r| user_from(r, ""))
            .collect()
    }

    async fn update_group(&self, id: Uuid, patch: GroupPatch) -> R<Group> {
        let c = &self.ctx;
        let tx = self.begin().await?;
        let sql = format!(
            "UPDATE groups SET name = COALESCE($1, name), display_name = COALESCE($2, display_name), \
               avatar_url = COALESCE($3, avatar_url), quota_allowance = COALESCE($4, quota_allowance) \
             WHERE id = $5 RETURNING {}",
            unqualified(GROUP_COLS, "g.")
        );
        let row = c
            .exec_returning(
                &tx,
                &sql,
                vec![
                    c.opt_text(patch.name),
                    c.opt_text(patch.display_name),
                    c.opt_text(patch.avatar_url),
                    sea_orm::Value::Int(patch.quota_allowance),
                    c.uuid(id),
                ],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        for u in &patch.add_users {
            c.exec(
                &tx,
                "INSERT INTO group_members (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                vec![c.uuid(*u), c.uuid(id)],
            )
            .await?;
        }
        for u in &patch.remove_users {
            c.exec(
                &tx,
                "DELETE FROM group_members WHERE user_id = $1 AND group_id = $2",
                vec![c.uuid(*u), c.uuid(id)],
            )
            .await?;
        }
        let g = group_from(&row)?;
        tx.commit().await?;
        Ok(g)
    }

    async fn delete_group(&self, id: Uuid) -> R<bool> {
        let c = &self.ctx;
        Ok(c.exec(
            &self.conn,
            "DELETE FROM groups WHERE id = $1",
            vec![c.uuid(id)],
        )
        .await?
            > 0)
    }

    async fn deployment_id(&self) -> R<String> {
        let row = self
            .ctx
            .one(
                &self.conn,
                "SELECT value FROM site_configs WHERE key = 'deployment_id'",
                vec![],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        row.string("value")
    }
}

fn counts_from(row: &Row) -> R<ResourceCounts> {
    Ok(ResourceCounts {
        workspace_count: row.i64("workspace_count")?,
        template_count: row.i64("template_count")?,
        group_count: row.i64("group_count")?,
        member_count: row.i64("member_count")?,
        provisioner_key_count: row.i64("provisioner_key_count")?,
    })
}

async fn counts_in(db: &Db, tx: &Tx, id: Uuid) -> R<ResourceCounts> {
    let c = &db.ctx;
    let row = c
        .one(
            &tx,
            "SELECT workspace_count, template_count, group_count, member_count, provisioner_key_count \
             FROM organization_resource_counts WHERE organization_id = $1",
            vec![c.uuid(id)],
        )
        .await?
        .ok_or(StoreError::NotFound)?;
    counts_from(&row)
}
