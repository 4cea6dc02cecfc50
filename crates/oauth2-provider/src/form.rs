//! `application/x-www-form-urlencoded` bodies and HTTP Basic client credentials (RFC 6749 §2.3.1),
//! with the parameter rules of 03 §5.1: empty = absent, unknown ignored, repeats rejected.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use crate::error::OAuthError;

/// Decodes one form component: `+` is a space, `%XX` a byte; malformed escapes stay literal (as in
/// the WHATWG form parser). `None` if the bytes are not UTF-8: the caller rejects rather than
/// guessing, since a replaced character would silently change a credential.
fn decode_component(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len()
                && s[i + 1].is_ascii_hexdigit()
                && s[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |b: u8| match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => b - b'A' + 10,
                };
                out.push(hex(s[i + 1]) * 16 + hex(s[i + 2]));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Parses a form body into pairs in order. Invalid UTF-8 → `invalid_request`.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let invalid = || OAuthError::invalid_request("The request body is not valid form data.");
    body.split(|&b| b == b'&')
        .filter(|seq| !seq.is_empty())
        .map(|seq| {
            let (name, value) = match seq.iter().position(|&b| b == b'=') {
                Some(eq) => (&seq[..eq], &seq[eq + 1..]),
                None => (seq, &[][..]),
            };
            Ok((
                decode_component(name).ok_or_else(invalid)?,
                decode_component(value).ok_or_else(invalid)?,
            ))
        })
        .collect()
}

/// The value of parameter `name`: `None` if absent or empty; given more than once → 400
/// `invalid_request`, or `invalid_target` for `resource` (RFC 8707 §2 allows several, Hangar binds one).
pub fn single(pairs: &[(String, String)], name: &str) -> Result<Option<String>, OAuthError> {
    let mut values = pairs.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
    let first = values.next();
    if values.next().is_some() {
        let description = format!("Parameter {name:?} was given more than once.");
        return Err(if name == "resource" {
            OAuthError::invalid_target(description)
        } else {
            OAuthError::invalid_request(description)
        });
    }
    Ok(first.filter(|v| !v.is_empty()).cloned())
}

/// Standard alphabet; padding optional because some clients strip it.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether an `Authorization` header value uses the Basic scheme (case-insensitive, RFC 7617).
pub fn is_basic(header: &str) -> bool {
    header
        .split_once(' ')
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
}

/// `(client_id, client_secret)` from an `Authorization: Basic …` header value: base64, split at the
/// first `:`, both halves form-url-decoded (RFC 6749 §2.3.1). Any failure, or an empty client id,
/// is `invalid_client`. An empty secret is returned as `""`.
pub fn basic_credentials(header: &str) -> Result<(String, String), OAuthError> {
    let (scheme, encoded) = header
        .split_once(' ')
        .ok_or_else(OAuthError::invalid_client)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client());
    }
    let decoded = BASIC_B64
        .decode(encoded.trim())
        .map_err(|_| OAuthError::invalid_client())?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(OAuthError::invalid_client)?;
    let id = decode_component(&decoded[..colon]).ok_or_else(OAuthError::invalid_client)?;
    let secret = decode_component(&decoded[colon + 1..]).ok_or_else(OAuthError::invalid_client)?;
    if id.is_empty() {
        return Err(OAuthError::invalid_client());
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn parses_and_decodes() {
        let got =
            parse_form(b"grant_type=authorization_code&code=a%2Bb+c&empty=&flag&&x=%zz%4").unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("grant_type", "authorization_code"),
                ("code", "a+b c"),
                ("empty", ""),
                ("flag", ""),
                ("x", "%zz%4"),
            ])
        );
        assert_eq!(parse_form(b"").unwrap(), vec![]);
        assert_eq!(parse_form(b"a=%C3%A9").unwrap(), pairs(&[("a", "é")]));
        assert_eq!(parse_form(b"a=b=c").unwrap(), pairs(&[("a", "b=c")]));
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(parse_form(b"a=%FF").unwrap_err().code, "invalid_request");
        assert_eq!(parse_form(b"a=\xff").unwrap_err().code, "invalid_request");
    }

    #[test]
    fn single_rules() {
        let p = pairs(&[
            ("code", "x"),
            ("state", ""),
            ("scope", "a"),
            ("scope", "b"),
            ("resource", "r1"),
            ("resource", "r2"),
        ]);
        assert_eq!(single(&p, "code").unwrap().as_deref(), Some("x"));
        assert_eq!(single(&p, "state").unwrap(), None);
        assert_eq!(single(&p, "missing").unwrap(), None);
        assert_eq!(single(&p, "scope").unwrap_err().code, "invalid_request");
        assert_eq!(single(&p, "resource").unwrap_err().code, "invalid_target");
    }

    #[test]
    fn basic_credentials_decode() {
        // "my%20id:s%3Acret+x" → id "my id", secret "s:cret x".
        let h = format!(
            "Basic {}",
            general_purpose::STANDARD.encode("my%20id:s%3Acret+x")
        );
        assert_eq!(
            basic_credentials(&h).unwrap(),
            ("my id".to_owned(), "s:cret x".to_owned())
        );
        let h = format!("basic {}", general_purpose::STANDARD.encode("id:a:b"));
        assert_eq!(
            basic_credentials(&h).unwrap(),
            ("id".to_owned(), "a:b".to_owned())
        );
        let h = format!("Basic {}", general_purpose::STANDARD_NO_PAD.encode("id:"));
        assert_eq!(
            basic_credentials(&h).unwrap(),
            ("id".to_owned(), String::new())
        );
    }

    #[test]
    fn basic_credentials_failures_are_invalid_client() {
        let enc = |s: &str| general_purpose::STANDARD.encode(s);
        for bad in [
            "Basic".to_owned(),
            "Basic !!!".to_owned(),
            format!("Bearer {}", enc("id:secret")),
            format!("Basic {}", enc("nocolon")),
            format!("Basic {}", enc(":secret")),
            format!("Basic {}", enc("id%FF:secret")),
        ] {
            let err = basic_credentials(&bad).unwrap_err();
            assert_eq!(err.code, "invalid_client", "{bad}");
            assert_eq!(err.status, 401);
        }
    }

    #[test]
    fn basic_scheme_detection() {
        assert!(is_basic("Basic abc"));
        assert!(is_basic("BASIC abc"));
        assert!(!is_basic("Bearer abc"));
        assert!(!is_basic("Basic"));
    }
}
