//! The OAuth2 authorization server: PKCE, RFC 8707/8414/9728/7591/7009 (03-oauth2-mcp.md).
//!
//! This crate holds the pure protocol logic: credential formats, PKCE, resource canonicalisation
//! and audience checks, redirect URI rules, discovery documents, client registration validation,
//! authorize-request checks and form parsing. Storage and HTTP live in `crates/db` and
//! `crates/api`, which call these functions.

pub mod apps;
pub mod authorize;
pub mod dcr;
pub mod error;
pub mod form;
pub mod grants;
pub mod metadata;
pub mod model;
pub mod pkce;
pub mod redirect;
pub mod registration;
pub mod resource;
pub mod secret;
pub mod store;

pub use authorize::{
    AuthorizeParams, check_redirected_errors, consent_csrf_token, csrf_matches, parse_query,
    redirect_with,
};
pub use dcr::{ClientMetadata, registration_response, validate_registration, validate_update};
pub use error::OAuthError;
pub use form::{basic_credentials, is_basic, parse_form, single};
pub use metadata::{Config, MCP_PATH, as_metadata, issuer, prm, prm_url};
pub use pkce::{valid_pkce_value, verify_pkce_s256};
pub use redirect::{match_redirect_uri, validate_redirect_uri};
pub use resource::{
    CanonicalUri, ResourceError, audience_covers, canonical_resource, resource_allowed,
};
pub use secret::{
    GeneratedSecret, ParsedSecret, display_secret, generate_registration_token, generate_secret,
    hash_matches, hash_secret, parse_secret, random_alnum,
};
