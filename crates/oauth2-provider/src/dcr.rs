//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592), 03 §5.6:
//! validation with defaults, and the response shape. Registration is unauthenticated, so every
//! field is checked before anything is stored.

use ring::digest;
use serde_json::{Map, Value, json};
use url::Url;

use crate::error::OAuthError;
use crate::redirect::validate_redirect_uri;

/// Most redirect URIs and contacts one registration may carry.
pub const MAX_REDIRECT_URIS: usize = 10;
pub const MAX_CONTACTS: usize = 10;
/// Longest stored name (`varchar(64)`).
pub const MAX_NAME_CHARS: usize = 64;

const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];
const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];
const FALLBACK_NAME: &str = "Dynamically Registered Client";

/// A validated registration with defaults applied; field names are RFC 7591's.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub client_name: String,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub contacts: Vec<String>,
    pub scope: String,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub jwks_uri: Option<String>,
    pub jwks: Option<Value>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

impl ClientMetadata {
    /// `none` means a public client: no secret, PKCE required.
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == "none"
    }

    /// The `client_type` column value.
    pub fn client_type(&self) -> &'static str {
        if self.is_public() {
            "public"
        } else {
            "confidential"
        }
    }
}

type Obj = Map<String, Value>;

/// A string field: absent, `null` and `""` are all "not set".
fn opt_str(obj: &Obj, name: &str) -> Result<Option<String>, OAuthError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(OAuthError::invalid_client_metadata(format!(
            "{name} must be a string."
        ))),
    }
}

/// An array-of-strings field; `null` is "not set". `err` builds the error for a wrong type.
fn opt_str_array(
    obj: &Obj,
    name: &str,
    err: fn(String) -> OAuthError,
) -> Result<Option<Vec<String>>, OAuthError> {
    let wrong = || err(format!("{name} must be an array of strings."));
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong()),
    }
}

fn invalid_redirect(description: String) -> OAuthError {
    OAuthError::invalid_redirect_uri(description)
}

fn invalid_metadata(description: String) -> OAuthError {
    OAuthError::invalid_client_metadata(description)
}

fn redirect_uris(obj: &Obj) -> Result<Vec<String>, OAuthError> {
    let uris = opt_str_array(obj, "redirect_uris", invalid_redirect)?
        .ok_or_else(|| invalid_redirect("redirect_uris is required.".into()))?;
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid_redirect(format!(
            "redirect_uris must have 1 to {MAX_REDIRECT_URIS} entries."
        )));
    }
    for uri in &uris {
        validate_redirect_uri(uri).map_err(invalid_redirect)?;
    }
    Ok(uris)
}

