//! The security properties SECURITY.md promises, end to end over real sockets: session cookies are
//! tamper-proof and survive a key rotation, no secret or session cookie reaches a log line, cookies
//! are `Secure` over HTTPS behind a TLS proxy, the debug page cannot run in production,
//! `FCGI_WEB_SERVER_ADDRS` is enforced, unix socket permissions are configurable, and a live unix
//! socket is never taken over (a stale one is replaced). Static files that cannot escape their root:
//! `middleware_static.rs`, over every gateway.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rgi_tests::webservers::TempDir;
use rgi_tests::{binary, curl, read_until_close, Server};

/// Two 32-byte secrets in hex (RGI_SECRET_KEYS accepts hex or base64).
const OLD_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const NEW_KEY: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// sessionapp under the process manager, logging everything (debug level, access log) to `dir`.
fn sessionapp(dir: &Path, keys: &str, store: &str) -> Server {
    let err = dir.join("error.log");
    let access = dir.join("access.log");
    Server::start_with_env(
        "sessionapp",
        &[
            "-w",
            "1",
            "--log-level",
            "debug",
            "--error-logfile",
            err.to_str().unwrap(),
            "--access-logfile",
            access.to_str().unwrap(),
        ],
        &[("RGI_SECRET_KEYS", keys), ("SESSION_STORE", store)],
    )
}

