//! Redirect URIs: what may be registered (03 §5.6, RFC 8252) and how a presented URI is matched
//! against the registered ones (03 §5.3 step 3: exact, except the loopback port).

use url::{Host, Url};

/// Longest redirect URI accepted at registration.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

/// Schemes that can run code in, or leak the code from, the browser; never valid redirects.
const DENIED_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "ftp",
    "vbscript",
    "about",
    "blob",
    "ws",
    "wss",
    "urn",
];

/// Checks one URI against the registration rules; the error is a description for
/// `invalid_redirect_uri`. Plain http is allowed only for loopback (RFC 8252 §7.3) because the
/// code would otherwise cross the network in clear.
pub fn validate_redirect_uri(s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_REDIRECT_URI_LEN {
        return Err(format!(
            "redirect URI longer than {MAX_REDIRECT_URI_LEN} characters"
        ));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("redirect URI must not contain whitespace or control characters".into());
    }
    if s.contains('#') {
        return Err("redirect URI must not contain a fragment".into());
    }
    let url = Url::parse(s).map_err(|_| format!("redirect URI {s:?} is not an absolute URI"))?;
    let scheme = url.scheme();
    if DENIED_SCHEMES.contains(&scheme) {
        return Err(format!("redirect URI scheme {scheme:?} is not allowed"));
    }
    if scheme == "http" && !is_loopback_host(url.host()) {
        return Err(
            "http redirect URIs are only allowed for localhost, *.localhost, 127.0.0.1 and [::1]; use https"
                .into(),
        );
    }
    Ok(())
}

fn is_loopback_host(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// Literal loopback-IP prefixes whose port may vary (RFC 8252 §7.3); `localhost` gets no leeway.
const LOOPBACK_PREFIXES: &[&str] = &["http://127.0.0.1", "http://[::1]"];

/// Splits `s` after a loopback prefix into (prefix, rest without the port). `None` when `s` does not
/// start with that prefix followed by an optional valid port and then `/`, `?` or the end.
fn strip_loopback_port<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = s.strip_prefix(prefix)?;
    let rest = match rest.strip_prefix(':') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let port = after[..digits].parse::<u16>().ok()?;
            if port == 0 {
                return None;
            }
            &after[digits..]
        }
        None => rest,
    };
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then_some(rest)
}

/// The redirect URI to use for a request, or `None` (→ 400 `invalid_request`, never redirected).
/// A presented URI must equal a registered one byte for byte, except that a registered
/// `http://127.0.0.1…` or `http://[::1]…` matches any port; the presented URI is returned.
/// An omitted one resolves only when exactly one URI is registered.
pub fn match_redirect_uri(registered: &[String], presented: Option<&str>) -> Option<String> {
    let Some(presented) = presented else {
        return match registered {
            [only] => Some(only.clone()),
            _ => None,
        };
    };
    let matches = |reg: &String| {
        reg == presented
            || LOOPBACK_PREFIXES.iter().any(|prefix| {
                matches!(
                    (strip_loopback_port(reg, prefix), strip_loopback_port(presented, prefix)),
                    (Some(a), Some(b)) if a == b
                )
            })
    };
    registered.iter().any(matches).then(|| presented.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_accepts() {
        for ok in [
            "https://example.com/cb",
            "https://example.com:8443/cb?x=1",
            "http://localhost:9876/callback",
            "http://localhost/cb",
            "http://app.localhost:3000/cb",
            "http://127.0.0.1:8765/cb",
            "http://[::1]:8765/cb",
            "cursor://x.y/cb",
            "com.example.app:/oauth2redirect",
            "vscode://vscode.github-authentication/did-authenticate",
        ] {
            assert_eq!(validate_redirect_uri(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn registration_rejects() {
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "ftp://h/cb",
            "vbscript:x",
            "about:blank",
            "blob:https://h/x",
            "ws://localhost/cb",
            "wss://h/cb",
            "urn:ietf:wg:oauth:2.0:oob",
            "urn:example:x",
            "http://example.com/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.com/cb",
            "http://localhost@evil.com/cb",
            "https://h/cb#x",
            "https://h/cb#",
            "/relative/cb",
            "not a uri",
            "",
            " https://h/cb",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registration_length_limit() {
        let base = "https://h/";
        let ok = format!("{base}{}", "a".repeat(MAX_REDIRECT_URI_LEN - base.len()));
        assert_eq!(validate_redirect_uri(&ok), Ok(()));
        assert!(validate_redirect_uri(&format!("{ok}a")).is_err());
    }

    fn reg(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exact_match_only_for_non_loopback_ip() {
        let r = reg(&["http://localhost:9876/callback"]);
        let m = |p: &str| match_redirect_uri(&r, Some(p));
        assert_eq!(
            m("http://localhost:9876/callback").as_deref(),
            Some("http://localhost:9876/callback")
        );
        for bad in [
            "http://localhost:9876/callback/x",
            "http://localhost:9877/callback",
            "https://localhost:9876/callback",
            "http://LOCALHOST:9876/callback",
            "http://localhost:9876/callback?x=1",
            "http://localhost:9876/callback/",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback_ip_matches_any_port() {
        let r = reg(&["http://127.0.0.1:8765/cb?a=1", "http://[::1]/cb"]);
        let m = |p: &str| match_redirect_uri(&r, Some(p));
        assert_eq!(
            m("http://127.0.0.1:51234/cb?a=1").as_deref(),
            Some("http://127.0.0.1:51234/cb?a=1")
        );
        assert!(m("http://127.0.0.1/cb?a=1").is_some());
        assert!(m("http://[::1]:4000/cb").is_some());
        for bad in [
            "http://127.0.0.1:51234/cb",
            "http://127.0.0.1:51234/cb?a=2",
            "http://127.0.0.1:51234/cbx?a=1",
            "https://127.0.0.1:51234/cb?a=1",
            "http://127.0.0.1:99999/cb?a=1",
            "http://127.0.0.1:0/cb?a=1",
            "http://127.0.0.1:/cb?a=1",
            "http://127.0.0.1.evil.com/cb?a=1",
            "http://127.0.0.1:80@evil.com/cb?a=1",
            "http://[::1]:4000/cb2",
            "http://[::1]:4000/cb#x",
        ] {
            assert_eq!(m(bad), None, "{bad}");
        }
    }

    #[test]
    fn omitted_redirect_needs_exactly_one_registered() {
        assert_eq!(
            match_redirect_uri(&reg(&["https://a/cb"]), None).as_deref(),
            Some("https://a/cb")
        );
        assert_eq!(
            match_redirect_uri(&reg(&["https://a/cb", "https://b/cb"]), None),
            None
        );
        assert_eq!(match_redirect_uri(&[], None), None);
        assert_eq!(match_redirect_uri(&[], Some("https://a/cb")), None);
    }

    #[test]
    fn any_registered_uri_may_match() {
        let r = reg(&["https://a/cb", "https://b/cb"]);
        assert_eq!(
            match_redirect_uri(&r, Some("https://b/cb")).as_deref(),
            Some("https://b/cb")
        );
    }
}
