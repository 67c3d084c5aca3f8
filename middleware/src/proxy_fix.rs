//! Proxy fix: take the client's address, scheme and host from a trusted reverse proxy's headers.
//!
//! Behind nginx, `REMOTE_ADDR` is the proxy and the scheme is the proxy's plain HTTP; the real values
//! travel in `X-Forwarded-For`, `-Proto`, `-Host` (and optionally `-Port`, `-Prefix`), or in RFC 7239's
//! `Forwarded`. Clients can send those headers too, so they are believed **only** when the peer
//! (`REMOTE_ADDR`) is in the trusted set — gunicorn's `forwarded_allow_ips`, by default `127.0.0.1` and
//! `::1` — and only the entries the trusted proxies added: with `hops(n)` (default 1, one proxy), the
//! `n`-th value from the right of each list.
//!
//! What is set: `REMOTE_ADDR` (and `REMOTE_PORT`, to the forwarded port or absent), `rgi.url_scheme`
//! (so `HTTPS`), `HTTP_HOST`, `SERVER_NAME`, `SERVER_PORT`, and with [`ProxyFixLayer::x_prefix`],
//! `SCRIPT_NAME`. The peer's own address is kept in a [`ProxyPeer`] extension.
//!
//! A malformed value (an address that is not one, `for=unknown`, a list shorter than the hop count, a
//! host with spaces) is ignored — that field keeps its value, and a debug message goes to the `log`
//! crate — never a 500.
//!
//! Only one header family is read: `X-Forwarded-*` by default, `Forwarded` with
//! [`ProxyFixLayer::forwarded`]. A proxy that sets one family passes the other through as the client
//! sent it, so reading both would let the client choose.
//!
//! ```
//! use rgi::ApplicationExt;
//! use rgi_middleware::proxy_fix::ProxyFixLayer;
//!
//! let app = rgi::app_fn(|environ, start| async move {
//!     let (addr, _) = environ.remote_addr().unwrap();
//!     start.text(format!("{} {}", String::from_utf8_lossy(addr), environ.url_scheme().as_str()))
//! })
//! .layer(ProxyFixLayer::new()); // trusts 127.0.0.1 and ::1, one hop
//!
//! let client = rgi::testing::TestClient::new(app); // the test client's peer is 127.0.0.1
//! let response = client
//!     .get("/")
//!     .header("x-forwarded-for", "203.0.113.7")
//!     .header("x-forwarded-proto", "https")
//!     .send_blocking();
//! assert_eq!(response.text(), "203.0.113.7 https");
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use http::header::{HeaderName, HeaderValue};
use http::uri::Authority;
use ipnet::IpNet;
use rgi::{Application, Environ, Layer, Reply, Scheme, StartResponse};

/// The peer that sent the forwarding headers (the proxy), when [`ProxyFix`] rewrote `REMOTE_ADDR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyPeer(pub IpAddr);

/// A trusted-address list that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTrustedAddress(pub String);

impl fmt::Display for BadTrustedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "proxy_fix: {:?} is not an IP address, a CIDR block or `*`",
            self.0
        )
    }
}

impl std::error::Error for BadTrustedAddress {}

/// Which proxies are believed.
#[derive(Debug, Clone)]
enum Trusted {
    Any,
    Nets(Vec<IpNet>),
}

impl Trusted {
    fn contains(&self, ip: IpAddr) -> bool {
        match self {
            Trusted::Any => true,
            // An IPv4-mapped IPv6 peer (`::ffff:127.0.0.1`, from a dual-stack socket) is its IPv4 self.
            Trusted::Nets(nets) => {
                let ip = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                    v4 => v4,
                };
                nets.iter().any(|n| n.contains(&ip))
            }
        }
    }
}

/// Which headers to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    XForwarded,
    Forwarded,
}

#[derive(Debug, Clone)]
struct Config {
    trusted: Trusted,
    hops: usize,
    family: Family,
    x_for: bool,
    x_proto: bool,
    x_host: bool,
    x_port: bool,
    x_prefix: bool,
}

