//! Issue 18, defects 1 and 2, behind real nginx over FastCGI: a chunked upload larger than
//! `--limit-request-body` gets 413 even when the application asks `rgi.input` for a higher limit,
//! and such client mistakes leave no `[error] … FastCGI sent in stderr` line in nginx's error log
//! (while an application's own failure still does). Over HTTP, the same is covered by
//! `http_conformance.rs`.

use std::path::Path;

use rgi_tests::webservers::{self, Nginx, TempDir};
use rgi_tests::{curl, Server};

/// The server's limit; the app asks for 100,000.
const LIMIT: &str = "1000";

/// curl `args` against `url`: (status, body).
fn fetch(args: &[&str], url: &str) -> (u16, String) {
    let mut all = vec!["-w", "\n%{http_code}"];
    all.extend_from_slice(args);
    all.push(url);
    let out = curl(&all);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status from -w");
    (code.parse().expect("status code"), body.to_owned())
}

fn upload(dir: &Path, name: &str, size: usize) -> String {
    let path = dir.join(name);
    std::fs::write(&path, vec![b'x'; size]).unwrap();
    format!("@{}", path.display())
}

#[test]
fn over_fastcgi_behind_nginx_the_servers_body_limit_holds_and_413s_are_not_errors() {
    if webservers::skip_webservers() {
        return;
    }
    let app = Server::start(
        "testapp",
        &["--protocol", "fastcgi", "--limit-request-body", LIMIT],
    );
    let dir = TempDir::new("client-errors");
    let params = webservers::nginx_stock_params("fastcgi_params");
    let pass = format!("include {}; fastcgi_pass {};", params.display(), app.addr());
    // `/raise-limit` streams the body as it arrives (a chunked upload reaches RGI without
    // CONTENT_LENGTH, so only `rgi.input`'s limit can stop it); `/` buffers it (nginx sends
    // CONTENT_LENGTH and RGI refuses before the application runs).
    let server = format!(
        "        location / {{ {pass} }}\n\
         \x20       location = /raise-limit {{ {pass} fastcgi_request_buffering off; }}\n"
    );
    let nginx = Nginx::start(dir, "", &server);
    let files = nginx.dir().path().to_owned();
    let big = upload(&files, "big", 50_000);
    let small = upload(&files, "small", 500);
    let chunked = ["-H", "Transfer-Encoding: chunked", "--data-binary"];

    // Defect 1: the app asks for 100,000; the server's 1,000 stays the ceiling.
    let url = nginx.url("/raise-limit?to=100000");
    let (status, body) = fetch(&[&chunked[..], &[&big]].concat(), &url);
    assert_eq!(status, 413, "{body}");
    let (status, body) = fetch(&[&chunked[..], &[&small]].concat(), &url);
    assert_eq!(
        (status, body.as_str()),
        (200, "read 500 bytes, limit 1000\n")
    );
    // A declared length over the limit, refused before the application.
    let (status, _) = fetch(&["--data-binary", &big], &nginx.url("/echo"));
    assert_eq!(status, 413);

    // Defect 2: none of that is an error in nginx's log.
    let log = nginx.error_log();
    let stderr_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("FastCGI sent in stderr") || l.contains("[error]"))
        .collect();
    assert!(
        stderr_lines.is_empty(),
        "client mistakes logged as errors by nginx:\n{}",
        stderr_lines.join("\n")
    );

    // …while the application's own failure still is (so the check above can fail).
    let (status, _) = fetch(&[], &nginx.url("/panic"));
    assert_eq!(status, 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !nginx.error_log().contains("FastCGI sent in stderr") {
        assert!(
            std::time::Instant::now() < deadline,
            "an application panic left no error line:\n{}",
            nginx.error_log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
