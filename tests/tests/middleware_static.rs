//! The static-files traversal table, run through every gateway: each row is sent as raw bytes (no
//! client normalizes it) to the `staticapp` binary — `rgi_middleware::Static` under the conditional
//! and compression layers — serving a temporary root, with a secret file just outside it and
//! symlinks leading to it.
//!
//! | gateway | path |
//! |---|---|
//! | `direct` | raw socket → RGI HTTP |
//! | `ngx-fcgi` | nginx `fastcgi_pass` → RGI FastCGI |
//! | `ngx-scgi` | nginx `scgi_pass` → RGI SCGI |
//! | `ngx-uwsgi` | nginx `uwsgi_pass` → RGI uwsgi |
//! | `lty-cgi` | lighttpd `mod_cgi` → RGI as a CGI program |
//!
//! Every row must get RGI's answer with the status `want` — or, where the front server deals with
//! the request first (nginx refuses dot segments above `/` itself; lighttpd resolves them before
//! running the CGI program), the status listed for that gateway in [`FRONT_SERVER`], with its
//! reason — and the secret's content must never appear in the answer. The positive rows (`/hello.txt`, a symlink
//! inside the root, a range, a `304`) show that the files really are served through each gateway.
//!
//! `cargo test -p rgi-tests --test middleware_static -- --nocapture` prints the matrix;
//! `RGI_SKIP_WEBSERVERS=1` runs the direct gateway only.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rgi_tests::webservers::{self, lighttpd_quote, Lighttpd, Nginx, TempDir};
use rgi_tests::{binary, raw_exchange, Server};

/// The binary under test.
const APP: &str = "staticapp";

/// What must never be sent: the content of `secret.txt`, outside the root.
const SECRET: &str = "TOP-SECRET-e2e-3f9a: outside the root";

const HELLO: &str = "hello from the static root\n";

/// A request target and the status RGI answers it with.
#[derive(Debug)]
struct Row {
    target: &'static str,
    want: u16,
    /// Extra request header lines.
    headers: &'static str,
    /// Text the body must contain (positive rows).
    body: Option<&'static str>,
    /// A response header line the answer must carry (lower-case name).
    header: Option<&'static str>,
}

const fn row(target: &'static str, want: u16) -> Row {
    Row {
        target,
        want,
        headers: "",
        body: None,
        header: None,
    }
}

const ROWS: &[Row] = &[
    Row {
        body: Some(HELLO),
        ..row("/hello.txt", 200)
    },
    Row {
        body: Some(HELLO),
        ..row("/link-in", 200)
    },
    Row {
        body: Some("<h1>sub</h1>"),
        ..row("/sub/", 200)
    },
    row("/sub", 301),
    Row {
        headers: "Range: bytes=0-4\r\n",
        body: Some("hello"),
        ..row("/hello.txt", 206)
    },
    Row {
        headers: "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n",
        ..row("/hello.txt", 304)
    },
    // The compression layer over the files, and a precompressed sibling, under every gateway.
    Row {
        headers: "Accept-Encoding: gzip\r\n",
        header: Some("content-encoding: gzip"),
        ..row("/big.txt", 200)
    },
    Row {
        headers: "Accept-Encoding: br, gzip\r\n",
        body: Some("PRECOMPRESSED BROTLI"),
        header: Some("content-encoding: br"),
        ..row("/style.css", 200)
    },
    row("/nope.txt", 404),
    row("/../secret.txt", 400),
    row("/../../secret.txt", 400),
    row("/sub/../../secret.txt", 400),
    row("/..%2fsecret.txt", 400),
    row("/..%2Fsecret.txt", 400),
    row("/%2e%2e/secret.txt", 400),
    row("/%2E%2E/secret.txt", 400),
    row("/.%2e/secret.txt", 400),
    row("/%2e./secret.txt", 400),
    row("/%2e%2e%2fsecret.txt", 400),
    row("/sub/%2e%2e/%2e%2e/secret.txt", 400),
    row("/sub/..%2f..%2fsecret.txt", 400),
    row("//../secret.txt", 400),
    row("/..%5csecret.txt", 400),
    row("/..%5Csecret.txt", 400),
    row("/sub%5c..%5c..%5csecret.txt", 400),
    row("/..\\secret.txt", 400),
    row("/hello.txt%00", 400),
    row("/hello.txt%00.png", 400),
    row("/%252e%252e/secret.txt", 404),
    row("/%252e%252e%252fsecret.txt", 404),
    row("/%25252e%25252e/secret.txt", 404),
    Row {
        body: Some("a file named %2e"),
        ..row("/%252e", 200)
    },
    row("/%c0%ae%c0%ae/secret.txt", 404),
    row("/..;/secret.txt", 404),
    row("/link-out", 404),
    row("/link-out-relative", 404),
    row("/link-out-dir/secret.txt", 404),
    row("/CON", 404),
    row("/con.txt", 404),
    row("/AUX", 404),
    row("/NUL", 404),
    row("/nul.html", 404),
    row("/COM1", 404),
    row("/LPT1.txt", 404),
    row("/secret.txt", 404),
];