/// Keeps the first occurrence of each value.
fn dedup(values: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn grant_types(obj: &Obj) -> Result<Vec<String>, OAuthError> {
    let Some(grants) = opt_str_array(obj, "grant_types", invalid_metadata)? else {
        return Ok(GRANT_TYPES.iter().map(|g| (*g).to_owned()).collect());
    };
    if let Some(bad) = grants.iter().find(|g| !GRANT_TYPES.contains(&g.as_str())) {
        return Err(invalid_metadata(format!(
            "grant_types: {bad:?} is not supported; use authorization_code and refresh_token."
        )));
    }
    if !grants.iter().any(|g| g == "authorization_code") {
        return Err(invalid_metadata(
            "grant_types must include authorization_code.".into(),
        ));
    }
    Ok(dedup(grants))
}

fn response_types(obj: &Obj) -> Result<Vec<String>, OAuthError> {
    match opt_str_array(obj, "response_types", invalid_metadata)? {
        None => Ok(vec!["code".into()]),
        Some(types) if !types.is_empty() && types.iter().all(|t| t == "code") => {
            Ok(vec!["code".into()])
        }
        Some(_) => Err(invalid_metadata(
            "response_types must be [\"code\"].".into(),
        )),
    }
}

fn auth_method(obj: &Obj) -> Result<String, OAuthError> {
    match opt_str(obj, "token_endpoint_auth_method")? {
        None => Ok("client_secret_basic".into()),
        Some(m) if AUTH_METHODS.contains(&m.as_str()) => Ok(m),
        Some(m) => Err(invalid_metadata(format!(
            "token_endpoint_auth_method {m:?} is not supported."
        ))),
    }
}

/// An optional `*_uri` field, which must be an absolute http(s) URI.
fn http_uri(obj: &Obj, name: &str) -> Result<Option<String>, OAuthError> {
    let Some(s) = opt_str(obj, name)? else {
        return Ok(None);
    };
    let ok = !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && Url::parse(&s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
    if !ok {
        return Err(invalid_metadata(format!(
            "{name} must be an absolute http or https URI."
        )));
    }
    Ok(Some(s))
}

/// Names longer than the column become their first 55 characters, `-` and 8 hex digits of
/// SHA-256 of the whole name, so long names stay distinguishable.
fn fit_name(name: String) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name;
    }
    let hash = digest::digest(&digest::SHA256, name.as_bytes());
    let hex: String = hash.as_ref()[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let head: String = name.chars().take(55).collect();
    format!("{head}-{hex}")
}

fn client_name(
    given: Option<String>,
    client_uri: Option<&str>,
    redirect_uris: &[String],
) -> String {
    let host_of = |s: &str| {
        Url::parse(s)
            .ok()
            .and_then(|u| u.host_str().filter(|h| !h.is_empty()).map(str::to_owned))
    };
    let name = given.unwrap_or_else(|| {
        client_uri
            .and_then(host_of)
            .or_else(|| redirect_uris.first().and_then(|u| host_of(u)))
            .map_or_else(|| FALLBACK_NAME.to_owned(), |h| format!("Client ({h})"))
    });
    fit_name(name)
}

/// Validates a registration body (RFC 7591 §2) and applies the defaults of 03 §5.6. Redirect URI
/// problems are reported first, as `invalid_redirect_uri`; everything else is
/// `invalid_client_metadata`. Unknown fields and `software_statement` are ignored.
/// Whether any key or string in `v` holds a NUL, which PostgreSQL cannot store in text.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

pub fn validate_registration(body: &Value) -> Result<ClientMetadata, OAuthError> {
    let obj = body
        .as_object()
        .ok_or_else(|| invalid_metadata("The registration must be a JSON object.".into()))?;
    if has_nul(body) {
        return Err(invalid_metadata(
            "The registration must not contain NUL characters.".into(),
        ));
    }
    let redirect_uris = redirect_uris(obj)?;
    let grant_types = grant_types(obj)?;
    let response_types = response_types(obj)?;
    let token_endpoint_auth_method = auth_method(obj)?;
    let client_uri = http_uri(obj, "client_uri")?;
    let logo_uri = http_uri(obj, "logo_uri")?;
    let tos_uri = http_uri(obj, "tos_uri")?;
    let policy_uri = http_uri(obj, "policy_uri")?;
    let jwks_uri = http_uri(obj, "jwks_uri")?;
    let jwks = match obj.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(invalid_metadata("jwks must be a JSON object.".into())),
    };
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(invalid_metadata(
            "jwks and jwks_uri must not both be present.".into(),
        ));
    }
    let contacts = opt_str_array(obj, "contacts", invalid_metadata)?.unwrap_or_default();
    if contacts.len() > MAX_CONTACTS {
        return Err(invalid_metadata(format!(
            "contacts must have at most {MAX_CONTACTS} entries."
        )));
    }
    let scope = opt_str(obj, "scope")?.unwrap_or_default();
    let software_id = opt_str(obj, "software_id")?;
    let software_version = opt_str(obj, "software_version")?;
    let client_name = client_name(
        opt_str(obj, "client_name")?,
        client_uri.as_deref(),
        &redirect_uris,
    );
    Ok(ClientMetadata {
        redirect_uris,
        client_name,
        grant_types,
        response_types,
        token_endpoint_auth_method,
        contacts,
        scope,
        client_uri,
        logo_uri,
        tos_uri,
        policy_uri,
        jwks_uri,
        jwks,
        software_id,
        software_version,
    })
}

