//! The standard middleware stack (`rgi_tests::stack`: request id, proxy fix, access log, panic catcher,
//! error pages, security headers, tower-http CORS, compression, static files) gives the same answers —
//! status, app-controlled headers and body bytes — in-process, behind real nginx over FastCGI and as a
//! CGI program under lighttpd; and its access log gets one line per request under each gateway.

use std::collections::BTreeMap;
use std::path::Path;

use rgi_tests::webservers::{self, lighttpd_quote, Lighttpd, Nginx, TempDir};
use rgi_tests::{binary, curl, Server};

/// One request: method, path, request headers.
type Row = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const ROWS: &[Row] = &[
    ("GET", "/", &[("accept-encoding", "gzip")]),
    ("GET", "/", &[("accept-encoding", "br;q=1, gzip;q=0.5")]),
    ("GET", "/", &[]),
    ("HEAD", "/", &[("accept-encoding", "gzip")]),
    (
        "GET",
        "/static/app.css",
        &[("origin", "http://example.test")],
    ),
    ("GET", "/static/big.js", &[("accept-encoding", "gzip")]),
    ("GET", "/static/big.js", &[("range", "bytes=0-9")]),
    (
        "GET",
        "/static/nothing.css",
        &[("accept", "application/json")],
    ),
    ("GET", "/missing", &[("accept", "text/html")]),
    ("GET", "/panic", &[]),
    ("GET", "/fail", &[("accept", "application/json")]),
    (
        "GET",
        "/whoami",
        &[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", "stack-test-1"),
        ],
    ),
    (
        "OPTIONS",
        "/whoami",
        &[
            ("origin", "http://example.test"),
            ("access-control-request-method", "POST"),
        ],
    ),
];

/// Headers that belong to the connection or the front server, not to the stack.
const NOT_THE_STACKS: &[&str] = &[
    "date",
    "server",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
];

/// Paths trying to leave the static root: nginx and lighttpd normalise some of them before the stack
/// sees them, so only "refused, and never the secret" is asserted for these.
const TRAVERSALS: &[&str] = &[
    "/static/%2e%2e/secret.txt",
    "/static/..%2fsecret.txt",
    "/static/..%5csecret.txt",
    "/static/%2e%2e%2fsecret.txt",
];

#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    body: Vec<u8>,
}

/// Reduce an answer to what the stack controls. A generated request id (the row sent none) differs
/// by nature: it is checked for shape and replaced by a placeholder.
fn reduce<'a>(
    row: Row,
    status: u16,
    headers: impl Iterator<Item = (String, &'a str)>,
    body: Vec<u8>,
) -> Answer {
    let sent_id = row.2.iter().any(|(n, _)| *n == "x-request-id");
    let mut body = body;
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let mut value = value.trim().to_owned();
        if name == "x-request-id" && !sent_id {
            assert!(
                value.len() >= 16
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "generated request id {value:?}"
            );
            // Error pages quote the id too.
            let text = String::from_utf8_lossy(&body).replace(&value, "<generated>");
            if text.as_bytes() != &body[..] && std::str::from_utf8(&body).is_ok() {
                body = text.into_bytes();
            }
            value = "<generated>".into();
        }
        if !NOT_THE_STACKS.contains(&name.as_str()) {
            map.entry(name).or_default().push(value);
        }
    }
    Answer {
        status,
        headers: map,
        body,
    }
}

fn in_process(dir: &Path, row: Row) -> Answer {
    let (method, path, headers) = row;
    let client = rgi::testing::TestClient::new(rgi_tests::stack::stack(dir));
    let mut request = client.request(method.parse().unwrap(), path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send_blocking();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap()));
    reduce(
        row,
        response.status().as_u16(),
        headers,
        response.body().to_vec(),
    )
}

fn over_curl(scratch: &Path, base: &str, row: Row) -> Answer {
    let (method, path, headers) = row;
    let head_file = scratch.join("headers");
    let body_file = scratch.join("body");
    let mut args: Vec<String> = vec![
        "-s".into(),
        "--http1.1".into(),
        "--path-as-is".into(),
        "-D".into(),
        head_file.display().to_string(),
        "-o".into(),
        body_file.display().to_string(),
    ];
    if method == "HEAD" {
        args.push("-I".into());
    } else {
        args.extend(["-X".into(), method.into()]);
    }
    for (name, value) in headers {
        args.extend(["-H".into(), format!("{name}: {value}")]);
    }
    args.push(format!("{base}{path}"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = curl(&args);
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let raw = std::fs::read_to_string(&head_file).unwrap();
    let mut lines = raw.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v));
    // `curl -I` writes the headers to the output file: a HEAD answer has no body to read.
    let body = if method == "HEAD" {
        Vec::new()
    } else {
        std::fs::read(&body_file).unwrap_or_default()
    };
    if let Some(len) = raw.split("\r\n").find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("content-length:")
            .map(|v| v.trim().to_owned())
    }) {
        if method != "HEAD" {
            assert_eq!(
                len.parse::<usize>().unwrap(),
                body.len(),
                "{method} {path}: Content-Length"
            );
        }
    }
    reduce(row, status, headers, body)
}

