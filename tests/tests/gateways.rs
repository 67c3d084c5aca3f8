//! The parity matrix: one table of requests, sent with curl (or a raw socket) through every gateway
//! RGI supports — behind real nginx and lighttpd started by the test — and compared, key by key,
//! with what the same `testapp` binary sees and answers when curl talks HTTP to it directly.
//!
//! | column | path |
//! |---|---|
//! | `direct` | curl → RGI HTTP (the reference) |
//! | `ngx-http` | nginx `proxy_pass` → RGI HTTP |
//! | `ngx-fcgi` | nginx `fastcgi_pass` (TCP, `fastcgi_keep_conn off`) → RGI FastCGI |
//! | `ngx-fcgi-ka` | nginx `fastcgi_pass` (TCP, `fastcgi_keep_conn on`, upstream `keepalive`) → RGI FastCGI |
//! | `ngx-fcgi-unix` | nginx `fastcgi_pass unix:` → RGI FastCGI on a unix socket |
//! | `ngx-scgi` | nginx `scgi_pass` → RGI SCGI |
//! | `ngx-uwsgi` | nginx `uwsgi_pass` → RGI uwsgi |
//! | `lty-cgi` | lighttpd `mod_cgi` → RGI as a CGI program |
//! | `lty-fcgi` | lighttpd `mod_fastcgi` `bin-path` → RGI FastCGI on the socket lighttpd passes on fd 0 |
//! | `apa-http` | Apache `mod_proxy_http` (`ProxyPass / http://…`) → RGI HTTP |
//! | `apa-fcgi` | Apache `mod_proxy_fcgi` (`ProxyPass / fcgi://…`) → RGI FastCGI |
//! | `apa-scgi` | Apache `mod_proxy_scgi` → RGI SCGI |
//! | `apa-uwsgi` | Apache `mod_proxy_uwsgi` → RGI uwsgi |
//! | `apa-fcgi-unix`, `apa-scgi-unix`, `apa-uwsgi-unix` | the same over a unix socket (`ProxyPass /app/ "unix:/…/rgi.sock\|fcgi://localhost/"`) |
//! | `apa-cgi` | Apache `mod_cgid` (`ScriptAlias`) → RGI as a CGI program |
//!
//! nginx uses the **stock** `fastcgi_params`, `scgi_params` and `uwsgi_params`; each gateway also
//! mounts a second copy of the app at `/app` (started with `--script-name /app`). Apache's
//! `mod_proxy_fcgi`, `mod_proxy_scgi` and `mod_proxy_uwsgi` columns mount **one** RGI server, started
//! without `--script-name`, both at `/` and at `/app` (`ProxyPass /app/ fcgi://…/`): the server
//! derives `SCRIPT_NAME=/app` from what Apache sends, with no flag.
//!
//! Each answer is reduced to *facts* — `status`, the app-controlled response headers (`hdr …`), the
//! body or, for the `demo` JSON, every environ key (`env …`) plus `body_len`/`body_sha256` — and every
//! fact must equal direct HTTP's, except those listed as [`Allowed`] differences (globally in
//! `ALWAYS_DIFFERENT`, per gateway, or per row), each with its reason; rows also carry absolute
//! expectations. Rows a front server refuses by itself show as `n/a` (`FRONT_SERVER_REFUSES`);
//! rows failing on a reported bug show as `✗*` without failing the test (`KNOWN_BUGS`, empty now).
//!
//! One `#[test]` per gateway (each starts its servers once and loops over the rows). Run with
//! `cargo test -p rgi-tests --test gateways -- --nocapture` to see the matrix (also written to
//! `target/rgi-parity-matrix.md`) and each gateway's allowed differences. `RGI_PRINT_FACTS=1` prints
//! every fact, `RGI_PRINT_LOGS=1` the front server's log on a mismatch, `RGI_KEEP_TEMP=1` keeps the
//! configs and logs, `RGI_SKIP_WEBSERVERS=1` skips the nginx/lighttpd columns.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rgi_tests::webservers::{self, lighttpd_quote, Apache, Lighttpd, Nginx, TempDir};
use rgi_tests::{binary, sha256_hex, Server};

/// The Host header every request carries (nginx's `server_name`, so `$host` equals it too).
const HOST: &str = "rgi.test";

/// The binary under test: `demo` for unknown paths plus the routes the rows need.
const APP: &str = "testapp";

/// Size of the big upload.
const BIG: usize = 10 << 20;

/// Size of the chunked upload.
const CHUNKED: usize = 300 << 10;

/// A fact allowed to differ from direct HTTP: any difference, or only one pair of values.
#[derive(Debug, Clone, Copy)]
struct Allowed {
    key: &'static str,
    /// `Some((direct, gateway))`: only this difference is allowed.
    only: Option<(&'static str, &'static str)>,
    reason: &'static str,
}

/// `key` may differ in any way.
const fn any(key: &'static str, reason: &'static str) -> Allowed {
    Allowed {
        key,
        only: None,
        reason,
    }
}

/// `key` may be `gateway` where direct HTTP has `direct` (and must otherwise be equal).
const fn only(
    key: &'static str,
    direct: &'static str,
    gateway: &'static str,
    reason: &'static str,
) -> Allowed {
    Allowed {
        key,
        only: Some((direct, gateway)),
        reason,
    }
}

impl Allowed {
    fn allows(&self, key: &str, want: &str, have: &str) -> bool {
        self.key == key && self.only.is_none_or(|(w, h)| w == want && h == have)
    }
}

const CGI_EXTRA: &str = "a CGI extra the front server adds (not in direct HTTP)";
const HOP: &str = "hop-by-hop: consumed by the front server";

/// Facts that legitimately differ between any gateway and direct HTTP.
const ALWAYS_DIFFERENT: &[Allowed] = &[
    any(
        "env SERVER_SOFTWARE",
        "names the server that talks to the app",
    ),
    any(
        "env SERVER_PORT",
        "the front server's port (direct HTTP derives it from Host)",
    ),
    any("env REMOTE_PORT", "an ephemeral client port"),
    any("env SERVER_ADDR", CGI_EXTRA),
    any("env DOCUMENT_ROOT", CGI_EXTRA),
    any("env DOCUMENT_URI", CGI_EXTRA),
    any("env REQUEST_SCHEME", CGI_EXTRA),
    any("env REDIRECT_STATUS", CGI_EXTRA),
    any("env SCRIPT_FILENAME", CGI_EXTRA),
    any("env PATH_TRANSLATED", CGI_EXTRA),
    any("env CONTEXT_DOCUMENT_ROOT", CGI_EXTRA),
    any("env CONTEXT_PREFIX", CGI_EXTRA),
    any("env SERVER_ADMIN", CGI_EXTRA),
    any("env SERVER_SIGNATURE", CGI_EXTRA),
    any(
        "env PATH",
        "a CGI extra: the front server's own PATH (Apache)",
    ),
    any("env SCGI", "the SCGI protocol marker"),
    any("env HTTP_CONNECTION", HOP),
    any("env HTTP_KEEP_ALIVE", HOP),
    any("env HTTP_TE", HOP),
    any(
        "env HTTP_TRANSFER_ENCODING",
        "hop-by-hop: the front server de-chunks the body",
    ),
    any(
        "env HTTP_EXPECT",
        "hop-by-hop: the front server answers 100-continue itself",
    ),
];

