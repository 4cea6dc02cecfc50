//! Discovery documents: RFC 8414 authorization-server metadata and RFC 9728 protected-resource
//! metadata (03 §5.2). Every URL derives from the one issuer string so they stay byte-identical.

use serde_json::{Value, json};

use crate::resource::CanonicalUri;

/// Path of the MCP endpoint; its URL (**M**) is a resource of its own.
pub const MCP_PATH: &str = "/api/experimental/mcp/http";
/// Path of the root protected-resource metadata document.
pub const PRM_PATH: &str = "/.well-known/oauth-protected-resource";

/// What the protocol documents depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The access URL (**A**); rendered without its trailing `/`.
    pub access_url: CanonicalUri,
    pub dcr_enabled: bool,
}

/// **A**: the access URL without trailing slash, the `issuer` and `iss` value.
pub fn issuer(access_url: &CanonicalUri) -> String {
    let s = access_url.as_str();
    s.strip_suffix('/').unwrap_or(s).to_owned()
}

pub fn authorization_endpoint(cfg: &Config) -> String {
    format!("{}/oauth2/authorize", issuer(&cfg.access_url))
}

pub fn token_endpoint(cfg: &Config) -> String {
    format!("{}/oauth2/tokens", issuer(&cfg.access_url))
}

pub fn revocation_endpoint(cfg: &Config) -> String {
    format!("{}/oauth2/revoke", issuer(&cfg.access_url))
}

pub fn registration_endpoint(cfg: &Config) -> String {
    format!("{}/oauth2/register", issuer(&cfg.access_url))
}

/// RFC 7592 management URL of a registered client.
pub fn registration_client_uri(cfg: &Config, client_id: &str) -> String {
    format!("{}/oauth2/clients/{client_id}", issuer(&cfg.access_url))
}

/// **M**: the MCP endpoint as a resource.
pub fn mcp_resource(cfg: &Config) -> String {
    format!("{}{MCP_PATH}", issuer(&cfg.access_url))
}

/// `GET /.well-known/oauth-authorization-server`. `registration_endpoint` only while DCR is on;
/// no `scopes_supported` (Hangar has no fine-grained scopes).
pub fn as_metadata(cfg: &Config) -> Value {
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let mut doc = json!({
        "issuer": issuer(&cfg.access_url),
        "authorization_endpoint": authorization_endpoint(cfg),
        "token_endpoint": token_endpoint(cfg),
        "revocation_endpoint": revocation_endpoint(cfg),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "authorization_response_iss_parameter_supported": true,
    });
    if cfg.dcr_enabled {
        doc["registration_endpoint"] = Value::String(registration_endpoint(cfg));
    }
    doc
}

/// `GET /.well-known/oauth-protected-resource{suffix}`: the root document (resource **A**) for
/// `""` or `"/"`, the MCP one (resource **M**) for [`MCP_PATH`], else `None` (404). Per-path
/// documents because clients (VS Code) look up the PRM of the exact resource they call.
pub fn prm(cfg: &Config, suffix: &str) -> Option<Value> {
    let a = issuer(&cfg.access_url);
    let resource = match suffix {
        "" | "/" => a.clone(),
        MCP_PATH => mcp_resource(cfg),
        _ => return None,
    };
    Some(json!({
        "resource": resource,
        "authorization_servers": [a],
        "bearer_methods_supported": ["header"],
        "resource_name": "Hangar",
    }))
}

/// The `resource_metadata` URL for `WWW-Authenticate`: the MCP document on the MCP route, the root
/// one elsewhere (03 §5.8).
pub fn prm_url(cfg: &Config, mcp: bool) -> String {
    let a = issuer(&cfg.access_url);
    if mcp {
        format!("{a}{PRM_PATH}{MCP_PATH}")
    } else {
        format!("{a}{PRM_PATH}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dcr: bool) -> Config {
        Config {
            access_url: CanonicalUri::parse("http://127.0.0.1:3000/").unwrap(),
            dcr_enabled: dcr,
        }
    }

    #[test]
    fn issuer_has_no_trailing_slash() {
        assert_eq!(issuer(&cfg(true).access_url), "http://127.0.0.1:3000");
        let https = CanonicalUri::parse("https://Coder.Example.com:443").unwrap();
        assert_eq!(issuer(&https), "https://coder.example.com");
    }

    #[test]
    fn as_metadata_exact() {
        let expected = json!({
            "issuer": "http://127.0.0.1:3000",
            "authorization_endpoint": "http://127.0.0.1:3000/oauth2/authorize",
            "token_endpoint": "http://127.0.0.1:3000/oauth2/tokens",
            "revocation_endpoint": "http://127.0.0.1:3000/oauth2/revoke",
            "registration_endpoint": "http://127.0.0.1:3000/oauth2/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "authorization_response_iss_parameter_supported": true,
        });
        assert_eq!(as_metadata(&cfg(true)), expected);
    }

    #[test]
    fn as_metadata_without_dcr_lacks_registration_endpoint() {
        let doc = as_metadata(&cfg(false));
        assert!(doc.get("registration_endpoint").is_none());
        assert!(doc.get("scopes_supported").is_none());
        assert_eq!(doc["issuer"], "http://127.0.0.1:3000");
    }

    #[test]
    fn prm_documents() {
        let c = cfg(true);
        for suffix in ["", "/"] {
            assert_eq!(
                prm(&c, suffix).unwrap(),
                json!({
                    "resource": "http://127.0.0.1:3000",
                    "authorization_servers": ["http://127.0.0.1:3000"],
                    "bearer_methods_supported": ["header"],
                    "resource_name": "Hangar",
                })
            );
        }
        let m = prm(&c, MCP_PATH).unwrap();
        assert_eq!(
            m["resource"],
            "http://127.0.0.1:3000/api/experimental/mcp/http"
        );
        assert_eq!(m["authorization_servers"][0], as_metadata(&c)["issuer"]);
        for other in ["/foo", "/api/experimental/mcp/http/", "//"] {
            assert_eq!(prm(&c, other), None, "{other}");
        }
    }

    #[test]
    fn prm_urls_and_endpoints() {
        let c = cfg(true);
        assert_eq!(
            prm_url(&c, false),
            "http://127.0.0.1:3000/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            prm_url(&c, true),
            "http://127.0.0.1:3000/.well-known/oauth-protected-resource/api/experimental/mcp/http"
        );
        assert_eq!(
            registration_client_uri(&c, "abc"),
            "http://127.0.0.1:3000/oauth2/clients/abc"
        );
        assert_eq!(
            mcp_resource(&c),
            "http://127.0.0.1:3000/api/experimental/mcp/http"
        );
    }
}