/// GET `path` with `cookie` (may be empty): (body, the `rgi_session=…` pair set, if any).
fn get(server: &Server, path: &str, cookie: &str, extra: &[&str]) -> (String, Option<String>) {
    let mut args = vec!["-i", "-H"];
    let header = format!("cookie: {cookie}");
    args.push(&header);
    args.extend_from_slice(extra);
    let url = server.url(path);
    args.push(&url);
    let out = curl(&args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let set = head.lines().find_map(|l| {
        let l = l
            .strip_prefix("set-cookie: ")
            .or_else(|| l.strip_prefix("Set-Cookie: "))?;
        Some(l.split(';').next()?.to_owned())
    });
    (body.to_owned(), set)
}

fn user_of(body: &str) -> &str {
    body.split_whitespace()
        .find_map(|f| f.strip_prefix("user="))
        .unwrap_or_else(|| panic!("no user in {body:?}"))
}

/// The cookie with one character of its sealed value changed.
fn tampered(pair: &str) -> String {
    let (name, value) = pair.split_once('=').unwrap();
    let mut bytes = value.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    format!("{name}={}", String::from_utf8(bytes).unwrap())
}

#[test]
fn session_cookies_are_tamper_proof_rotate_keys_and_never_reach_a_log() {
    for store in ["cookie", "memory"] {
        let dir = TempDir::new("security-sessions");
        let mut seen_cookies = Vec::new();
        let mut server = sessionapp(dir.path(), OLD_KEY, store);
        let (_, cookie) = get(&server, "/login?alice", "", &[]);
        let cookie = cookie.expect("a session cookie on login");
        seen_cookies.push(cookie.clone());
        assert_eq!(user_of(&get(&server, "/whoami", &cookie, &[]).0), "alice");
        // One changed character, a truncated value, a value from another cookie name: no session.
        for forged in [
            tampered(&cookie),
            cookie[..cookie.len() - 4].to_owned(),
            format!("other={}", cookie.split_once('=').unwrap().1),
        ] {
            let (body, _) = get(&server, "/whoami", &forged, &[]);
            assert_eq!(user_of(&body), "-", "{store}: {forged} opened a session");
        }
        if store == "memory" {
            // The memory store lives in the worker: rotation is checked on the cookie store.
            drop(server);
            assert_no_secret_in_logs(dir.path(), &seen_cookies);
            continue;
        }
        server.stop_within(Duration::from_secs(10));
        // Rotation: the new key first, the old one still opens (and the cookie is re-issued).
        let mut server = sessionapp(dir.path(), &format!("{NEW_KEY},{OLD_KEY}"), store);
        let (body, reissued) = get(&server, "/whoami", &cookie, &[]);
        assert_eq!(user_of(&body), "alice");
        let reissued = reissued.expect("a cookie opened by an older key is re-issued");
        assert_ne!(reissued, cookie);
        seen_cookies.push(reissued.clone());
        server.stop_within(Duration::from_secs(10));
        // The old key retired: its cookies are empty sessions; the re-issued one still opens.
        let server = sessionapp(dir.path(), NEW_KEY, store);
        assert_eq!(user_of(&get(&server, "/whoami", &cookie, &[]).0), "-");
        assert_eq!(user_of(&get(&server, "/whoami", &reissued, &[]).0), "alice");
        drop(server);
        assert_no_secret_in_logs(dir.path(), &seen_cookies);
    }
}

/// Neither key, nor any session cookie value, appears in the error or access log; the logs are not
/// empty (the requests and the rejected cookies were logged).
fn assert_no_secret_in_logs(dir: &Path, cookies: &[String]) {
    let err = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    let access = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
    assert!(access.contains("/whoami"), "access log: {access}");
    assert!(
        err.contains("debug: "),
        "rejected cookies are logged: {err}"
    );
    for (name, log) in [("error", &err), ("access", &access)] {
        for line in log.lines() {
            for secret in [OLD_KEY, NEW_KEY] {
                assert!(!line.contains(secret), "{name} log shows a key: {line}");
            }
            for cookie in cookies {
                let value = cookie.split_once('=').unwrap().1;
                // Any 16-character piece of a sealed value would be a leak.
                for piece in value.as_bytes().chunks(16).filter(|p| p.len() == 16) {
                    let piece = std::str::from_utf8(piece).unwrap();
                    assert!(
                        !line.contains(piece),
                        "{name} log shows a session cookie: {line}"
                    );
                }
            }
        }
    }
}

#[test]
fn cookies_are_secure_over_https_behind_a_tls_proxy() {
    let server = Server::start_with_env(
        "sessionapp",
        &[],
        &[("RGI_SECRET_KEYS", OLD_KEY), ("PROXY_FIX", "1")],
    );
    let attributes = |extra: &[&str]| {
        let out = curl(&[&["-i"], extra, &[server.url("/login?bob").as_str()]].concat());
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        text.lines()
            .find(|l| l.starts_with("set-cookie: rgi_session="))
            .expect("a session cookie")
            .to_owned()
    };
    let https = attributes(&["-H", "x-forwarded-proto: https"]);
    assert!(https.contains("; secure"), "{https}");
    assert!(
        https.contains("; httponly") && https.contains("samesite=lax"),
        "{https}"
    );
    let http = attributes(&[]);
    assert!(!http.contains("secure"), "{http}");
}

#[test]
fn the_debug_page_runs_in_development_and_is_refused_in_production() {
    let dev = Server::start_with_env(
        "sessionapp",
        &[],
        &[("RGI_SECRET_KEYS", OLD_KEY), ("DEBUG_PAGE", "1")],
    );
    let out = curl(&["-s", &dev.url("/fail")]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("deliberate failure"));
    drop(dev);
    let out = Command::new(binary("sessionapp"))
        .args(["--bind", "127.0.0.1:0"])
        .envs([
            ("RGI_SECRET_KEYS", OLD_KEY),
            ("DEBUG_PAGE", "1"),
            ("RGI_ENV", "production"),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sessionapp");
    assert!(
        !out.status.success(),
        "the debug page started in production"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RGI_ENV is production"), "{stderr}");
    // Without the debug page, production shows no internals.
    let prod = Server::start_with_env(
        "sessionapp",
        &[],
        &[("RGI_SECRET_KEYS", OLD_KEY), ("RGI_ENV", "production")],
    );
    let out = curl(&["-s", "-w", " %{http_code}", &prod.url("/fail")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with(" 500") && !text.contains("deliberate"),
        "{text}"
    );
}

#[test]
fn fcgi_web_server_addrs_refuses_other_peers() {
    let request = {
        use rgi_servers::fastcgi::record::*;
        let mut out = Vec::new();
        encode_record(&mut out, FCGI_BEGIN_REQUEST, 1, &[0, 1, 0, 0, 0, 0, 0, 0]);
        let mut params = Vec::new();
        encode_pair(&mut params, b"REQUEST_METHOD", b"GET");
        encode_pair(&mut params, b"PATH_INFO", b"/fast");
        encode_record(&mut out, FCGI_PARAMS, 1, &params);
        encode_record(&mut out, FCGI_PARAMS, 1, b"");
        encode_record(&mut out, FCGI_STDIN, 1, b"");
        out
    };
    let exchange = |server: &Server| {
        let mut s = TcpStream::connect(server.addr()).unwrap();
        let _ = s.write_all(&request);
        read_until_close(&mut s, Duration::from_secs(10))
    };
    let refused = Server::start_with_env(
        "testapp",
        &["--protocol", "fastcgi"],
        &[("FCGI_WEB_SERVER_ADDRS", "192.0.2.1, ::1")],
    );
    assert!(
        exchange(&refused).is_empty(),
        "a peer outside FCGI_WEB_SERVER_ADDRS was answered"
    );
    let allowed = Server::start_with_env(
        "testapp",
        &["--protocol", "fastcgi"],
        &[("FCGI_WEB_SERVER_ADDRS", "192.0.2.1,127.0.0.1")],
    );
    let reply = exchange(&allowed);
    assert!(String::from_utf8_lossy(&reply).contains("fast\n"));
}

#[test]
fn unix_socket_permissions_follow_socket_mode() {
    let dir = TempDir::new("security-socket-mode");
    for (mode, expect) in [("600", 0o600), ("0o660", 0o660), ("777", 0o777)] {
        let path = dir.join(&format!("app-{expect:o}.sock"));
        let bind = format!("unix:{}", path.display());
        let _server = Server::start("testapp", &["--bind", &bind, "--socket-mode", mode]);
        let perms = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(perms, expect, "--socket-mode {mode}");
    }
    let out = Command::new(binary("testapp"))
        .args(["--bind", "unix:/nonexistent/x.sock", "--socket-mode", "99"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad mode is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("octal"));
}

#[test]
fn a_live_unix_socket_is_never_taken_over_and_a_stale_one_is_replaced() {
    let dir = TempDir::new("security-live-socket");
    let path = dir.join("app.sock");
    let bind = format!("unix:{}", path.display());
    let served = |path: &Path| {
        let out = curl(&["--unix-socket", path.to_str().unwrap(), "http://x/fast"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = Server::start("testapp", &["--bind", &bind]);
    assert_eq!(served(&path), "fast\n");
    // A second server on the same path fails with a clear message; the first keeps its socket.
    let out = Command::new(binary("testapp"))
        .args(["--bind", &bind])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    assert_eq!(served(&path), "fast\n", "the live server lost its socket");
    // Killed without cleanup: the socket file stays, stale; the next server replaces it.
    let mut first = first;
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    assert!(path.exists(), "the stale socket file is left behind");
    let _second = Server::start("testapp", &["--bind", &bind]);
    assert_eq!(served(&path), "fast\n");
}
