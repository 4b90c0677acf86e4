//! Which addresses the server may connect to. Public addresses only by default; the
//! operator widens the policy with CIDRs and host names (`COPRA_OUTBOUND_ALLOW`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of address a connection was refused for, as a reader would name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// Reachable on the internet: allowed by default.
    Public,
    /// This machine: 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, carrier-grade NAT (100.64.0.0/10), unique local (fc00::/7).
    Private,
    /// 169.254.0.0/16 and fe80::/10, where cloud metadata services live.
    LinkLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 0.0.0.0/8, `::`.
    Unspecified,
    /// 255.255.255.255.
    Broadcast,
    /// Documentation, benchmarking, protocol assignments, and other ranges no server
    /// has a reason to reach.
    Reserved,
}

impl AddressClass {
    /// A short name: `loopback`, `link-local`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Public => "public",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Unspecified => "unspecified",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
        }
    }

    /// The class in a sentence: `a loopback address`, ...
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address (this machine)",
            AddressClass::Private => "a private network address",
            AddressClass::LinkLocal => "a link-local address (where cloud metadata services live)",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Broadcast => "a broadcast address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// The class of an address. IPv6 forms that carry an IPv4 address (mapped, compatible,
/// NAT64, 6to4) are classed by the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let o = ip.octets();
    let in_net = |net: [u8; 4], bits: u32| prefix_match(u32::from(ip), u32::from(Ipv4Addr::from(net)), bits, 32);
    match o {
        [0, ..] => AddressClass::Unspecified,
        [127, ..] => AddressClass::Loopback,
        [10, ..] => AddressClass::Private,
        [169, 254, ..] => AddressClass::LinkLocal,
        [255, 255, 255, 255] => AddressClass::Broadcast,
        _ if in_net([172, 16, 0, 0], 12) || in_net([192, 168, 0, 0], 16) || in_net([100, 64, 0, 0], 10) => AddressClass::Private,
        _ if in_net([224, 0, 0, 0], 4) => AddressClass::Multicast,
        _ if in_net([240, 0, 0, 0], 4)
            || in_net([192, 0, 0, 0], 24)
            || in_net([192, 0, 2, 0], 24)
            || in_net([192, 88, 99, 0], 24)
            || in_net([198, 18, 0, 0], 15)
            || in_net([198, 51, 100, 0], 24)
            || in_net([203, 0, 113, 0], 24) =>
        {
            AddressClass::Reserved
        }
        _ => AddressClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let bits = u128::from(ip);
    let in_net = |net: &str, len: u32| prefix_match(bits, u128::from(net.parse::<Ipv6Addr>().expect("valid net")), len, 128);
    if ip.is_unspecified() {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if in_net("ff00::", 8) {
        AddressClass::Multicast
    } else if in_net("fe80::", 10) {
        AddressClass::LinkLocal
    } else if in_net("fc00::", 7) || in_net("fec0::", 10) || in_net("64:ff9b:1::", 48) {
        AddressClass::Private
    } else if in_net("2001:db8::", 32) || in_net("2001::", 32) || in_net("100::", 64) || !in_net("2000::", 3) {
        // Documentation, Teredo (its far end is not ours to check), discard, and
        // everything outside global unicast.
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

/// The IPv4 address an IPv6 address stands for, if it is one of the forms that carry
/// one: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // `::` and `::1` are IPv6's own; the rest of ::/96 is IPv4-compatible.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)),
        _ => None,
    }
}

fn prefix_match<T>(addr: T, net: T, len: u32, width: u32) -> bool
where
    T: Copy + std::ops::Shr<u32, Output = T> + PartialEq,
{
    if len == 0 {
        return true;
    }
    let shift = width - len.min(width);
    addr >> shift == net >> shift
}

/// One entry of the operator's allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An address range: `10.0.0.0/8`, `127.0.0.1/32`, `fd00::/8`, or a bare address.
    Net {
        /// The network's address.
        addr: IpAddr,
        /// Its prefix length in bits.
        len: u32,
    },
    /// A host name, allowed whatever it resolves to: `minio.internal`; `*.corp.example`
    /// allows every name below `corp.example`.
    Host {
        /// The name, lower case, without a trailing dot.
        name: String,
        /// Whether names below it are allowed too (`*.name`).
        subdomains: bool,
    },
}

