//! The way to the token endpoint: its name (DNS), a TCP connection, and the proxy in effect —
//! decided exactly as the transport decides it (a configured `proxy` for every host, else
//! `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` unless `NO_PROXY` matches).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::settings::redact_userinfo;
use super::{ms, Check};
use crate::config::{Config, TokenLocation};
use crate::error::ErrorKind;
use crate::http::origin_of;

/// The server the first request goes to: the token endpoint, or the issuer for discovery.
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    pub(super) fn of(config: &Config) -> Result<Target, Box<Check>> {
        let url = match &config.location {
            TokenLocation::Url(url) => url.clone(),
            TokenLocation::Issuer(issuer) => format!("{issuer}/.well-known/openid-configuration"),
        };
        match origin_of(&url, "the token endpoint") {
            Ok(origin) => Ok(Target {
                https: origin.scheme == "https",
                host: origin.host,
                port: origin.port,
                url,
            }),
            Err(e) => Err(Box::new(Check::fail(
                "dns",
                ErrorKind::Config,
                format!("{url} is not a usable URL"),
                e.message().to_string(),
                "correct `token_url` (or `issuer`)",
            ))),
        }
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// How connections to the target are made.
pub(crate) enum Route {
    Direct {
        /// Why no proxy is used, for the proxy check.
        why: String,
    },
    Proxy(Proxy),
}

pub(crate) struct Proxy {
    /// The proxy URL with its credentials redacted.
    pub(crate) shown: String,
    /// Where it was set: "config `proxy`" or "$HTTPS_PROXY".
    pub(crate) source: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `http` (CONNECT) is the one checked; others are reported as not checked.
    pub(crate) protocol: String,
    /// `user:password` for `Proxy-Authorization: Basic`.
    pub(crate) credentials: Option<(String, String)>,
    /// A `NO_PROXY` entry that looks meant for the target but does not match it: cause, fix.
    pub(crate) near_miss: Option<(String, String)>,
}

/// The variables ureq reads for a proxy, in its order of preference.
const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

impl Route {
    pub(super) fn of(config: &Config, target: &Target) -> Route {
        Route::decide(config.proxy.as_deref(), target, &|name| {
            std::env::var(name).ok()
        })
    }

    fn decide(
        configured: Option<&str>,
        target: &Target,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Route {
        if let Some(url) = configured {
            return match Proxy::parse(url, "config `proxy`".into()) {
                Some(proxy) => Route::Proxy(proxy),
                None => Route::Direct {
                    why: "the configured `proxy` is not a usable URL".into(),
                },
            };
        }
        let Some((name, value)) = PROXY_VARS.iter().find_map(|name| {
            let value = var(name)?;
            ureq::Proxy::new(&value).ok().map(|_| (*name, value))
        }) else {
            return Route::Direct {
                why: "no proxy: `proxy` is not configured and ALL_PROXY, HTTPS_PROXY, HTTP_PROXY are unset".into(),
            };
        };
        let Some(mut proxy) = Proxy::parse(&value, format!("${name}")) else {
            return Route::Direct {
                why: format!("${name} is not a usable proxy URL"),
            };
        };
        // The transport reads NO_PROXY, and only when it is unset no_proxy (ureq's rule).
        let (no_proxy_var, no_proxy) = match var("NO_PROXY") {
            Some(v) => ("NO_PROXY", v),
            None => ("no_proxy", var("no_proxy").unwrap_or_default()),
        };
        let entries: Vec<&str> = no_proxy.split(',').filter(|e| !e.is_empty()).collect();
        if let Some(entry) = entries.iter().find(|e| no_proxy_matches(e, &target.host)) {
            return Route::Direct {
                why: format!(
                    "{no_proxy_var} entry `{entry}` matches {}: {} ({}) is not used",
                    target.host, proxy.shown, proxy.source
                ),
            };
        }
        // Entries the transport takes literally although they look like they should match.
        proxy.near_miss = entries.iter().find_map(|entry| {
            let trimmed = entry.trim();
            let without_port = trimmed.rsplit_once(':').map_or(trimmed, |(h, p)| {
                if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') {
                    h
                } else {
                    trimmed
                }
            });
            if trimmed != *entry && no_proxy_matches(trimmed, &target.host) {
                Some((
                    format!("{no_proxy_var} entry `{entry}` has spaces around it, so it does not match {}: the proxy is used", target.host),
                    format!("write {no_proxy_var} without spaces after the commas"),
                ))
            } else if without_port != trimmed && no_proxy_matches(without_port, &target.host) {
                Some((
                    format!("{no_proxy_var} entry `{entry}` names a port, so it never matches: the proxy is used for {}", target.host),
                    format!("list host names in {no_proxy_var} without ports"),
                ))
            } else if trimmed.contains('/') {
                Some((
                    format!("{no_proxy_var} entry `{entry}` is a network range, which is not supported: only names and suffixes match"),
                    format!("list the host ({}) or a suffix such as `.example.com` in {no_proxy_var}", target.host),
                ))
            } else {
                None
            }
        });
        Route::Proxy(proxy)
    }
}

/// ureq's `NO_PROXY` rule for one entry: `*` (all), `*.suffix` or `.suffix` (subdomains),
/// `prefix*` or `prefix.`, else the exact host; case-insensitive, entries not trimmed.
fn no_proxy_matches(entry: &str, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let entry = entry.to_ascii_lowercase();
    if entry == "*" {
        true
    } else if let Some(suffix) = entry.strip_prefix('*') {
        host.ends_with(suffix)
    } else if entry.starts_with('.') {
        host.ends_with(&entry)
    } else if let Some(prefix) = entry.strip_suffix('*') {
        host.starts_with(prefix)
    } else if entry.ends_with('.') {
        host.starts_with(&entry)
    } else {
        host == entry
    }
}

impl Proxy {
    fn parse(url: &str, source: String) -> Option<Proxy> {
        let proxy = ureq::Proxy::new(url).ok()?;
        let protocol = url
            .split_once("://")
            .map_or("http", |(scheme, _)| scheme)
            .to_ascii_lowercase();
        Some(Proxy {
            shown: redact_userinfo(url),
            source,
            host: proxy
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: proxy.port(),
            protocol,
            credentials: proxy
                .username()
                .map(|u| (u.to_string(), proxy.password().unwrap_or("").to_string())),
            near_miss: None,
        })
    }
}

/// The `dns` check: the target's name resolved here.
pub(super) fn dns(target: &Target, route: &Route) -> Check {
    let started = Instant::now();
    let result = (target.host.as_str(), target.port).to_socket_addrs();
    let elapsed = started.elapsed();
    match result {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            let mut shown: Vec<String> = addrs.iter().take(4).map(|a| a.ip().to_string()).collect();
            if addrs.len() > 4 {
                shown.push("…".into());
            }
            Check::pass(
                "dns",
                format!(
                    "{} → {} ({} address{}, {})",
                    target.host,
                    shown.join(", "),
                    addrs.len(),
                    if addrs.len() == 1 { "" } else { "es" },
                    ms(elapsed)
                ),
            )
            .took(elapsed)
        }
        Err(e) if matches!(route, Route::Proxy(_)) => Check::warn(
            "dns",
            format!("{} does not resolve here ({e})", target.host),
            "connections go through the proxy, which resolves the name itself; this matters only if the proxy is bypassed",
            "nothing, if the proxy check passes; otherwise check the host in the URL",
        )
        .took(elapsed),
        Err(e) => Check::fail(
            "dns",
            ErrorKind::Network,
            format!("{} does not resolve ({e})", target.host),
            "the host name is unknown to this machine's resolver: a typo in the URL, a name that exists only inside a VPN, VPC or corporate DNS, or no reachable DNS server",
            format!(
                "check the host in `{}`; compare with `nslookup {}` here and on a machine where it works",
                if target.url.contains("/.well-known/") { "issuer" } else { "token_url" },
                target.host
            ),
        )
        .took(elapsed),
    }
}

