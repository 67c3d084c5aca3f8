//! One request pipeline behind every gateway (issue 14): the process manager's `--access-logfile`,
//! `--request-timeout` and `--max-requests` (+ `--max-requests-jitter`) behave the same whether
//! real nginx talks to two async workers over HTTP (`proxy_pass`), FastCGI, SCGI or uwsgi (stock
//! params files). For each protocol:
//!
//! - a request that outlives `--request-timeout` is answered 504 by RGI (long before nginx's own
//!   60 s upstream timeout), its worker lives on, and the access log has its 504 line;
//! - under load from four client threads, every request is answered 200 — while the workers recycle
//!   themselves every 20–25 requests — and the access log has exactly one line per request, each
//!   naming the worker that answered; no worker answered more than its limit (plus the few
//!   connections already queued when it began to drain).
//!
//! The tests take turns (one lock): each starts nginx, a master and its workers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rgi_tests::webservers::{self, Nginx, TempDir};
use rgi_tests::{raw_exchange, Server};

/// Requests per client thread, and client threads.
const PER_THREAD: usize = 40;
const THREADS: usize = 4;
/// `--max-requests` and `--max-requests-jitter`.
const MAX_REQUESTS: usize = 20;
const JITTER: usize = 5;
/// Requests a worker may still answer past its limit: each client thread's request in flight
/// when the worker began to drain, and each thread's next one if it reached the kernel's queue
/// while the worker was taking what was queued there (it takes the queue until it is empty).
const QUEUED_SLACK: usize = 2 * THREADS;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// `GET path` through nginx on a fresh connection: the status and the whole response.
fn get(addr: &str, path: &str, timeout: Duration) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: rgi.test\r\nConnection: close\r\n\r\n");
    let reply =
        String::from_utf8_lossy(&raw_exchange(addr, request.as_bytes(), timeout)).into_owned();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, reply)
}

/// One access-log line in the test's format: `"GET /target HTTP/x" status <pid>`.
#[derive(Debug)]
struct Line {
    target: String,
    status: u16,
    pid: u32,
}