/// A chunked upload arrives de-chunked, with a length.
const DECHUNKED: &[Allowed] = &[any(
    "env CONTENT_LENGTH",
    "a front server that buffers the body de-chunks it and sets CONTENT_LENGTH (RFC 3875 §4.1.2)",
)];

/// SCGI and lighttpd always send CONTENT_LENGTH, "0" when there is no body.
const ZERO_LENGTH: Allowed = only(
    "env CONTENT_LENGTH",
    "<absent>",
    "0",
    "the front server always sends CONTENT_LENGTH (\"0\" without a body): no body and an empty \
     body cannot be told apart",
);

/// Rows that fail on a gateway because of a reported, not yet fixed bug: (gateway, row, bug). They
/// still run and show as `✗*` in the matrix, but do not fail the test; when one passes, the test
/// says so, and the entry should be removed.
const KNOWN_BUGS: &[(&str, &str, &str)] = &[
    // Fixed in 0732bc2: repeated request headers over FastCGI/uwsgi kept only the last value, and
    // SCGI answered 400 to the duplicate names nginx 1.22 sends.
];

/// Rows the front server itself refuses, by design, before RGI sees them: (gateway, row, status,
/// reason). When the gateway answers that status the cell shows `n/a`.
const FRONT_SERVER_REFUSES: &[(&str, &str, &str, &str)] = &[
    (
        "lty-cgi",
        "path /%FF (not UTF-8)",
        "400",
        "lighttpd 1.4 answers 400 itself to a path that decodes to invalid UTF-8",
    ),
    (
        "lty-fcgi",
        "path /%FF (not UTF-8)",
        "400",
        "lighttpd 1.4 answers 400 itself to a path that decodes to invalid UTF-8",
    ),
    (
        "apa-scgi",
        "chunked upload",
        "411",
        "Apache's mod_proxy_scgi answers 411 itself to a request body without a length",
    ),
    (
        "apa-uwsgi",
        "chunked upload",
        "411",
        "Apache's mod_proxy_uwsgi answers 411 itself to a request body without a length",
    ),
    (
        "apa-scgi-unix",
        "chunked upload",
        "411",
        "Apache's mod_proxy_scgi answers 411 itself to a request body without a length",
    ),
    (
        "apa-uwsgi-unix",
        "chunked upload",
        "411",
        "Apache's mod_proxy_uwsgi answers 411 itself to a request body without a length",
    ),
];

fn front_server_refuses(gateway: &str, row: &str, got: &Outcome) -> Option<&'static str> {
    FRONT_SERVER_REFUSES
        .iter()
        .find(|(g, r, status, _)| {
            *g == gateway
                && *r == row
                && got.facts.get("status").map(String::as_str) == Some(*status)
        })
        .map(|(_, _, _, why)| *why)
}

fn known_bug(gateway: &str, row: &str) -> Option<&'static str> {
    KNOWN_BUGS
        .iter()
        .find(|(g, r, _)| *g == gateway && *r == row)
        .map(|(_, _, bug)| *bug)
}

/// A cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Pass,
    Fail,
    /// Fails because of a bug listed in [`KNOWN_BUGS`].
    Known,
    /// Refused by the front server itself ([`FRONT_SERVER_REFUSES`]).
    Refused,
}

// ---------------------------------------------------------------------------------------------
// The rows.

/// What a row sends as its body.
#[derive(Debug, Clone, Copy)]
enum Payload {
    None,
    Bytes(&'static [u8]),
    /// `n` deterministic pseudo-random bytes.
    Generated(usize),
}

/// How the response is read and reduced to facts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The `demo` JSON: every environ key becomes an `env KEY` fact.
    Demo,
    /// Status, selected headers and the body.
    Plain,
    /// HEAD: status and selected headers.
    Head,
    /// A raw socket measures when the first and last chunks of `/stream` arrive.
    Stream,
}

/// One request of the matrix.
#[derive(Debug)]
struct Row {
    name: &'static str,
    method: &'static str,
    target: &'static str,
    /// Sent to the copy of the app mounted at `/app`.
    mount: bool,
    payload: Payload,
    /// Extra request header lines (raw bytes: one is not UTF-8).
    headers: Vec<Vec<u8>>,
    /// Extra curl arguments.
    curl: &'static [&'static str],
    kind: Kind,
    /// Facts that must have exactly these values, on every gateway including direct HTTP.
    expect: Vec<(&'static str, String)>,
    /// Facts allowed to differ from direct HTTP on this row, with the reason.
    lenient: &'static [Allowed],
}

impl Row {
    fn new(name: &'static str, method: &'static str, target: &'static str) -> Row {
        Row {
            name,
            method,
            target,
            mount: false,
            payload: Payload::None,
            headers: Vec::new(),
            curl: &[],
            kind: Kind::Demo,
            expect: vec![("status", "200".into())],
            lenient: &[],
        }
    }
    fn kind(mut self, kind: Kind) -> Row {
        self.kind = kind;
        self
    }
    fn mount(mut self) -> Row {
        self.mount = true;
        self
    }
    fn payload(mut self, payload: Payload) -> Row {
        self.payload = payload;
        self
    }
    fn header(mut self, line: &[u8]) -> Row {
        self.headers.push(line.to_vec());
        self
    }
    fn curl(mut self, args: &'static [&'static str]) -> Row {
        self.curl = args;
        self
    }
    fn expect(mut self, key: &'static str, value: impl Into<String>) -> Row {
        self.expect.retain(|(k, _)| *k != key);
        self.expect.push((key, value.into()));
        self
    }
    fn lenient(mut self, lenient: &'static [Allowed]) -> Row {
        self.lenient = lenient;
        self
    }
}

/// Deterministic pseudo-random bytes (xorshift), so uploads are not trivially compressible.
fn generated(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ n as u64;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `/q?q=xxxx…`, 6000 bytes (FastCGI sends it with a 4-byte length).
fn long_query() -> &'static str {
    static Q: OnceLock<String> = OnceLock::new();
    Q.get_or_init(|| format!("/q?q={}", "x".repeat(6000 - 5)))
}

/// `X-Long: yyyy…`, 3000 bytes of value.
fn long_header() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| format!("X-Long: {}", "y".repeat(3000)))
}

/// nginx (`merge_slashes on`, the default) and lighttpd route on a normalised path.
const MERGED_SLASHES: &[Allowed] = &[
    only(
        "env PATH_INFO",
        "//a//b",
        "/a/b",
        "the front server merges slashes before routing (nginx merge_slashes, lighttpd)",
    ),
    any(
        "env REDIRECT_URI",
        "lighttpd's extra: the normalised path when it differs from the raw one",
    ),
];

/// nginx and lighttpd resolve dot segments before routing.
const DOT_SEGMENTS: &[Allowed] = &[
    only(
        "env PATH_INFO",
        "/a/./b/../c",
        "/a/c",
        "the front server resolves dot segments before routing (RFC 3986 §5.2.4)",
    ),
    any(
        "env REDIRECT_URI",
        "lighttpd's extra: the normalised path when it differs from the raw one",
    ),
];

