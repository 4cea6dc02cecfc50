//! RFC 8707 resource indicators and token audiences (03 §5.8). Everything is compared in one
//! canonical form, because SDKs differ in trivia such as a trailing `/` or an explicit `:443`.

use std::fmt;

use url::Url;

/// Why a `resource` (or audience) string has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("resource must be an absolute URI")]
    NotAbsolute,
    #[error("resource must use the http or https scheme")]
    NotHttp,
    #[error("resource must not contain a fragment")]
    Fragment,
    #[error("resource must not contain whitespace or control characters")]
    InvalidCharacters,
}

/// An absolute http(s) URI in canonical form; equality of two canonical forms is the only
/// comparison the protocol makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CanonicalUri(String);

impl CanonicalUri {
    /// Same as [`canonical_resource`].
    pub fn parse(s: &str) -> Result<Self, ResourceError> {
        canonical_resource(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The parsed form; canonical strings always parse.
    fn url(&self) -> Url {
        Url::parse(&self.0).expect("a canonical URI always parses")
    }
}

impl fmt::Display for CanonicalUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for CanonicalUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for CanonicalUri {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The canonical form of 03 §5.8: lowercase scheme and host, IDNA→ASCII, no default port, empty
/// path → `/`, dot segments resolved, one trailing `/` dropped from longer paths, query kept.
/// A fragment is an error (RFC 8707 §2), as is anything the `url` parser would silently strip.
pub fn canonical_resource(s: &str) -> Result<CanonicalUri, ResourceError> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ResourceError::InvalidCharacters);
    }
    if s.contains('#') {
        return Err(ResourceError::Fragment);
    }
    let mut url = Url::parse(s).map_err(|_| ResourceError::NotAbsolute)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ResourceError::NotHttp);
    }
    let path = url.path();
    if path.len() > 1
        && let Some(trimmed) = path.strip_suffix('/')
    {
        let trimmed = trimmed.to_owned();
        url.set_path(&trimmed);
    }
    Ok(CanonicalUri(url.into()))
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
        && a.username() == b.username()
        && a.password() == b.password()
}

/// Whether `base` is `/` or a whole-segment prefix of `path`.
fn path_covers(base: &str, path: &str) -> bool {
    base == "/"
        || path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether some segment of `path` is `.` or `..`, literally or percent-encoded. Such a path is not
/// trusted to sit under a narrower audience, whatever the router makes of it.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|seg| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    })
}

/// Whether a token bound to `audience` may be used on `request_path` of this deployment (03 §5.8):
/// same scheme, host and port as the access URL, and an audience path that is `/` or a segment
/// prefix of the request path. Unparseable audiences and audiences with a query cover nothing.
/// `request_path` is the path only; anything from a `?` on is ignored.
pub fn audience_covers(audience: &str, access_url: &CanonicalUri, request_path: &str) -> bool {
    let Ok(audience) = canonical_resource(audience) else {
        return false;
    };
    let (aud, access) = (audience.url(), access_url.url());
    if aud.query().is_some() || !same_origin(&aud, &access) {
        return false;
    }
    let request_path = request_path.split('?').next().unwrap_or_default();
    if aud.path() == "/" {
        return true;
    }
    !has_dot_segment(request_path) && path_covers(aud.path(), request_path)
}

