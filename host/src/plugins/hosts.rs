//! Host grants: which `host:port` a plugin's outgoing HTTP may name.
//!
//! An entry of `allowed_hosts` is `*` (any host, any port), `host:port`, `host:*`
//! (any port), `*.domain:port` or `*.domain:*` (any subdomain of `domain`, not `domain`
//! itself). Names compare case-insensitively and literally: `localhost` is not
//! `127.0.0.1`. Which addresses a name may resolve to is the outbound policy's business.

use std::net::IpAddr;

/// What a correct grant entry looks like, for the refusals of one that is not.
const EXAMPLE: &str = "use 'host:port', 'host:*', '*.domain:port' or '*'";

/// Why an entry of `allowed_hosts` is not a host grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostGrantError {
    /// No `:port` (or nothing before it).
    #[error("'{entry}' names no port; {}", EXAMPLE)]
    NoPort { entry: String },
    /// A port that is not a number from 1 to 65535, nor `*`.
    #[error("'{entry}' has no valid port ('{port}'); {}", EXAMPLE)]
    BadPort { entry: String, port: String },
    /// A host that a URL would not hold, or a wildcard anywhere but a leading `*.`.
    #[error("'{entry}' is not a host name, an address or '*.domain' followed by ':port'")]
    NotAHost { entry: String },
}

/// One parsed entry of an `allowed_hosts` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostMatch,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    /// Lower-case, without a trailing dot; IPv6 literals keep their brackets.
    Exact(String),
    /// `.domain`: matches names ending with it.
    Subdomain(String),
}

impl HostPattern {
    /// Parse a grant entry; the error says what a correct one looks like.
    pub fn parse(entry: &str) -> Result<Self, HostGrantError> {
        let entry = entry.trim();
        if entry == "*" {
            return Ok(HostPattern { host: HostMatch::Any, port: None });
        }
        let (host, port) = entry
            .rsplit_once(':')
            .filter(|(h, _)| !h.is_empty() && !h.ends_with(':'))
            .ok_or_else(|| HostGrantError::NoPort { entry: entry.to_string() })?;
        let port = match port {
            "*" => None,
            p => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| HostGrantError::BadPort { entry: entry.to_string(), port: p.to_string() })?,
            ),
        };
        let host = host.to_ascii_lowercase();
        let host = match host.strip_prefix("*.") {
            _ if host == "*" => HostMatch::Any,
            Some(domain) => HostMatch::Subdomain(format!(".{}", valid_name(domain, entry)?)),
            None => HostMatch::Exact(valid_name(&host, entry)?.to_string()),
        };
        Ok(HostPattern { host, port })
    }

    /// Whether a request to `host` (as in a URL: IPv6 in brackets) on `port` is granted.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_end_matches('.');
        match &self.host {
            HostMatch::Any => true,
            HostMatch::Exact(name) => name.eq_ignore_ascii_case(host),
            HostMatch::Subdomain(suffix) => {
                let is_ip = host.parse::<IpAddr>().is_ok() || host.starts_with('[');
                !is_ip && host.len() > suffix.len() && host.to_ascii_lowercase().ends_with(suffix.as_str())
            }
        }
    }
}

/// A host name or address of a grant: no wildcard left, nothing a URL would not hold.
fn valid_name<'a>(name: &'a str, entry: &str) -> Result<&'a str, HostGrantError> {
    let name = name.trim_end_matches('.');
    let bracketed = name.starts_with('[') && name.ends_with(']');
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') || (bracketed && matches!(c, ':' | '[' | ']'));
    if name.is_empty() || !name.chars().all(allowed) || (!bracketed && name.contains(':')) {
        return Err(HostGrantError::NotAHost { entry: entry.to_string() });
    }
    Ok(name)
}

