//! HTTP/2 on RGI's own HTTP server: cleartext by prior knowledge (curl `--http2-prior-knowledge`,
//! h2load), over TLS by ALPN (curl `--http2`, certificates made with the openssl CLI), standalone
//! and under the process manager (access log, request timeout, a graceful reload while a stream is
//! in flight), and the switch that turns it off.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rgi_tests::certs::self_signed;
use rgi_tests::webservers::{self, TempDir};
use rgi_tests::{curl, demo_json, sha256_hex, Server};

/// curl `args`: (HTTP status, the version curl used, the body), from `-w`.
fn curl_h2(args: &[&str]) -> (u16, String, Vec<u8>) {
    let mut all = vec!["-w", "\n%{http_code} %{http_version}"];
    all.extend_from_slice(args);
    let out = curl(&all);
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = out.stdout;
    let split = text.iter().rposition(|&b| b == b'\n').expect("the -w line");
    let tail = String::from_utf8_lossy(&text[split + 1..]).into_owned();
    let (code, version) = tail.split_once(' ').expect("code and version");
    (
        code.parse().expect("a status"),
        version.to_owned(),
        text[..split].to_vec(),
    )
}

/// What h2load reported: requests succeeded, failed and errored, and its wall time.
#[derive(Debug)]
struct Load {
    succeeded: u64,
    failed: u64,
    errored: u64,
    took: Duration,
    output: String,
}

/// Run h2load with `args` (bounded: it is killed after 60 s).
fn h2load(args: &[&str]) -> Load {
    let h2load = webservers::require("h2load");
    let started = Instant::now();
    let out = Command::new("timeout")
        .arg("60")
        .arg(h2load)
        .args(args)
        .output()
        .expect("run h2load");
    let took = started.elapsed();
    let output =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // "requests: 200 total, 200 started, 200 done, 200 succeeded, 0 failed, 0 errored, 0 timeout"
    let line = output
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or_else(|| panic!("no requests line from h2load {args:?}:\n{output}"));
    let count = |what: &str| -> u64 {
        line.split(',')
            .find(|part| part.trim().ends_with(what))
            .and_then(|part| part.split_whitespace().find_map(|w| w.parse().ok()))
            .unwrap_or_else(|| panic!("no {what} in {line:?}"))
    };
    Load {
        succeeded: count("succeeded"),
        failed: count("failed"),
        errored: count("errored"),
        took,
        output,
    }
}

/// Poll (every 100 ms, at most 20 s) until `f` holds.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