/// RFC 7592 PUT: the registration rules, plus the body's `client_id` must be the one in the path
/// and the client may not switch between public (`none`) and a secret method, since its secrets
/// and PKCE requirements hinge on that.
pub fn validate_update(
    body: &Value,
    path_client_id: &str,
    current_auth_method: &str,
) -> Result<ClientMetadata, OAuthError> {
    let meta = validate_registration(body)?;
    let body_id = body.get("client_id").and_then(Value::as_str);
    if !body_id.is_some_and(|id| id.eq_ignore_ascii_case(path_client_id)) {
        return Err(invalid_metadata(
            "client_id must be present and match the client being updated.".into(),
        ));
    }
    if meta.is_public() != (current_auth_method == "none") {
        return Err(invalid_metadata(
            "token_endpoint_auth_method cannot switch between none and a secret-based method."
                .into(),
        ));
    }
    Ok(meta)
}

/// Registration-shaped JSON (RFC 7591 §3.2.1). `client_secret_expires_at: 0` is sent for
/// confidential clients only; `client_secret` and `registration_access_token` only when given
/// (at registration: GET and PUT never return them again). Optional fields appear when set.
pub fn registration_response(
    meta: &ClientMetadata,
    client_id: &str,
    client_id_issued_at: i64,
    client_secret: Option<&str>,
    registration_access_token: Option<&str>,
    registration_client_uri: &str,
) -> Value {
    let mut doc = json!({
        "client_id": client_id,
        "client_id_issued_at": client_id_issued_at,
        "redirect_uris": meta.redirect_uris,
        "client_name": meta.client_name,
        "grant_types": meta.grant_types,
        "response_types": meta.response_types,
        "token_endpoint_auth_method": meta.token_endpoint_auth_method,
        "registration_client_uri": registration_client_uri,
    });
    let map = doc.as_object_mut().expect("json! object");
    if !meta.is_public() {
        map.insert("client_secret_expires_at".into(), json!(0));
        if let Some(secret) = client_secret {
            map.insert("client_secret".into(), json!(secret));
        }
    }
    if let Some(rat) = registration_access_token {
        map.insert("registration_access_token".into(), json!(rat));
    }
    if !meta.contacts.is_empty() {
        map.insert("contacts".into(), json!(meta.contacts));
    }
    if !meta.scope.is_empty() {
        map.insert("scope".into(), json!(meta.scope));
    }
    let optional = [
        ("client_uri", &meta.client_uri),
        ("logo_uri", &meta.logo_uri),
        ("tos_uri", &meta.tos_uri),
        ("policy_uri", &meta.policy_uri),
        ("jwks_uri", &meta.jwks_uri),
        ("software_id", &meta.software_id),
        ("software_version", &meta.software_version),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            map.insert(name.into(), json!(v));
        }
    }
    if let Some(jwks) = &meta.jwks {
        map.insert("jwks".into(), jwks.clone());
    }
    doc
}

#[cfg(test)]
mod nul_tests {
    use super::*;