/// The `tcp` check: a direct connection to the target (skipped through a proxy).
pub(super) fn tcp(config: &Config, target: &Target, route: &Route) -> Check {
    if let Route::Proxy(proxy) = route {
        return Check::skip(
            "tcp",
            format!(
                "connections go through the proxy {} (see the proxy check)",
                proxy.shown
            ),
        );
    }
    let started = Instant::now();
    match connect(&target.host, target.port, config.connect_timeout) {
        Ok((_, addr)) => {
            let elapsed = started.elapsed();
            Check::pass("tcp", format!("connected to {addr} in {}", ms(elapsed))).took(elapsed)
        }
        Err((addr, e)) => {
            let elapsed = started.elapsed();
            let at = addr.map_or_else(|| target.authority(), |a| a.to_string());
            let check = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Check::fail(
                    "tcp",
                    ErrorKind::Network,
                    format!("{at} refused the connection"),
                    format!("nothing listens on port {} at {}: the server is down, the port in the URL is wrong, or a firewall rejects the connection", target.port, target.host),
                    "check the port in the URL and that the server runs (`curl -v` the URL from here)",
                ),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Check::fail(
                    "tcp",
                    ErrorKind::Timeout,
                    format!("no answer from {at} within {} ms", config.connect_timeout.as_millis()),
                    "packets are dropped on the way: a firewall or security group, a wrong address, or a network that only lets traffic out through a proxy",
                    "check firewall rules for this port; if this network needs a proxy, set HTTPS_PROXY (or `proxy`)",
                ),
                _ => Check::fail(
                    "tcp",
                    ErrorKind::Network,
                    format!("cannot connect to {at}: {e}"),
                    "the network path to the server is broken (no route, unreachable network)",
                    "check the address, routes and VPN; `curl -v` the URL from here",
                ),
            };
            check.took(elapsed)
        }
    }
}