#[test]
fn h2c_by_prior_knowledge_environ_bodies_streams_and_limits() {
    let server = Server::start("testapp", &["--limit-request-body", "1048576"]);
    let h2c = "--http2-prior-knowledge";

    // The environ: HTTP/2.0, Host from :authority, the target in origin form.
    let (status, version, body) = curl_h2(&[h2c, &server.url("/env/x%20y?q=1")]);
    assert_eq!((status, version.as_str()), (200, "2"));
    let env = &demo_json(&body)["environ"];
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2.0");
    assert_eq!(env["HTTP_HOST"], server.addr());
    let (host, port) = server.addr().rsplit_once(':').unwrap();
    assert_eq!(env["SERVER_NAME"], host);
    assert_eq!(env["SERVER_PORT"], port);
    assert_eq!(env["REQUEST_URI"], "/env/x%20y?q=1");
    assert_eq!(env["PATH_INFO"], "/env/x y");
    assert_eq!(env["QUERY_STRING"], "q=1");
    assert_eq!(env["rgi.url_scheme"], "http");
    // A Host header wins over :authority, as over HTTP/1.1.
    let (_, _, body) = curl_h2(&[h2c, "-H", "Host: rgi.test:81", &server.url("/env")]);
    let env = &demo_json(&body)["environ"];
    assert_eq!(
        (&env["SERVER_NAME"], &env["SERVER_PORT"]),
        (&"rgi.test".into(), &"81".into())
    );
    // HTTP/1.1 on the same port, unchanged.
    let (status, version, body) = curl_h2(&[&server.url("/env")]);
    assert_eq!((status, version.as_str()), (200, "1.1"));
    assert_eq!(demo_json(&body)["environ"]["SERVER_PROTOCOL"], "HTTP/1.1");

    // A POST body streamed to rgi.input; one over the limit is 413, with or without a length.
    let dir = TempDir::new("h2c");
    let upload: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("upload.bin"), &upload).unwrap();
    let data = format!("@{}", dir.join("upload.bin").display());
    let (status, _, body) = curl_h2(&[h2c, "--data-binary", &data, &server.url("/upload")]);
    assert_eq!(status, 200);
    assert_eq!(demo_json(&body)["body_sha256"], sha256_hex(&upload));
    // A declared length over the limit: 413 before the application runs, then the upload is
    // stopped with RST_STREAM(NO_ERROR) (RFC 9113 §8.1), not CANCEL. (nghttp, not curl: curl 7.88
    // takes that reset for an error when its upload is not finished.)
    let mut over = upload.clone();
    over.push(0);
    std::fs::write(dir.join("over.bin"), &over).unwrap();
    let nghttp = webservers::require("nghttp");
    let out = Command::new("timeout")
        .arg("30")
        .arg(&nghttp)
        .args(["-v", "-d"])
        .arg(dir.join("over.bin"))
        .arg(server.url("/upload"))
        .output()
        .expect("run nghttp");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("content-length: 1048577"), "{text}");
    assert!(text.contains(":status: 413"), "{text}");
    let reset = text.split("recv RST_STREAM").nth(1).unwrap_or("");
    assert!(
        reset.lines().nth(1).is_some_and(|l| l.contains("NO_ERROR")),
        "the upload is stopped without error: {text}"
    );
    // `-T -` from a pipe: no length declared, so the limit stops the application's read.
    let undeclared = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            h2c,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-X", "POST", "-T", "-", &server.url("/echo")])
        .stdin(std::fs::File::open(dir.join("over.bin")).unwrap())
        .output()
        .expect("run curl");
    assert_eq!(undeclared.stdout, b"413", "{undeclared:?}");

    // A streamed response arrives chunk by chunk.
    let out = curl(&[
        h2c,
        "-w",
        "\n%{time_starttransfer} %{time_total}",
        &server.url("/stream?chunks=5&delay_ms=300"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (chunks, times) = text.rsplit_once('\n').unwrap();
    assert_eq!(chunks.lines().count(), 5, "{text}");
    let times: Vec<f64> = times
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(
        times[1] - times[0] > 0.6,
        "the first chunk came before the last was produced: {times:?}"
    );

    // The pipeline: panic → 500, a long target → 414, HEAD; the server goes on.
    assert_eq!(curl_h2(&[h2c, &server.url("/panic")]).0, 500);
    let long = format!("/{}", "a".repeat(9000));
    assert_eq!(curl_h2(&[h2c, &server.url(&long)]).0, 414);
    let (status, _, body) = curl_h2(&[h2c, "-I", &server.url("/fast")]);
    assert_eq!(status, 200);
    assert!(!String::from_utf8_lossy(&body).contains("fast\n"));
    // A head over --limit-request-head is refused, and the connection's next request is served.
    let big = format!("X-Big: {}", "b".repeat(80_000));
    let out = curl(&[
        h2c,
        "-H",
        &big,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &server.url("/fast"),
    ]);
    let code = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(code, "200", "an 80 kB head is not served");
    assert_eq!(curl_h2(&[h2c, &server.url("/fast")]).2, b"fast\n");
}

#[test]
fn many_streams_on_one_connection_run_at_once_and_their_limit_is_announced() {
    let server = Server::start("testapp", &[]);
    // 50 requests of 1 s each on one connection run at once (the default allows 100).
    let load = h2load(&[
        "-n",
        "50",
        "-c",
        "1",
        "-m",
        "50",
        &server.url("/async-sleep?ms=1000"),
    ]);
    assert_eq!(
        (load.succeeded, load.failed, load.errored),
        (50, 0, 0),
        "{}",
        load.output
    );
    assert!(load.took < Duration::from_secs(20), "{:?}", load.took);

    // A short load, many streams on a few connections: nothing fails.
    let load = h2load(&["-n", "5000", "-c", "4", "-m", "16", &server.url("/fast")]);
    assert_eq!(
        (load.succeeded, load.failed, load.errored),
        (5000, 0, 0),
        "{}",
        load.output
    );

    // --http2-max-streams is what the server's SETTINGS frame announces. (Clients that open streams
    // before they read it get the excess refused, as RFC 9113 §5.1.2 allows; h2load does.)
    let limited = Server::start("testapp", &["--http2-max-streams", "5"]);
    for (server, streams) in [(&server, 100), (&limited, 5)] {
        let nghttp = webservers::require("nghttp");
        let out = Command::new("timeout")
            .arg("30")
            .arg(nghttp)
            .args(["-nv", &server.url("/fast")])
            .output()
            .expect("run nghttp");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let announced = format!("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):{streams}]");
        assert!(text.contains(&announced), "{announced} not in:\n{text}");
    }
}

#[test]
fn h2_over_tls_by_alpn_and_http_1_1_for_the_others() {
    let dir = TempDir::new("h2-tls");
    let (cert, key) = self_signed(&dir, "server", "rgi h2 test");
    let (c, k) = (path_str(&cert), path_str(&key));
    let server = Server::start("testapp", &["--certfile", &c, "--keyfile", &k]);
    let url = |path: &str| format!("https://{}{path}", server.addr());

    let (status, version, body) = curl_h2(&["--http2", "--cacert", &c, &url("/env?q=1")]);
    assert_eq!((status, version.as_str()), (200, "2"));
    let env = &demo_json(&body)["environ"];
    assert_eq!(env["SERVER_PROTOCOL"], "HTTP/2.0");
    assert_eq!(env["HTTPS"], "on");
    assert_eq!(env["rgi.url_scheme"], "https");
    assert_eq!(env["HTTP_HOST"], server.addr());
    assert_eq!(env["REQUEST_URI"], "/env?q=1");
    let (status, version, body) = curl_h2(&["--http1.1", "--cacert", &c, &url("/env")]);
    assert_eq!((status, version.as_str()), (200, "1.1"));
    assert_eq!(demo_json(&body)["environ"]["SERVER_PROTOCOL"], "HTTP/1.1");

    // A body both ways over TLS.
    let upload: Vec<u8> = (0..2u32 << 20).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(dir.join("upload.bin"), &upload).unwrap();
    let data = format!("@{}", dir.join("upload.bin").display());
    let (_, _, body) = curl_h2(&[
        "--http2",
        "--cacert",
        &c,
        "--data-binary",
        &data,
        &url("/upload"),
    ]);
    assert_eq!(demo_json(&body)["body_sha256"], sha256_hex(&upload));
    let (_, version, big) = curl_h2(&["--http2", "--cacert", &c, &url("/big?bytes=3000000")]);
    assert_eq!((version.as_str(), big.len()), ("2", 3_000_000));

    let load = h2load(&["-n", "2000", "-c", "4", "-m", "10", &url("/fast")]);
    assert_eq!(
        (load.succeeded, load.failed, load.errored),
        (2000, 0, 0),
        "{}",
        load.output
    );
    assert!(
        load.output.contains("Application protocol: h2"),
        "{}",
        load.output
    );

    // --no-http2: ALPN offers http/1.1 only, and curl --http2 falls back to it.
    let plain = Server::start(
        "testapp",
        &["--certfile", &c, "--keyfile", &k, "--no-http2"],
    );
    let url = format!("https://{}/env", plain.addr());
    let (status, version, _) = curl_h2(&["--http2", "--cacert", &c, &url]);
    assert_eq!((status, version.as_str()), (200, "1.1"));
}

#[test]
fn http2_off_and_sync_workers_speak_http_1_1_only() {
    for args in [&["--no-http2"][..], &["-k", "sync"]] {
        let server = Server::start_with_env("testapp", args, &[]);
        let refused = curl(&["--http2-prior-knowledge", &server.url("/fast")]);
        assert!(
            !refused.status.success() || refused.stdout != b"fast\n",
            "{args:?}: h2c served"
        );
        assert_eq!(curl(&[&server.url("/fast")]).stdout, b"fast\n", "{args:?}");
    }
    let env_off = Server::start_with_env("testapp", &[], &[("RGI_HTTP2", "false")]);
    let refused = curl(&["--http2-prior-knowledge", &env_off.url("/fast")]);
    assert!(!refused.status.success() || refused.stdout != b"fast\n");

    // Sync workers refuse --http2 with a reason.
    let out = Command::new(rgi_tests::binary("testapp"))
        .args(["-k", "sync", "--http2", "--bind", "127.0.0.1:0"])
        .output()
        .expect("run testapp");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http2") && stderr.contains("-k async"),
        "{stderr}"
    );
}

#[test]
fn under_the_process_manager_streams_finish_across_a_reload_and_are_logged_as_http_2_0() {
    let dir = TempDir::new("h2-arbiter");
    let log = dir.join("access.log");
    let server = Server::start(
        "testapp",
        &[
            "-w",
            "2",
            "--access-logfile",
            &path_str(&log),
            "--request-timeout",
            "2",
            "--graceful-timeout",
            "20",
        ],
    );
    let h2c = "--http2-prior-knowledge";
    let (status, _, body) = curl_h2(&[h2c, &server.url("/env")]);
    assert_eq!(status, 200);
    assert_eq!(demo_json(&body)["environ"]["SERVER_PROTOCOL"], "HTTP/2.0");
    assert_eq!(curl_h2(&[h2c, &server.url("/async-sleep?ms=10000")]).0, 504);
    assert_eq!(curl_h2(&[h2c, &server.url("/panic")]).0, 500);

    // A stream in flight (10 chunks over 3 s) when the master reloads: the old worker sends
    // GOAWAY and lets it finish.
    let url = server.url("/stream?chunks=10&delay_ms=300");
    let streaming = std::thread::spawn(move || curl(&["--http2-prior-knowledge", &url]));
    std::thread::sleep(Duration::from_millis(700));
    server.signal("HUP");
    let out = streaming.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        text.lines().count(),
        10,
        "the stream finished whole: {text}"
    );
    assert!(text.ends_with("chunk 9\n"), "{text}");

    // The new generation serves h2 as well; a short load has no failure.
    let load = h2load(&["-n", "1000", "-c", "4", "-m", "8", &server.url("/fast")]);
    assert_eq!(
        (load.succeeded, load.failed, load.errored),
        (1000, 0, 0),
        "{}",
        load.output
    );

    // Every request is one access-log line with HTTP/2.0 in its request line.
    let h2_lines = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" HTTP/2.0\""))
            .count()
    };
    assert!(
        eventually(|| h2_lines() >= 1004),
        "{} HTTP/2.0 lines",
        h2_lines()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"GET /async-sleep?ms=10000 HTTP/2.0\" 504"),
        "{text}"
    );
    assert!(
        text.contains("\"GET /stream?chunks=10&delay_ms=300 HTTP/2.0\" 200"),
        "{text}"
    );
}