/// Targets climbing above `/` with (possibly percent-encoded) dot segments.
const DOT_SEGMENTS: &[&str] = &[
    "/../secret.txt",
    "/../../secret.txt",
    "/sub/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/%2e./secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "//../secret.txt",
];

/// The same, through a percent-encoded `/`.
const ENCODED_SLASH_DOTS: &[&str] = &[
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/..%2f..%2fsecret.txt",
];

const NUL: &[&str] = &["/hello.txt%00", "/hello.txt%00.png"];

/// Where a front server deals with a row before (or instead of) RGI: the gateways (a name prefix),
/// the targets, the status seen, whether the front server answered it itself, and why.
struct Front {
    gateways: &'static str,
    targets: &'static [&'static [&'static str]],
    status: u16,
    by_front: bool,
    reason: &'static str,
}

const FRONT_SERVER: &[Front] = &[
    Front {
        gateways: "ngx-",
        targets: &[DOT_SEGMENTS, ENCODED_SLASH_DOTS, NUL],
        status: 400,
        by_front: true,
        reason:
            "nginx decodes the path (%2e, %2f, %00 included), resolves dot segments and refuses \
                 with its own 400 a path that climbs above / or holds a NUL",
    },
    Front {
        gateways: "lty-",
        targets: &[DOT_SEGMENTS],
        status: 404,
        by_front: false,
        reason:
            "lighttpd resolves dot segments (clamped at /) before it runs the CGI program: RGI \
                 sees PATH_INFO /secret.txt (no `..` left), which is not under the root: 404",
    },
    Front {
        gateways: "lty-",
        targets: &[NUL, &["/%c0%ae%c0%ae/secret.txt"]],
        status: 400,
        by_front: true,
        reason: "lighttpd answers 400 itself to a path that decodes to a NUL or to invalid UTF-8",
    },
];

fn front_server_answer(
    gateway: &str,
    target: &str,
    status: u16,
    by_front: bool,
) -> Option<&'static str> {
    FRONT_SERVER
        .iter()
        .find(|f| {
            gateway.starts_with(f.gateways)
                && f.targets.iter().any(|list| list.contains(&target))
                && f.status == status
                && f.by_front == by_front
        })
        .map(|f| f.reason)
}

/// `BASE/secret.txt`, and `BASE/root/` with files and symlinks (in and out).
fn make_root() -> (TempDir, PathBuf) {
    let base = TempDir::new("static-e2e");
    let root = base.subdir("root", 0o755);
    base.subdir("root/sub", 0o755);
    fs::write(base.join("secret.txt"), SECRET).expect("write secret");
    fs::write(root.join("hello.txt"), HELLO).expect("write hello");
    fs::write(root.join("sub/index.html"), "<h1>sub</h1>").expect("write index");
    fs::write(root.join("%2e"), "a file named %2e").expect("write %2e");
    fs::write(root.join("big.txt"), HELLO.repeat(200)).expect("write big");
    fs::write(root.join("style.css"), "body { margin: 0 }").expect("write css");
    fs::write(root.join("style.css.br"), "PRECOMPRESSED BROTLI").expect("write css.br");
    fs::create_dir_all(root.join("%2e%2e")).expect("mkdir %2e%2e");
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, root.join(name)).expect("symlink");
    };
    link(&base.join("secret.txt"), "link-out");
    link(Path::new("../secret.txt"), "link-out-relative");
    link(base.path(), "link-out-dir");
    link(Path::new("hello.txt"), "link-in");
    (base, root)
}

/// A gateway: where to send the rows, and what to keep running meanwhile.
struct Gateway {
    name: &'static str,
    addr: String,
    _servers: Vec<Server>,
    _nginx: Option<Nginx>,
    _lighttpd: Option<Lighttpd>,
}

