//! What the provider needs from storage; `crates/db` implements it on both backends, one
//! transaction per call.

use crate::model::{App, AppSecret};
use hangar_core::StoreError;
use std::future::Future;
use uuid::Uuid;

pub type R<T> = Result<T, StoreError>;

pub trait OAuth2Store: Send + Sync {
    fn insert_app(&self, app: &App) -> impl Future<Output = R<()>> + Send;
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
}
