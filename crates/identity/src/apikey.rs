//! API key tokens: `<id>-<secret>`, id 10 and secret 22 characters of `[A-Za-z0-9]`. Only
//! SHA-256 of the secret is stored.

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

pub const ID_LEN: usize = 10;
pub const SECRET_LEN: usize = 22;

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` characters of `[A-Za-z0-9]`, uniformly (rejection sampling avoids modulo bias).
pub fn random_alnum(n: usize) -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill(&mut buf)
            .expect("system random number generator failed");
        for b in buf {
            // 248 = 4 * 62: bytes at or above it would bias the distribution.
            if b < 248 && out.len() < n {
                out.push(ALPHABET[usize::from(b) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// A freshly generated token: what the client gets, and what the database keeps.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub id: String,
    pub secret: String,
    pub hashed_secret: Vec<u8>,
}

impl GeneratedKey {
    pub fn token(&self) -> String {
        format!("{}-{}", self.id, self.secret)
    }
}

pub fn generate() -> GeneratedKey {
    let id = random_alnum(ID_LEN);
    let secret = random_alnum(SECRET_LEN);
    let hashed_secret = hash_secret(&secret);
    GeneratedKey {
        id,
        secret,
        hashed_secret,
    }
}

pub fn hash_secret(secret: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// Constant-time comparison of a presented secret with the stored hash.
pub fn secret_matches(secret: &str, hashed: &[u8]) -> bool {
    hash_secret(secret).ct_eq(hashed).into()
}

/// Splits a token into id and secret, with Coder's reasons for a bad format.
pub fn split(token: &str) -> Result<(&str, &str), String> {
    let parts: Vec<&str> = token.split('-').collect();
    let [id, secret] = parts.as_slice() else {
        return Err(format!(
            "incorrect amount of API key parts, expected 2 got {}",
            parts.len()
        ));
    };
    if id.len() != ID_LEN {
        return Err(format!(
            "invalid API key ID length, expected {ID_LEN} got {}",
            id.len()
        ));
    }
    if secret.len() != SECRET_LEN {
        return Err(format!(
            "invalid API key secret length, expected {SECRET_LEN} got {}",
            secret.len()
        ));
    }
    if !id
        .bytes()
        .chain(secret.bytes())
        .all(|b| b.is_ascii_alphanumeric())
    {
        return Err("API key must contain only letters and digits".to_string());
    }
    Ok((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_format() {
        for _ in 0..50 {
            let k = generate();
            let t = k.token();
            let (id, secret) = split(&t).unwrap();
            assert_eq!((id.len(), secret.len()), (10, 22));
            assert!(secret_matches(secret, &k.hashed_secret));
            assert!(!secret_matches("x", &k.hashed_secret));
        }
    }

    #[test]
    fn bad_formats_have_reasons() {
        assert_eq!(
            split("abc").unwrap_err(),
            "incorrect amount of API key parts, expected 2 got 1"
        );
        assert_eq!(
            split("abc-def").unwrap_err(),
            "invalid API key ID length, expected 10 got 3"
        );
        assert_eq!(
            split("abcdefghij-def").unwrap_err(),
            "invalid API key secret length, expected 22 got 3"
        );
        assert!(split("abcdefghi_-abcdefghijabcdefghijab").is_err());
    }
}