    #[test]
    fn nul_anywhere_is_refused() {
        for body in [
            serde_json::json!({"redirect_uris": ["https://h/cb"], "client_name": "a\u{0}b"}),
            serde_json::json!({"redirect_uris": ["https://h/cb"], "jwks": {"k": "\u{0}"}}),
            serde_json::json!({"redirect_uris": ["https://h/cb"], "contacts": ["x\u{0}"]}),
        ] {
            let e = validate_registration(&body).unwrap_err();
            assert_eq!(e.code, "invalid_client_metadata", "{body}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: Value) -> ClientMetadata {
        validate_registration(&body).unwrap()
    }

    fn err(body: Value) -> &'static str {
        validate_registration(&body).unwrap_err().code
    }

    #[test]
    fn minimal_registration_gets_defaults() {
        let m = ok(json!({"redirect_uris": ["http://127.0.0.1:8765/cb"]}));
        assert_eq!(m.redirect_uris, ["http://127.0.0.1:8765/cb"]);
        assert_eq!(m.client_name, "Client (127.0.0.1)");
        assert_eq!(m.grant_types, ["authorization_code", "refresh_token"]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(m.client_type(), "confidential");
        assert!(m.contacts.is_empty());
        assert_eq!(m.scope, "");
        assert_eq!(m.client_uri, None);
        assert_eq!(m.jwks, None);
    }

    #[test]
    fn full_registration_is_kept() {
        let m = ok(json!({
            "redirect_uris": ["cursor://x.y/cb", "https://a.example/cb"],
            "client_name": "Cursor",
            "grant_types": ["authorization_code", "authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "contacts": ["a@example.com"],
            "scope": "openid",
            "client_uri": "https://cursor.example",
            "logo_uri": "https://cursor.example/logo.png",
            "tos_uri": "http://cursor.example/tos",
            "policy_uri": "https://cursor.example/policy",
            "jwks": {"keys": []},
            "software_id": "cursor",
            "software_version": "1.0",
            "software_statement": "ignored",
            "unknown": 5,
        }));
        assert_eq!(m.client_name, "Cursor");
        assert_eq!(m.grant_types, ["authorization_code"]);
        assert!(m.is_public());
        assert_eq!(m.client_type(), "public");
        assert_eq!(m.contacts, ["a@example.com"]);
        assert_eq!(m.scope, "openid");
        assert_eq!(m.jwks, Some(json!({"keys": []})));
        assert_eq!(m.software_version.as_deref(), Some("1.0"));
    }

    #[test]
    fn non_object_is_invalid_client_metadata() {
        for body in [json!([]), json!("x"), json!(null), json!(1)] {
            assert_eq!(err(body), "invalid_client_metadata");
        }
    }

    #[test]
    fn redirect_problems_are_invalid_redirect_uri() {
        for body in [
            json!({}),
            json!({"redirect_uris": null}),
            json!({"redirect_uris": []}),
            json!({"redirect_uris": "https://h/cb"}),
            json!({"redirect_uris": [1]}),
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            json!({"redirect_uris": ["http://example.com/cb"]}),
            json!({"redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"]}),
            json!({"redirect_uris": ["https://h/cb#x"]}),
            json!({"redirect_uris": vec!["https://h/cb"; 11]}),
        ] {
            assert_eq!(err(body.clone()), "invalid_redirect_uri", "{body}");
        }
        assert_eq!(
            ok(json!({"redirect_uris": vec!["https://h/cb"; 10]}))
                .redirect_uris
                .len(),
            10
        );
    }

    #[test]
    fn redirect_problems_are_reported_first() {
        let body = json!({"redirect_uris": ["ftp://h"], "grant_types": ["client_credentials"]});
        assert_eq!(err(body), "invalid_redirect_uri");
    }

    #[test]
    fn metadata_problems_are_invalid_client_metadata() {
        let r = json!(["https://h/cb"]);
        for extra in [
            json!({"grant_types": ["client_credentials"]}),
            json!({"grant_types": ["authorization_code", "client_credentials"]}),
            json!({"grant_types": ["refresh_token"]}),
            json!({"grant_types": []}),
            json!({"grant_types": "authorization_code"}),
            json!({"response_types": ["token"]}),
            json!({"response_types": []}),
            json!({"response_types": ["code", "token"]}),
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
            json!({"token_endpoint_auth_method": 1}),
            json!({"client_uri": "ftp://h"}),
            json!({"logo_uri": "/logo.png"}),
            json!({"tos_uri": "javascript:x"}),
            json!({"policy_uri": "https://h/ x"}),
            json!({"jwks_uri": "h/jwks"}),
            json!({"jwks_uri": "https://h/jwks", "jwks": {"keys": []}}),
            json!({"jwks": [1]}),
            json!({"contacts": vec!["a@b"; 11]}),
            json!({"contacts": [1]}),
            json!({"client_name": 5}),
            json!({"scope": ["a"]}),
            json!({"software_id": true}),
        ] {
            let mut body = extra.clone();
            body["redirect_uris"] = r.clone();
            assert_eq!(err(body), "invalid_client_metadata", "{extra}");
        }
    }

    #[test]
    fn nulls_and_empty_strings_are_absent() {
        let m = ok(json!({
            "redirect_uris": ["https://h/cb"],
            "client_name": "",
            "client_uri": null,
            "logo_uri": "",
            "grant_types": null,
            "contacts": null,
            "jwks": null,
        }));
        assert_eq!(m.client_name, "Client (h)");
        assert_eq!(m.logo_uri, None);
        assert_eq!(m.grant_types.len(), 2);
    }

    #[test]
    fn default_names() {
        let m = ok(
            json!({"redirect_uris": ["https://r.example/cb"], "client_uri": "https://c.example/x"}),
        );
        assert_eq!(m.client_name, "Client (c.example)");
        let m = ok(json!({"redirect_uris": ["cursor://x.y/cb"]}));
        assert_eq!(m.client_name, "Client (x.y)");
        let m = ok(json!({"redirect_uris": ["com.example.app:/cb"]}));
        assert_eq!(m.client_name, FALLBACK_NAME);
        let m = ok(json!({"redirect_uris": ["http://[::1]:3000/cb"]}));
        assert_eq!(m.client_name, "Client ([::1])");
    }

    #[test]
    fn long_names_are_truncated_with_hash() {
        let exact = "n".repeat(64);
        assert_eq!(
            ok(json!({"redirect_uris": ["https://h/cb"], "client_name": exact})).client_name,
            exact
        );
        let long = "é".repeat(65);
        let name = ok(json!({"redirect_uris": ["https://h/cb"], "client_name": long})).client_name;
        assert_eq!(name.chars().count(), 64);
        assert!(name.starts_with(&"é".repeat(55)));
        let hex = &name[name.len() - 8..];
        let full = digest::digest(&digest::SHA256, long.as_bytes());
        let expected: String = full.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
        assert_eq!(&name[name.len() - 9..name.len() - 8], "-");
    }

    #[test]
    fn update_requires_matching_client_id_and_same_kind() {
        let id = "6a1f6c9e-0000-4000-8000-000000000001";
        let body = json!({"client_id": id, "redirect_uris": ["https://h/cb"]});
        assert!(validate_update(&body, id, "client_secret_post").is_ok());
        assert!(validate_update(&body, &id.to_uppercase(), "client_secret_basic").is_ok());
        assert_eq!(
            validate_update(&body, id, "none").unwrap_err().code,
            "invalid_client_metadata"
        );
        let other = json!({"client_id": "x", "redirect_uris": ["https://h/cb"]});
        assert_eq!(
            validate_update(&other, id, "client_secret_basic")
                .unwrap_err()
                .code,
            "invalid_client_metadata"
        );
        let missing = json!({"redirect_uris": ["https://h/cb"]});
        assert!(validate_update(&missing, id, "client_secret_basic").is_err());
        let bad_uri = json!({"client_id": id, "redirect_uris": ["http://e.com/cb"]});
        assert_eq!(
            validate_update(&bad_uri, id, "client_secret_basic")
                .unwrap_err()
                .code,
            "invalid_redirect_uri"
        );
    }

    #[test]
    fn response_for_confidential_registration() {
        let m = ok(json!({"redirect_uris": ["https://h/cb"], "client_uri": "https://h"}));
        let doc = registration_response(
            &m,
            "id",
            1700,
            Some("coder_s"),
            Some("rat"),
            "https://a/oauth2/clients/id",
        );
        assert_eq!(
            doc,
            json!({
                "client_id": "id",
                "client_id_issued_at": 1700,
                "client_secret": "coder_s",
                "client_secret_expires_at": 0,
                "redirect_uris": ["https://h/cb"],
                "client_name": "Client (h)",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
                "registration_access_token": "rat",
                "registration_client_uri": "https://a/oauth2/clients/id",
                "client_uri": "https://h",
            })
        );
    }

    #[test]
    fn response_for_public_client_and_for_get() {
        let m = ok(json!({
            "redirect_uris": ["https://h/cb"],
            "token_endpoint_auth_method": "none",
            "contacts": ["x@y"],
            "scope": "s",
            "jwks": {"keys": []},
        }));
        let doc = registration_response(&m, "id", 1, Some("ignored"), None, "u");
        assert!(doc.get("client_secret").is_none());
        assert!(doc.get("client_secret_expires_at").is_none());
        assert!(doc.get("registration_access_token").is_none());
        assert_eq!(doc["contacts"], json!(["x@y"]));
        assert_eq!(doc["scope"], "s");
        assert_eq!(doc["jwks"], json!({"keys": []}));
        assert!(doc.get("logo_uri").is_none());
    }
}
