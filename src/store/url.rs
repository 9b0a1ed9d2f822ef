//! The `shared_cache` URL: `redis://[[user]:password@]host[:port][/db]`, `rediss://…` (TLS) or
//! `file:///absolute/dir`, each with an optional `?timeout_ms=N`. Parsed once when the
//! configuration is built; printed only with the password replaced by `***`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// The store's own connect and per-command timeout unless `timeout_ms` says otherwise.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// A parsed `shared_cache` URL. `Debug` and `Display` redact the password.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StoreUrl {
    pub(crate) backend: Backend,
    /// Connect and per-command timeout (Redis); how long a file update may wait for another
    /// process's update of the same entry.
    pub(crate) timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    Redis(RedisAddress),
    File(PathBuf),
}

/// `Debug` shows the password as `***` (it is a [`Secret`]).
#[derive(Debug, Clone)]
pub(crate) struct RedisAddress {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) db: i64,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
}

impl PartialEq for RedisAddress {
    fn eq(&self, other: &Self) -> bool {
        let same_password = match (&self.password, &other.password) {
            (Some(a), Some(b)) => {
                crate::secret::constant_time_eq(a.expose().as_bytes(), b.expose().as_bytes())
            }
            (None, None) => true,
            _ => false,
        };
        self.tls == other.tls
            && self.host == other.host
            && self.port == other.port
            && self.db == other.db
            && self.username == other.username
            && same_password
    }
}

impl Eq for RedisAddress {}

impl StoreUrl {
    /// Parse `text`; the error names what is wrong without repeating a password.
    pub(crate) fn parse(text: &str) -> Result<StoreUrl, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| "is not a URL (expected redis://, rediss:// or file:///)".to_string())?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let timeout = parse_query(query)?;
        let backend = match scheme.to_ascii_lowercase().as_str() {
            "redis" => Backend::Redis(parse_redis(rest, false)?),
            "rediss" => Backend::Redis(parse_redis(rest, true)?),
            "file" => Backend::File(parse_file(rest)?),
            other => {
                return Err(format!(
                    "has the scheme `{other}`; use redis://, rediss:// or file:///"
                ))
            }
        };
        Ok(StoreUrl { backend, timeout })
    }

    /// The scheme, for messages that must not show more.
    pub(crate) fn scheme(&self) -> &'static str {
        match &self.backend {
            Backend::Redis(a) if a.tls => "rediss",
            Backend::Redis(_) => "redis",
            Backend::File(_) => "file",
        }
    }
}

fn parse_query(query: Option<&str>) -> Result<Duration, String> {
    let mut timeout = DEFAULT_TIMEOUT;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("timeout_ms", value)) => match value.parse::<u64>() {
                Ok(ms @ 1..=60_000) => timeout = Duration::from_millis(ms),
                _ => {
                    return Err(format!(
                        "has `timeout_ms={value}`; it must be a whole number of milliseconds from 1 to 60000"
                    ))
                }
            },
            _ => {
                let name = pair.split('=').next().unwrap_or_default();
                return Err(format!(
                    "has the unknown parameter `{name}` (only `timeout_ms` is known)"
                ));
            }
        }
    }
    Ok(timeout)
}

fn parse_redis(rest: &str, tls: bool) -> Result<RedisAddress, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = match info.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (info, None),
            };
            let user = percent_decode(user).ok_or("has a user name that is not valid UTF-8")?;
            let password = match password {
                Some(p) => Some(Secret::new(
                    percent_decode(p).ok_or("has a password that is not valid UTF-8")?,
                )),
                None => None,
            };
            ((!user.is_empty()).then_some(user), password)
        }
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("has an IPv6 address without its closing `]`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("has `[{host}]`, which is not an IPv6 address"));
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err("has text after the IPv6 address that is not a port".into());
        }
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    let bracketed = hostport.starts_with('[');
    if !bracketed
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!(
            "has the host `{host}`, which is not a host name or IP address"
        ));
    }
    let port = match port {
        None | Some("") => 6379,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("has the port `{p}`, which is not a port number"))?,
    };
    let db = match path.trim_end_matches('/') {
        "" => 0,
        n => n.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            format!("has the path `/{path}`; only a database number may follow the host")
        })?,
    };
    Ok(RedisAddress {
        tls,
        host,
        port,
        db,
        username,
        password,
    })
}

