//! Passwords in Coder's stored format `$pbkdf2-sha256$<iter>$<salt>$<hash>` (02 §3.2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};
use std::num::NonZeroU32;

const ITERATIONS: u32 = 65_535;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 64;

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    // The system RNG failing is not recoverable; an all-zero salt would be a silent weakness.
    SystemRandom::new()
        .fill(&mut salt)
        .expect("system random number generator failed");
    hash_with(password, &salt, ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    let iters = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "$pbkdf2-sha256${iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Checks a password against a stored hash in constant time. Any iteration count is
/// accepted; an unparsable hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [empty, alg, iter, salt, hash] = parts.as_slice() else {
        return false;
    };
    if !empty.is_empty() || *alg != "pbkdf2-sha256" {
        return false;
    }
    let Some(iters) = iter.parse::<u32>().ok().and_then(NonZeroU32::new) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD_NO_PAD.decode(salt), STANDARD_NO_PAD.decode(hash)) else {
        return false;
    };
    if hash.is_empty() {
        return false;
    }
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// A hash that no password matches, used so unknown users cost the same time as known ones.
pub fn dummy_hash() -> &'static str {
    "$pbkdf2-sha256$65535$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
}

/// Coder's password strength rule. Returns the error text for a weak or long password.
pub fn check_strength(password: &str) -> Result<(), String> {
    const SPECIAL_A: &str = "!@$&*";
    const SPECIAL_B: &str = "_-., ";
    const SPECIAL_C: &str = "\"#%'()+/:;<=>?[\\]^{|}~";
    let mut counts: std::collections::HashMap<char, u32> = std::collections::HashMap::new();
    let (mut a, mut b, mut c, mut lower, mut upper, mut digit) =
        (false, false, false, false, false, false);
    let mut others = std::collections::HashSet::new();
    let mut length = 0u32;
    for ch in password.chars() {
        let n = counts.entry(ch).or_insert(0);
        if *n < 2 {
            *n += 1;
            length += 1;
        }
        if SPECIAL_A.contains(ch) {
            a = true;
        } else if SPECIAL_B.contains(ch) {
            b = true;
        } else if SPECIAL_C.contains(ch) {
            c = true;
        } else if ch.is_ascii_lowercase() {
            lower = true;
        } else if ch.is_ascii_uppercase() {
            upper = true;
        } else if ch.is_ascii_digit() {
            digit = true;
        } else {
            others.insert(ch);
        }
    }
    let base = [
        (a, 5),
        (b, 5),
        (c, 22),
        (lower, 26),
        (upper, 26),
        (digit, 10),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .map(|(_, n)| *n)
    .sum::<u32>()
        + others.len() as u32;
    let entropy = if base == 0 {
        0.0
    } else {
        f64::from(length) * f64::from(base).log2()
    };
    if entropy < 52.0 {
        let mut hints = Vec::new();
        if !(a && b && c) {
            hints.push("including more special characters");
        }
        if !lower {
            hints.push("using lowercase letters");
        }
        if !upper {
            hints.push("using uppercase letters");
        }
        if !digit {
            hints.push("using numbers");
        }
        return Err(if hints.is_empty() {
            "insecure password, try using a longer password".to_string()
        } else {
            format!(
                "insecure password, try {} or using a longer password",
                hints.join(", ")
            )
        });
    }
    if password.len() > 64 {
        return Err("password must be no more than 64 characters".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_matches_coder() {
        let h = hash("SomeSecurePassword!");
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts[1], "pbkdf2-sha256");
        assert_eq!(parts[2], "65535");
        assert_eq!(parts[3].len(), 22);
        assert_eq!(parts[4].len(), 86);
        assert!(parts[3..].iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        }));
        assert!(verify("SomeSecurePassword!", &h));
        assert!(!verify("SomeSecurePassword?", &h));
    }

    #[test]
    fn verifies_other_iteration_counts_and_rejects_garbage() {
        let h = hash_with("pw", b"0123456789abcdef", 1000);
        assert!(verify("pw", &h));
        for bad in [
            "",
            "none",
            "$pbkdf2-sha256$0$AA$AA",
            "$bcrypt$1$a$b",
            "$pbkdf2-sha256$10$!!$!!",
        ] {
            assert!(!verify("pw", bad), "{bad}");
        }
        assert!(!verify("", dummy_hash()));
        assert!(!verify("password", dummy_hash()));
    }

    /// Hashes in Coder's format produced outside this code base (Python's hashlib with the
    /// same parameters Coder's Go code uses; the first is RFC 7914 §11's PBKDF2 vector).
    #[test]
    fn verifies_externally_produced_hashes() {
        let rfc = "$pbkdf2-sha256$1$c2FsdA$VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLxJypzM8Xm2RZkWZLOdd+8xfHG4RbHjC9UJESBB06GXgw";
        assert!(verify("passwd", rfc));
        let coder = "$pbkdf2-sha256$65535$MDEyMzQ1Njc4OWFiY2RlZg$XDERH54x8xcOhz2IwKAR+bGT+9HckXUKDCJVelrYbLRYTrXJFSwhH/g+SBGsbaYjxoKzXxtqpaDgc7qWywuM/A";
        assert!(verify("password1234", coder));
        assert_eq!(hash_with("password1234", b"0123456789abcdef", 65535), coder);
    }

    #[test]
    fn strength_rule() {
        assert_eq!(
            check_strength("password").unwrap_err(),
            "insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password"
        );
        assert!(check_strength("password1234").is_ok());
        assert!(check_strength("SomeSecurePassword!").is_ok());
        let long: String = ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .chain("!@$".chars())
            .collect();
        assert_eq!(long.len(), 65);
        assert_eq!(
            check_strength(&long).unwrap_err(),
            "password must be no more than 64 characters"
        );
        assert!(
            check_strength("")
                .unwrap_err()
                .contains("insecure password")
        );
    }
}
