//! The experiment registry (00): one enum, parsed from `--experiments`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Experiment {
    OAuth2,
    McpServerHttp,
    WebPush,
}

impl Experiment {
    pub const ALL: [Experiment; 3] = [
        Experiment::OAuth2,
        Experiment::McpServerHttp,
        Experiment::WebPush,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Experiment::OAuth2 => "oauth2",
            Experiment::McpServerHttp => "mcp-server-http",
            Experiment::WebPush => "web-push",
        }
    }

    /// Safe experiments are the ones `*` turns on.
    pub fn is_safe(self) -> bool {
        !matches!(self, Experiment::WebPush)
    }
}

impl fmt::Display for Experiment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Experiment {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|e| e.as_str() == s).ok_or(())
    }
}

/// The enabled set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Experiments(BTreeSet<Experiment>);

impl Experiments {
    /// Parses a comma list. Returns the set and the names that were not recognised (the
    /// caller warns about them; 02 §6 step 5).
    pub fn parse<'a>(items: impl IntoIterator<Item = &'a str>) -> (Self, Vec<String>) {
        let mut set = BTreeSet::new();
        let mut unknown = Vec::new();
        for raw in items {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            if item == "*" {
                set.extend(Experiment::ALL.into_iter().filter(|e| e.is_safe()));
            } else if let Ok(e) = item.parse() {
                set.insert(e);
            } else {
                unknown.push(item.to_string());
            }
        }
        (Self(set), unknown)
    }

    pub fn enabled(&self, e: Experiment) -> bool {
        self.0.contains(&e)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.as_str()).collect()
    }

    pub fn safe_names() -> Vec<&'static str> {
        Experiment::ALL
            .into_iter()
            .filter(|e| e.is_safe())
            .map(Experiment::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_enables_only_safe_ones() {
        let (e, unknown) = Experiments::parse("*,bogus".split(','));
        assert_eq!(e.names(), vec!["oauth2", "mcp-server-http"]);
        assert_eq!(unknown, vec!["bogus"]);
        let (e, _) = Experiments::parse("web-push".split(','));
        assert_eq!(e.names(), vec!["web-push"]);
        let (e, _) = Experiments::parse("".split(','));
        assert!(e.names().is_empty());
    }
}
