//! PKCE (RFC 7636) with S256 only: `plain` offers no protection against a stolen code.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use subtle::ConstantTimeEq;

/// A code verifier or challenge: 43–128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1, §4.2).
pub fn valid_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `BASE64URL(SHA256(verifier)) == challenge`, compared in constant time so timing does
/// not leak how much of a guessed verifier was right.
pub fn verify_pkce_s256(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert!(verify_pkce_s256(VERIFIER, CHALLENGE));
    }

    #[test]
    fn wrong_verifier_or_challenge_fails() {
        assert!(!verify_pkce_s256(&VERIFIER.replace('d', "e"), CHALLENGE));
        assert!(!verify_pkce_s256(VERIFIER, &CHALLENGE[..42]));
        assert!(!verify_pkce_s256(VERIFIER, VERIFIER));
        assert!(!verify_pkce_s256(VERIFIER, ""));
    }

    #[test]
    fn value_length_bounds() {
        assert!(!valid_pkce_value(&"a".repeat(42)));
        assert!(valid_pkce_value(&"a".repeat(43)));
        assert!(valid_pkce_value(&"a".repeat(128)));
        assert!(!valid_pkce_value(&"a".repeat(129)));
        assert!(valid_pkce_value(VERIFIER));
        assert!(valid_pkce_value(CHALLENGE));
    }

    #[test]
    fn value_charset() {
        let base = "a".repeat(42);
        for ok in ['-', '.', '_', '~', 'Z', '9'] {
            assert!(valid_pkce_value(&format!("{base}{ok}")), "{ok}");
        }
        for bad in ['+', '/', '=', ' ', '%', 'é'] {
            assert!(!valid_pkce_value(&format!("{base}{bad}")), "{bad}");
        }
    }
}