/// Why an entry of the operator's allow list (`COPRA_OUTBOUND_ALLOW`) was refused; each
/// names the entry as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// An entry with a `/` whose address part is not an IP address.
    #[error("'{0}' is not a valid CIDR")]
    NotCidr(String),
    /// A CIDR whose prefix length is not a number within its address's width.
    #[error("'{text}' has a prefix length outside 0..={max}")]
    PrefixLength {
        /// The entry.
        text: String,
        /// The longest prefix its address takes: 32 (IPv4) or 128 (IPv6).
        max: u32,
    },
    /// An entry that is no CIDR, no address and no valid host name.
    #[error("'{0}' is neither a CIDR, an address nor a host name")]
    Unknown(String),
}

impl Rule {
    fn parse(text: &str) -> Result<Rule, RuleError> {
        let text = text.trim();
        if let Some((addr, len)) = text.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| RuleError::NotCidr(text.to_string()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u32 = len.parse().ok().filter(|l| *l <= max).ok_or_else(|| RuleError::PrefixLength { text: text.to_string(), max })?;
            return Ok(Rule::Net { addr, len });
        }
        if let Ok(addr) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(Rule::Net { addr, len: if addr.is_ipv4() { 32 } else { 128 } });
        }
        let (name, subdomains) = match text.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty() && label.len() <= 63 && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid {
            return Err(RuleError::Unknown(text.to_string()));
        }
        Ok(Rule::Host { name, subdomains })
    }

    fn allows_addr(&self, ip: IpAddr) -> bool {
        let Rule::Net { addr, len } = *self else { return false };
        // Only the IPv4-mapped form reaches the IPv4 address it carries (a dual-stack
        // socket); NAT64 and 6to4 forms go through a gateway, which an allow rule for
        // the IPv4 address does not cover.
        let candidates = [Some(ip), match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        }];
        candidates.into_iter().flatten().any(|ip| match (ip, addr) {
            (IpAddr::V4(ip), IpAddr::V4(net)) => prefix_match(u32::from(ip), u32::from(net), len, 32),
            (IpAddr::V6(ip), IpAddr::V6(net)) => prefix_match(u128::from(ip), u128::from(net), len, 128),
            _ => false,
        })
    }

    fn allows_host(&self, host: &str) -> bool {
        let Rule::Host { name, subdomains } = self else { return false };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        host == *name || (*subdomains && host.strip_suffix(name.as_str()).is_some_and(|head| head.ends_with('.')))
    }
}

/// Why a connection was not made: the address (when the user wrote it; a name's
/// resolved address is kept out of the sentence), its class and how to allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The host as it was named (a name or an address).
    pub host: String,
    /// The address refused; `None` when the name itself is refused (`localhost`).
    pub addr: Option<IpAddr>,
    /// What kind of address it is.
    pub class: AddressClass,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.class.describe();
        let (named, rule) = match self.addr {
            None => (format!("the host name '{}' always means this machine, which", self.host), self.host.clone()),
            Some(addr) => {
                let cidr = match addr {
                    IpAddr::V4(a) => format!("{a}/32"),
                    IpAddr::V6(a) => format!("{a}/128"),
                };
                if addr.to_string() == self.host.trim_matches(['[', ']']) {
                    (format!("the address {addr} is {class}, which"), cidr)
                } else {
                    // The address a name resolved to is not told: a tenant could map
                    // internal DNS with it. The operator's log has it (`resolve`).
                    (format!("'{}' resolves to {class}, which", self.host), self.host.trim_end_matches('.').to_ascii_lowercase())
                }
            }
        };
        write!(f, "{named} this server does not connect to; an operator can allow it with COPRA_OUTBOUND_ALLOW={rule}")
    }
}

