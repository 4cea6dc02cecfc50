//! The authorization endpoint's pure parts (03 §5.3): query parsing, the redirected checks of
//! step 4, building redirect URLs, and the consent CSRF token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::error::OAuthError;
use crate::form::single;
use crate::pkce::valid_pkce_value;
use crate::resource::{CanonicalUri, canonical_resource, resource_allowed};

/// The parameters Hangar reads; each `None` when absent or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub response_type: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub resource: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

impl AuthorizeParams {
    /// The method to store with the code: `S256` whenever a challenge is present (a challenge
    /// without method means S256 in Hangar), else none. Valid after [`check_redirected_errors`].
    pub fn challenge_method(&self) -> Option<&'static str> {
        self.code_challenge.as_ref().map(|_| "S256")
    }
}

/// Reads the known parameters; unknown ones (`scope`, `prompt`, …) are ignored. A repeated one is
/// a local (never redirected) error: `invalid_request`, or `invalid_target` for `resource`.
pub fn parse_query(pairs: &[(String, String)]) -> Result<AuthorizeParams, OAuthError> {
    Ok(AuthorizeParams {
        client_id: single(pairs, "client_id")?,
        response_type: single(pairs, "response_type")?,
        redirect_uri: single(pairs, "redirect_uri")?,
        state: single(pairs, "state")?,
        resource: single(pairs, "resource")?,
        code_challenge: single(pairs, "code_challenge")?,
        code_challenge_method: single(pairs, "code_challenge_method")?,
    })
}

/// Step 4's checks, in the spec's order; an error is to be sent to the redirect URI. On success,
/// the canonical `resource` to store with the code (if one was sent).
pub fn check_redirected_errors(
    params: &AuthorizeParams,
    app_grant_types: &[String],
    is_public: bool,
    access_url: &CanonicalUri,
) -> Result<Option<CanonicalUri>, OAuthError> {
    match params.response_type.as_deref() {
        None => return Err(OAuthError::invalid_request("response_type is required.")),
        Some("code") => {}
        Some(_) => return Err(OAuthError::unsupported_response_type()),
    }
    if !app_grant_types.iter().any(|g| g == "authorization_code") {
        return Err(OAuthError::unauthorized_client());
    }
    if let Some(method) = params.code_challenge_method.as_deref() {
        if method != "S256" {
            return Err(OAuthError::invalid_request(
                "code_challenge_method must be S256.",
            ));
        }
        if params.code_challenge.is_none() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method requires a code_challenge.",
            ));
        }
    }
    match params.code_challenge.as_deref() {
        Some(challenge) if !valid_pkce_value(challenge) => {
            return Err(OAuthError::invalid_request(
                "code_challenge must be 43-128 characters of [A-Za-z0-9-._~].",
            ));
        }
        None if is_public => {
            return Err(OAuthError::invalid_request(
                "Public clients must use PKCE (code_challenge with S256).",
            ));
        }
        _ => {}
    }
    let Some(resource) = params.resource.as_deref() else {
        return Ok(None);
    };
    let canonical = canonical_resource(resource)
        .map_err(|e| OAuthError::invalid_target(format!("Invalid resource: {e}.")))?;
    if !resource_allowed(&canonical, access_url) {
        return Err(OAuthError::invalid_target(
            "The resource is not served by this deployment.",
        ));
    }
    Ok(Some(canonical))
}

/// `uri` with `pairs` appended to its query (form-encoded), keeping its own query; anything from a
/// `#` on stays at the end. Built on the string, not a parsed URL, so the client's URI is kept
/// byte for byte.
pub fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = match uri.find('#') {
        Some(i) => uri.split_at(i),
        None => (uri, ""),
    };
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        ser.append_pair(name, value);
    }
    let added = ser.finish();
    let separator = match base.find('?') {
        _ if added.is_empty() => "",
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}{added}{fragment}")
}

const CSRF_CONTEXT: &[u8] = b"hangar-oauth2-consent\n";