/// Configures and makes [`ProxyFix`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ProxyFixLayer {
    config: Arc<Config>,
}

impl Default for ProxyFixLayer {
    fn default() -> Self {
        ProxyFixLayer::new()
    }
}

impl ProxyFixLayer {
    /// Trust `127.0.0.1` and `::1`, one hop, `X-Forwarded-For`, `-Proto` and `-Host`.
    pub fn new() -> Self {
        let loopback = ["127.0.0.1/32", "::1/128"]
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        ProxyFixLayer {
            config: Arc::new(Config {
                trusted: Trusted::Nets(loopback),
                hops: 1,
                family: Family::XForwarded,
                x_for: true,
                x_proto: true,
                x_host: true,
                x_port: false,
                x_prefix: false,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// Trust these peers, as gunicorn's `forwarded_allow_ips`: a comma-separated list of addresses and
    /// CIDR blocks (`10.0.0.0/8, 192.168.1.5, fd00::/8`), or `*` for every peer (only when nothing but
    /// the proxy can reach the server, e.g. a unix socket).
    ///
    /// # Errors
    ///
    /// [`BadTrustedAddress`] for an entry that is neither.
    pub fn trusted(self, list: &str) -> Result<Self, BadTrustedAddress> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                return Ok(self.edit(|c| c.trusted = Trusted::Any));
            }
            let net = IpNet::from_str(entry)
                .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                .map_err(|_| BadTrustedAddress(entry.to_owned()))?;
            nets.push(net);
        }
        Ok(self.edit(|c| c.trusted = Trusted::Nets(nets)))
    }

    /// How many proxies in front append to the lists (default 1): the client is the `hops`-th entry
    /// from the right. Values are taken only from lists with at least that many entries.
    pub fn hops(self, hops: usize) -> Self {
        self.edit(|c| c.hops = hops.max(1))
    }

    /// Read RFC 7239 `Forwarded` (`for`, `proto`, `host`) instead of the `X-Forwarded-*` headers.
    pub fn forwarded(self) -> Self {
        self.edit(|c| c.family = Family::Forwarded)
    }

    /// Read `X-Forwarded-For` (default on).
    pub fn x_for(self, on: bool) -> Self {
        self.edit(|c| c.x_for = on)
    }

    /// Read `X-Forwarded-Proto` (default on).
    pub fn x_proto(self, on: bool) -> Self {
        self.edit(|c| c.x_proto = on)
    }

    /// Read `X-Forwarded-Host` (default on).
    pub fn x_host(self, on: bool) -> Self {
        self.edit(|c| c.x_host = on)
    }

    /// Read `X-Forwarded-Port` (default off): sets `SERVER_PORT` and the port in `HTTP_HOST`.
    pub fn x_port(self, on: bool) -> Self {
        self.edit(|c| c.x_port = on)
    }

    /// Read `X-Forwarded-Prefix` (default off): the path the proxy mounts the application under
    /// becomes the front of `SCRIPT_NAME`, so generated URLs include it.
    pub fn x_prefix(self, on: bool) -> Self {
        self.edit(|c| c.x_prefix = on)
    }
}

impl<A> Layer<A> for ProxyFixLayer {
    type Service = ProxyFix<A>;

