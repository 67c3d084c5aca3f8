//! The example binaries run as CGI scripts (RFC 3875): a crafted environment, the body on stdin, the
//! response on stdout.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// Run `bin` as a CGI script with `vars` (plus `GATEWAY_INTERFACE`) and `stdin`.
fn cgi(bin: &Path, vars: &[(&str, &[u8])], args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, OsStr::from_bytes(v));
    }
    let mut child = cmd.spawn().expect("spawn the CGI script");
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

const GET: [(&str, &[u8]); 7] = [
    ("REQUEST_METHOD", b"GET"),
    ("SCRIPT_NAME", b"/cgi-bin/demo"),
    ("PATH_INFO", b"/some/path"),
    ("QUERY_STRING", b"a=1&a=2"),
    ("SERVER_NAME", b"example.org"),
    ("SERVER_PORT", b"8080"),
    ("SERVER_PROTOCOL", b"HTTP/1.1"),
];

fn split(output: &Output) -> (String, String) {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_owned(), body.to_owned())
}

#[test]
fn demo_as_a_cgi_script_answers_with_a_status_field_and_the_environ() {
    let out = cgi(&common::binary("demo"), &GET, &[], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, body) = split(&out);
    assert!(head.starts_with("Status: 200 OK\r\n"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let environ = &json["environ"];
    assert_eq!(environ["SCRIPT_NAME"], "/cgi-bin/demo");
    assert_eq!(environ["PATH_INFO"], "/some/path");
    assert_eq!(environ["QUERY_STRING"], "a=1&a=2");
    assert_eq!(environ["SERVER_PORT"], "8080");
    assert_eq!(environ["GATEWAY_INTERFACE"], "CGI/1.1");
    assert_eq!(json["body_len"], 0);
}

#[test]
fn a_non_utf8_environment_value_reaches_the_app_as_bytes() {
    let mut vars = GET.to_vec();
    vars.push(("HTTP_X_LATIN", b"caf\xe9"));
    let out = cgi(&common::binary("demo"), &vars, &[], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&split(&out).1).unwrap();
    assert_eq!(json["environ"]["HTTP_X_LATIN"], "caf\u{fffd}");
}

#[test]
fn a_post_body_is_read_from_stdin_up_to_content_length() {
    let mut vars = GET.to_vec();
    vars[0] = ("REQUEST_METHOD", b"POST");
    vars.push(("CONTENT_LENGTH", b"5"));
    vars.push(("CONTENT_TYPE", b"text/plain"));
    let out = cgi(
        &common::binary("demo"),
        &vars,
        &[],
        b"hello, and bytes past the body",
    );
    let json: serde_json::Value = serde_json::from_str(&split(&out).1).unwrap();
    assert_eq!(json["body_len"], 5);
    assert_eq!(
        json["body_sha256"],
        format!("{:x}", Sha256::digest(b"hello"))
    );
    assert_eq!(json["environ"]["CONTENT_TYPE"], "text/plain");
}

#[test]
fn a_script_named_nph_writes_a_full_http_status_line() {
    let dir = std::env::temp_dir().join(format!("rgi-nph-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("nph-demo");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(common::binary("demo"), &link).unwrap();
    let out = cgi(&link, &GET, &[], b"");
    std::fs::remove_dir_all(&dir).unwrap();
    let (head, body) = split(&out);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.starts_with('{'));
}

#[test]
fn a_head_request_gets_the_length_and_no_body() {
    let mut vars = GET.to_vec();
    vars[0] = ("REQUEST_METHOD", b"HEAD");
    let out = cgi(&common::binary("hello"), &vars, &[], b"");
    let (head, body) = split(&out);
    assert!(head.starts_with("Status: 200 OK\r\n"), "{head}");
    assert!(head.contains("content-length: "), "{head}");
    assert_eq!(body, "");
}

#[test]
fn arguments_from_the_web_server_are_ignored_in_cgi_mode() {
    // An ISINDEX query arrives as argv ("a+b" → "a", "b"), and even option-like words must not
    // stop the script.
    let out = cgi(&common::binary("hello"), &GET, &["a", "--help", "-x"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"Status: 200 OK\r\n"));
}

#[test]
fn a_request_without_request_method_gets_400_and_a_logged_reason() {
    let out = cgi(
        &common::binary("hello"),
        &[("SCRIPT_NAME", b"/x")],
        &[],
        b"",
    );
    assert!(out.stdout.starts_with(b"Status: 400 Bad Request\r\n"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cgi: request refused"));
}
