//! Input rules shared by the API and the CLI (02 §4.2).

/// Coder's name rule: 1–32 characters of `[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*`, not `new`/`create`.
pub fn name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > 32 {
        return Err("must be <= 32 characters".into());
    }
    let valid = value
        .split('-')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !valid {
        return Err("must be alphanumeric with hyphens".into());
    }
    if ["new", "create"]
        .iter()
        .any(|r| value.eq_ignore_ascii_case(r))
    {
        return Err(format!("{value} is a reserved name"));
    }
    Ok(())
}

/// Usernames also cannot be `me` (any case), which names the caller in paths.
pub fn username(value: &str) -> Result<(), String> {
    name(value)?;
    if value.eq_ignore_ascii_case("me") {
        return Err("me is a reserved name".into());
    }
    Ok(())
}

/// ASCII, at most 254 characters, one `@` with text on both sides and a dot-free-safe domain.
pub fn email(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if !value.is_ascii() {
        return Err("must be an ASCII email address".into());
    }
    if value.len() > 254 {
        return Err("must be <= 254 characters".into());
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("must be a valid email address".into());
    };
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'<' || b == b'>')
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    if !ok {
        return Err("must be a valid email address".into());
    }
    Ok(())
}

/// A display name: at most 64 characters, no leading/trailing space.
pub fn display_name(value: &str) -> Result<(), String> {
    if value.chars().count() > 64 {
        return Err("must be <= 64 characters".into());
    }
    if value.trim() != value {
        return Err("must not have leading or trailing white space".into());
    }
    Ok(())
}

/// Token names: `[A-Za-z0-9_-]{1,64}`.
pub fn token_name(value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.len() > 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("must be 1-64 characters of letters, digits, '_' or '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "alice", "Alice-Bob", "a1-b2-c3", &"x".repeat(32)] {
            assert!(name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "a_b",
            "new",
            "Create",
            &"x".repeat(33),
            "ä",
        ] {
            assert!(name(bad).is_err(), "{bad}");
        }
        assert!(username("me").is_err());
        assert!(username("ME").is_err());
        assert!(name("me").is_ok());
    }

    #[test]
    fn emails() {
        assert!(email("a@b.c").is_ok());
        for bad in ["", "a", "@b", "a@", "ä@b.c", "a b@c.d", "a@.b"] {
            assert!(email(bad).is_err(), "{bad}");
        }
        assert!(email(&format!("{}@b.c", "a".repeat(251))).is_err());
    }

    #[test]
    fn token_names() {
        assert!(token_name("ci_token-1").is_ok());
        assert!(token_name("").is_err());
        assert!(token_name("a b").is_err());
        assert!(token_name(&"a".repeat(65)).is_err());
    }
}
