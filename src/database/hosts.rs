//! How a `DATABASE_URL` names its servers. sqlx 0.8.6 reads one host and ignores
//! `target_session_attrs` (with a warning), so libpq's multi-host forms are read here:
//! `postgres://user@h1:5432,h2:5433/db?target_session_attrs=read-write`, or the hosts and ports
//! as query lists (`?host=h1,h2&port=5432,5433`). Everything else in the URL (password, database,
//! TLS settings) is still read by sqlx, once, and applied to every host.

use sqlx::postgres::PgConnectOptions;

/// What a server must be for feedwatch to use it: libpq's `target_session_attrs`, less the
/// values that pick a server feedwatch could not write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The first server that answers (libpq's default).
    Any,
    /// A server whose sessions may write (`transaction_read_only` off).
    ReadWrite,
    /// A server that is not in recovery (not a standby).
    Primary,
}

/// What a server says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerRole {
    /// `pg_is_in_recovery()`: a standby, or a primary still replaying its WAL.
    pub in_recovery: bool,
    /// `transaction_read_only` of a new session (a standby, or `default_transaction_read_only`).
    pub read_only: bool,
}

impl Target {
    fn parse(value: &str) -> Result<Self, UrlError> {
        match value {
            "any" => Ok(Self::Any),
            "read-write" => Ok(Self::ReadWrite),
            "primary" => Ok(Self::Primary),
            "read-only" | "standby" | "prefer-standby" => Err(UrlError::UnwritableTarget(value.to_owned())),
            _ => Err(UrlError::UnknownTarget(value.to_owned())),
        }
    }

    /// Whether a server in `role` may serve feedwatch.
    pub fn accepts(self, role: ServerRole) -> bool {
        match self {
            Self::Any => true,
            Self::ReadWrite => !role.read_only,
            Self::Primary => !role.in_recovery,
        }
    }
}

/// One server of the list, in the order given.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `host:port` (or the socket directory), for logs and errors; never the password.
    pub label: String,
    pub options: PgConnectOptions,
}

/// A `DATABASE_URL`, read.
#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    /// One host and no session attributes: read by sqlx alone, exactly as before multi-host
    /// support.
    Single(Box<PgConnectOptions>),
    /// Several hosts, or session attributes to check: tried in order.
    Hosts { candidates: Vec<Candidate>, target: Target },
}

/// Why a `DATABASE_URL` cannot be used. Messages name hosts and parameters, never the password.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("DATABASE_URL lists an empty host; every host of `host1:port1,host2:port2` needs a name")]
    EmptyHost,
    #[error("DATABASE_URL has the port `{0}`, which is not a number from 1 to 65535")]
    Port(String),
    #[error("DATABASE_URL has an unclosed `[` in the host `{0}`")]
    Bracket(String),
    #[error("DATABASE_URL names {hosts} hosts but {ports} ports: give one port for all hosts, or one per host")]
    PortCount { hosts: usize, ports: usize },
    #[error(
        "DATABASE_URL asks for target_session_attrs={0}, a server feedwatch could not write to; use read-write \
         (the usual choice with a standby), primary or any"
    )]
    UnwritableTarget(String),
    #[error("DATABASE_URL has an unknown target_session_attrs `{0}`; feedwatch accepts read-write, primary and any")]
    UnknownTarget(String),
    #[error("DATABASE_URL asks for load_balance_hosts={0}; feedwatch tries the hosts in the order given (disable)")]
    LoadBalance(String),
    #[error("DATABASE_URL sets hostaddr with several hosts; name the hosts instead")]
    HostAddrWithHosts,
    #[error("DATABASE_URL has a malformed percent-encoding in `{0}`")]
    Encoding(String),
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    Sqlx(#[from] sqlx::Error),
}