/// The stack's folder: static files, a secret beside them, the access log and the program itself.
fn stack_dir(label: &str) -> TempDir {
    let dir = TempDir::new(label);
    let public = dir.subdir("public", 0o755);
    std::fs::write(public.join("app.css"), "body { color: #333 }\n").unwrap();
    let js: String = (0..400).map(|i| format!("console.log({i});\n")).collect();
    std::fs::write(public.join("big.js"), js).unwrap();
    std::fs::write(dir.join("secret.txt"), "the secret must never be served\n").unwrap();
    // lighttpd runs CGI programs as an unprivileged user when the tests run as root.
    dir.file("access.log", 0o666);
    dir
}

fn log_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("access.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn compare_with_in_process(gateway: &str, dir: &Path, base: &str) {
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let before = log_lines(dir);
    let mut failures = Vec::new();
    for &row in ROWS {
        let want = in_process(dir, row);
        let mut have = over_curl(&scratch, base, row);
        // lighttpd adds `Accept-Ranges: bytes` to a CGI response it received whole before sending.
        if gateway.starts_with("lighttpd") && !want.headers.contains_key("accept-ranges") {
            have.headers.remove("accept-ranges");
        }
        assert!(
            !String::from_utf8_lossy(&have.body).contains("the secret"),
            "{gateway} {row:?} served the secret"
        );
        if want != have {
            failures.push(format!(
                "{gateway} {} {}:\n  in-process {:?} {:?} {} bytes\n  {gateway} {:?} {:?} {} bytes",
                row.0,
                row.1,
                want.status,
                want.headers,
                want.body.len(),
                have.status,
                have.headers,
                have.body.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // One line per request each time: in-process and through the gateway.
    assert_eq!(
        log_lines(dir) - before,
        2 * ROWS.len(),
        "{gateway}: access log lines"
    );
    for path in TRAVERSALS {
        let have = over_curl(&scratch, base, ("GET", path, &[]));
        assert!(
            matches!(have.status, 400 | 404),
            "{gateway} {path}: {}",
            have.status
        );
        assert!(
            !String::from_utf8_lossy(&have.body).contains("the secret"),
            "{gateway} {path} served the secret"
        );
    }
}

#[test]
fn the_stack_answers_alike_in_process_and_behind_nginx_over_fastcgi() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = stack_dir("stack-nginx");
    let stack = dir.path().to_path_buf();
    let port = webservers::free_port();
    let bind = format!("127.0.0.1:{port}");
    let _app = Server::start_with_env(
        "stackapp",
        &["--protocol", "fastcgi", "--bind", &bind],
        &[("RGI_STACK_DIR", stack.to_str().unwrap())],
    );
    let server = format!(
        "        location / {{ include {}; fastcgi_pass {bind}; }}\n",
        webservers::nginx_stock_params("fastcgi_params").display()
    );
    let front = Nginx::start(TempDir::new("stack-nginx-front"), "", &server);
    compare_with_in_process("nginx-fastcgi", &stack, &front.url(""));
    // The app's own failures reach the error log (the FastCGI stderr), the stack keeps serving.
    assert!(
        front.error_log().contains("on purpose"),
        "{}",
        front.error_log()
    );
}

#[test]
fn the_stack_answers_alike_in_process_and_as_cgi_under_lighttpd() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = stack_dir("stack-cgi");
    let program = lighttpd_quote(dir.install_executable(&binary("stackapp"), "stack.cgi"));
    let conf = format!(
        "server.modules = ( \"mod_cgi\" )\n\
         server.document-root = {program}\n\
         cgi.assign = ( \".cgi\" => \"\" )\n"
    );
    let front = Lighttpd::start(TempDir::new("stack-cgi-front"), &conf);
    compare_with_in_process("lighttpd-cgi", dir.path(), &front.url(""));
}