/// Whether the grant entry `entry` allows `host:port`. Entries are checked when the
/// server starts, so one that does not parse here allows nothing.
pub fn allows(entry: &str, host: &str, port: u16) -> bool {
    HostPattern::parse(entry).is_ok_and(|pattern| pattern.matches(host, port))
}

/// A `host:port` a plugin asks for, read strictly: a concrete host and a numeric port,
/// no wildcard. Returns the lower-case host and the port.
pub fn asked(text: &str) -> Option<(String, u16)> {
    let (host, port) = text.trim().rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
    if host.contains('*') {
        return None;
    }
    let host = valid_name(host, text).ok()?;
    Some((host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(entry: &str) -> HostPattern {
        HostPattern::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"))
    }

    #[test]
    fn exact_entries_match_host_and_port() {
        let p = grant("hooks.slack.com:443");
        assert!(p.matches("hooks.slack.com", 443));
        assert!(p.matches("Hooks.Slack.COM", 443));
        assert!(p.matches("hooks.slack.com.", 443));
        assert!(!p.matches("hooks.slack.com", 80));
        assert!(!p.matches("evil-hooks.slack.com", 443));
        assert!(!p.matches("hooks.slack.com.evil", 443));
        assert!(!grant("127.0.0.1:8080").matches("localhost", 8080), "names are literal");
        assert!(grant("[::1]:8080").matches("[::1]", 8080));
    }

    #[test]
    fn wildcards() {
        assert!(grant("*").matches("anything.example", 1));
        assert!(grant("*:443").matches("anything.example", 443));
        assert!(!grant("*:443").matches("anything.example", 80));
        let any_port = grant("127.0.0.1:*");
        assert!(any_port.matches("127.0.0.1", 1) && any_port.matches("127.0.0.1", 65535));
        assert!(!any_port.matches("127.0.0.2", 80));
        let sub = grant("*.example.com:443");
        assert!(sub.matches("a.example.com", 443));
        assert!(sub.matches("a.b.EXAMPLE.com", 443));
        assert!(!sub.matches("example.com", 443), "the domain itself is not a subdomain");
        assert!(!sub.matches("badexample.com", 443));
        assert!(!sub.matches("a.example.com", 80));
        assert!(!grant("*.0.1:*").matches("127.0.0.1", 80), "suffixes never match addresses");
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in ["example.com", "example.com:", ":443", "example.com:http", "example.com:0", "example.com:70000",
            "exa*mple.com:443", "*.*.com:443", "http://example.com:443", "a/b:1", "user@host:1", "::1:80", "*.:443", ""] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn asked_hosts_are_concrete() {
        assert_eq!(asked("Example.com:443"), Some(("example.com".into(), 443)));
        assert_eq!(asked("[::1]:80"), Some(("[::1]".into(), 80)));
        for bad in ["*:80", "*.example.com:443", "example.com:*", "example.com", "a b:1", "host:0", "::1:80"] {
            assert_eq!(asked(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn allows_reads_entries_as_patterns() {
        assert!(allows("127.0.0.1:*", "127.0.0.1", 9000));
        assert!(allows("127.0.0.1:9000", "127.0.0.1", 9000));
        assert!(!allows("not a grant", "127.0.0.1", 9000));
    }

    #[test]
    fn refusals_say_what_a_grant_looks_like() {
        let refusal = |entry: &str| HostPattern::parse(entry).unwrap_err().to_string();
        assert_eq!(refusal(" example.com "), "'example.com' names no port; use 'host:port', 'host:*', '*.domain:port' or '*'");
        assert_eq!(refusal("example.com:http"), "'example.com:http' has no valid port ('http'); use 'host:port', 'host:*', '*.domain:port' or '*'");
        assert_eq!(refusal("a/b:1"), "'a/b:1' is not a host name, an address or '*.domain' followed by ':port'");
        assert_eq!(HostPattern::parse("*.*.com:443"), Err(HostGrantError::NotAHost { entry: "*.*.com:443".into() }));
    }
}