fn env(root: &Path) -> [(&'static str, String); 1] {
    [("RGI_STATIC_ROOT", root.display().to_string())]
}

fn start_app(protocol: &str, root: &Path) -> Server {
    let [(key, value)] = env(root);
    Server::start_with_env(
        APP,
        &["--protocol", protocol, "--bind", "127.0.0.1:0"],
        &[(key, &value)],
    )
}

fn direct(root: &Path) -> Gateway {
    let server = start_app("http", root);
    Gateway {
        name: "direct",
        addr: server.addr().to_owned(),
        _servers: vec![server],
        _nginx: None,
        _lighttpd: None,
    }
}

fn nginx(name: &'static str, protocol: &str, root: &Path) -> Gateway {
    let server = start_app(protocol, root);
    let (params, pass) = match protocol {
        "fastcgi" => ("fastcgi_params", "fastcgi_pass"),
        "scgi" => ("scgi_params", "scgi_pass"),
        "uwsgi" => ("uwsgi_params", "uwsgi_pass"),
        other => panic!("unknown protocol {other}"),
    };
    let location = format!(
        "        location / {{ include {}; {pass} {}; }}\n",
        webservers::nginx_stock_params(params).display(),
        server.addr()
    );
    let front = Nginx::start(TempDir::new(name), "", &location);
    Gateway {
        name,
        addr: front.addr(),
        _servers: vec![server],
        _nginx: Some(front),
        _lighttpd: None,
    }
}

/// lighttpd running `staticapp` as a CGI program for every path (the document root is the program).
fn lighttpd_cgi(root: &Path) -> Gateway {
    let dir = TempDir::new("static-lty-cgi");
    let app = lighttpd_quote(dir.install_executable(&binary(APP), "app.cgi"));
    let [(key, value)] = env(root);
    let conf = format!(
        "server.modules = ( \"mod_setenv\", \"mod_cgi\" )\n\
         server.document-root = {app}\n\
         cgi.assign = ( \".cgi\" => \"\" )\n\
         setenv.add-environment = ( \"{key}\" => {} )\n",
        lighttpd_quote(value)
    );
    let front = Lighttpd::start(dir, &conf);
    Gateway {
        name: "lty-cgi",
        addr: front.addr(),
        _servers: Vec::new(),
        _nginx: None,
        _lighttpd: Some(front),
    }
}

/// Send `row` as raw bytes; the status and the whole answer (head and body) as text.
fn send(addr: &str, row: &Row) -> (u16, String) {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: rgi.test\r\n{}Connection: close\r\n\r\n",
        row.target, row.headers
    );
    let answer = raw_exchange(addr, request.as_bytes(), Duration::from_secs(10));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Run every row through `gateway`; the matrix column, and the failures.
fn run(gateway: &Gateway) -> (Vec<String>, Vec<String>) {
    let mut cells = Vec::new();
    let mut failures = Vec::new();
    let mut reasons = std::collections::BTreeSet::new();
    for row in ROWS {
        let (status, answer) = send(&gateway.addr, row);
        // RGI's refusals are short text/plain; nginx's and lighttpd's own are HTML pages.
        let by_front = answer.contains("<html");
        let mut cell = status.to_string();
        if answer.contains(SECRET) {
            failures.push(format!(
                "{} {}: THE SECRET LEAKED:\n{answer}",
                gateway.name, row.target
            ));
            cell.push_str(" LEAK");
        }
        if status == row.want && !by_front {
            if let Some(body) = row.body {
                if !answer.contains(body) {
                    failures.push(format!(
                        "{} {}: body lacks {body:?}:\n{answer}",
                        gateway.name, row.target
                    ));
                }
            }
            if let Some(header) = row.header {
                let (head, _) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
                if !head.to_ascii_lowercase().contains(header) {
                    failures.push(format!(
                        "{} {}: no `{header}` header:\n{head}",
                        gateway.name, row.target
                    ));
                }
            }
        } else if let Some(reason) = front_server_answer(gateway.name, row.target, status, by_front)
        {
            cell.push('*');
            reasons.insert(reason);
        } else {
            let who = if by_front { "the front server" } else { "RGI" };
            failures.push(format!(
                "{} {} {:?}: {who} answered {status}, want RGI's {}:\n{answer}",
                gateway.name, row.target, row.headers, row.want
            ));
            cell.push_str(" ✗");
        }
        cells.push(cell);
    }
    for reason in reasons {
        println!("{}: * {reason}", gateway.name);
    }
    (cells, failures)
}

fn check(gateways: Vec<Gateway>) {
    let mut columns = Vec::new();
    let mut failures = Vec::new();
    for gateway in &gateways {
        let (cells, failed) = run(gateway);
        columns.push((gateway.name, cells));
        failures.extend(failed);
    }
    let mut matrix = String::from("| target | want |");
    for (name, _) in &columns {
        let _ = write!(matrix, " {name} |");
    }
    matrix.push('\n');
    for (i, row) in ROWS.iter().enumerate() {
        let _ = write!(
            matrix,
            "| `{}` {} | {} |",
            row.target,
            row.headers.trim(),
            row.want
        );
        for (_, cells) in &columns {
            let _ = write!(matrix, " {} |", cells[i]);
        }
        matrix.push('\n');
    }
    println!("{matrix}(* = the front server dealt with the row first, see FRONT_SERVER)");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn traversal_table_direct_http() {
    let (_base, root) = make_root();
    check(vec![direct(&root)]);
}

#[test]
fn traversal_table_behind_nginx_fastcgi_scgi_uwsgi() {
    if webservers::skip_webservers() {
        return;
    }
    let (_base, root) = make_root();
    check(vec![
        nginx("ngx-fcgi", "fastcgi", &root),
        nginx("ngx-scgi", "scgi", &root),
        nginx("ngx-uwsgi", "uwsgi", &root),
    ]);
}

#[test]
fn traversal_table_cgi_under_lighttpd() {
    if webservers::skip_webservers() {
        return;
    }
    let (_base, root) = make_root();
    check(vec![lighttpd_cgi(&root)]);
}