fn rows() -> Vec<Row> {
    let form: &[u8] = b"a=1&b=two";
    let put: &[u8] = b"\x00\x01binary\xff payload";
    let expect_body: &'static [u8] = Box::leak(vec![b'e'; 2048].into_boxed_slice());
    vec![
        Row::new("GET /?x=1", "GET", "/?x=1")
            .expect("env REQUEST_METHOD", "GET")
            .expect("env SCRIPT_NAME", "")
            .expect("env PATH_INFO", "/")
            .expect("env QUERY_STRING", "x=1")
            .expect("env rgi.url_scheme", "http")
            .expect("body_len", "0"),
        Row::new("GET /a/b + headers", "GET", "/a/b")
            .header(b"X-Test: one")
            .header(b"Accept-Language: fr, en;q=0.5")
            .expect("env PATH_INFO", "/a/b")
            .expect("env HTTP_X_TEST", "one")
            .expect("env HTTP_HOST", HOST),
        Row::new("HEAD /head", "HEAD", "/head")
            .kind(Kind::Head)
            .expect("bytes after the head", "0")
            .expect("hdr content-type", "application/json"),
        Row::new("POST form", "POST", "/post")
            .payload(Payload::Bytes(form))
            .header(b"Content-Type: application/x-www-form-urlencoded")
            .expect("env REQUEST_METHOD", "POST")
            .expect("env CONTENT_LENGTH", form.len().to_string())
            .expect("env CONTENT_TYPE", "application/x-www-form-urlencoded")
            .expect("body_len", form.len().to_string())
            .expect("body_sha256", sha256_hex(form)),
        Row::new("PUT binary", "PUT", "/put")
            .payload(Payload::Bytes(put))
            .header(b"Content-Type: application/octet-stream")
            .expect("env REQUEST_METHOD", "PUT")
            .expect("body_sha256", sha256_hex(put)),
        Row::new("DELETE", "DELETE", "/thing/1").expect("env REQUEST_METHOD", "DELETE"),
        Row::new("OPTIONS", "OPTIONS", "/opt").expect("env REQUEST_METHOD", "OPTIONS"),
        Row::new("path /p%20q/r", "GET", "/p%20q/r")
            .expect("env PATH_INFO", "/p q/r")
            .expect("env SCRIPT_NAME", ""),
        Row::new("UTF-8 path /caf%C3%A9", "GET", "/caf%C3%A9").expect("env PATH_INFO", "/café"),
        Row::new("%2F in path /a%2Fb", "GET", "/a%2Fb"),
        Row::new("query ?a=1&a=2", "GET", "/q?a=1&a=2").expect("env QUERY_STRING", "a=1&a=2"),
        Row::new("empty query ?", "GET", "/q?").expect("env QUERY_STRING", ""),
        Row::new("POST 10 MiB", "POST", "/upload")
            .payload(Payload::Generated(BIG))
            .header(b"Content-Type: application/octet-stream")
            .header(b"Expect:")
            .expect("env CONTENT_LENGTH", BIG.to_string())
            .expect("body_len", BIG.to_string())
            .expect("body_sha256", sha256_hex(&generated(BIG))),
        Row::new("chunked upload", "POST", "/chunked")
            .payload(Payload::Generated(CHUNKED))
            .header(b"Content-Type: application/octet-stream")
            .header(b"Transfer-Encoding: chunked")
            .header(b"Expect:")
            .expect("body_len", CHUNKED.to_string())
            .expect("body_sha256", sha256_hex(&generated(CHUNKED)))
            .lenient(DECHUNKED),
        Row::new("encoded query ?q=a%20b&s=%2F", "GET", "/q?q=a%20b&s=%2F+")
            .expect("env QUERY_STRING", "q=a%20b&s=%2F+"),
        Row::new("repeated header X-Multi", "GET", "/multi")
            .header(b"X-Multi: a")
            .header(b"X-Multi: b"),
        Row::new("two Cookie headers", "GET", "/cookie-in")
            .header(b"Cookie: a=1")
            .header(b"Cookie: b=2"),
        Row::new("GET 1 MiB response", "GET", "/big?bytes=1048576")
            .kind(Kind::Plain)
            .expect(
                "body",
                format!("1048576 bytes, sha256 {}", sha256_hex(&[b'x'; 1 << 20])),
            ),
        Row::new("long query (6000 bytes)", "GET", long_query())
            .expect("env QUERY_STRING", &long_query()[3..]),
        Row::new("long header (3000 bytes)", "GET", "/long-header")
            .header(long_header().as_bytes())
            .expect("env HTTP_X_LONG", &long_header()["X-Long: ".len()..]),
        Row::new("POST empty body", "POST", "/empty")
            .header(b"Content-Length: 0")
            .expect("env CONTENT_LENGTH", "0")
            .expect("body_len", "0"),
        Row::new("path //a//b", "GET", "//a//b").lenient(MERGED_SLASHES),
        Row::new("path /a/./b/../c", "GET", "/a/./b/../c").lenient(DOT_SEGMENTS),
        Row::new("path /%FF (not UTF-8)", "GET", "/%FF").expect("env PATH_INFO", "/\u{FFFD}"),
        Row::new("Proxy header (httpoxy)", "GET", "/httpoxy")
            .header(b"Proxy: http://evil.test:3128")
            .expect("env HTTP_PROXY", ABSENT),
        Row::new("Authorization header", "GET", "/auth")
            .header(b"Authorization: Basic dXNlcjpwYXNz"),
        Row::new("404 from the app", "GET", "/status/404")
            .kind(Kind::Plain)
            .expect("status", "404"),
        Row::new("Set-Cookie x2", "GET", "/cookies")
            .kind(Kind::Plain)
            .expect("hdr set-cookie", "a=1; Path=/ | b=2; Path=/; HttpOnly")
            .expect("body", "two cookies\n"),
        Row::new("204", "GET", "/status/204")
            .kind(Kind::Plain)
            .expect("status", "204")
            .expect("body", ""),
        Row::new("304", "GET", "/status/304")
            .kind(Kind::Plain)
            .expect("status", "304")
            .expect("body", ""),
        Row::new("streamed response", "GET", "/stream?chunks=3&delay_ms=400")
            .kind(Kind::Stream)
            .expect("body", "chunk 0,chunk 1,chunk 2")
            .expect("first chunk before the last", "yes"),
        Row::new("non-UTF-8 header", "GET", "/raw")
            .header(b"X-Raw: caf\xe9")
            .expect("env HTTP_X_RAW", "caf\u{FFFD}"),
        Row::new("Expect: 100-continue", "POST", "/expect")
            .payload(Payload::Bytes(expect_body))
            .header(b"Content-Type: text/plain")
            .header(b"Expect: 100-continue")
            .curl(&["--expect100-timeout", "3"])
            .expect("100 Continue", "yes")
            .expect("body_len", "2048"),
        Row::new("mount /app/x?q=1", "GET", "/app/x?q=1")
            .mount()
            .expect("env SCRIPT_NAME", "/app")
            .expect("env PATH_INFO", "/x")
            .expect("env QUERY_STRING", "q=1"),
        Row::new("mount /app/p%20q/", "GET", "/app/p%20q/")
            .mount()
            .expect("env SCRIPT_NAME", "/app")
            .expect("env PATH_INFO", "/p q/"),
        Row::new("mount POST /app/x", "POST", "/app/x")
            .mount()
            .payload(Payload::Bytes(form))
            .header(b"Content-Type: application/x-www-form-urlencoded")
            .expect("env SCRIPT_NAME", "/app")
            .expect("env PATH_INFO", "/x")
            .expect("body_len", form.len().to_string()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Sending a row and reducing the answer to facts.

/// What one gateway made of one row.
#[derive(Debug, Default, Clone)]
struct Outcome {
    facts: BTreeMap<String, String>,
    /// Timings and other context, printed, never compared.
    note: String,
    /// The request could not be made or the answer not read.
    error: Option<String>,
}

fn curl_facts(addr: &str, row: &Row, work: &Path) -> Outcome {
    let body_file = work.join("body.out");
    let head_file = work.join("head.out");
    let _ = std::fs::remove_file(&body_file);
    let _ = std::fs::remove_file(&head_file);
    let mut args: Vec<OsString> = ["-sS", "--max-time", "20", "--path-as-is", "-o"]
        .iter()
        .map(OsString::from)
        .collect();
    args.push(body_file.clone().into());
    args.push("-D".into());
    args.push(head_file.clone().into());
    args.extend(["-w", "%{http_code} %{time_starttransfer} %{time_total}"].map(OsString::from));
    args.extend(["-H".into(), OsString::from(format!("Host: {HOST}"))]);
    for line in &row.headers {
        args.push("-H".into());
        args.push(OsString::from_vec(line.clone()));
    }
    match row.method {
        "GET" => {}
        "HEAD" => args.push("--head".into()),
        m => args.extend(["-X".into(), OsString::from(m)]),
    }
    match row.payload {
        Payload::None => {}
        Payload::Bytes(bytes) => {
            let file = work.join(format!("payload-{}", bytes.len()));
            std::fs::write(&file, bytes).expect("write payload");
            args.push("--data-binary".into());
            args.push(OsString::from(format!("@{}", file.display())));
        }
        Payload::Generated(n) => {
            let file = work.join(format!("generated-{n}"));
            if !file.exists() {
                std::fs::write(&file, generated(n)).expect("write payload");
            }
            args.push("--data-binary".into());
            args.push(OsString::from(format!("@{}", file.display())));
        }
    }
    args.extend(row.curl.iter().map(OsString::from));
    args.push(OsString::from(format!("http://{addr}{}", row.target)));
    let started = Instant::now();
    let output = match Command::new("curl").args(&args).output() {
        Ok(o) => o,
        Err(e) => {
            return Outcome {
                error: Some(format!("run curl: {e}")),
                ..Outcome::default()
            }
        }
    };
    let mut out = Outcome {
        note: format!(
            "{} in {:?}",
            String::from_utf8_lossy(&output.stdout),
            started.elapsed()
        ),
        ..Outcome::default()
    };
    if !output.status.success() {
        out.error = Some(format!(
            "curl failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
        return out;
    }
    let head = std::fs::read(&head_file).unwrap_or_default();
    let body = std::fs::read(&body_file).unwrap_or_default();
    let head = String::from_utf8_lossy(&head);
    // Interim responses (100 Continue) come first; the final one is the last block.
    let blocks: Vec<&str> = head
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .collect();
    let interim_100 = blocks
        .iter()
        .any(|b| b.lines().next().is_some_and(|l| l.contains(" 100")));
    if row.headers.iter().any(|h| h.starts_with(b"Expect: 100")) {
        out.facts.insert(
            "100 Continue".into(),
            if interim_100 { "yes" } else { "no" }.into(),
        );
    }
    let last = blocks.last().copied().unwrap_or("");
    header_facts(last, &mut out.facts);
    match row.kind {
        Kind::Demo => demo_facts(&body, &mut out),
        Kind::Plain => {
            out.facts.insert("body".into(), body_fact(&body));
        }
        Kind::Stream | Kind::Head => {}
    }
    out
}

/// `status` and the response headers an app controls (`content-type`, `set-cookie`, `location`), and
/// any `Status` header (a CGI response header that must not reach the client).
fn header_facts(head: &str, facts: &mut BTreeMap<String, String>) {
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("<none>");
    facts.insert("status".into(), status.into());
    let mut selected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if ["content-type", "set-cookie", "location", "status"].contains(&name.as_str()) {
                selected
                    .entry(name)
                    .or_default()
                    .push(value.trim().to_owned());
            }
        }
    }
    for (name, values) in selected {
        facts.insert(format!("hdr {name}"), values.join(" | "));
    }
}

fn body_fact(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(s) if s.len() <= 200 => s.to_owned(),
        _ => format!("{} bytes, sha256 {}", body.len(), sha256_hex(body)),
    }
}

fn demo_facts(body: &[u8], out: &mut Outcome) {
    let json: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            out.facts.insert("body".into(), body_fact(body));
            out.error = Some(format!("demo body is not JSON ({e})"));
            return;
        }
    };
    if let Some(env) = json["environ"].as_object() {
        for (k, v) in env {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            out.facts.insert(format!("env {k}"), v);
        }
    }
    out.facts
        .insert("body_len".into(), json["body_len"].to_string());
    out.facts.insert(
        "body_sha256".into(),
        json["body_sha256"].as_str().unwrap_or("").to_owned(),
    );
}