/// Whether an authorize `resource` names this deployment: the access URL itself or a resource
/// below it (same origin, segment-prefix path). A query is only accepted on an exact match, since
/// a token bound to it would be refused everywhere ([`audience_covers`]).
pub fn resource_allowed(resource: &CanonicalUri, access_url: &CanonicalUri) -> bool {
    if resource == access_url {
        return true;
    }
    let (res, access) = (resource.url(), access_url.url());
    res.query().is_none()
        && access.query().is_none()
        && same_origin(&res, &access)
        && path_covers(access.path(), res.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonical_resource(s).unwrap().into_string()
    }

    #[test]
    fn canonical_form_normalises() {
        assert_eq!(canon("HTTPS://Example.COM"), "https://example.com/");
        assert_eq!(canon("https://example.com:443/"), "https://example.com/");
        assert_eq!(canon("http://example.com:80/x"), "http://example.com/x");
        assert_eq!(
            canon("http://example.com:8080/x"),
            "http://example.com:8080/x"
        );
        assert_eq!(canon("https://h/a/./b/../c"), "https://h/a/c");
        assert_eq!(canon("https://h/a/%2e%2E/c"), "https://h/c");
        assert_eq!(canon("https://h/api/"), "https://h/api");
        assert_eq!(canon("https://h/api//"), "https://h/api/");
        assert_eq!(canon("https://h/"), "https://h/");
        assert_eq!(canon("https://h/a/?q=1"), "https://h/a?q=1");
        assert_eq!(canon("https://h?q=1"), "https://h/?q=1");
        assert_eq!(
            canon("https://Bücher.example/x"),
            "https://xn--bcher-kva.example/x"
        );
        assert_eq!(
            canon("http://127.0.0.1:3000/api/experimental/mcp/http/"),
            "http://127.0.0.1:3000/api/experimental/mcp/http"
        );
        assert_eq!(canon("http://[::1]:80/"), "http://[::1]/");
    }

    #[test]
    fn canonical_form_rejects() {
        use ResourceError::*;
        let cases = [
            ("mcp.example.com", NotAbsolute),
            ("/api/v2", NotAbsolute),
            ("", NotAbsolute),
            ("https://h/x#f", Fragment),
            ("https://h/#", Fragment),
            ("ftp://h/", NotHttp),
            ("urn:example:x", NotHttp),
            ("cursor://h/cb", NotHttp),
            (" https://h/", InvalidCharacters),
            ("https://h/\t", InvalidCharacters),
            ("https://h/a b", InvalidCharacters),
        ];
        for (input, err) in cases {
            assert_eq!(canonical_resource(input), Err(err), "{input}");
        }
    }

    #[test]
    fn canonical_uri_display_and_parse() {
        let c = CanonicalUri::parse("HTTP://H").unwrap();
        assert_eq!(c.to_string(), "http://h/");
        assert_eq!(c.as_str(), "http://h/");
        assert_eq!(c.as_ref(), "http://h/");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"http://h/\"");
    }

    const MCP: &str = "/api/experimental/mcp/http";

    #[test]
    fn root_audience_covers_everything_of_the_origin() {
        let a = canonical_resource("http://127.0.0.1:3000").unwrap();
        for aud in [
            "http://127.0.0.1:3000",
            "http://127.0.0.1:3000/",
            "HTTP://127.0.0.1:3000/",
        ] {
            assert!(audience_covers(aud, &a, "/api/v2/users/me"), "{aud}");
            assert!(audience_covers(aud, &a, MCP), "{aud}");
        }
    }

    #[test]
    fn audience_must_share_scheme_host_port() {
        let a = canonical_resource("http://127.0.0.1:3000").unwrap();
        for aud in [
            "http://localhost:3000/",
            "https://127.0.0.1:3000/",
            "http://127.0.0.1:3001/",
            "http://127.0.0.1/",
            "http://user@127.0.0.1:3000/",
            "not a url",
            "",
            "http://127.0.0.1:3000/?x=1",
        ] {
            assert!(!audience_covers(aud, &a, "/api/v2/users/me"), "{aud}");
        }
        let https = canonical_resource("https://coder.example.com").unwrap();
        assert!(audience_covers(
            "https://coder.example.com:443",
            &https,
            "/api/v2/users/me"
        ));
    }

    #[test]
    fn mcp_audience_covers_only_its_subtree() {
        let a = canonical_resource("https://h").unwrap();
        let m = "https://h/api/experimental/mcp/http";
        assert!(audience_covers(m, &a, MCP));
        assert!(audience_covers(&format!("{m}/"), &a, MCP));
        assert!(audience_covers(m, &a, "/api/experimental/mcp/http/x"));
        assert!(audience_covers(m, &a, "/api/experimental/mcp/http?x=1"));
        assert!(!audience_covers(m, &a, "/api/experimental/mcp/httpx"));
        assert!(!audience_covers(m, &a, "/api/v2/users/me"));
        assert!(!audience_covers(m, &a, "/api/experimental/mcp"));
        assert!(!audience_covers(
            m,
            &a,
            "/api/experimental/mcp/http/../../../v2/users/me"
        ));
        assert!(!audience_covers(
            m,
            &a,
            "/api/experimental/mcp/http/%2E%2e/x"
        ));
    }

    #[test]
    fn resource_allowed_for_access_url_and_below() {
        let a = canonical_resource("http://127.0.0.1:3000").unwrap();
        let allowed = |s: &str| resource_allowed(&canonical_resource(s).unwrap(), &a);
        assert!(allowed("http://127.0.0.1:3000"));
        assert!(allowed("http://127.0.0.1:3000/"));
        assert!(allowed("http://127.0.0.1:3000/api/experimental/mcp/http/"));
        assert!(!allowed("http://127.0.0.1:3000/api?x=1"));
        assert!(!allowed("http://localhost:3000/"));
        assert!(!allowed("https://other.example.com"));
        assert!(!allowed("http://127.0.0.1:3001/"));
    }

    #[test]
    fn resource_allowed_with_path_access_url_is_segment_based() {
        let a = canonical_resource("https://h/coder/").unwrap();
        let allowed = |s: &str| resource_allowed(&canonical_resource(s).unwrap(), &a);
        assert!(allowed("https://h/coder"));
        assert!(allowed("https://h/coder/x"));
        assert!(!allowed("https://h/coderx"));
        assert!(!allowed("https://h/"));
    }

    #[test]
    fn dot_segment_detection() {
        assert!(has_dot_segment("/a/../b"));
        assert!(has_dot_segment("/a/./b"));
        assert!(has_dot_segment("/a/%2E"));
        assert!(!has_dot_segment("/a/.well-known/b"));
        assert!(!has_dot_segment("/a/..b"));
    }
}
