//! Where a webhook may be sent. Registration accepts only http(s) URLs with a host and no
//! userinfo; with an allow-list only its hosts, otherwise only hosts whose every address is
//! global unicast (no loopback, private, link-local, unspecified, multicast or reserved ranges),
//! so a tenant cannot make the service call into its own network (SSRF).
//!
//! The check that counts happens at delivery, on the addresses the connection will use: the
//! HTTP client resolves names through [`GuardedResolver`], so a name that resolved to a public
//! address at registration and to 10.0.0.1 now is refused, and no second lookup can differ from
//! the checked one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest URL accepted.
pub const MAX_URL_LENGTH: usize = 2000;
/// How long registration waits for a name to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// One entry of `FEEDWATCH_WEBHOOK_ALLOWED_HOSTS`: a host name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHost {
    Name(String),
    Ip(IpAddr),
}

impl FromStr for AllowedHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let unbracketed = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).unwrap_or(text);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let name = text.trim_end_matches('.').to_ascii_lowercase();
        let valid_label = |label: &str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(format!("`{text}` is not a host name or IP address"));
        }
        Ok(Self::Name(name))
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Which hosts webhooks may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HostPolicy {
    /// Any host whose addresses are all global unicast.
    #[default]
    GlobalOnly,
    /// Only these hosts, whatever they resolve to (the operator vouched for them).
    Only(Vec<AllowedHost>),
}

/// Why a URL is not accepted; the text is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks what can be checked without the network: form, scheme, host, userinfo, length.
pub fn parse_url(text: &str) -> Result<Url, Refused> {
    let too_long = || Refused(format!("must be at most {MAX_URL_LENGTH} characters"));
    if text.chars().count() > MAX_URL_LENGTH {
        return Err(too_long());
    }
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Err(Refused("must be an http:// or https:// URL".into()));
    }
    // The URL parser would silently drop tabs and newlines; a URL that needs them is not one.
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\u{feff}') {
        return Err(Refused("must not contain spaces or control characters".into()));
    }
    let url = Url::parse(text).map_err(|error| Refused(format!("is not a valid URL: {error}")))?;
    // Percent-encoding can lengthen it; what is stored must fit too.
    if url.as_str().len() > MAX_URL_LENGTH {
        return Err(too_long());
    }
    if host_of(&url).is_none() {
        return Err(Refused("must name a host: a DNS name or an IP address".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused("must not carry a user name or password; put a token in the path or query".into()));
    }
    if url.fragment().is_some() {
        return Err(Refused("must not have a #fragment (it is never sent)".into()));
    }
    Ok(url)
}

impl HostPolicy {
    /// Builds the policy from the configured list; an empty list means no allow-list.
    pub fn from_list(hosts: Vec<AllowedHost>) -> Self {
        if hosts.is_empty() { Self::GlobalOnly } else { Self::Only(hosts) }
    }

    /// The check before any connection: allow-list membership, or for an IP literal (which the
    /// client never resolves) the address itself. Names under `GlobalOnly` are checked when
    /// they resolve.
    pub fn check_host(&self, url: &Url) -> Result<(), Refused> {
        let host = host_of(url).ok_or_else(|| Refused("must name a host".into()))?;
        match self {
            Self::Only(allowed) if allowed.contains(&host) => Ok(()),
            Self::Only(_) => Err(Refused(format!("host `{host}` is not in FEEDWATCH_WEBHOOK_ALLOWED_HOSTS"))),
            Self::GlobalOnly => match host {
                AllowedHost::Ip(ip) => check_global(ip),
                AllowedHost::Name(name) if name == "localhost" || name.ends_with(".localhost") => {
                    Err(Refused(format!("host `{name}` is a loopback name")))
                }
                AllowedHost::Name(_) => Ok(()),
            },
        }
    }

    /// The registration check: [`check_host`](Self::check_host), then under `GlobalOnly` every
    /// address the name resolves to now. Delivery checks again, on the addresses it uses.
    pub async fn check_registration(&self, url: &Url) -> Result<(), Refused> {
        self.check_host(url)?;
        let (Self::GlobalOnly, Some(AllowedHost::Name(name))) = (self, host_of(url)) else { return Ok(()) };
        let resolved = tokio::time::timeout(LOOKUP_TIMEOUT, resolve_checked(self, &name)).await;
        resolved.map_err(|_| Refused(format!("host `{name}` did not resolve in time")))?.map(|_| ())
    }
}

/// The URL's host as the allow-list compares it: lower-case names, parsed addresses (the URL
/// parser has already lower-cased and IDNA-encoded names).
fn host_of(url: &Url) -> Option<AllowedHost> {
    url.host_str()?.parse().ok()
}

fn check_global(ip: IpAddr) -> Result<(), Refused> {
    if is_global_unicast(ip) {
        Ok(())
    } else {
        Err(Refused(format!("address {ip} is not a public (global unicast) address")))
    }
}