/// A row on a raw socket (`Connection: close`, read to EOF). HEAD: no byte may follow the response
/// head. The streamed row: when do `chunk 0` and `chunk 2` arrive?
fn raw_facts(addr: &str, row: &Row) -> Outcome {
    let mut out = Outcome::default();
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(format!("connect {addr}: {e}"));
            return out;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n",
        row.method, row.target
    );
    let started = Instant::now();
    if let Err(e) = stream.write_all(request.as_bytes()) {
        out.error = Some(format!("write: {e}"));
        return out;
    }
    let deadline = started + Duration::from_secs(15);
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let (mut first, mut last) = (None, None);
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                out.error = Some(format!("read: {e}"));
                break;
            }
        }
        let text = String::from_utf8_lossy(&got);
        if first.is_none() && text.contains("chunk 0") {
            first = Some(started.elapsed());
        }
        if last.is_none() && text.contains("chunk 2") {
            last = Some(started.elapsed());
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    header_facts(head, &mut out.facts);
    if row.kind == Kind::Head {
        let after = got.len() - head.len().min(got.len());
        out.facts.insert(
            "bytes after the head".into(),
            after.saturating_sub(4).to_string(),
        );
        return out;
    }
    let chunks: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("chunk "))
        .collect();
    out.facts.insert("body".into(), chunks.join(","));
    let early = match (first, last) {
        (Some(f), Some(l)) => l.saturating_sub(f) >= Duration::from_millis(500),
        _ => false,
    };
    out.facts.insert(
        "first chunk before the last".into(),
        if early { "yes" } else { "no" }.into(),
    );
    out.note = format!("first chunk at {first:?}, last at {last:?}");
    out
}