/// Reads a `DATABASE_URL`. A URL with one host and neither `target_session_attrs` nor
/// `load_balance_hosts` goes to sqlx untouched.
pub fn parse(url: &str) -> Result<DatabaseUrl, UrlError> {
    let Some(parts) = Parts::split(url) else {
        return Ok(DatabaseUrl::Single(Box::new(url.parse()?)));
    };
    if !parts.needs_own_reading() {
        return Ok(DatabaseUrl::Single(Box::new(url.parse()?)));
    }
    parts.read()
}

/// A postgres URL cut where sqlx cannot read it.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: &'a str,
    /// Raw `key=value` pairs, still encoded.
    query: Vec<(&'a str, &'a str)>,
}

impl<'a> Parts<'a> {
    /// None for anything but `postgres://` and `postgresql://` URLs (sqlx says what is wrong).
    fn split(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "postgres" && scheme != "postgresql" {
            return None;
        }
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority_end = before_query.find('/').unwrap_or(before_query.len());
        let (authority, path) = before_query.split_at(authority_end);
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let query = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .collect();
        Some(Self { scheme, userinfo, hosts, path, query })
    }

    fn needs_own_reading(&self) -> bool {
        self.hosts.contains(',')
            || self.query.iter().any(|(key, value)| {
                matches!(*key, "target_session_attrs" | "load_balance_hosts")
                    || (matches!(*key, "host" | "port") && value.contains(','))
            })
    }

    fn read(self) -> Result<DatabaseUrl, UrlError> {
        let mut target = Target::Any;
        let (mut query_hosts, mut query_ports) = (None, None);
        let mut passed_on = Vec::new();
        for &(key, value) in &self.query {
            let decoded = decode(value)?;
            match key {
                "target_session_attrs" => target = Target::parse(&decoded)?,
                "load_balance_hosts" if decoded == "disable" => {}
                "load_balance_hosts" => return Err(UrlError::LoadBalance(decoded)),
                "host" => query_hosts = Some(decoded),
                "port" => query_ports = Some(decoded),
                _ => passed_on.push((key, value)),
            }
        }
        // As in libpq, hosts and ports given as parameters win over the URL's authority.
        let mut hosts = match &query_hosts {
            Some(list) => list.split(',').map(|host| (host.to_owned(), None)).collect(),
            None if self.hosts.is_empty() => Vec::new(),
            None => self.hosts.split(',').map(authority_host).collect::<Result<Vec<_>, _>>()?,
        };
        if hosts.iter().any(|(host, _)| host.is_empty()) {
            return Err(UrlError::EmptyHost);
        }
        if let Some(list) = &query_ports {
            apply_ports(&mut hosts, list)?;
        }
        if hosts.len() > 1 && passed_on.iter().any(|(key, _)| *key == "hostaddr") {
            return Err(UrlError::HostAddrWithHosts);
        }
        let base = self.base_options(&passed_on)?;
        let candidates = if hosts.is_empty() {
            vec![Candidate { label: label(&base), options: base }]
        } else {
            hosts.into_iter().map(|(host, port)| candidate(&base, &host, port)).collect()
        };
        Ok(DatabaseUrl::Hosts { candidates, target })
    }