fn parse(line: &str) -> Option<Line> {
    let rest = line.strip_prefix("\"GET ")?;
    let (target, rest) = rest.split_once(' ')?;
    let (_, rest) = rest.split_once("\" ")?;
    let (status, pid) = rest.split_once(' ')?;
    Some(Line {
        target: target.to_owned(),
        status: status.parse().ok()?,
        pid: pid.strip_prefix('<')?.strip_suffix('>')?.parse().ok()?,
    })
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// nginx's `location /` for `protocol`, passing to `backend`.
fn pass(protocol: &str, backend: &str) -> String {
    let params = |name: &str| webservers::nginx_stock_params(name).display().to_string();
    match protocol {
        "http" => format!("proxy_pass http://{backend};"),
        "fastcgi" => format!(
            "include {}; fastcgi_pass {backend};",
            params("fastcgi_params")
        ),
        "scgi" => format!("include {}; scgi_pass {backend};", params("scgi_params")),
        "uwsgi" => format!("include {}; uwsgi_pass {backend};", params("uwsgi_params")),
        other => panic!("unknown protocol {other}"),
    }
}

fn same_pipeline_behind_nginx(protocol: &str) {
    if webservers::skip_webservers() {
        return;
    }
    let _serial = serial();
    let logs = TempDir::new(&format!("pipeline-{protocol}-logs"));
    let access = logs.join("access.log");
    let errors = logs.join("error.log");
    let (max, jitter) = (MAX_REQUESTS.to_string(), JITTER.to_string());
    let backend = Server::start(
        "testapp",
        &[
            "-w",
            "2",
            "-k",
            "async",
            "--protocol",
            protocol,
            "--access-logfile",
            access.to_str().unwrap(),
            "--access-logformat",
            r#""%(r)s" %(s)s %(p)s"#,
            "--error-logfile",
            errors.to_str().unwrap(),
            "--request-timeout",
            "1",
            "--max-requests",
            &max,
            "--max-requests-jitter",
            &jitter,
        ],
    );
    let location = format!("location / {{ {} }}", pass(protocol, backend.addr()));
    let nginx = Nginx::start(TempDir::new(&format!("pipeline-{protocol}")), "", &location);
    let addr = nginx.addr();
    let short = Duration::from_secs(10);
    assert!(
        wait_until(short, || get(&addr, "/fast?probe", short).0 == 200),
        "{protocol}: no answer through nginx: {}",
        nginx.error_log()
    );

    // A hung request: 504 from RGI after --request-timeout, not nginx's after 60 s.
    let started = Instant::now();
    let (status, reply) = get(&addr, "/async-sleep?ms=600000", Duration::from_secs(30));
    let took = started.elapsed();
    println!("{protocol}: hung request answered {status} after {took:?}");
    assert_eq!(status, 504, "{protocol}: {reply}");
    assert!(took < Duration::from_secs(10), "{protocol}: took {took:?}");

    // Load while the workers recycle themselves.
    let patient = Duration::from_secs(30);
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let addr = addr.clone();
            thread::spawn(move || {
                (0..PER_THREAD)
                    .filter_map(|i| {
                        let n = t * PER_THREAD + i;
                        // Generous: when both workers recycle at once, a request waits in the
                        // backlog until a replacement is up (seconds on a loaded machine).
                        let (status, reply) = get(&addr, &format!("/fast?n={n}"), patient);
                        (status != 200).then(|| format!("n={n}: {status} {reply:?}"))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failed: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client thread"))
        .collect();
    assert!(
        failed.is_empty(),
        "{protocol}: {} failed requests: {failed:?}\n{}",
        failed.len(),
        nginx.error_log()
    );

    // Exactly one line per request (lines are written as responses end: give the last a moment).
    let total = THREADS * PER_THREAD;
    let loaded = |lines: &[String]| lines.iter().filter(|l| l.contains("/fast?n=")).count();
    wait_until(Duration::from_secs(5), || loaded(&lines(&access)) >= total);
    thread::sleep(Duration::from_millis(300));
    let all = lines(&access);
    let parsed: Vec<Line> = all.iter().filter_map(|l| parse(l)).collect();
    assert_eq!(
        parsed.len(),
        all.len(),
        "{protocol}: malformed lines in {all:?}"
    );
    let load: Vec<&Line> = parsed
        .iter()
        .filter(|l| l.target.starts_with("/fast?n="))
        .collect();
    let distinct: BTreeSet<&str> = load.iter().map(|l| l.target.as_str()).collect();
    assert_eq!(load.len(), total, "{protocol}: one line per request");
    assert_eq!(distinct.len(), total, "{protocol}: no request logged twice");
    assert!(load.iter().all(|l| l.status == 200));
    let hung: Vec<&Line> = parsed
        .iter()
        .filter(|l| l.target == "/async-sleep?ms=600000")
        .collect();
    assert!(
        matches!(hung[..], [Line { status: 504, .. }]),
        "{protocol}: {hung:?}"
    );
    // The deadline is logged where the request's `rgi.errors` goes: for FastCGI, to the web
    // server (nginx's error log); otherwise the worker's error log.
    let error_log = match protocol {
        "fastcgi" => nginx.error_log(),
        _ => std::fs::read_to_string(&errors).unwrap_or_default(),
    };
    assert!(
        error_log.contains("request exceeded --request-timeout"),
        "{protocol}: {error_log}"
    );

    // Recycled: each worker answered at most its limit (plus what was queued when it drained).
    let mut per_worker: BTreeMap<u32, usize> = BTreeMap::new();
    for line in &parsed {
        *per_worker.entry(line.pid).or_default() += 1;
    }
    println!(
        "{protocol}: {} lines, {} requests under load by {} workers: {per_worker:?}",
        all.len(),
        total,
        per_worker.len()
    );
    let limit = MAX_REQUESTS + JITTER + QUEUED_SLACK;
    assert!(
        per_worker.values().all(|&n| n <= limit),
        "{protocol}: a worker served more than {limit}: {per_worker:?}"
    );
    assert!(
        per_worker.len() >= all.len().div_ceil(MAX_REQUESTS + JITTER),
        "{protocol}: workers were recycled: {per_worker:?}"
    );
}

#[test]
fn over_http_behind_nginx_proxy_pass() {
    same_pipeline_behind_nginx("http");
}

#[test]
fn over_fastcgi_behind_nginx_fastcgi_pass() {
    same_pipeline_behind_nginx("fastcgi");
}

#[test]
fn over_scgi_behind_nginx_scgi_pass() {
    same_pipeline_behind_nginx("scgi");
}

#[test]
fn over_uwsgi_behind_nginx_uwsgi_pass() {
    same_pipeline_behind_nginx("uwsgi");
}
