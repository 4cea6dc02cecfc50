//! Rows of the OAuth2 provider tables (03 §2).

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// `oauth2_provider_apps`; `id` is the `client_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub client_id_issued_at: DateTime<Utc>,
    pub name: String,
    pub icon: String,
    /// Always `redirect_uris[0]`.
    pub callback_url: String,
    pub redirect_uris: Vec<String>,
    /// `confidential` or `public`.
    pub client_type: String,
    pub token_endpoint_auth_method: String,
    pub dynamically_registered: bool,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub contacts: Vec<String>,
    pub scope: String,
    pub client_secret_expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub jwks_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    pub registration_client_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    /// SHA-256 of the registration access token (DCR apps only).
    pub registration_access_token: Option<Vec<u8>>,
}

impl App {
    /// A confidential app made through the management API, with the spec's defaults.
    pub fn managed(
        id: Uuid,
        name: String,
        callback_url: String,
        icon: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            created_at: now,
            updated_at: now,
            client_id_issued_at: now,
            name,
            icon,
            redirect_uris: vec![callback_url.clone()],
            callback_url,
            client_type: "confidential".into(),
            token_endpoint_auth_method: "client_secret_basic".into(),
            dynamically_registered: false,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            contacts: vec![],
            scope: String::new(),
            client_secret_expires_at: None,
            last_used_at: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            jwks_uri: None,
            software_id: None,
            software_version: None,
            registration_client_uri: None,
            jwks: None,
            registration_access_token: None,
        }
    }

    pub fn is_public(&self) -> bool {
        self.client_type == "public"
    }
}

/// `oauth2_provider_app_secrets`: only the prefix and the hash of the secret are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSecret {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub hashed_secret: Vec<u8>,
    /// The last 6 characters, for people to tell secrets apart.
    pub display_secret: String,
    pub app_id: Uuid,
    pub secret_prefix: Vec<u8>,
}

/// `oauth2_provider_app_codes`: an authorization code, stored as prefix + SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub secret_prefix: Vec<u8>,
    pub hashed_secret: Vec<u8>,
    pub user_id: Uuid,
    pub app_id: Uuid,
    /// Canonical RFC 8707 resource of the authorize request.
    pub resource_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// Only when the authorize request carried one; the token request must repeat it.
    pub redirect_uri: Option<String>,
    pub consumed_at: Option<DateTime<Utc>>,
}

/// `oauth2_provider_app_tokens`: the live access/refresh pair of one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// When the refresh token expires.
    pub expires_at: DateTime<Utc>,
    pub hash_prefix: Vec<u8>,
    pub refresh_hash: Vec<u8>,
    /// NULL for public clients.
    pub app_secret_id: Option<Uuid>,
    pub api_key_id: String,
    pub audience: Option<String>,
    pub user_id: Uuid,
    pub app_id: Uuid,
    /// The id of the code the grant started from; reuse revokes the whole family.
    pub family_id: Uuid,
}

/// `oauth2_provider_app_token_rotations`: a spent refresh token, kept to detect reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub hash_prefix: Vec<u8>,
    pub refresh_hash: Vec<u8>,
    pub family_id: Uuid,
    pub app_id: Uuid,
    pub user_id: Uuid,
    pub rotated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