/// Resolves `name` and refuses it unless the policy admits every address.
async fn resolve_checked(policy: &HostPolicy, name: &str) -> Result<Vec<SocketAddr>, Refused> {
    if let HostPolicy::Only(allowed) = policy {
        // Only names that passed `check_host` reach the resolver; this is the second lock.
        if !name.parse().is_ok_and(|host: AllowedHost| allowed.contains(&host)) {
            return Err(Refused(format!("host `{name}` is not in FEEDWATCH_WEBHOOK_ALLOWED_HOSTS")));
        }
    }
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|error| Refused(format!("host `{name}` does not resolve: {error}")))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused(format!("host `{name}` has no addresses")));
    }
    if *policy == HostPolicy::GlobalOnly {
        for address in &addresses {
            check_global(address.ip()).map_err(|Refused(why)| Refused(format!("host `{name}` resolves to {why}")))?;
        }
    }
    Ok(addresses)
}

/// The delivery client's resolver: a name resolves only to addresses the policy admits, and the
/// connection uses exactly those.
#[derive(Debug, Clone)]
pub struct GuardedResolver(pub HostPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addresses = resolve_checked(&policy, name.as_str()).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is reachable on the public internet. std's `is_global` is unstable, so
/// this spells out the special-purpose registries (RFC 6890 and successors).
pub fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xc0) == 64) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240; // reserved
    !special
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // Global unicast is 2000::/3; everything else (loopback, unspecified, unique local,
    // link-local, multicast, the IPv4-compatible forms) is not.
    let in_global_block = (segments[0] & 0xe000) == 0x2000;
    // 2001::/23 holds IETF protocol assignments (Teredo among them), 2001:db8::/32 documentation.
    let ietf_or_documentation = segments[0] == 0x2001 && (segments[1] < 0x0200 || segments[1] == 0x0db8);
    let special = ietf_or_documentation
        || segments[0] == 0x2002 // 6to4: tunnels to any IPv4 address, private ones included
        || (segments[0] == 0x3fff && segments[1] < 0x1000); // documentation (RFC 9637)
    in_global_block && !special
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_global_unicast_addresses_are_public() {
        for public in ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_global_unicast(ip(public)), "{public}");
        }
        for special in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "2001::1",
            "2002:0a00:0001::1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_global_unicast(ip(special)), "{special}");
        }
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_userinfo() {
        assert!(parse_url("https://hooks.example.com/feedwatch?token=abc").is_ok());
        assert!(parse_url("http://127.0.0.1:8080/hook").is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "https://",
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://example.com/#top",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://127.0.0.1/a\tb",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/\u{a0}",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH))).is_err());
        let encoded_too_long = format!("https://example.com/{}", "é".repeat(1000));
        assert!(encoded_too_long.chars().count() < MAX_URL_LENGTH && parse_url(&encoded_too_long).is_err());
    }

    #[test]
    fn an_allow_list_admits_exactly_its_hosts() {
        let policy = HostPolicy::from_list(vec!["127.0.0.1".parse().unwrap(), "Hooks.Example.com.".parse().unwrap()]);
        assert!(policy.check_host(&parse_url("http://127.0.0.1:9/x").unwrap()).is_ok());
        assert!(policy.check_host(&parse_url("https://hooks.example.com/x").unwrap()).is_ok());
        assert!(policy.check_host(&parse_url("https://HOOKS.example.com./x").unwrap()).is_ok());
        for refused in ["http://127.0.0.2/", "http://localhost/", "https://example.com/", "http://[::1]/"] {
            assert!(policy.check_host(&parse_url(refused).unwrap()).is_err(), "{refused}");
        }
        assert_eq!(HostPolicy::from_list(vec![]), HostPolicy::GlobalOnly);
        assert_eq!("[::1]".parse::<AllowedHost>(), Ok(AllowedHost::Ip(ip("::1"))));
        assert!("http://x".parse::<AllowedHost>().is_err());
        assert!("".parse::<AllowedHost>().is_err());
    }

    #[tokio::test]
    async fn without_an_allow_list_private_and_loopback_hosts_are_refused() {
        let policy = HostPolicy::GlobalOnly;
        for refused in [
            "http://127.0.0.1/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://0.0.0.0/",
            "http://[::ffff:192.168.0.1]/",
        ] {
            let url = parse_url(refused).unwrap();
            assert!(policy.check_registration(&url).await.is_err(), "{refused}");
        }
        assert!(policy.check_host(&parse_url("https://93.184.216.34/").unwrap()).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_to_loopback() {
        // Names that pass `check_host` can still point at loopback; the lookup catches them.
        let error = resolve_checked(&HostPolicy::GlobalOnly, "localhost").await.unwrap_err();
        assert!(error.0.contains("not a public"), "{error}");
        let allowed = HostPolicy::from_list(vec!["localhost".parse().unwrap()]);
        assert!(resolve_checked(&allowed, "localhost").await.is_ok(), "an allowed name resolves to anything");
        assert!(resolve_checked(&allowed, "example.com").await.is_err(), "a name outside the list never resolves");
    }
}