    /// Everything but the hosts, read by sqlx: the URL again with a placeholder host.
    fn base_options(&self, passed_on: &[(&str, &str)]) -> Result<PgConnectOptions, UrlError> {
        let userinfo = self.userinfo.map(|userinfo| format!("{userinfo}@")).unwrap_or_default();
        let query: Vec<String> = passed_on.iter().map(|(key, value)| format!("{key}={value}")).collect();
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        let url = format!("{}://{userinfo}localhost{}{query}", self.scheme, self.path);
        Ok(url.parse()?)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` from the URL's authority.
fn authority_host(text: &str) -> Result<(String, Option<u16>), UrlError> {
    let (host, port) = match text.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or_else(|| UrlError::Bracket(text.to_owned()))?;
            (address.to_owned(), after.strip_prefix(':'))
        }
        None => match text.split_once(':') {
            Some((host, port)) => (decode(host)?, Some(port)),
            None => (decode(text)?, None),
        },
    };
    Ok((host, port.map(parse_port).transpose()?))
}

fn parse_port(text: &str) -> Result<u16, UrlError> {
    text.trim().parse().ok().filter(|port| *port != 0).ok_or_else(|| UrlError::Port(text.to_owned()))
}

/// libpq's rule: one port for every host, or one per host.
fn apply_ports(hosts: &mut [(String, Option<u16>)], list: &str) -> Result<(), UrlError> {
    let ports = list.split(',').map(parse_port).collect::<Result<Vec<_>, _>>()?;
    match ports.as_slice() {
        [port] => hosts.iter_mut().for_each(|(_, slot)| *slot = Some(*port)),
        _ if ports.len() == hosts.len() => {
            hosts.iter_mut().zip(ports).for_each(|((_, slot), port)| *slot = Some(port));
        }
        _ => return Err(UrlError::PortCount { hosts: hosts.len(), ports: ports.len() }),
    }
    Ok(())
}

fn candidate(base: &PgConnectOptions, host: &str, port: Option<u16>) -> Candidate {
    let options = if host.starts_with('/') { base.clone().socket(host) } else { base.clone().host(host) };
    let options = match port {
        Some(port) => options.port(port),
        None => options,
    };
    Candidate { label: label(&options), options }
}

fn label(options: &PgConnectOptions) -> String {
    match options.get_socket() {
        Some(socket) => format!("{}:{}", socket.display(), options.get_port()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    }
}

/// Form-encoded text as sqlx reads its own parameters (`+` is a space).
fn decode(text: &str) -> Result<String, UrlError> {
    let malformed = || UrlError::Encoding(text.to_owned());
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, after)) = rest.split_first() {
        rest = after;
        match byte {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = rest.get(..2).and_then(|hex| std::str::from_utf8(hex).ok()).ok_or_else(malformed)?;
                bytes.push(u8::from_str_radix(hex, 16).map_err(|_| malformed())?);
                rest = &rest[2..];
            }
            _ => bytes.push(byte),
        }
    }
    String::from_utf8(bytes).map_err(|_| malformed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> (Vec<String>, Target) {
        match parse(url).expect("a usable URL") {
            DatabaseUrl::Hosts { candidates, target } => {
                (candidates.into_iter().map(|candidate| candidate.label).collect(), target)
            }
            DatabaseUrl::Single(options) => panic!("read as a single host: {options:?}"),
        }
    }

    fn error(url: &str) -> String {
        parse(url).expect_err("refused").to_string()
    }

    #[test]
    fn a_single_host_url_is_sqlx_s_own_reading() {
        let url = "postgres://feed:secret@db.internal:6543/feedwatch?sslmode=disable&application_name=x";
        let DatabaseUrl::Single(options) = parse(url).expect("a usable URL") else { panic!("several hosts") };
        let expected: PgConnectOptions = url.parse().expect("sqlx reads it");
        assert_eq!(format!("{options:?}"), format!("{expected:?}"));
    }

    #[test]
    fn hosts_in_the_authority_are_tried_in_order_with_their_own_ports() {
        let (labels, target) = hosts(
            "postgres://feed:secret@10.0.0.1:5432,db-b:5433,[::1]:5434/feedwatch?target_session_attrs=read-write",
        );
        assert_eq!(labels, ["10.0.0.1:5432", "db-b:5433", "::1:5434"]);
        assert_eq!(target, Target::ReadWrite);
    }

    #[test]
    fn everything_but_the_host_is_shared_by_every_candidate() {
        let url = "postgresql://feed:s%40cret@a:1,b:2/feeds?sslmode=disable&application_name=fw";
        let DatabaseUrl::Hosts { candidates, target } = parse(url).expect("a usable URL") else { panic!("single") };
        assert_eq!(target, Target::Any, "libpq's default");
        for candidate in &candidates {
            let options = &candidate.options;
            assert_eq!(options.get_username(), "feed");
            assert_eq!(options.get_database(), Some("feeds"));
            assert_eq!(options.get_application_name(), Some("fw"));
            assert!(matches!(options.get_ssl_mode(), sqlx::postgres::PgSslMode::Disable));
            assert!(format!("{options:?}").contains("s@cret"), "the password is decoded once");
        }
        assert_eq!(candidates[1].options.get_host(), "b");
    }

    #[test]
    fn hosts_and_ports_as_parameters_follow_libpq_s_rules() {
        assert_eq!(hosts("postgres://feed@/db?host=a,b&port=5432,5433").0, ["a:5432", "b:5433"]);
        assert_eq!(hosts("postgres:///db?host=a,b&port=6000").0, ["a:6000", "b:6000"]);
        assert_eq!(hosts("postgres://ignored/db?host=a,b").0.len(), 2, "parameters win over the authority");
        assert_eq!(hosts("postgres://feed@/db?host=/run/postgresql,b&port=5432,5433").0[0], "/run/postgresql:5432");
        assert_eq!(
            hosts("postgres://feed@a/db?target_session_attrs=primary"),
            (vec!["a:5432".to_owned()], Target::Primary),
            "one host with an attribute to check"
        );
        assert_eq!(hosts("postgres://a:1,b:2/db?load_balance_hosts=disable").0.len(), 2);
    }

    #[test]
    fn a_host_without_a_port_takes_the_default() {
        let labels = hosts("postgres://a,b:6000/db").0;
        assert_eq!(labels[1], "b:6000");
        assert!(labels[0].starts_with("a:"), "{labels:?}");
    }

    #[test]
    fn what_cannot_be_used_is_refused_with_the_reason() {
        assert!(error("postgres://a:1,,b:2/db").contains("empty host"));
        assert!(error("postgres://a:1,b:x/db").contains("port `x`"));
        assert!(error("postgres://a:1,b:0/db").contains("port `0`"));
        assert!(error("postgres://a:1,b:70000/db").contains("port `70000`"));
        assert!(error("postgres://[::1:1,b/db").contains("unclosed"));
        assert!(error("postgres:///db?host=a,b,c&port=1,2").contains("3 hosts but 2 ports"));
        assert!(error("postgres://a,b/db?target_session_attrs=standby").contains("could not write to"));
        assert!(error("postgres://a,b/db?target_session_attrs=prefer-standby").contains("could not write to"));
        assert!(error("postgres://a,b/db?target_session_attrs=read-only").contains("could not write to"));
        assert!(error("postgres://a,b/db?target_session_attrs=readwrite").contains("unknown target_session_attrs"));
        assert!(error("postgres://a,b/db?load_balance_hosts=random").contains("in the order given"));
        assert!(error("postgres://a,b/db?hostaddr=10.0.0.1").contains("hostaddr"));
        assert!(error("postgres://a,b/db?host=%ZZ,c").contains("percent-encoding"));
        assert!(error("postgres://a,b/db?sslmode=sometimes").contains("not a valid PostgreSQL URL"));
    }

    #[test]
    fn no_error_names_the_password() {
        for url in [
            "postgres://feed:hunter2@a:1,b:x/db",
            "postgres://feed:hunter2@a,b/db?sslmode=bogus",
            "postgres://feed:hunter2@a,b/db?target_session_attrs=nope",
        ] {
            assert!(!error(url).contains("hunter2"), "{}", error(url));
        }
    }

    #[test]
    fn targets_accept_the_servers_they_name() {
        let primary = ServerRole { in_recovery: false, read_only: false };
        let read_only_primary = ServerRole { in_recovery: false, read_only: true };
        let standby = ServerRole { in_recovery: true, read_only: true };
        assert!(Target::Any.accepts(standby));
        assert!(Target::ReadWrite.accepts(primary));
        assert!(!Target::ReadWrite.accepts(read_only_primary));
        assert!(!Target::ReadWrite.accepts(standby));
        assert!(Target::Primary.accepts(read_only_primary));
        assert!(!Target::Primary.accepts(standby));
    }
}