    fn layer(&self, inner: A) -> ProxyFix<A> {
        ProxyFix {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The middleware made by [`ProxyFixLayer`].
#[derive(Debug, Clone)]
pub struct ProxyFix<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A: Application> Application for ProxyFix<A> {
    fn call(
        &self,
        mut environ: Environ,
        start: StartResponse,
    ) -> impl std::future::Future<Output = Reply> + Send {
        apply(&self.config, &mut environ);
        self.inner.call(environ, start)
    }
}

/// What the trusted proxy said about the client.
#[derive(Debug, Default)]
struct Forward {
    addr: Option<(IpAddr, Option<u16>)>,
    scheme: Option<Scheme>,
    host: Option<Authority>,
    port: Option<u16>,
    prefix: Option<Vec<u8>>,
}

fn apply(config: &Config, environ: &mut Environ) {
    let Some(peer) = environ
        .remote_addr()
        .and_then(|(a, _)| std::str::from_utf8(a).ok()?.parse::<IpAddr>().ok())
    else {
        return;
    };
    if !config.trusted.contains(peer) {
        return;
    }
    let forward = match config.family {
        Family::XForwarded => read_x_forwarded(config, environ),
        Family::Forwarded => read_forwarded(config.hops, environ),
    };
    if let Some((ip, port)) = forward.addr {
        let _ = environ.set("REMOTE_ADDR", ip.to_string());
        let _ = environ.set(
            "REMOTE_PORT",
            port.map(|p| p.to_string()).unwrap_or_default(),
        );
        environ.extensions_mut().insert(ProxyPeer(peer));
    }
    if let Some(scheme) = forward.scheme {
        environ.set_url_scheme(scheme);
    }
    let port = forward
        .port
        .or_else(|| forward.host.as_ref().and_then(Authority::port_u16));
    if let Some(host) = &forward.host {
        let _ = environ.set("SERVER_NAME", host.host().to_owned());
        let port = port.unwrap_or_else(|| environ.url_scheme().default_port());
        let _ = environ.set("SERVER_PORT", port.to_string());
    } else if let Some(port) = port {
        let _ = environ.set("SERVER_PORT", port.to_string());
    }
    if forward.host.is_some() || forward.port.is_some() {
        let host = forward
            .host
            .as_ref()
            .map(|h| h.host().to_owned())
            .unwrap_or_else(|| String::from_utf8_lossy(environ.server_name()).into_owned());
        let port = environ.server_port();
        let value = if port == environ.url_scheme().default_port() {
            host
        } else {
            format!("{host}:{port}")
        };
        let _ = environ.set("HTTP_HOST", value);
    }
    if let Some(prefix) = forward.prefix {
        let mut script_name = prefix;
        script_name.extend_from_slice(environ.script_name());
        let path_info = environ.path_info().to_vec();
        if environ.set_path(script_name, path_info).is_err() {
            log::debug!("proxy_fix: X-Forwarded-Prefix makes an invalid SCRIPT_NAME; ignored");
        }
    }
}

// The headers read, as `HeaderName`s: a lookup by `&str` parses and validates the name on every
// request before hashing it.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The `hops`-th comma-separated value from the right of header `name` (all its lines joined).
fn nth_from_right(environ: &Environ, name: &HeaderName, hops: usize) -> Option<String> {
    let mut values = Vec::new();
    for line in environ.headers().get_all(name) {
        let Ok(text) = line.to_str() else {
            log::debug!("proxy_fix: {name} is not ASCII; ignored");
            return None;
        };
        values.extend(text.split(',').map(str::trim));
    }
    if values.is_empty() {
        return None;
    }
    if values.len() < hops {
        log::debug!(
            "proxy_fix: {name} has {} values, fewer than {hops} hops; ignored",
            values.len()
        );
        return None;
    }
    Some(values[values.len() - hops].to_owned())
}

fn read_x_forwarded(config: &Config, environ: &Environ) -> Forward {
    let hops = config.hops;
    let get =
        |on: bool, name: &HeaderName| on.then(|| nth_from_right(environ, name, hops)).flatten();
    Forward {
        addr: get(config.x_for, &X_FORWARDED_FOR).and_then(|v| parse_node(&v)),
        scheme: get(config.x_proto, &X_FORWARDED_PROTO).and_then(|v| parse_scheme(&v)),
        host: get(config.x_host, &X_FORWARDED_HOST).and_then(|v| parse_host(&v)),
        port: get(config.x_port, &X_FORWARDED_PORT).and_then(|v| {
            let port = v.parse::<u16>().ok().filter(|&p| p != 0);
            if port.is_none() {
                log::debug!("proxy_fix: X-Forwarded-Port {v:?} is not a port; ignored");
            }
            port
        }),
        prefix: get(config.x_prefix, &X_FORWARDED_PREFIX).and_then(|v| parse_prefix(&v)),
    }
}

/// RFC 7239: `Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8::1]:4711"`.
fn read_forwarded(hops: usize, environ: &Environ) -> Forward {
    let Some(element) = nth_from_right(environ, &http::header::FORWARDED, hops) else {
        return Forward::default();
    };
    let mut forward = Forward::default();
    for pair in split_unquoted(&element, ';') {
        let Some((key, value)) = pair.split_once('=') else {
            log::debug!("proxy_fix: Forwarded pair {pair:?} has no `=`; element ignored");
            return Forward::default();
        };
        let Some(value) = unquote(value.trim()) else {
            log::debug!("proxy_fix: Forwarded value {value:?} is badly quoted; element ignored");
            return Forward::default();
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "for" => forward.addr = parse_node(&value),
            "proto" => forward.scheme = parse_scheme(&value),
            "host" => forward.host = parse_host(&value),
            _ => {}
        }
    }
    forward
}

/// Split on `sep` outside double quotes (a quoted IPv6 `for` contains `:` and maybe `;` never, but
/// quoted strings may contain either).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts.retain(|p| !p.is_empty());
    parts
}

/// A token or an RFC 9110 quoted string; `None` when the quotes do not match.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains('"')).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// A client address: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
/// RFC 7239's `unknown` and obfuscated `_names` are not addresses: ignored.
fn parse_node(value: &str) -> Option<(IpAddr, Option<u16>)> {
    let parsed = if let Ok(ip) = value.parse::<IpAddr>() {
        Some((ip, None))
    } else if let Some(rest) = value.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        Some((ip.parse::<IpAddr>().ok()?, port))
    } else {
        value
            .rsplit_once(':')
            .and_then(|(ip, port)| Some((ip.parse::<IpAddr>().ok()?, Some(port.parse().ok()?))))
    };
    if parsed.is_none() {
        log::debug!("proxy_fix: {value:?} is not a client address; ignored");
    }
    parsed
}

fn parse_scheme(value: &str) -> Option<Scheme> {
    if value.eq_ignore_ascii_case("https") {
        Some(Scheme::Https)
    } else if value.eq_ignore_ascii_case("http") {
        Some(Scheme::Http)
    } else {
        log::debug!("proxy_fix: scheme {value:?} is neither http nor https; ignored");
        None
    }
}

/// A `Host`-shaped authority: a host and an optional port, no user info.
fn parse_host(value: &str) -> Option<Authority> {
    let host = Authority::from_str(value)
        .ok()
        .filter(|a| !a.as_str().contains('@') && !a.host().is_empty())
        .filter(|a| HeaderValue::from_str(a.as_str()).is_ok());
    if host.is_none() {
        log::debug!("proxy_fix: host {value:?} is not a host[:port]; ignored");
    }
    host
}

/// A path prefix: starts with `/`, percent-decoded, no `..` or `.` segments, no NUL; trailing `/` cut.
fn parse_prefix(value: &str) -> Option<Vec<u8>> {
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(value).collect();
    let ok = decoded.starts_with(b"/")
        && !decoded.contains(&0)
        && !decoded
            .split(|&b| b == b'/')
            .any(|seg| seg == b".." || seg == b".");
    if !ok {
        log::debug!("proxy_fix: prefix {value:?} is not an absolute path; ignored");
        return None;
    }
    let mut prefix = decoded;
    while prefix.last() == Some(&b'/') {
        prefix.pop();
    }
    Some(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::convert::ConnInfo;
    use rgi::testing::{TestClient, TestRequest};
    use rgi::ApplicationExt;

    /// Echoes what the application sees.
    fn seen() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            let var = |k| {
                environ
                    .get(k)
                    .map_or("-".to_owned(), |v| v.to_string_lossy().into_owned())
            };
            let peer = environ
                .extensions()
                .get::<ProxyPeer>()
                .map_or("-".to_owned(), |p| p.0.to_string());
            start.text(format!(
                "{} {} {} {} {} {} {} {}",
                var("REMOTE_ADDR"),
                var("REMOTE_PORT"),
                var("rgi.url_scheme"),
                var("HTTP_HOST"),
                var("SERVER_NAME"),
                var("SERVER_PORT"),
                var("SCRIPT_NAME"),
                peer
            ))
        })
    }