fn parse_file(rest: &str) -> Result<PathBuf, String> {
    let path = rest.strip_prefix("localhost").unwrap_or(rest).to_string();
    if !path.starts_with('/') {
        return Err("must name an absolute directory, e.g. file:///var/cache/tokenward".into());
    }
    let path = percent_decode(&path).ok_or("has a path that is not valid UTF-8")?;
    if path.split('/').any(|part| part == "..") {
        return Err("must not contain `..`".into());
    }
    Ok(PathBuf::from(path))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `text` with the password of its user information (if any) replaced by `***`, for messages
/// about a URL that may not even parse.
pub(crate) fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return "***".into();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => {
            let info = &rest[..at];
            let user = info.split_once(':').map_or(info, |(user, _)| user);
            let masked = if info.contains(':') {
                format!("{user}:***")
            } else {
                // `redis://password@host` is how some tools spell a password alone.
                "***".to_string()
            };
            format!("{scheme}://{masked}@{}", &rest[at + 1..])
        }
        None => text.to_string(),
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Redis(a) => {
                write!(f, "{}://", self.scheme())?;
                match (&a.username, &a.password) {
                    (Some(user), Some(_)) => write!(f, "{user}:***@")?,
                    (None, Some(_)) => f.write_str(":***@")?,
                    (Some(user), None) => write!(f, "{user}@")?,
                    (None, None) => {}
                }
                if a.host.contains(':') {
                    write!(f, "[{}]:{}/{}", a.host, a.port, a.db)
                } else {
                    write!(f, "{}:{}/{}", a.host, a.port, a.db)
                }
            }
            Backend::File(dir) => write!(f, "file://{}", dir.display()),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(text: &str) -> RedisAddress {
        match StoreUrl::parse(text).unwrap().backend {
            Backend::Redis(a) => a,
            Backend::File(_) => panic!("not redis: {text}"),
        }
    }

    #[test]
    fn redis_urls_parse_with_defaults() {
        let a = redis("redis://cache.internal");
        assert_eq!(
            (a.tls, a.host.as_str(), a.port, a.db),
            (false, "cache.internal", 6379, 0)
        );
        assert!(a.username.is_none() && a.password.is_none());
        let a = redis("rediss://app:p%40ss@10.0.0.5:6380/3");
        assert_eq!(
            (a.tls, a.host.as_str(), a.port, a.db),
            (true, "10.0.0.5", 6380, 3)
        );
        assert_eq!(a.username.as_deref(), Some("app"));
        assert_eq!(a.password.as_ref().map(|p| p.expose()), Some("p@ss"));
        let a = redis("redis://:hunter2@[::1]:7000/");
        assert_eq!((a.host.as_str(), a.port), ("::1", 7000));
        assert!(a.username.is_none());
        assert_eq!(a.password.as_ref().map(|p| p.expose()), Some("hunter2"));
    }

    #[test]
    fn the_timeout_comes_from_the_query() {
        let url = StoreUrl::parse("redis://h?timeout_ms=40").unwrap();
        assert_eq!(url.timeout, Duration::from_millis(40));
        assert_eq!(
            StoreUrl::parse("file:///tmp/x").unwrap().timeout,
            DEFAULT_TIMEOUT
        );
        for bad in [
            "redis://h?timeout_ms=0",
            "redis://h?timeout_ms=x",
            "redis://h?ttl=5",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_urls_need_an_absolute_path() {
        let url = StoreUrl::parse("file:///var/cache/tw%20x").unwrap();
        assert_eq!(url.backend, Backend::File(PathBuf::from("/var/cache/tw x")));
        let url = StoreUrl::parse("file://localhost/srv").unwrap();
        assert_eq!(url.backend, Backend::File(PathBuf::from("/srv")));
        for bad in ["file://relative/dir", "file:///a/../b", "file:"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_redis_urls_are_refused_without_the_password() {
        for bad in [
            "redis://:secret@",
            "redis://:secret@host:99999",
            "redis://:secret@host/x",
            "redis://:secret@[::1",
            "redis://:secret@ho st",
            "memcached://:secret@host",
            "secret",
        ] {
            let e = StoreUrl::parse(bad).unwrap_err();
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
    }

    #[test]
    fn passwords_never_print() {
        let url = StoreUrl::parse("rediss://app:hunter2@cache:6380/1").unwrap();
        assert_eq!(url.to_string(), "rediss://app:***@cache:6380/1");
        assert_eq!(format!("{url:?}"), "\"rediss://app:***@cache:6380/1\"");
        let url = StoreUrl::parse("redis://:hunter2@[::1]").unwrap();
        assert_eq!(url.to_string(), "redis://:***@[::1]:6379/0");
        assert_eq!(
            redact("redis://u:hunter2@h:1/0?x=1"),
            "redis://u:***@h:1/0?x=1"
        );
        assert_eq!(redact("redis://hunter2@h"), "redis://***@h");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("hunter2"), "***");
    }
}