/// The consent form's CSRF token: HMAC-SHA256 keyed by the login's hashed API key secret over
/// client and key id. It needs no shared key, works on every replica and dies with the login.
pub fn consent_csrf_token(key: &[u8], client_id: &str, api_key_id: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(CSRF_CONTEXT);
    ctx.update(client_id.as_bytes());
    ctx.update(b"\n");
    ctx.update(api_key_id.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.sign())
}

/// Constant-time comparison of the expected and submitted CSRF tokens.
pub fn csrf_matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn access() -> CanonicalUri {
        CanonicalUri::parse("http://127.0.0.1:3000").unwrap()
    }

    fn grants() -> Vec<String> {
        vec!["authorization_code".into(), "refresh_token".into()]
    }

    fn valid() -> AuthorizeParams {
        AuthorizeParams {
            client_id: Some("c".into()),
            response_type: Some("code".into()),
            code_challenge: Some(CHALLENGE.into()),
            code_challenge_method: Some("S256".into()),
            ..AuthorizeParams::default()
        }
    }

    fn check(p: &AuthorizeParams, public: bool) -> Result<Option<CanonicalUri>, OAuthError> {
        check_redirected_errors(p, &grants(), public, &access())
    }

    #[test]
    fn parse_query_reads_known_and_ignores_unknown() {
        let p = parse_query(&pairs(&[
            ("client_id", "c"),
            ("response_type", "code"),
            ("state", "s t"),
            ("redirect_uri", ""),
            ("prompt", "consent"),
            ("foo", "bar"),
            ("foo", "baz"),
        ]))
        .unwrap();
        assert_eq!(p.client_id.as_deref(), Some("c"));
        assert_eq!(p.state.as_deref(), Some("s t"));
        assert_eq!(p.redirect_uri, None);
        assert_eq!(p.resource, None);
    }

    #[test]
    fn parse_query_rejects_repeats() {
        let err = parse_query(&pairs(&[("state", "a"), ("state", "b")])).unwrap_err();
        assert_eq!(err.code, "invalid_request");
        let err = parse_query(&pairs(&[("resource", "a"), ("resource", "b")])).unwrap_err();
        assert_eq!(err.code, "invalid_target");
    }

    #[test]
    fn valid_request_passes() {
        assert_eq!(check(&valid(), true), Ok(None));
        let p = AuthorizeParams {
            code_challenge_method: None,
            ..valid()
        };
        assert_eq!(check(&p, true), Ok(None));
        assert_eq!(p.challenge_method(), Some("S256"));
        let p = AuthorizeParams {
            code_challenge: None,
            code_challenge_method: None,
            ..valid()
        };
        assert_eq!(check(&p, false), Ok(None));
        assert_eq!(p.challenge_method(), None);
    }

    #[test]
    fn response_type_checks() {
        let p = AuthorizeParams {
            response_type: None,
            ..valid()
        };
        assert_eq!(check(&p, false).unwrap_err().code, "invalid_request");
        let p = AuthorizeParams {
            response_type: Some("token".into()),
            ..valid()
        };
        assert_eq!(
            check(&p, false).unwrap_err().code,
            "unsupported_response_type"
        );
    }

    #[test]
    fn response_type_is_checked_before_grant() {
        let p = AuthorizeParams {
            response_type: Some("token".into()),
            ..valid()
        };
        let err = check_redirected_errors(&p, &["refresh_token".into()], false, &access());
        assert_eq!(err.unwrap_err().code, "unsupported_response_type");
    }

    #[test]
    fn app_without_code_grant_is_unauthorized() {
        let err = check_redirected_errors(&valid(), &["refresh_token".into()], false, &access());
        assert_eq!(err.unwrap_err().code, "unauthorized_client");
    }

    #[test]
    fn pkce_checks() {
        let cases = [
            (Some("plain"), Some(CHALLENGE.to_owned()), false),
            (Some("S256"), None, false),
            (Some("S256"), Some("a".repeat(42)), false),
            (None, Some("a".repeat(42)), false),
            (None, Some(format!("{}+", "a".repeat(42))), false),
            (None, None, true),
        ];
        for (method, challenge, public) in cases {
            let p = AuthorizeParams {
                code_challenge_method: method.map(str::to_owned),
                code_challenge: challenge.clone(),
                ..valid()
            };
            let err = check(&p, public).unwrap_err();
            assert_eq!(err.code, "invalid_request", "{method:?} {challenge:?}");
        }
    }

    #[test]
    fn resource_checks() {
        for bad in [
            "mcp.example.com",
            "https://h/x#f",
            "https://other.example.com",
            "ftp://127.0.0.1:3000/",
            "http://127.0.0.1:3001/",
        ] {
            let p = AuthorizeParams {
                resource: Some(bad.into()),
                ..valid()
            };
            assert_eq!(
                check(&p, false).unwrap_err().code,
                "invalid_target",
                "{bad}"
            );
        }
        let p = AuthorizeParams {
            resource: Some("http://127.0.0.1:3000/api/experimental/mcp/http/".into()),
            ..valid()
        };
        assert_eq!(
            check(&p, false).unwrap().unwrap().as_str(),
            "http://127.0.0.1:3000/api/experimental/mcp/http"
        );
    }

    #[test]
    fn pkce_error_precedes_resource_error() {
        let p = AuthorizeParams {
            code_challenge_method: Some("plain".into()),
            resource: Some("https://other".into()),
            ..valid()
        };
        assert_eq!(check(&p, false).unwrap_err().code, "invalid_request");
    }

    #[test]
    fn redirect_with_appends_and_keeps_query() {
        assert_eq!(
            redirect_with(
                "http://localhost:9876/callback?a=1",
                &[("code", "c"), ("state", "x y&z")]
            ),
            "http://localhost:9876/callback?a=1&code=c&state=x+y%26z"
        );
        assert_eq!(
            redirect_with("cursor://x.y/cb", &[("code", "c")]),
            "cursor://x.y/cb?code=c"
        );
        assert_eq!(
            redirect_with("https://h/cb?", &[("a", "b")]),
            "https://h/cb?a=b"
        );
        assert_eq!(
            redirect_with("https://h/cb?x=1&", &[("a", "b")]),
            "https://h/cb?x=1&a=b"
        );
        assert_eq!(
            redirect_with("https://h/cb#f", &[("a", "b")]),
            "https://h/cb?a=b#f"
        );
        assert_eq!(redirect_with("https://h/cb", &[]), "https://h/cb");
        assert_eq!(
            redirect_with("https://h/cb", &[("iss", "http://127.0.0.1:3000")]),
            "https://h/cb?iss=http%3A%2F%2F127.0.0.1%3A3000"
        );
    }

    #[test]
    fn redirect_state_round_trips() {
        let state = "a+b=c&d/é~ %";
        let uri = redirect_with("https://h/cb?x=1", &[("state", state)]);
        let url = url::Url::parse(&uri).unwrap();
        let got: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(got, pairs(&[("x", "1"), ("state", state)]));
    }

    #[test]
    fn csrf_token_is_hmac_and_bound_to_inputs() {
        let t = consent_csrf_token(b"key", "client", "keyid");
        // Reference computed independently of the implementation's streaming API.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"key");
        let tag = hmac::sign(&key, b"hangar-oauth2-consent\nclient\nkeyid");
        assert_eq!(t, URL_SAFE_NO_PAD.encode(tag));
        assert_eq!(t.len(), 43);
        assert_ne!(t, consent_csrf_token(b"key2", "client", "keyid"));
        assert_ne!(t, consent_csrf_token(b"key", "client2", "keyid"));
        assert_ne!(t, consent_csrf_token(b"key", "client", "keyid2"));
        assert_ne!(t, consent_csrf_token(b"key", "client\nkeyid", ""));
    }

    #[test]
    fn csrf_comparison() {
        let t = consent_csrf_token(b"k", "c", "i");
        assert!(csrf_matches(&t, &t.clone()));
        assert!(!csrf_matches(&t, ""));
        assert!(!csrf_matches(&t, &t[..42]));
        let last = if t.ends_with('A') { "B" } else { "A" };
        assert!(!csrf_matches(&t, &format!("{}{last}", &t[..42])));
    }
}
