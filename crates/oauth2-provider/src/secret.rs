//! Credential formats of 03 §3: app secrets, authorization codes and refresh tokens are
//! `coder_<10>_<40>`; only the prefix and SHA-256 of the secret part are stored. SHA-256 is enough
//! because the secret carries ≈238 bits of server-made entropy (a slow KDF would only be a DoS lever).

use ring::digest;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;

/// Length of the clear lookup prefix.
pub const PREFIX_LEN: usize = 10;
/// Length of the secret part.
pub const SECRET_LEN: usize = 40;
/// Length of a registration access token.
pub const RAT_LEN: usize = 40;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// 4 × 62: bytes at or above it are rejected, otherwise `b % 62` would favour the first letters.
const REJECT_FROM: u8 = 248;

/// A new `coder_…` credential: `full` goes to the client once, `prefix` and `hashed` to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedSecret {
    pub full: String,
    pub prefix: String,
    pub hashed: Vec<u8>,
}

/// The two parts of a well-formed `coder_<prefix>_<secret>` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSecret {
    pub prefix: String,
    pub secret: String,
}

/// Appends characters for the accepted bytes of `bytes` until `out` holds `len` characters.
fn push_accepted(out: &mut String, bytes: &[u8], len: usize) {
    for &b in bytes {
        if out.len() >= len {
            return;
        }
        if b < REJECT_FROM {
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
}

/// `len` uniformly random characters of `[A-Za-z0-9]`.
///
/// # Panics
/// If the random number generator fails: no credential may be issued without entropy.
pub fn random_alnum(rng: &dyn SecureRandom, len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rng.fill(&mut buf)
            .expect("system random number generator failed");
        push_accepted(&mut out, &buf, len);
    }
    out
}

/// SHA-256 of the secret part (32 bytes), the only form kept in the database.
pub fn hash_secret(secret_part: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret_part.as_bytes())
        .as_ref()
        .to_vec()
}

/// Whether `secret_part` hashes to `stored`, compared in constant time.
pub fn hash_matches(stored: &[u8], secret_part: &str) -> bool {
    stored.ct_eq(&hash_secret(secret_part)).into()
}

/// A fresh `coder_<10>_<40>` credential.
pub fn generate_secret(rng: &dyn SecureRandom) -> GeneratedSecret {
    let prefix = random_alnum(rng, PREFIX_LEN);
    let secret = random_alnum(rng, SECRET_LEN);
    GeneratedSecret {
        full: format!("coder_{prefix}_{secret}"),
        hashed: hash_secret(&secret),
        prefix,
    }
}

fn is_alnum(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Splits a presented credential; `None` means malformed (03 §3).
pub fn parse_secret(s: &str) -> Option<ParsedSecret> {
    let mut parts = s.split('_');
    let (scheme, prefix, secret) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || scheme != "coder"
        || !is_alnum(prefix, PREFIX_LEN)
        || !is_alnum(secret, SECRET_LEN)
    {
        return None;
    }
    Some(ParsedSecret {
        prefix: prefix.to_owned(),
        secret: secret.to_owned(),
    })
}

/// A registration access token (40 alphanumerics) and its SHA-256 for storage (RFC 7592).
pub fn generate_registration_token(rng: &dyn SecureRandom) -> (String, Vec<u8>) {
    let token = random_alnum(rng, RAT_LEN);
    let hashed = hash_secret(&token);
    (token, hashed)
}

/// The last 6 characters, shown in secret listings so owners can tell secrets apart.
pub fn display_secret(full: &str) -> String {
    let skip = full.chars().count().saturating_sub(6);
    full.chars().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    #[test]
    fn accepted_bytes_map_without_bias_and_rejected_bytes_are_skipped() {
        let mut out = String::new();
        push_accepted(&mut out, &[0, 61, 62, 247, 248, 255, 25, 26], 100);
        // 0→A, 61→9, 62→A, 247→9 (247 % 62 = 61), 248 and 255 skipped, 25→Z, 26→a.
        assert_eq!(out, "A9A9Za");
    }

    #[test]
    fn push_accepted_stops_at_len() {
        let mut out = String::new();
        push_accepted(&mut out, &[1, 2, 3, 4], 2);
        assert_eq!(out, "BC");
    }

    #[test]
    fn random_alnum_has_length_and_charset() {
        let rng = SystemRandom::new();
        for len in [0, 1, 40, 200] {
            let s = random_alnum(&rng, len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(random_alnum(&rng, 40), random_alnum(&rng, 40));
    }

    #[test]
    fn generated_secret_round_trips_through_parse() {
        let rng = SystemRandom::new();
        let g = generate_secret(&rng);
        assert_eq!(g.full.len(), 6 + PREFIX_LEN + 1 + SECRET_LEN);
        assert!(g.full.starts_with("coder_"));
        let parsed = parse_secret(&g.full).unwrap();
        assert_eq!(parsed.prefix, g.prefix);
        assert_eq!(g.hashed.len(), 32);
        assert!(hash_matches(&g.hashed, &parsed.secret));
        assert!(!hash_matches(&g.hashed, &g.prefix));
    }

    #[test]
    fn parse_rejects_malformed() {
        let p = "A".repeat(10);
        let s = "b".repeat(40);
        assert!(parse_secret(&format!("coder_{p}_{s}")).is_some());
        for bad in [
            String::new(),
            format!("coder_{p}"),
            format!("coder_{p}_{s}_x"),
            format!("Coder_{p}_{s}"),
            format!("hangar_{p}_{s}"),
            format!("coder_{}_{s}", "A".repeat(9)),
            format!("coder_{p}_{}", "b".repeat(41)),
            format!("coder_{}-_{s}", "A".repeat(9)),
            format!("coder_{p}_{}é", "b".repeat(38)),
            format!("coder__{p}{s}"),
        ] {
            assert!(parse_secret(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hash_is_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let hex: String = hash_secret("abc")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn hash_matches_rejects_other_lengths() {
        assert!(!hash_matches(&[], "abc"));
        assert!(!hash_matches(&hash_secret("abc")[..31], "abc"));
        assert!(hash_matches(&hash_secret("abc"), "abc"));
    }

    #[test]
    fn registration_token_is_40_alnum_with_hash() {
        let (token, hashed) = generate_registration_token(&SystemRandom::new());
        assert!(is_alnum(&token, RAT_LEN));
        assert_eq!(hashed, hash_secret(&token));
    }

    #[test]
    fn display_secret_is_last_six() {
        assert_eq!(display_secret("coder_abcdefghij_0123456789XYZ"), "789XYZ");
        assert_eq!(display_secret("abc"), "abc");
    }
}