    fn client(layer: ProxyFixLayer) -> TestClient<ProxyFix<impl Application>> {
        TestClient::new(seen().layer(layer))
    }

    fn from(peer: &str, layer: ProxyFixLayer) -> TestClient<ProxyFix<impl Application>> {
        client(layer).with_conn(ConnInfo {
            remote: Some(peer.parse().unwrap()),
            ..ConnInfo::default()
        })
    }

    fn text<A: Application>(request: TestRequest<A>) -> String {
        request
            .header("host", "proxy.local:8000")
            .send_blocking()
            .text()
    }

    const UNTOUCHED: &str = "127.0.0.1 0 http proxy.local:8000 proxy.local 8000  -";

    #[test]
    fn x_forwarded_headers_from_a_trusted_peer() {
        let c = client(ProxyFixLayer::new());
        let r = text(
            c.get("/")
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
                .header("x-forwarded-proto", "HTTPS")
                .header("x-forwarded-host", "example.com"),
        );
        assert_eq!(
            r,
            "203.0.113.7 - https example.com example.com 443  127.0.0.1"
        );
        let r = text(c.get("/").header("x-forwarded-host", "example.com:8443"));
        assert_eq!(r, "127.0.0.1 0 http example.com:8443 example.com 8443  -");
    }

    #[test]
    fn untrusted_peers_are_ignored() {
        let c = from("192.0.2.9:5000", ProxyFixLayer::new());
        let r = text(
            c.get("/")
                .header("x-forwarded-for", "203.0.113.7")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "evil.example"),
        );
        assert_eq!(
            r,
            "192.0.2.9 5000 http proxy.local:8000 proxy.local 8000  -"
        );
    }

    #[test]
    fn trusted_cidrs_and_star() {
        let layer = ProxyFixLayer::new()
            .trusted("10.0.0.0/8, 192.0.2.9")
            .unwrap();
        let r = text(
            from("10.1.2.3:1", layer.clone())
                .get("/")
                .header("x-forwarded-for", "203.0.113.7"),
        );
        assert!(r.starts_with("203.0.113.7 "), "{r}");
        let r = text(
            from("192.0.2.9:1", layer.clone())
                .get("/")
                .header("x-forwarded-for", "203.0.113.7"),
        );
        assert!(r.starts_with("203.0.113.7 "), "{r}");
        let r = text(
            from("127.0.0.1:1", layer)
                .get("/")
                .header("x-forwarded-for", "203.0.113.7"),
        );
        assert!(
            r.starts_with("127.0.0.1 "),
            "loopback is no longer trusted: {r}"
        );
        let any = ProxyFixLayer::new().trusted("*").unwrap();
        let r = text(
            from("[2001:db8::5]:1", any)
                .get("/")
                .header("x-forwarded-for", "203.0.113.7"),
        );
        assert!(r.starts_with("203.0.113.7 "), "{r}");
        // A dual-stack socket's IPv4-mapped loopback is loopback.
        let r = text(
            from("[::ffff:127.0.0.1]:1", ProxyFixLayer::new())
                .get("/")
                .header("x-forwarded-for", "203.0.113.7"),
        );
        assert!(r.starts_with("203.0.113.7 "), "{r}");
        assert!(ProxyFixLayer::new().trusted("10.0.0.0/33").is_err());
        assert!(ProxyFixLayer::new().trusted("localhost").is_err());
    }

    #[test]
    fn hops_pick_from_the_right_and_short_lists_are_ignored() {
        let c = client(ProxyFixLayer::new().hops(2));
        let r = text(
            c.get("/")
                .header("x-forwarded-for", "198.51.100.1, 203.0.113.7, 10.0.0.2"),
        );
        assert!(r.starts_with("203.0.113.7 "), "{r}");
        // Two header lines are one list.
        let r = text(
            c.get("/")
                .header("x-forwarded-for", "203.0.113.7")
                .header("x-forwarded-for", "10.0.0.2"),
        );
        assert!(r.starts_with("203.0.113.7 "), "{r}");
        let r = text(c.get("/").header("x-forwarded-for", "10.0.0.2"));
        assert_eq!(r, UNTOUCHED);
    }

    #[test]
    fn malformed_x_forwarded_values_are_ignored_one_by_one() {
        let c = client(ProxyFixLayer::new().x_port(true));
        for (name, value) in [
            ("x-forwarded-for", "not-an-ip"),
            ("x-forwarded-for", "unknown"),
            ("x-forwarded-for", "[::1"),
            ("x-forwarded-for", "1.2.3.4:99999"),
            ("x-forwarded-for", ""),
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "a b"),
            ("x-forwarded-host", "user@host"),
            ("x-forwarded-host", ""),
            ("x-forwarded-port", "0"),
            ("x-forwarded-port", "http"),
        ] {
            let r = c
                .get("/")
                .header("host", "proxy.local:8000")
                .header(name, value)
                .send_blocking();
            assert_eq!(r.status(), 200);
            assert_eq!(r.text(), UNTOUCHED, "{name}: {value:?}");
        }
        let r = text(
            c.get("/")
                .header("x-forwarded-for", "garbage")
                .header("x-forwarded-proto", "https"),
        );
        assert_eq!(
            r, "127.0.0.1 0 https proxy.local:8000 proxy.local 8000  -",
            "the good field still applies"
        );
    }

    #[test]
    fn port_and_prefix_when_enabled() {
        let c = client(ProxyFixLayer::new().x_port(true).x_prefix(true));
        let r = text(
            c.get("/")
                .header("x-forwarded-host", "example.com")
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-port", "8443")
                .header("x-forwarded-prefix", "/app/"),
        );
        assert_eq!(
            r,
            "127.0.0.1 0 https example.com:8443 example.com 8443 /app -"
        );
        for bad in ["app", "/a/../b", "/a%00"] {
            let r = text(c.get("/").header("x-forwarded-prefix", bad));
            assert_eq!(r, UNTOUCHED, "{bad}");
        }
        // Off by default.
        let r = text(
            client(ProxyFixLayer::new())
                .get("/")
                .header("x-forwarded-prefix", "/app"),
        );
        assert_eq!(r, UNTOUCHED);
    }

    #[test]
    fn rfc7239_forwarded() {
        let c = client(ProxyFixLayer::new().forwarded());
        let r = text(c.get("/").header(
            "forwarded",
            r#"for=198.51.100.1, for="[2001:db8:cafe::17]:4711";proto=https;host="example.com";by=10.0.0.1"#,
        ));
        assert_eq!(
            r,
            "2001:db8:cafe::17 4711 https example.com example.com 443  127.0.0.1"
        );
        // X-Forwarded-* are not read in this mode.
        let r = text(c.get("/").header("x-forwarded-for", "203.0.113.7"));
        assert_eq!(r, UNTOUCHED);
        // Nor Forwarded in the default mode.
        let r = text(
            client(ProxyFixLayer::new())
                .get("/")
                .header("forwarded", "for=203.0.113.7"),
        );
        assert_eq!(r, UNTOUCHED);
    }

    #[test]
    fn malformed_forwarded_elements_are_ignored() {
        let c = client(ProxyFixLayer::new().forwarded());
        for bad in [
            "for",
            "for=unknown",
            "for=_hidden",
            r#"for="[2001:db8::1"#,
            r#"for="1.2.3.4;proto=https"#,
            "for=1.2.3.4;proto",
            "proto=ftp",
            r#"host="a b""#,
            ";;;",
            ",",
        ] {
            let r = c
                .get("/")
                .header("host", "proxy.local:8000")
                .header("forwarded", bad)
                .send_blocking();
            assert_eq!(
                (r.status().as_u16(), r.text()),
                (200, UNTOUCHED.to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_ascii_headers_are_ignored() {
        let c = client(ProxyFixLayer::new());
        let r = c
            .get("/")
            .header("host", "proxy.local:8000")
            .header(
                "x-forwarded-for",
                http::HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap(),
            )
            .send_blocking();
        assert_eq!(r.text(), UNTOUCHED);
    }
}
