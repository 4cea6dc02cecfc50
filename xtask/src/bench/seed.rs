//! Seeds a server's SQLite file before it starts, through the same domain and store code
//! the server uses, so the benchmark reads rows shaped exactly like real ones.

use anyhow::Context;
use chrono::TimeDelta;
use hangar_core::{Clock, SystemClock};
use hangar_db::{ConnectOptions, Db};
use hangar_identity::service::CreateUser;
use hangar_identity::{
    ApiKey, ApiKeyScope, Identity, IdentityConfig, IdentityStore, LoginType, NewUser, UserStatus,
    apikey,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// The owner the benchmark logs in as.
pub const EMAIL: &str = "admin@example.com";
pub const PASSWORD: &str = "SomeSecurePassword!";

/// Migrates `<data_dir>/hangar.db` and inserts `users` users (the first is the owner, made
/// by `create_first_user` exactly as `POST /users/first` does) and `keys` API tokens spread
/// evenly over them. The other users share the owner's password hash: hashing 1 000
/// passwords would only slow the set-up, and they never log in.
pub async fn seed(data_dir: &Path, users: usize, keys: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let db = Db::connect(&ConnectOptions::sqlite_file(&data_dir.join("hangar.db"))).await?;
    let result = insert(&db, users, keys).await;
    db.close().await;
    result?;
    println!(
        "  seeded {users} users and {keys} API keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn insert(db: &Db, users: usize, keys: usize) -> anyhow::Result<()> {
    db.migrate().await?;
    let clock = Arc::new(SystemClock);
    let identity = Identity::new(db.clone(), clock.clone(), IdentityConfig::default());
    let (owner, org) = identity
        .create_first_user(CreateUser {
            email: EMAIL.into(),
            username: "admin".into(),
            name: "Bench Owner".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .context("create the first user")?;
    let mut user_ids = vec![owner.id];
    for i in 1..users {
        let user = db
            .insert_user(
                NewUser {
                    id: Uuid::new_v4(),
                    email: format!("user{i}@example.com"),
                    username: format!("user{i}"),
                    name: format!("User {i}"),
                    hashed_password: owner.hashed_password.clone(),
                    status: UserStatus::Active,
                    rbac_roles: vec![],
                    login_type: LoginType::Password,
                    now: clock.now(),
                },
                vec![org],
            )
            .await
            .with_context(|| format!("insert user{i}"))?;
        user_ids.push(user.id);
    }
    let lifetime = TimeDelta::days(30);
    for k in 0..keys {
        let generated = apikey::generate();
        let now = clock.now();
        db.insert_api_key(ApiKey {
            id: generated.id,
            hashed_secret: generated.hashed_secret,
            user_id: user_ids[k % user_ids.len()],
            last_used: now,
            expires_at: now + lifetime,
            created_at: now,
            updated_at: now,
            login_type: LoginType::Token,
            lifetime_seconds: lifetime.num_seconds(),
            ip_address: "127.0.0.1".into(),
            scope: ApiKeyScope::All,
            token_name: format!("bench-{k}"),
        })
        .await
        .with_context(|| format!("insert API key {k}"))?;
    }
    Ok(())
}