// ---------------------------------------------------------------------------------------------
// Gateways.

/// The server(s) a gateway's requests go to, kept alive while the rows run.
#[allow(dead_code)] // the fields are guards
enum Front {
    Direct { root: Server, mount: Server },
    Nginx(Nginx),
    Lighttpd(Lighttpd),
    Apache(Apache),
}

struct Gateway {
    name: &'static str,
    front: Front,
    /// The RGI servers behind the front server (none when the front server spawns them).
    _upstreams: Vec<Server>,
    /// `Some((port, kept))`: after the rows, the RGI server on this TCP port must (`kept`) or must
    /// not still hold an idle connection from the front server (FastCGI `FCGI_KEEP_CONN`).
    keepalive: Option<(u16, bool)>,
    /// Fact keys that legitimately differ on this gateway, with the reason.
    different: &'static [Allowed],
}

impl Gateway {
    fn addr(&self, row: &Row) -> String {
        match &self.front {
            Front::Direct { root, mount } => {
                if row.mount {
                    mount.addr().to_owned()
                } else {
                    root.addr().to_owned()
                }
            }
            Front::Nginx(n) => n.addr(),
            Front::Lighttpd(l) => l.addr(),
            Front::Apache(a) => a.addr(),
        }
    }

    fn log(&self) -> String {
        match &self.front {
            Front::Direct { .. } => String::new(),
            Front::Nginx(n) => n.error_log(),
            Front::Lighttpd(l) => l.error_log(),
            Front::Apache(a) => a.error_log(),
        }
    }

    fn run(&self, row: &Row, work: &Path) -> Outcome {
        let addr = self.addr(row);
        match row.kind {
            Kind::Head | Kind::Stream => raw_facts(&addr, row),
            _ => curl_facts(&addr, row, work),
        }
    }