/// Connect to the first address of `host:port` that accepts, each try bounded by `timeout`.
pub(crate) fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), (Option<SocketAddr>, std::io::Error)> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| (None, e))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok((stream, addr)),
            Err(e) => last = Some((Some(addr), e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        (
            None,
            std::io::Error::new(std::io::ErrorKind::NotFound, "the name has no address"),
        )
    }))
}

/// Why a stream to the target could not be opened.
pub(crate) enum StreamError {
    /// The proxy itself could not be reached.
    ProxyConnect(std::io::Error),
    /// The proxy answered the CONNECT with this status line.
    ProxyRefused(u16, String),
    /// The target could not be reached directly.
    Direct(std::io::Error),
}

/// A TCP stream to the target, directly or through the proxy's CONNECT tunnel.
pub(crate) fn open(
    config: &Config,
    target: &Target,
    route: &Route,
) -> Result<TcpStream, StreamError> {
    match route {
        Route::Direct { .. } => connect(&target.host, target.port, config.connect_timeout)
            .map(|(stream, _)| stream)
            .map_err(|(_, e)| StreamError::Direct(e)),
        Route::Proxy(proxy) => {
            let (mut stream, _) = connect(&proxy.host, proxy.port, config.connect_timeout)
                .map_err(|(_, e)| StreamError::ProxyConnect(e))?;
            let io = |e: std::io::Error| StreamError::ProxyConnect(e);
            stream
                .set_read_timeout(Some(config.request_timeout))
                .map_err(io)?;
            stream
                .set_write_timeout(Some(config.request_timeout))
                .map_err(io)?;
            let authority = target.authority();
            let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
            if let Some((user, password)) = &proxy.credentials {
                let pair = zeroize::Zeroizing::new(format!("{user}:{password}"));
                head.push_str(&format!(
                    "Proxy-Authorization: Basic {}\r\n",
                    STANDARD.encode(pair.as_bytes())
                ));
            }
            head.push_str("\r\n");
            let head = zeroize::Zeroizing::new(head);
            stream.write_all(head.as_bytes()).map_err(io)?;
            let status_line = read_head(&mut stream).map_err(io)?;
            let status = status_line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(0);
            if status == 200 {
                Ok(stream)
            } else {
                Err(StreamError::ProxyRefused(status, status_line))
            }
        }
    }
}

/// Read a response head (up to the empty line, at most 16 KiB) and return its status line.
fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the proxy's answer head is over 16 KiB",
            ));
        }
        // One byte at a time: the tunnel's first TLS bytes must stay in the socket.
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the proxy closed the connection without answering",
            ));
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

