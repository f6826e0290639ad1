//! Which hosts a sandbox may reach: exact names and `*.example.com`
//! patterns, each with an optional port.

use crate::Error;

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// Lowercase; for a wildcard, the suffix after `*.`.
    name: String,
    wildcard: bool,
    port: Option<u16>,
}

/// A DNS name git and browsers would accept: dot-separated labels of
/// letters, digits and inner hyphens, each 1-63 long, 253 in all.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl HostPattern {
    /// `example.com`, `*.example.com`, `example.com:443`, `[::1]` is refused:
    /// the allowlist names hosts, and the proxy checks where they resolve.
    pub fn parse(text: &str) -> Result<HostPattern, Error> {
        let bad = |why: &str| Error::Invalid(format!("egress host {text:?}: {why}"));
        let trimmed = text.trim();
        let (host, port) = match trimmed.rsplit_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| bad("the port must be 1-65535"))?;
                if port == 0 {
                    return Err(bad("the port must be 1-65535"));
                }
                (host, Some(port))
            }
            None => (trimmed, None),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let (name, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest.to_string(), true),
            None => (host, false),
        };
        if name.contains('*') {
            return Err(bad(
                "`*` is only allowed as the whole first label (`*.example.com`)",
            ));
        }
        if !valid_name(&name) {
            return Err(bad("not a host name (letters, digits, `-` and dots)"));
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok()
            || name.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            return Err(bad("name hosts, not addresses"));
        }
        if wildcard && !name.contains('.') {
            return Err(bad(
                "a wildcard needs at least two labels after `*.` (`*.example.com`)",
            ));
        }
        Ok(HostPattern {
            name,
            wildcard,
            port,
        })
    }

    /// Whether `host:port` is covered. `*.example.com` covers every name
    /// below `example.com`, not `example.com` itself.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if self.wildcard {
            host.len() > self.name.len() + 1
                && host.ends_with(&self.name)
                && host.as_bytes()[host.len() - self.name.len() - 1] == b'.'
        } else {
            host == self.name
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// The hosts of one sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    patterns: Vec<HostPattern>,
}

impl Allowlist {
    /// Parses every entry; the first bad one refuses the whole list.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Allowlist, Error> {
        let patterns = entries
            .iter()
            .map(|e| HostPattern::parse(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Allowlist { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The entry allowing `host:port`, if any.
    pub fn allowing(&self, host: &str, port: u16) -> Option<&HostPattern> {
        if !valid_name(host.trim_end_matches('.')) {
            return None;
        }
        self.patterns.iter().find(|p| p.matches(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patterns() {
        let list =
            Allowlist::parse(&["api.openai.com", "*.github.com:443", "Example.ORG."]).unwrap();
        assert!(list.allowing("api.openai.com", 443).is_some());
        assert!(list.allowing("API.OpenAI.com.", 80).is_some());
        assert!(list.allowing("openai.com", 443).is_none());
        assert!(list.allowing("evil-api.openai.com", 443).is_none());
        assert!(list.allowing("codeload.github.com", 443).is_some());
        assert!(list.allowing("a.b.github.com", 443).is_some());
        assert!(list.allowing("github.com", 443).is_none());
        assert!(list.allowing("codeload.github.com", 80).is_none());
        assert!(list.allowing("evilgithub.com", 443).is_none());
        assert!(list.allowing("example.org", 8080).is_some());
        assert!(list.allowing("api.openai.com.evil.com", 443).is_none());
        assert_eq!(
            list.allowing("x.github.com", 443).unwrap().to_string(),
            "*.github.com:443"
        );
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.com",
            "exa mple.com",
            "-a.com",
            "a-.com",
            "1.2.3.4",
            "[::1]",
            "example.com:0",
            "example.com:99999",
            "example.com:http",
            "ex_ample.com",
            "*example.com",
        ] {
            let e = Allowlist::parse(&[bad]).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    proptest! {
        /// A wildcard covers exactly the names strictly below its suffix.
        #[test]
        fn wildcards_cover_exactly_the_subdomains(
            labels in proptest::collection::vec("[a-z0-9]{1,8}", 1..4),
            suffix in proptest::collection::vec("[a-z][a-z0-9]{0,7}", 2..4),
            other in "[a-z0-9]{1,8}",
        ) {
            let suffix = suffix.join(".");
            let list = Allowlist::parse(&[format!("*.{suffix}")]).unwrap();
            let below = format!("{}.{suffix}", labels.join("."));
            prop_assert!(list.allowing(&below, 443).is_some());
            prop_assert!(list.allowing(&suffix, 443).is_none());
            let glued = format!("{other}{suffix}");
            prop_assert!(list.allowing(&glued, 443).is_none());
        }

        /// Parsing never panics, whatever the entry.
        #[test]
        fn parsing_is_total(entry in "\\PC{0,40}") {
            let _ = Allowlist::parse(&[entry]);
        }
    }
}