    /// One quick request; panics with the front server's log when the gateway does not answer.
    fn probe(&self, work: &Path) {
        let row = Row::new("probe", "GET", "/fast")
            .kind(Kind::Plain)
            .curl(&["--max-time", "5"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.run(&row, work);
            if out.error.is_none() && out.facts.get("body").map(String::as_str) == Some("fast\n") {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: GET /fast did not answer `200 fast` within 10 s: {:?} {:?}\n--- log ---\n{}",
                    self.name,
                    out.error,
                    out.facts,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// Established IPv4 TCP connections whose local port is `port`, from `/proc/net/tcp`.
fn established_on(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            local_port == Some(port) && fields.get(3) == Some(&"01")
        })
        .count()
}

/// With `fastcgi_keep_conn on` and upstream `keepalive`, nginx keeps idle connections to RGI open
/// (and RGI must not close them); with it off, RGI closes each connection after its request.
fn check_keepalive(gateway: &Gateway) {
    let Some((port, kept)) = gateway.keepalive else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut open = established_on(port);
    while (open > 0) != kept && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        open = established_on(port);
    }
    println!(
        "{}: {open} idle connection(s) from nginx to RGI on port {port} after the rows",
        gateway.name
    );
    if kept {
        assert!(
            open > 0,
            "{}: no connection from nginx kept open: FCGI_KEEP_CONN not honoured",
            gateway.name
        );
    } else {
        assert_eq!(
            open, 0,
            "{}: connections left open without FCGI_KEEP_CONN",
            gateway.name
        );
    }
}

/// `--bind` for an upstream: TCP on a free port, or a unix socket in `dir`.
fn upstream(protocol: &str, unix: Option<&Path>, script_name: Option<&str>) -> (Server, String) {
    let bind = match unix {
        Some(path) => format!("unix:{}", path.display()),
        None => "127.0.0.1:0".to_owned(),
    };
    let mut args = vec!["--protocol", protocol, "--bind", &bind];
    if let Some(s) = script_name {
        args.extend(["--script-name", s]);
    }
    let server = Server::start(APP, &args);
    let nginx_addr = match unix {
        Some(path) => format!("unix:{}", path.display()),
        None => server.addr().to_owned(),
    };
    (server, nginx_addr)
}

fn direct() -> Gateway {
    Gateway {
        name: "direct",
        front: Front::Direct {
            root: Server::start(APP, &[]),
            mount: Server::start(APP, &["--script-name", "/app"]),
        },
        _upstreams: Vec::new(),
        keepalive: None,
        different: &[],
    }
}

/// nginx in front of two RGI servers (root and `/app`) speaking `protocol`.
fn nginx(
    name: &'static str,
    protocol: &str,
    unix: bool,
    keep_conn: bool,
    different: &'static [Allowed],
) -> Gateway {
    let dir = TempDir::new(name);
    let (root, root_addr) = upstream(
        protocol,
        unix.then(|| dir.join("root.sock")).as_deref(),
        None,
    );
    let (mount, mount_addr) = upstream(
        protocol,
        unix.then(|| dir.join("mount.sock")).as_deref(),
        Some("/app"),
    );
    let keepalive = if keep_conn { "keepalive 8;" } else { "" };
    let http = format!(
        "    upstream rgi_root {{ server {root_addr}; {keepalive} }}\n\
         \x20   upstream rgi_mount {{ server {mount_addr}; {keepalive} }}\n"
    );
    let (prefix, pass) = match protocol {
        "http" => (
            "proxy",
            "proxy_http_version 1.1; proxy_set_header Host $host; \
             proxy_pass http://UPSTREAM;"
                .to_owned(),
        ),
        "fastcgi" => (
            "fastcgi",
            format!(
                "include {}; fastcgi_pass UPSTREAM; fastcgi_keep_conn {};",
                webservers::nginx_stock_params("fastcgi_params").display(),
                if keep_conn { "on" } else { "off" }
            ),
        ),
        "scgi" => (
            "scgi",
            format!(
                "include {}; scgi_pass UPSTREAM;",
                webservers::nginx_stock_params("scgi_params").display()
            ),
        ),
        "uwsgi" => (
            "uwsgi",
            format!(
                "include {}; uwsgi_pass UPSTREAM;",
                webservers::nginx_stock_params("uwsgi_params").display()
            ),
        ),
        other => panic!("unknown protocol {other}"),
    };
    let root_pass = pass.replace("UPSTREAM", "rgi_root");
    let mount_pass = pass.replace("UPSTREAM", "rgi_mount");
    let server = format!(
        "        location / {{ {root_pass} }}\n\
         \x20       location = /stream {{ {root_pass} {prefix}_buffering off; }}\n\
         \x20       location /app/ {{ {mount_pass} }}\n"
    );
    let front = Nginx::start(dir, &http, &server);
    Gateway {
        name,
        front: Front::Nginx(front),
        keepalive: (protocol == "fastcgi" && !unix).then(|| (port_of(root.addr()), keep_conn)),
        _upstreams: vec![root, mount],
        different,
    }
}

/// lighttpd running the app as a CGI program: the document root *is* the program, so every path
/// runs it with SCRIPT_NAME "" and the path as PATH_INFO; `/app` is aliased to it too.
fn lighttpd_cgi(name: &'static str, different: &'static [Allowed]) -> Gateway {
    let dir = TempDir::new(name);
    let app = dir.install_executable(&binary(APP), "app.cgi");
    let app = lighttpd_quote(&app);
    let conf = format!(
        "server.modules = ( \"mod_alias\", \"mod_cgi\" )\n\
         server.document-root = {app}\n\
         cgi.assign = ( \".cgi\" => \"\" )\n\
         $HTTP[\"url\"] =~ \"^/app(/|$)\" {{ alias.url = ( \"/app\" => {app} ) }}\n"
    );
    Gateway {
        name,
        front: Front::Lighttpd(Lighttpd::start(dir, &conf)),
        _upstreams: Vec::new(),
        keepalive: None,
        different,
    }
}

/// lighttpd spawning the app itself (`bin-path`) with a listening unix socket on fd 0, once for `/`
/// and once (with `RGI_SCRIPT_NAME=/app`) for `/app`.
fn lighttpd_fastcgi(name: &'static str, different: &'static [Allowed]) -> Gateway {
    let dir = TempDir::new(name);
    let app = lighttpd_quote(dir.install_executable(&binary(APP), "app.fcgi"));
    let docroot = lighttpd_quote(dir.subdir("htdocs", 0o755));
    let run = dir.subdir("run", 0o1777);
    let root_sock = lighttpd_quote(run.join("root.sock"));
    let mount_sock = lighttpd_quote(run.join("mount.sock"));
    let conf = format!(
        "server.modules = ( \"mod_fastcgi\" )\n\
         server.document-root = {docroot}\n\
         $HTTP[\"url\"] =~ \"^/app/\" {{\n\
         \x20 fastcgi.server = ( \"/app\" => (( \"socket\" => {mount_sock}, \"bin-path\" => {app},\n\
         \x20   \"bin-environment\" => ( \"RGI_SCRIPT_NAME\" => \"/app\" ),\n\
         \x20   \"check-local\" => \"disable\", \"max-procs\" => 1 )) )\n\
         }}\n\
         $HTTP[\"url\"] !~ \"^/app/\" {{\n\
         \x20 fastcgi.server = ( \"/\" => (( \"socket\" => {root_sock}, \"bin-path\" => {app},\n\
         \x20   \"check-local\" => \"disable\", \"fix-root-scriptname\" => \"enable\",\n\
         \x20   \"max-procs\" => 1 )) )\n\
         }}\n"
    );
    Gateway {
        name,
        front: Front::Lighttpd(Lighttpd::start(dir, &conf)),
        _upstreams: Vec::new(),
        keepalive: None,
        different,
    }
}

/// Apache's settings for every column: `%2F` in a path decoded like any escape (stock Apache answers
/// 404 to it, `AllowEncodedSlashes Off`), and the `Authorization` header passed on to the application
/// (`CGIPassAuth`; Apache withholds it from CGI, FastCGI, SCGI and uwsgi by default).
const APACHE_COMMON: &str =
    "AllowEncodedSlashes On\n<Location />\n    CGIPassAuth On\n</Location>\n";

/// Apache in front of RGI speaking `protocol` through `mod_proxy_*`.
///
/// FastCGI, SCGI, uwsgi: one RGI server without `--script-name`, at `/` and at `/app/`; the first
/// `ProxyPass` defines the connection pool (Apache's "worker") both share, and makes
/// `mod_proxy_fcgi` flush each packet (`flushpackets=on`: by default it holds a streamed response
/// until the end; the option is ignored by the other modules, which stream anyway). HTTP: as nginx's `proxy_pass`, the whole path goes to a root server
/// and, for `/app/`, to a second one started with `--script-name /app` (an HTTP request carries no
/// mount point); the client's `Host` is passed on (`ProxyPreserveHost`).
///
/// With `unix`, the RGI server listens on a unix socket (mode 666: Apache's worker runs as `nobody`
/// when the test runs as root) and Apache reaches it with `unix:PATH|SCHEME://localhost/`.
fn apache_proxy(
    name: &'static str,
    protocol: &str,
    unix: bool,
    different: &'static [Allowed],
) -> Gateway {
    let dir = TempDir::new(name);
    let (conf, upstreams) = if protocol == "http" {
        let root = Server::start(APP, &[]);
        let mount = Server::start(APP, &["--script-name", "/app"]);
        let conf = format!(
            "ProxyPreserveHost On\n\
             ProxyPass /app/ http://{mount}/app/\n\
             ProxyPass / http://{root}/\n",
            root = root.addr(),
            mount = mount.addr()
        );
        (conf, vec![root, mount])
    } else {
        let scheme = if protocol == "fastcgi" {
            "fcgi"
        } else {
            protocol
        };
        let (server, url) = if unix {
            let socket = dir.join("rgi.sock");
            let bind = format!("unix:{}", socket.display());
            let args = [
                "--protocol",
                protocol,
                "--bind",
                &bind,
                "--socket-mode",
                "666",
            ];
            let server = Server::start(APP, &args);
            (
                server,
                format!("\"unix:{}|{scheme}://localhost/\"", socket.display()),
            )
        } else {
            let server = Server::start(APP, &["--protocol", protocol]);
            let url = format!("{scheme}://{}/", server.addr());
            (server, url)
        };
        let conf = format!(
            "ProxyPass /app/ {url} flushpackets=on\n\
             ProxyPass / {url}\n"
        );
        (conf, vec![server])
    };
    Gateway {
        name,
        front: Front::Apache(Apache::start(dir, &format!("{APACHE_COMMON}{conf}"))),
        _upstreams: upstreams,
        keepalive: None,
        different,
    }
}

/// Apache running the app as a CGI program through `mod_cgid`: `ScriptAlias / …/app.cgi/` gives
/// every path to it with SCRIPT_NAME "" and the path as PATH_INFO; `/app` is aliased to it too.
fn apache_cgi(name: &'static str, different: &'static [Allowed]) -> Gateway {
    let dir = TempDir::new(name);
    let app = dir.install_executable(&binary(APP), "app.cgi");
    let conf = format!(
        "{APACHE_COMMON}\
         ScriptAlias /app {app}\n\
         ScriptAlias / {app}/\n",
        app = app.display()
    );
    Gateway {
        name,
        front: Front::Apache(Apache::start(dir, &conf)),
        _upstreams: Vec::new(),
        keepalive: None,
        different,
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing and reporting.

/// The direct-HTTP outcomes, computed once per test process.
fn reference() -> &'static [Outcome] {
    static REFERENCE: OnceLock<Vec<Outcome>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let work = TempDir::new("direct-work");
        let gateway = direct();
        gateway.probe(work.path());
        rows().iter().map(|r| gateway.run(r, work.path())).collect()
    })
}

/// A failed comparison: row, fact, direct value, gateway value.
type Mismatch = (&'static str, String, String, String);

const ABSENT: &str = "<absent>";

/// A difference allowed by an [`Allowed`]: row, fact, direct value, gateway value, reason.
type Allowance = (&'static str, String, String, String, &'static str);

/// Compare one row's outcome on a gateway with direct HTTP: the mismatches, and the differences
/// that were allowed.
fn compare(
    different: &[Allowed],
    row: &Row,
    reference: &Outcome,
    got: &Outcome,
) -> (Vec<Mismatch>, Vec<Allowance>) {
    let mut out = Vec::new();
    let mut allowed = Vec::new();
    if let Some(e) = &got.error {
        out.push((row.name, "error".into(), String::new(), e.clone()));
    }
    for (key, want) in &row.expect {
        let have = got.facts.get(*key).map_or(ABSENT, String::as_str);
        if have != want {
            out.push((
                row.name,
                format!("{key} (expected)"),
                want.clone(),
                have.into(),
            ));
        }
    }
    if got.error.is_some() {
        // The answer could not be read as the row's kind: its status and body say why; a
        // key-by-key comparison would only repeat it.
        for key in ["status", "body"] {
            if row.expect.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let want = reference.facts.get(key).map_or(ABSENT, String::as_str);
            let have = got.facts.get(key).map_or(ABSENT, String::as_str);
            if want != have {
                out.push((row.name, key.into(), want.into(), have.into()));
            }
        }
        return (out, allowed);
    }
    let keys: std::collections::BTreeSet<&String> =
        reference.facts.keys().chain(got.facts.keys()).collect();
    for key in keys {
        let want = reference.facts.get(key).map_or(ABSENT, String::as_str);
        let have = got.facts.get(key).map_or(ABSENT, String::as_str);
        if want == have || row.expect.iter().any(|(k, _)| k == key) {
            continue;
        }
        let allowance = ALWAYS_DIFFERENT
            .iter()
            .chain(different)
            .chain(row.lenient)
            .find(|a| a.allows(key, want, have));
        match allowance {
            Some(a) => allowed.push((row.name, key.clone(), want.into(), have.into(), a.reason)),
            None => out.push((row.name, key.clone(), want.into(), have.into())),
        }
    }
    (out, allowed)
}

/// The allowed differences, one line per fact: reason, rows, an example.
fn format_allowed(gateway: &str, allowed: &[Allowance]) -> String {
    let mut by_key: BTreeMap<&str, (usize, &Allowance)> = BTreeMap::new();
    for a in allowed {
        by_key.entry(a.1.as_str()).or_insert((0, a)).0 += 1;
    }
    let mut s = format!("\nALLOWED DIFFERENCES for {gateway} (vs direct HTTP)\n");
    s.push_str("| fact | rows | e.g. row | direct HTTP | gateway | why allowed |\n|---|---|---|---|---|---|\n");
    for (key, (n, (row, _, want, have, reason))) in by_key {
        let _ = writeln!(
            s,
            "| {key} | {n} | {row} | {want:?} | {have:?} | {reason} |"
        );
    }
    s
}

/// The matrix so far: column → (row → passed).
type Matrix = BTreeMap<usize, (&'static str, Vec<Cell>)>;

fn matrix() -> &'static Mutex<Matrix> {
    static MATRIX: OnceLock<Mutex<Matrix>> = OnceLock::new();
    MATRIX.get_or_init(|| Mutex::new(BTreeMap::new()))
}

const COLUMNS: &[&str] = &[
    "direct",
    "ngx-http",
    "ngx-fcgi",
    "ngx-fcgi-ka",
    "ngx-fcgi-unix",
    "ngx-scgi",
    "ngx-uwsgi",
    "lty-cgi",
    "lty-fcgi",
    "apa-http",
    "apa-fcgi",
    "apa-scgi",
    "apa-uwsgi",
    "apa-fcgi-unix",
    "apa-scgi-unix",
    "apa-uwsgi-unix",
    "apa-cgi",
];

fn record(name: &'static str, passed: Vec<Cell>) {
    let column = COLUMNS.iter().position(|c| *c == name).unwrap_or(99);
    let mut m = matrix().lock().unwrap_or_else(|e| e.into_inner());
    m.insert(column, (name, passed));
    let names: Vec<&str> = rows().iter().map(|r| r.name).collect();
    let mut table = String::from("| request |");
    for (_, (col, _)) in m.iter() {
        let _ = write!(table, " {col} |");
    }
    table.push_str("\n|---|");
    for _ in m.iter() {
        table.push_str("---|");
    }
    table.push('\n');
    for (i, row) in names.iter().enumerate() {
        let _ = write!(table, "| {row} |");
        for (_, (_, passed)) in m.iter() {
            let mark = match passed.get(i) {
                Some(Cell::Pass) => "✓",
                Some(Cell::Fail) => "✗",
                Some(Cell::Known) => "✗*",
                Some(Cell::Refused) => "n/a",
                None => "–",
            };
            let _ = write!(table, " {mark} |");
        }
        table.push('\n');
    }
    if m.values().any(|(_, cells)| cells.contains(&Cell::Refused)) {
        table.push_str(
            "\nn/a = the front server itself refuses the request (FRONT_SERVER_REFUSES in \
             tests/tests/gateways.rs)\n",
        );
    }
    if m.values().any(|(_, cells)| cells.contains(&Cell::Known)) {
        table.push_str(
            "\n✗* = fails because of a known bug (KNOWN_BUGS in tests/tests/gateways.rs)\n",
        );
    }
    println!(
        "\nPARITY MATRIX ({} of {} columns run so far in this process)\n{table}",
        m.len(),
        COLUMNS.len()
    );
    let _ = std::fs::write(rgi_tests::target_dir().join("rgi-parity-matrix.md"), &table);
}

fn format_mismatches(gateway: &str, mismatches: &[Mismatch]) -> String {
    let mut s = format!("\nMISMATCHES for {gateway} (vs direct HTTP)\n");
    let _ = writeln!(
        s,
        "| row | fact | direct HTTP | {gateway} |\n|---|---|---|---|"
    );
    for (row, key, want, have) in mismatches {
        let _ = writeln!(s, "| {row} | {key} | {want:?} | {have:?} |");
    }
    s
}

/// Run every row through `gateway`, compare with direct HTTP, record the column and assert.
fn parity(gateway: Gateway) {
    let reference = reference();
    let work = TempDir::new("work");
    gateway.probe(work.path());
    let rows = rows();
    let mut all = Vec::new();
    let mut known = Vec::new();
    let mut allowed = Vec::new();
    let mut cells = Vec::new();
    for (row, want) in rows.iter().zip(reference) {
        let got = gateway.run(row, work.path());
        let (mismatches, allowances) = compare(gateway.different, row, want, &got);
        allowed.extend(allowances);
        if std::env::var_os("RGI_PRINT_FACTS").is_some() {
            println!(
                "{} / {}: {:#?}\ndirect: {:#?}",
                gateway.name, row.name, got, want
            );
        }
        if !mismatches.is_empty() || row.kind == Kind::Stream {
            println!("{}: {}: {}", gateway.name, row.name, got.note);
        }
        if let Some(why) = front_server_refuses(gateway.name, row.name, &got) {
            println!(
                "{}: {}: refused by the front server: {why}",
                gateway.name, row.name
            );
            cells.push(Cell::Refused);
            continue;
        }
        let bug = known_bug(gateway.name, row.name);
        let cell = match (mismatches.is_empty(), bug) {
            (true, Some(bug)) => {
                println!(
                    "NOTE: {} / {}: passes now; remove it from KNOWN_BUGS ({bug})",
                    gateway.name, row.name
                );
                Cell::Pass
            }
            (true, None) => Cell::Pass,
            (false, Some(_)) => Cell::Known,
            (false, None) => Cell::Fail,
        };
        cells.push(cell);
        if cell == Cell::Known {
            known.extend(mismatches);
        } else {
            all.extend(mismatches);
        }
    }
    record(gateway.name, cells);
    check_keepalive(&gateway);
    if !allowed.is_empty() {
        println!("{}", format_allowed(gateway.name, &allowed));
    }
    if !known.is_empty() {
        println!(
            "KNOWN BUGS (not failing the test):{}",
            format_mismatches(gateway.name, &known)
        );
    }
    if !all.is_empty() {
        let report = format_mismatches(gateway.name, &all);
        println!("{report}");
        if std::env::var_os("RGI_PRINT_LOGS").is_some() {
            println!("--- {} log ---\n{}", gateway.name, gateway.log());
        }
        panic!("{} differs from direct HTTP:{report}", gateway.name);
    }
}

fn skip() -> bool {
    webservers::skip_webservers()
}

// ---------------------------------------------------------------------------------------------
// One test per column.

/// The reference column checks itself against the rows' absolute expectations.
#[test]
fn direct_http() {
    let reference = reference();
    let rows = rows();
    let mut all = Vec::new();
    let mut passed = Vec::new();
    for (row, got) in rows.iter().zip(reference) {
        let (mismatches, _) = compare(&[], row, got, got);
        passed.push(if mismatches.is_empty() {
            Cell::Pass
        } else {
            Cell::Fail
        });
        all.extend(mismatches);
    }
    record("direct", passed);
    assert!(all.is_empty(), "{}", format_mismatches("direct", &all));
}

#[test]
fn nginx_proxy_http() {
    if skip() {
        return;
    }
    parity(nginx("ngx-http", "http", false, false, &[]));
}

/// What nginx's stock fastcgi_params make differ.
const NGINX_FASTCGI: &[Allowed] = &[
    only(
        "env REMOTE_USER",
        "<absent>",
        "",
        "the stock fastcgi_params send REMOTE_USER=$remote_user, empty without auth",
    ),
    only(
        "env REMOTE_USER",
        "<absent>",
        "user",
        "the stock fastcgi_params send REMOTE_USER=$remote_user, which nginx takes from any Basic \
         Authorization header, unverified unless auth_basic is configured",
    ),
];

/// What nginx's stock scgi_params make differ.
const NGINX_SCGI: &[Allowed] = &[ZERO_LENGTH];

/// What lighttpd makes differ.
const LIGHTTPD: &[Allowed] = &[
    ZERO_LENGTH,
    any(
        "env REDIRECT_URI",
        "lighttpd's extra: the decoded path when it differs from the raw one",
    ),
];

#[test]
fn nginx_fastcgi_tcp() {
    if skip() {
        return;
    }
    parity(nginx("ngx-fcgi", "fastcgi", false, false, NGINX_FASTCGI));
}

#[test]
fn nginx_fastcgi_keep_conn() {
    if skip() {
        return;
    }
    parity(nginx("ngx-fcgi-ka", "fastcgi", false, true, NGINX_FASTCGI));
}

#[test]
fn nginx_fastcgi_unix() {
    if skip() {
        return;
    }
    parity(nginx(
        "ngx-fcgi-unix",
        "fastcgi",
        true,
        false,
        NGINX_FASTCGI,
    ));
}

#[test]
fn nginx_scgi() {
    if skip() {
        return;
    }
    parity(nginx("ngx-scgi", "scgi", false, false, NGINX_SCGI));
}

#[test]
fn nginx_uwsgi() {
    if skip() {
        return;
    }
    parity(nginx("ngx-uwsgi", "uwsgi", false, false, &[]));
}

#[test]
fn lighttpd_mod_cgi() {
    if skip() {
        return;
    }
    parity(lighttpd_cgi("lty-cgi", LIGHTTPD));
}

#[test]
fn lighttpd_mod_fastcgi_bin_path() {
    if skip() {
        return;
    }
    parity(lighttpd_fastcgi("lty-fcgi", LIGHTTPD));
}

/// Apache joins a request header sent twice into one value with `, `, `Cookie` too.
const APACHE_COOKIES: Allowed = only(
    "env HTTP_COOKIE",
    "a=1; b=2",
    "a=1, b=2",
    "Apache joins repeated request headers with \", \", Cookie included (RFC 6265 §5.4 wants \"; \")",
);

/// What Apache changes in front of FastCGI, uwsgi and CGI.
const APACHE: &[Allowed] = &[APACHE_COOKIES];

/// What Apache changes in front of SCGI.
const APACHE_SCGI: &[Allowed] = &[APACHE_COOKIES, ZERO_LENGTH];

const FORWARDED: &str = "mod_proxy_http adds X-Forwarded-For/-Host/-Server";
const NORMALISED: &str =
    "mod_proxy_http forwards the decoded, normalised path re-encoded, not the raw target";

/// What Apache's mod_proxy_http adds or changes.
const APACHE_HTTP: &[Allowed] = &[
    APACHE_COOKIES,
    any("env HTTP_X_FORWARDED_FOR", FORWARDED),
    any("env HTTP_X_FORWARDED_HOST", FORWARDED),
    any("env HTTP_X_FORWARDED_SERVER", FORWARDED),
    only("env REQUEST_URI", "//a//b", "/a/b", NORMALISED),
    only("env REQUEST_URI", "/a/./b/../c", "/a/c", NORMALISED),
    only("env REQUEST_URI", "/a%2Fb", "/a/b", NORMALISED),
];

#[test]
fn apache_mod_proxy_http() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-http", "http", false, APACHE_HTTP));
}

#[test]
fn apache_mod_proxy_fcgi() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-fcgi", "fastcgi", false, APACHE));
}

#[test]
fn apache_mod_proxy_scgi() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-scgi", "scgi", false, APACHE_SCGI));
}

#[test]
fn apache_mod_proxy_uwsgi() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-uwsgi", "uwsgi", false, APACHE));
}

#[test]
fn apache_mod_proxy_fcgi_unix_socket() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-fcgi-unix", "fastcgi", true, APACHE));
}

#[test]
fn apache_mod_proxy_scgi_unix_socket() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-scgi-unix", "scgi", true, APACHE_SCGI));
}

#[test]
fn apache_mod_proxy_uwsgi_unix_socket() {
    if skip() {
        return;
    }
    parity(apache_proxy("apa-uwsgi-unix", "uwsgi", true, APACHE));
}

#[test]
fn apache_mod_cgid() {
    if skip() {
        return;
    }
    parity(apache_cgi("apa-cgi", APACHE));
}