/// The `proxy` check: which proxy is in effect and whether it tunnels to the target.
pub(super) fn proxy(
    config: &Config,
    target: &Target,
    route: &Route,
    blocked: Option<&str>,
) -> Check {
    let proxy = match route {
        Route::Direct { why } => return Check::pass("proxy", why.clone()),
        Route::Proxy(proxy) => proxy,
    };
    let via = format!("{} (from {})", proxy.shown, proxy.source);
    if let Some(failed) = blocked {
        return Check::skip(
            "proxy",
            format!("{via}: not tried, the {failed} check failed"),
        );
    }
    if proxy.protocol != "http" {
        return Check::warn(
            "proxy",
            format!("{via}: a {} proxy, not checked here", proxy.protocol),
            "only http:// (CONNECT) proxies are checked by this diagnosis",
            "if requests fail, compare with `curl --proxy` the same URL",
        );
    }
    let started = Instant::now();
    let outcome = open(config, target, route);
    let elapsed = started.elapsed();
    let check = match outcome {
        Ok(_) => {
            let summary = format!("{via}: tunnel to {} opened in {}", target.authority(), ms(elapsed));
            match &proxy.near_miss {
                Some((cause, fix)) => Check::warn("proxy", summary, cause.clone(), fix.clone()),
                None => Check::pass("proxy", summary),
            }
        }
        Err(StreamError::ProxyConnect(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Check::fail(
            "proxy",
            ErrorKind::Network,
            format!("{via} refused the connection"),
            format!("nothing listens at the proxy address {}:{} (the proxy is down or the port is wrong)", proxy.host, proxy.port),
            format!("start the proxy or correct {}; if {} should be reached directly, add it to NO_PROXY (a configured `proxy` applies to every host)", proxy.source, target.host),
        ),
        Err(StreamError::ProxyConnect(e)) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => Check::fail(
            "proxy",
            ErrorKind::Timeout,
            format!("{via} did not answer in time"),
            "the proxy is unreachable from here or overloaded",
            format!("check the proxy address in {}", proxy.source),
        ),
        Err(StreamError::ProxyConnect(e)) => Check::fail(
            "proxy",
            ErrorKind::Network,
            format!("{via} failed: {e}"),
            "the proxy could not be reached or closed the connection",
            format!("check the proxy address in {}", proxy.source),
        ),
        Err(StreamError::ProxyRefused(407, line)) => Check::fail(
            "proxy",
            ErrorKind::Network,
            format!("{via} wants credentials ({line})"),
            "the proxy requires authentication (HTTP 407)",
            "put the credentials in the proxy URL: http://user:password@proxy:port",
        )
        .http(407),
        Err(StreamError::ProxyRefused(status @ (403 | 405), line)) => Check::fail(
            "proxy",
            ErrorKind::Network,
            format!("{via} refuses to tunnel to {} ({line})", target.authority()),
            "the proxy's policy does not allow this destination",
            format!("ask for {} to be allowed, or add it to NO_PROXY if it is reachable directly", target.host),
        )
        .http(status),
        Err(StreamError::ProxyRefused(status, line)) => Check::fail(
            "proxy",
            ErrorKind::Network,
            format!("{via} could not open a tunnel to {} ({line})", target.authority()),
            "the proxy itself cannot reach the server (its DNS or its firewall)",
            "check that the host resolves and is reachable from the proxy",
        )
        .http(status),
        Err(StreamError::Direct(e)) => Check::fail(
            "proxy",
            ErrorKind::Network,
            format!("{via}: {e}"),
            "the connection failed",
            "check the proxy settings",
        ),
    };
    match (&proxy.near_miss, check.status()) {
        (Some((cause, _)), super::CheckStatus::Fail) => check.detail(cause.clone()),
        _ => check,
    }
    .took(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str) -> Target {
        Target {
            url: format!("https://{host}/oauth2/token"),
            https: true,
            host: host.into(),
            port: 443,
        }
    }

    fn route(vars: &[(&str, &str)], host: &str) -> Route {
        let var = |n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        Route::decide(None, &target(host), &var)
    }

    #[test]
    fn the_proxy_is_chosen_as_the_transport_chooses_it() {
        assert!(matches!(
            route(&[], "idp.example.com"),
            Route::Direct { .. }
        ));
        let Route::Proxy(p) = route(
            &[("HTTP_PROXY", "http://u:pw@proxy:3128")],
            "idp.example.com",
        ) else {
            panic!("HTTP_PROXY applies to https URLs too");
        };
        assert_eq!(
            (p.host.as_str(), p.port, p.source.as_str()),
            ("proxy", 3128, "$HTTP_PROXY")
        );
        assert_eq!(p.shown, "http://***@proxy:3128");
        assert_eq!(p.credentials, Some(("u".into(), "pw".into())));
        let Route::Proxy(p) = route(
            &[("HTTPS_PROXY", "http://b:1"), ("ALL_PROXY", "http://a:1")],
            "idp.example.com",
        ) else {
            panic!()
        };
        assert_eq!(p.host, "a", "ALL_PROXY comes first");
        let Route::Direct { why, .. } = route(
            &[
                ("HTTPS_PROXY", "http://proxy:1"),
                ("NO_PROXY", "localhost,.example.com"),
            ],
            "idp.example.com",
        ) else {
            panic!()
        };
        assert!(
            why.contains("`.example.com` matches idp.example.com"),
            "{why}"
        );
        let configured = Route::decide(Some("http://p:9"), &target("localhost"), &|n| {
            (n == "NO_PROXY").then(|| "localhost".to_string())
        });
        assert!(
            matches!(configured, Route::Proxy(_)),
            "NO_PROXY does not apply to `proxy`"
        );
    }

    #[test]
    fn no_proxy_entries_that_look_right_but_do_not_match_are_explained() {
        for (no_proxy, expect) in [
            ("localhost, idp.example.com", "has spaces"),
            ("idp.example.com:443", "names a port"),
            ("10.0.0.0/8", "network range"),
        ] {
            let Route::Proxy(p) = route(
                &[("HTTPS_PROXY", "http://proxy:1"), ("NO_PROXY", no_proxy)],
                "idp.example.com",
            ) else {
                panic!("{no_proxy}: the transport would use the proxy")
            };
            let (cause, _) = p.near_miss.expect("explained");
            assert!(cause.contains(expect), "{no_proxy}: {cause}");
        }
        assert!(no_proxy_matches("*", "x"));
        assert!(no_proxy_matches("*.example.com", "a.example.com"));
        assert!(!no_proxy_matches(".example.com", "example.com"));
        assert!(no_proxy_matches("LOCALHOST", "localhost"));
    }
}
