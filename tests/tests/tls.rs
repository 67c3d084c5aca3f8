//! HTTPS on RGI's own HTTP server: `--certfile`/`--keyfile` (certificates made by the test with the
//! openssl CLI, self-signed), curl `--cacert` as the client. The environ says `https`; the
//! certificate is reloaded on `SIGHUP` (standalone and under the process manager); `--ca-certs`
//! requires a client certificate from that CA.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rgi_tests::certs::{certificate, openssl, self_signed};
use rgi_tests::webservers::{self, TempDir};
use rgi_tests::{curl, demo_json, sha256_hex, Server};

/// `https://ADDR` + `path` of a server whose banner says `https://`.
fn https(server: &Server, path: &str) -> String {
    assert!(
        server.banner.iter().any(|l| l.contains("https://")),
        "{:?}",
        server.banner
    );
    format!("https://{}{path}", server.addr())
}

/// GET `url` trusting `ca`: the body, or curl's error.
fn get(url: &str, ca: &Path, extra: &[&str]) -> Result<Vec<u8>, String> {
    let ca = ca.display().to_string();
    let mut args = vec!["--fail", "--cacert", ca.as_str()];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(&args);
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Poll (every 100 ms, at most 10 s) until `f` holds.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Replace `cert`/`key` by a new certificate named `cn`, send `HUP` to `pid`, and check that new
/// connections get it: trusted with the new one, refused with the old one.
fn reload_on_hup(dir: &TempDir, server: &Server, pid: u32, cert: &Path, key: &Path) {
    let old = dir.join("old.pem");
    std::fs::copy(cert, &old).expect("keep the old certificate");
    let (new_cert, new_key) = self_signed(dir, "new", "rgi reloaded");
    std::fs::copy(&new_cert, cert).expect("install the new certificate");
    std::fs::copy(&new_key, key).expect("install the new key");
    assert!(
        get(&https(server, "/fast"), &old, &[]).is_ok(),
        "before HUP the old certificate is still served"
    );
    webservers::send_signal(pid, "HUP");
    assert!(
        eventually(|| get(&https(server, "/fast"), &new_cert, &[]).is_ok()),
        "after HUP the new certificate is served"
    );
    let refused = get(&https(server, "/fast"), &old, &[]);
    assert!(refused.is_err(), "the old certificate is no longer served");
}

#[test]
fn https_environ_bodies_and_reload_on_hup() {
    let dir = TempDir::new("tls");
    let (cert, key) = self_signed(&dir, "server", "rgi test");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let server = Server::start("testapp", &["--certfile", &c, "--keyfile", &k]);

    let body = get(
        &https(&server, "/env/x?q=1"),
        &cert,
        &["-H", "Host: rgi.test"],
    )
    .expect("GET over TLS");
    let env = &demo_json(&body)["environ"];
    assert_eq!(env["rgi.url_scheme"], "https");
    assert_eq!(env["HTTPS"], "on");
    assert_eq!(env["PATH_INFO"], "/env/x");
    assert_eq!(env["QUERY_STRING"], "q=1");
    // curl offers h2 by ALPN and the server takes it (tests/tests/http2.rs covers HTTP/1.1 too).
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2.0");
    // mod_ssl's session variables; no client certificate was asked for.
    assert_eq!(env["SSL_CLIENT_VERIFY"], "NONE");
    assert!(env["SSL_CLIENT_S_DN"].is_null(), "{env}");
    assert!(
        env["SSL_PROTOCOL"].as_str().unwrap().starts_with("TLSv1."),
        "{env}"
    );
    assert!(!env["SSL_CIPHER"].as_str().unwrap().is_empty(), "{env}");

    // A body both ways: 2 MiB up, 1 MiB down, over one kept-alive TLS connection each.
    let upload: Vec<u8> = (0..2u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.join("upload.bin");
    std::fs::write(&file, &upload).expect("write upload");
    let data = format!("@{}", file.display());
    let body = get(
        &https(&server, "/upload"),
        &cert,
        &[
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/octet-stream",
        ],
    )
    .expect("POST over TLS");
    let json = demo_json(&body);
    assert_eq!(json["body_sha256"], sha256_hex(&upload));
    let big = get(&https(&server, "/big?bytes=1048576"), &cert, &[]).expect("1 MiB over TLS");
    assert_eq!(big.len(), 1 << 20);

    // Not TLS: curl without the CA refuses the certificate; plain HTTP gets no answer; the server
    // goes on serving.
    let untrusted = curl(&["--fail", &https(&server, "/fast")]);
    assert!(
        !untrusted.status.success(),
        "an untrusted certificate is refused"
    );
    let plain = curl(&["--fail", &format!("http://{}/fast", server.addr())]);
    assert!(!plain.status.success(), "plain HTTP on the TLS port");
    assert_eq!(
        get(&https(&server, "/fast"), &cert, &[]).expect("still serving"),
        b"fast\n"
    );

    reload_on_hup(&dir, &server, server.pid(), &cert, &key);
}

#[test]
fn the_process_manager_serves_https_and_reloads_on_hup() {
    let dir = TempDir::new("tls-arbiter");
    let (cert, key) = self_signed(&dir, "server", "rgi test");
    let (c, k) = (cert.display().to_string(), key.display().to_string());
    let pidfile = dir.join("rgi.pid").display().to_string();
    let server = Server::start(
        "testapp",
        &[
            "-w",
            "2",
            "--certfile",
            &c,
            "--keyfile",
            &k,
            "--pid",
            &pidfile,
        ],
    );
    for _ in 0..4 {
        let body = get(&https(&server, "/env"), &cert, &[]).expect("GET over TLS");
        assert_eq!(demo_json(&body)["environ"]["HTTPS"], "on");
    }
    // HUP to the master: a new generation of workers reads the new files.
    reload_on_hup(&dir, &server, server.pid(), &cert, &key);
}

#[test]
fn ca_certs_require_a_client_certificate_from_that_ca() {
    let dir = TempDir::new("tls-client");
    let (cert, key) = self_signed(&dir, "server", "rgi test");
    let (ca, ca_key) = certificate(
        &dir,
        "ca",
        "rgi test CA",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign",
        ],
    );
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/O=RGI Tests/CN=client",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ],
    );
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("write client.ext");
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            &ca.display().to_string(),
            "-CAkey",
            &ca_key.display().to_string(),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "client.pem",
        ],
    );
    let (c, k, ca) = (
        cert.display().to_string(),
        key.display().to_string(),
        ca.display().to_string(),
    );
    let server = Server::start(
        "testapp",
        &["--certfile", &c, "--keyfile", &k, "--ca-certs", &ca],
    );
    let url = https(&server, "/fast");
    let without = get(&url, &cert, &[]);
    assert!(without.is_err(), "no client certificate: refused");
    let client = dir.join("client.pem").display().to_string();
    let client_key = dir.join("client.key").display().to_string();
    let with = get(&url, &cert, &["--cert", &client, "--key", &client_key]);
    assert_eq!(with.expect("a client certificate from the CA"), b"fast\n");
    // A self-signed client certificate is not from the CA.
    let other = self_signed(&dir, "other", "someone else");
    let (oc, ok) = (other.0.display().to_string(), other.1.display().to_string());
    assert!(get(&url, &cert, &["--cert", &oc, "--key", &ok]).is_err());

    // The same files from a configuration file (the process manager), and the client
    // certificate's facts in the environ under mod_ssl's names.
    let config = dir.join("rgi.toml");
    std::fs::write(
        &config,
        format!("bind = \"127.0.0.1:0\"\ncertfile = {c:?}\nkeyfile = {k:?}\nca_certs = {ca:?}\n"),
    )
    .expect("write rgi.toml");
    drop(server);
    let server = Server::start("testapp", &["-c", &config.display().to_string()]);
    let body = get(
        &https(&server, "/env"),
        &cert,
        &["--cert", &client, "--key", &client_key],
    )
    .expect("GET with a client certificate, configured by file");
    let env = &demo_json(&body)["environ"];
    assert_eq!(env["SSL_CLIENT_VERIFY"], "SUCCESS");
    assert_eq!(env["SSL_CLIENT_S_DN"], "CN=client,O=RGI Tests");
    assert_eq!(env["SSL_CLIENT_I_DN"], "CN=rgi test CA");
    let serial = Command::new(webservers::require("openssl"))
        .args(["x509", "-noout", "-serial", "-in", &client])
        .output()
        .expect("openssl x509 -serial");
    let serial = String::from_utf8_lossy(&serial.stdout);
    assert_eq!(
        Some(env["SSL_CLIENT_M_SERIAL"].as_str().unwrap()),
        serial.trim().strip_prefix("serial=")
    );
    let pem = std::fs::read_to_string(&client).expect("read client.pem");
    assert_eq!(env["SSL_CLIENT_CERT"].as_str().unwrap().trim(), pem.trim());
    assert!(
        get(&https(&server, "/env"), &cert, &[]).is_err(),
        "still required"
    );
}

#[test]
fn a_missing_or_mismatched_certificate_is_a_clear_start_up_error() {
    let dir = TempDir::new("tls-bad");
    let (cert, _) = self_signed(&dir, "server", "rgi test");
    let (_, other_key) = self_signed(&dir, "other", "someone else");
    let testapp = rgi_tests::binary("testapp");
    let run = |cert: &Path, key: &Path| {
        Command::new(&testapp)
            .args(["--bind", "127.0.0.1:0", "--certfile"])
            .arg(cert)
            .arg("--keyfile")
            .arg(key)
            .output()
            .expect("run testapp")
    };
    let missing = run(&dir.join("nope.pem"), &other_key);
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("nope.pem"), "{stderr}");
    let mismatched = run(&cert, &other_key);
    assert_eq!(mismatched.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&mismatched.stderr);
    assert!(stderr.contains("TLS"), "{stderr}");
}
