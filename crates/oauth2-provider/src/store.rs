//! What the provider needs from storage; `crates/db` implements it on both backends, one
//! transaction per call.

use crate::model::{App, AppSecret, Code, Rotation, Token};
use chrono::{DateTime, Utc};
use hangar_core::StoreError;
use hangar_identity::model::ApiKey;
use std::future::Future;
use uuid::Uuid;

pub type R<T> = Result<T, StoreError>;

/// The usage timestamps an issue or a rotation also writes: the app's at most once a minute,
/// the secret's at most hourly (03 §2). The provider decides from the rows it already read,
/// so a busy client's refreshes run no extra statements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub app: Option<Uuid>,
    pub secret: Option<Uuid>,
}

/// What the sweeper deletes; `as_str` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepKind {
    Codes,
    Tokens,
    Rotations,
    Clients,
}

impl SweepKind {
    pub const ALL: [SweepKind; 4] = [Self::Codes, Self::Tokens, Self::Rotations, Self::Clients];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Codes => "codes",
            Self::Tokens => "tokens",
            Self::Rotations => "rotations",
            Self::Clients => "clients",
        }
    }
}

pub trait OAuth2Store: Send + Sync {
    fn insert_app(&self, app: &App) -> impl Future<Output = R<()>> + Send;
    /// A registered client and (confidential) its first secret, in one transaction.
    fn register_app(
        &self,
        app: &App,
        secret: Option<&AppSecret>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Replaces every column but `id` and `created_at`.
    fn update_app(&self, app: &App) -> impl Future<Output = R<()>> + Send;
    fn app_by_id(&self, id: Uuid) -> impl Future<Output = R<Option<App>>> + Send;
    /// All apps by name, id; with `user`, only those holding a live token of that user.
    fn list_apps(&self, user: Option<Uuid>) -> impl Future<Output = R<Vec<App>>> + Send;
    /// Deletes the app and, by cascade, its secrets, codes, tokens and their API keys.
    fn delete_app(&self, id: Uuid) -> impl Future<Output = R<bool>> + Send;
    fn insert_secret(&self, secret: &AppSecret) -> impl Future<Output = R<()>> + Send;
    fn secrets_of(&self, app: Uuid) -> impl Future<Output = R<Vec<AppSecret>>> + Send;
    /// Deletes a secret of `app` and the tokens issued with it; false when there is none.
    fn delete_secret(&self, app: Uuid, id: Uuid) -> impl Future<Output = R<bool>> + Send;

    /// The app, and its secret with this clear prefix if it has one: client authentication
    /// in one statement.
    fn client_by_id(
        &self,
        app: Uuid,
        secret_prefix: Option<&[u8]>,
    ) -> impl Future<Output = R<Option<(App, Option<AppSecret>)>>> + Send;
    /// Deletes the user's unconsumed codes for the app and inserts `code`, in one transaction.
    fn replace_unused_codes_and_insert(&self, code: &Code) -> impl Future<Output = R<()>> + Send;
    /// The code with this prefix issued to `app` (a code of another client is not found).
    fn code_by_prefix(
        &self,
        prefix: &[u8],
        app: Uuid,
    ) -> impl Future<Output = R<Option<Code>>> + Send;
    /// Marks the code consumed; false when it already was (a concurrent exchange won).
    fn consume_code(&self, id: Uuid, now: DateTime<Utc>) -> impl Future<Output = R<bool>> + Send;

    /// Drops the user's earlier key of the same `token_name` (and so its token row), inserts
    /// `key` and `token`, and records the app's and the secret's use; one transaction.
    /// With `code`, the code row must still exist when the transaction locks it (a reuse of
    /// the code deletes it): else `StoreError::Conflict` and nothing is written.
    fn issue_tokens(
        &self,
        key: &ApiKey,
        token: &Token,
        code: Option<Uuid>,
        usage: Usage,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    fn token_by_prefix(&self, prefix: &[u8]) -> impl Future<Output = R<Option<Token>>> + Send;
    /// The token with this prefix if its user may still use it (not deleted, not suspended).
    fn live_token_by_prefix(&self, prefix: &[u8]) -> impl Future<Output = R<Option<Token>>> + Send;
    fn token_by_api_key(&self, key_id: &str) -> impl Future<Output = R<Option<Token>>> + Send;
    fn rotation_by_prefix(&self, prefix: &[u8])
    -> impl Future<Output = R<Option<Rotation>>> + Send;
    /// Replaces `old` by `key` + `new`, keeping `old` as a rotation row. A concurrent rotation
    /// that already removed `old` → `StoreError::Conflict` and nothing changes.
    fn rotate(
        &self,
        old: &Token,
        key: &ApiKey,
        new: &Token,
        usage: Usage,
        now: DateTime<Utc>,
    ) -> impl Future<Output = R<()>> + Send;
    /// Deletes every token row (and key) of the family; returns how many. Serialised with
    /// rotations of the family, so a pair being rotated in is not missed.
    fn revoke_family(&self, family: Uuid) -> impl Future<Output = R<u64>> + Send;
    /// A reused code: deletes the code row (waiting for an exchange that holds it) and then
    /// its family, so whichever of two racing exchanges commits first, no pair survives.
    fn revoke_code_family(&self, code: Uuid) -> impl Future<Output = R<u64>> + Send;
    /// Deletes one token row and its key.
    fn delete_token(&self, id: Uuid) -> impl Future<Output = R<bool>> + Send;
    /// One sweep of `kind` (§7): deletes up to 1000 expired rows (or, for `Clients`,
    /// registered clients without tokens unused since `unused_before`). `None` when another
    /// replica holds the sweep lock.
    fn sweep(
        &self,
        kind: SweepKind,
        now: DateTime<Utc>,
        unused_before: DateTime<Utc>,
    ) -> impl Future<Output = R<Option<u64>>> + Send;
    /// Deletes the user's codes and token rows for the app (`DELETE /oauth2/tokens`).
    fn delete_user_app_grants(&self, user: Uuid, app: Uuid) -> impl Future<Output = R<()>> + Send;
}