/// The outbound policy: public addresses, plus what the operator allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// Parse a comma-separated allow list (`127.0.0.1/32, minio.internal, *.corp`).
    pub fn parse(allow: &str) -> Result<Policy, RuleError> {
        let rules = allow.split(',').map(str::trim).filter(|e| !e.is_empty()).map(Rule::parse).collect::<Result<_, _>>()?;
        Ok(Policy { rules })
    }

    /// The operator's rules, in the order given.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether the operator allowed this host name whatever it resolves to.
    pub fn allows_name(&self, host: &str) -> bool {
        self.rules.iter().any(|r| r.allows_host(host))
    }

    /// Check one address that `host` resolved to (or is).
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let class = classify(ip);
        if class == AddressClass::Public || self.rules.iter().any(|r| r.allows_addr(ip)) {
            return Ok(());
        }
        Err(Refused { host: host.to_string(), addr: Some(ip), class })
    }

    /// Check a host as a URL names it: an address literal is checked now, and so is a
    /// name that always means this machine (`localhost`, `*.localhost`, RFC 6761);
    /// another name is allowed here and its addresses are checked when it is resolved.
    pub fn check_host(&self, host: &url::Host<&str>) -> Result<(), Refused> {
        match host {
            url::Host::Ipv4(ip) => self.check_addr(&ip.to_string(), IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => self.check_addr(&ip.to_string(), IpAddr::V6(*ip)),
            url::Host::Domain(name) => match name.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => self.check_addr(name, ip),
                Err(_) => self.check_name(name),
            },
        }
    }

    /// Refuse a name that means this machine whatever DNS says, unless the operator
    /// allowed it by name or allowed loopback addresses.
    fn check_name(&self, name: &str) -> Result<(), Refused> {
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        let loopback = lower == "localhost" || lower.ends_with(".localhost");
        let allowed = self.allows_name(&lower)
            || [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)].into_iter().any(|ip| self.rules.iter().any(|r| r.allows_addr(ip)));
        if loopback && !allowed {
            return Err(Refused { host: name.to_string(), addr: None, class: AddressClass::Loopback });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(text: &str) -> AddressClass {
        classify(text.parse().unwrap())
    }

    #[test]
    fn ipv4_classes() {
        assert_eq!(class("8.8.8.8"), AddressClass::Public);
        assert_eq!(class("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("127.255.0.2"), AddressClass::Loopback);
        assert_eq!(class("10.1.2.3"), AddressClass::Private);
        assert_eq!(class("172.16.0.1"), AddressClass::Private);
        assert_eq!(class("172.31.255.255"), AddressClass::Private);
        assert_eq!(class("172.32.0.1"), AddressClass::Public);
        assert_eq!(class("192.168.1.1"), AddressClass::Private);
        assert_eq!(class("100.64.0.1"), AddressClass::Private);
        assert_eq!(class("169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(class("224.0.0.1"), AddressClass::Multicast);
        assert_eq!(class("0.0.0.0"), AddressClass::Unspecified);
        assert_eq!(class("255.255.255.255"), AddressClass::Broadcast);
        assert_eq!(class("198.18.0.1"), AddressClass::Reserved);
        assert_eq!(class("240.0.0.1"), AddressClass::Reserved);
    }

    #[test]
    fn ipv6_classes_and_embedded_ipv4() {
        assert_eq!(class("2606:4700::1111"), AddressClass::Public);
        assert_eq!(class("::1"), AddressClass::Loopback);
        assert_eq!(class("::"), AddressClass::Unspecified);
        assert_eq!(class("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(class("fd00::1"), AddressClass::Private);
        assert_eq!(class("fc00::1"), AddressClass::Private);
        assert_eq!(class("ff02::1"), AddressClass::Multicast);
        assert_eq!(class("2001:db8::1"), AddressClass::Reserved);
        // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms of internal addresses.
        assert_eq!(class("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::ffff:169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(class("::ffff:7f00:1"), AddressClass::Loopback);
        assert_eq!(class("::127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("64:ff9b::10.0.0.1"), AddressClass::Private);
        assert_eq!(class("2002:7f00:1::"), AddressClass::Loopback);
        assert_eq!(class("::ffff:8.8.8.8"), AddressClass::Public);
    }

    #[test]
    fn url_spellings_of_loopback_are_caught() {
        let policy = Policy::default();
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            assert!(policy.check_host(&parsed.host().unwrap()).is_err(), "{url} must be refused");
        }
        let public = url::Url::parse("http://93.184.216.34/").unwrap();
        assert!(policy.check_host(&public.host().unwrap()).is_ok());
        let name = url::Url::parse("http://example.com/").unwrap();
        assert!(policy.check_host(&name.host().unwrap()).is_ok(), "names are checked when resolved");
    }

    #[test]
    fn the_operator_widens_with_cidrs_and_names() {
        let policy = Policy::parse("127.0.0.2/32, 10.0.0.0/8, fd00::/8, minio.internal, *.corp.example").unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(policy.check_addr("x", ip("127.0.0.2")).is_ok());
        assert!(policy.check_addr("x", ip("::ffff:127.0.0.2")).is_ok(), "mapped form of an allowed address");
        assert!(policy.check_addr("x", ip("127.0.0.1")).is_err());
        assert!(policy.check_addr("x", ip("10.9.8.7")).is_ok());
        assert!(policy.check_addr("x", ip("fd12::1")).is_ok());
        assert!(policy.check_addr("x", ip("169.254.169.254")).is_err());
        assert!(policy.allows_name("minio.internal") && policy.allows_name("MINIO.internal."));
        assert!(policy.allows_name("a.b.corp.example") && !policy.allows_name("corp.example.evil.com"));
        assert!(!policy.allows_name("xcorp.example"));
        assert!(Policy::parse("127.0.0.1/33").is_err());
        assert!(Policy::parse("not a host").is_err());
        assert_eq!(Policy::parse(" , ").unwrap(), Policy::default());
    }

    #[test]
    fn allow_list_mistakes_name_the_entry() {
        let err = |allow: &str| Policy::parse(allow).unwrap_err();
        assert_eq!(err("10.0.0.1, 10.0.0.x/8"), RuleError::NotCidr("10.0.0.x/8".into()));
        assert_eq!(err("10.0.0.x/8").to_string(), "'10.0.0.x/8' is not a valid CIDR");
        assert_eq!(err("127.0.0.1/33").to_string(), "'127.0.0.1/33' has a prefix length outside 0..=32");
        assert_eq!(err("::1/129").to_string(), "'::1/129' has a prefix length outside 0..=128");
        assert_eq!(err("fd00::/x").to_string(), "'fd00::/x' has a prefix length outside 0..=128");
        assert_eq!(err(" not a host ").to_string(), "'not a host' is neither a CIDR, an address nor a host name");
    }

    #[test]
    fn odd_spellings_and_names_of_this_machine() {
        let policy = Policy::default();
        for url in [
            "http://0x7f.1/",
            "http://0x7F.0.0.1/",
            "http://017700000001/",
            "http://127.0.0.1./",
            "http://[0:0:0:0:0:ffff:7f00:1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::ffff:169.254.169.254]:8080/",
            "http://[64:ff9b::127.0.0.1]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[fc00::1]/",
            "http://[ff02::1]/",
            "http://[::]/",
            "http://0.0.0.0:9000/",
            "http://100.64.1.1/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:8080/",
            "https://user:pw@127.0.0.1/",
        ] {
            let parsed = url::Url::parse(url).unwrap();
            assert!(policy.check_host(&parsed.host().unwrap()).is_err(), "{url} must be refused");
        }
        let loopback = Policy::parse("127.0.0.0/8, ::1/128").unwrap();
        assert!(loopback.check_host(&url::Host::Domain("localhost")).is_ok(), "loopback allowed means localhost too");
        assert!(Policy::parse("localhost").unwrap().check_host(&url::Host::Domain("localhost")).is_ok());
        let err = policy.check_host(&url::Host::Domain("localhost")).unwrap_err().to_string();
        assert!(err.contains("'localhost'") && err.contains("COPRA_OUTBOUND_ALLOW=localhost"), "{err}");
    }

    #[test]
    fn an_allowed_ipv4_address_is_not_reached_through_a_gateway_form() {
        let policy = Policy::parse("127.0.0.2/32").unwrap();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        assert!(policy.check_addr("x", ip("::ffff:127.0.0.2")).is_ok());
        assert!(policy.check_addr("x", ip("2002:7f00:2::")).is_err(), "6to4 goes through a relay");
        assert!(policy.check_addr("x", ip("64:ff9b::127.0.0.2")).is_err(), "NAT64 goes through a gateway");
    }

    #[test]
    fn refusals_name_the_class_and_the_setting_and_only_a_written_address() {
        let err = Policy::default().check_addr("metadata.internal", "169.254.169.254".parse().unwrap()).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("169.254") && text.contains("link-local"), "a name's address is not told: {text}");
        assert!(text.contains("COPRA_OUTBOUND_ALLOW=metadata.internal"), "{text}");
        assert!(text.contains("'metadata.internal' resolves to a link-local address"), "{text}");
        let text = Policy::default().check_addr("127.0.0.1", "127.0.0.1".parse().unwrap()).unwrap_err().to_string();
        assert!(text.starts_with("the address 127.0.0.1 is a loopback address"), "{text}");
        assert!(text.ends_with("COPRA_OUTBOUND_ALLOW=127.0.0.1/32"), "{text}");
        let text = Policy::default().check_addr("::1", "::1".parse().unwrap()).unwrap_err().to_string();
        assert!(text.contains("COPRA_OUTBOUND_ALLOW=::1/128"), "{text}");
    }
}