#[test]
fn max_requests_recycles_workers_without_failing_an_h2_request() {
    let dir = TempDir::new("h2-recycle");
    let (cert, key) = self_signed(&dir, "server", "rgi h2 test");
    let (c, k) = (path_str(&cert), path_str(&key));
    let server = Server::start(
        "hello",
        &[
            "-w",
            "1",
            "--max-requests",
            "40",
            "--max-requests-jitter",
            "10",
            "--certfile",
            &c,
            "--keyfile",
            &k,
        ],
    );
    // 50 connections, 4 requests each, one after the other: the worker retires every 40 to 50
    // requests, mid-connection. Its connection gets a GOAWAY once its streams are answered and curl
    // sends the rest on a new connection, to the next worker. (Over TLS: curl 7.88 cannot reuse an
    // h2c prior-knowledge connection at all, curl issue 10634.)
    let url = format!("https://{}/", server.addr());
    let mut pids = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..50 {
        let out = curl(&["--http2", "--cacert", &c, &url, &url, &url, &url]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            text.matches("Hello World!").count(),
            4,
            "round {round}: {text}"
        );
        for pid in text.lines().filter_map(|l| l.strip_prefix("PID: ")) {
            *pids.entry(pid.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(pids.values().sum::<usize>(), 200);
    assert!((4..=6).contains(&pids.len()), "{pids:?}");
}
