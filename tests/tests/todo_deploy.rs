//! The todo deployments in deploy/, each file used as shipped (ports and paths substituted):
//!
//! - `nginx/todo-upstream.conf`: one nginx upstream of three todo FastCGI backends (`keepalive 16`,
//!   `fastcgi_keep_conn on`) sharing one SQLite file and the session key; one backend stopped in
//!   the middle of a write load and restarted, and every acknowledged write is there.
//! - `systemd/todo.service` + `todo.socket`: the ExecStart line run with the socket passed the way
//!   systemd passes it (`LISTEN_FDS`), then `logrotate/todo`'s postrotate script after the log was
//!   moved: the process manager reopens its log.
//! - `nginx/axum-fastcgi.conf`: examples/axum-bridge (an unmodified axum `Router`) over FastCGI.
//! - The same upstream for many boxes: the data in PostgreSQL and the sessions in Redis (`--sessions
//!   redis://…`), both servers of the test's own (`rgi_tests::services`), reached over loopback TCP.
//! - PostgreSQL: a server of the test's own (Debian's `postgresql`, initdb into a temporary
//!   directory, on a free loopback port, stopped by its PID) behind the same app code.

mod todo_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rgi_tests::services::{Postgres, Redis};
use rgi_tests::webservers::{self, free_port, Nginx, TempDir};
use todo_support::{
    deploy_file, nginx_site, sqlite_url, substitute, todo_backend, Visitor, SECRET,
};

/// Poll `f` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

#[test]
fn nginx_upstream_of_three_backends_loses_no_writes_when_one_restarts() {
    if webservers::skip_webservers() {
        return;
    }
    // One box: the SQLite file and the cookie sessions' key are all the backends share.
    let dir = TempDir::new("todo-upstream");
    upstream_survives_a_restart(&sqlite_url(&dir), &[]);
}

#[test]
fn nginx_upstream_with_redis_sessions_and_postgresql_loses_no_writes() {
    if webservers::skip_webservers() {
        return;
    }
    // Many boxes: the data in PostgreSQL, the sessions in Redis, both reached over TCP.
    let dir = TempDir::new("todo-upstream-pg");
    let pg = Postgres::start(&dir);
    let redis = Redis::start_on_loopback();
    let sessions = redis.tcp_url().expect("a TCP port");
    upstream_survives_a_restart(&pg.url(), &["--sessions", &sessions]);
}

/// deploy/nginx/todo-upstream.conf in front of three FastCGI backends on the database `url`
/// (with `extra` flags): four writers add 30 todos each while backend 2 is stopped and started
/// again; every acknowledged write is stored exactly once, and afterwards, with the other two
/// stopped, every writer's session is good on the restarted backend.
fn upstream_survives_a_restart(url: &str, extra: &[&str]) {
    let binds: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let start = |bind: &str| {
        let mut args = vec!["--protocol", "fastcgi", "-b", bind];
        args.extend_from_slice(extra);
        todo_backend(url, &args)
    };
    let mut backends: Vec<_> = binds.iter().map(|b| Some(start(b))).collect();

    let front_port = free_port();
    let mut conf = deploy_file("nginx/todo-upstream.conf");
    conf = substitute(
        &conf,
        "listen 80;",
        &format!("listen 127.0.0.1:{front_port};"),
    );
    for (i, bind) in binds.iter().enumerate() {
        conf = substitute(&conf, &format!("127.0.0.1:900{}", i + 1), bind);
    }
    let nginx = Nginx::start(TempDir::new("todo-upstream-nginx"), &conf, "");
    let front = format!("127.0.0.1:{front_port}");

    const WRITERS: usize = 4;
    const ITEMS: usize = 30;
    let done = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (front, done, retries) = (front.clone(), done.clone(), retries.clone());
            std::thread::spawn(move || {
                let mut v = Visitor::new(&front);
                v.sign_up(&format!("writer{w}"));
                let mut acknowledged = Vec::new();
                for i in 0..ITEMS {
                    let title = format!("w{w} item {i}");
                    // A write is acknowledged by its 303; anything else is retried (bounded).
                    let mut ok = false;
                    for _ in 0..50 {
                        match v.try_post("/todos", &[("title", &title)]) {
                            Ok(r) if r.status == 303 => {
                                ok = true;
                                break;
                            }
                            _ => {
                                retries.fetch_add(1, Ordering::Relaxed);
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    }
                    assert!(ok, "{title} was never acknowledged");
                    acknowledged.push(title);
                    // Follow the redirect as a browser does (shows, and so clears, the flash).
                    let _ = v.request("GET", "/", None);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                (v, acknowledged)
            })
        })
        .collect();

    // A third of the way in, stop backend 2 (SIGTERM: it drains) and start it again.
    assert!(wait_until(Duration::from_secs(60), || done
        .load(Ordering::Relaxed)
        >= WRITERS * ITEMS / 3));
    let mut stopped = backends[1].take().expect("backend 2");
    assert!(
        stopped.stop_within(Duration::from_secs(20)).is_some(),
        "backend 2 stopped"
    );
    let during = done.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    backends[1] = Some(start(&binds[1]));

    let mut visitors = Vec::new();
    for writer in writers {
        let (mut v, acknowledged) = writer.join().expect("writer");
        let stored = v.titles();
        let distinct: BTreeSet<&String> = stored.iter().collect();
        let wanted: BTreeSet<&String> = acknowledged.iter().collect();
        assert_eq!(
            distinct, wanted,
            "every acknowledged write is stored, nothing else"
        );
        assert_eq!(
            stored.len(),
            acknowledged.len(),
            "no write was stored twice"
        );
        visitors.push(v);
    }
    println!(
        "{} writes through nginx, {} retried; backend 2 restarted after {during}",
        WRITERS * ITEMS,
        retries.load(Ordering::Relaxed)
    );
    // Only the restarted backend left, a process that never saw these log-ins: every session
    // still opens there (cookie: the shared key; Redis: the shared store).
    for i in [0, 2] {
        let mut other = backends[i].take().expect("backend");
        assert!(other.stop_within(Duration::from_secs(20)).is_some());
    }
    // nginx takes the stopped two out of the rotation (and may briefly count all three down).
    assert!(
        wait_until(Duration::from_secs(15), || visitors[0]
            .request("GET", "/api/todos", None)
            .is_ok_and(|r| r.status == 200)),
        "backend 2 answers alone"
    );
    for v in &mut visitors {
        assert_eq!(v.titles().len(), ITEMS, "the session holds on backend 2");
    }
    let errors = nginx.error_log();
    drop(nginx);
    drop(backends);
    // nginx noticed the stopped backend (so the load really crossed the restart) or never needed to.
    println!("nginx error log lines: {}", errors.lines().count());
}

/// Run a deploy file's shell snippet with `sh -c`.
fn sh(script: &str) -> std::process::ExitStatus {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .expect("sh")
}

/// The ExecStart= line of a unit file, split into words (the file uses no quoting).
fn exec_start(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn systemd_units_and_logrotate_snippet() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("todo-systemd");
    let socket_unit = deploy_file("systemd/todo.socket");
    assert!(socket_unit.contains("ListenStream=127.0.0.1:9000"));
    let service = deploy_file("systemd/todo.service");
    assert!(service.contains("Requires=todo.socket"));
    let root = dir.path().display().to_string();
    let binary = rgi_tests::binary("todo");
    let mut service = substitute(
        &service,
        "/usr/local/bin/todo",
        &binary.display().to_string(),
    );
    for (from, to) in [
        ("/var/lib/todo", "lib"),
        ("/run/todo", "run"),
        ("/var/log/todo", "log"),
    ] {
        let path = dir.subdir(to, 0o755);
        service = substitute(&service, from, &path.display().to_string());
    }
    let argv = exec_start(&service);
    // systemd binds the socket (ListenStream, here on a free port) and passes it as descriptor 3.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let fd: std::os::fd::OwnedFd = listener.into();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("exec 3<&0 0</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 exec \"$@\"")
        .arg("sh")
        .args(&argv)
        .env("RGI_SECRET_KEYS", SECRET)
        .env("TODO_STATIC", todo_support::static_dir())
        .stdin(Stdio::from(fd))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the ExecStart line");
    let master = child.id();
    let _reap = Reap(master);

    // nginx in front, with the shipped FastCGI site pointed at the socket systemd holds.
    let (_nginx, front) = nginx_site(
        "nginx/todo-fastcgi.conf",
        "todo-systemd-nginx",
        &[("127.0.0.1:9000", &addr)],
    );
    let mut v = Visitor::new(&front);
    assert!(
        wait_until(Duration::from_secs(30), || v
            .request("GET", "/login", None)
            .is_ok_and(|r| r.status == 200)),
        "served on the socket passed as systemd does"
    );
    v.sign_up("systemd");
    assert_eq!(
        v.post("/todos", &[("title", "socket activated")]).status,
        303
    );
    assert_eq!(v.titles(), ["socket activated"]);
    assert!(
        Path::new(&format!("{root}/lib/todo.db")).exists(),
        "the database is in StateDirectory"
    );

    // logrotate: move the log away, run the postrotate script, and the master writes a new one.
    let log = PathBuf::from(format!("{root}/log/todo.log"));
    assert!(
        wait_until(Duration::from_secs(10), || log.exists()),
        "the log file exists"
    );
    assert!(wait_until(Duration::from_secs(10), || Path::new(&format!(
        "{root}/run/todo.pid"
    ))
    .exists()));
    std::fs::rename(&log, format!("{root}/log/todo.log.1")).unwrap();
    let snippet = deploy_file("logrotate/todo");
    let script: String = snippet
        .split("    postrotate\n")
        .nth(1)
        .and_then(|s| s.split("endscript").next())
        .expect("a postrotate script")
        .replace("/run/todo", &format!("{root}/run"));
    assert!(sh(&script).success(), "postrotate: {script}");
    // A reload (HUP) makes the master log again: the lines land in the reopened file.
    webservers::send_signal(master, "HUP");
    assert!(
        wait_until(Duration::from_secs(15), || std::fs::read_to_string(&log)
            .is_ok_and(|s| !s.is_empty())),
        "after USR1 the master writes to a new {}",
        log.display()
    );
    assert!(wait_until(Duration::from_secs(15), || v
        .request("GET", "/login", None)
        .is_ok_and(|r| r.status == 200)));
    webservers::send_signal(master, "TERM");
    assert!(wait_until(Duration::from_secs(40), || matches!(
        child.try_wait(),
        Ok(Some(_))
    )));
}

/// Kills a process by PID when dropped (a failed test must not leave it running).
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            for pid in webservers::descendants(self.0) {
                webservers::send_signal(pid, "KILL");
            }
            webservers::send_signal(self.0, "KILL");
        }
    }
}

#[test]
fn postgresql_behind_the_same_code() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("todo-postgres");
    let pg = Postgres::start(&dir);
    let url = pg.url();
    // Two worker processes migrate at once (the advisory lock serialises them) and share the data.
    let app = todo_backend(&url, &["-w", "2"]);
    let mut alice = Visitor::new(app.addr());
    alice.sign_up("alice");
    for title in ["one", "two", "three"] {
        assert_eq!(alice.post("/todos", &[("title", title)]).status, 303);
    }
    let mut bob = Visitor::new(app.addr());
    bob.sign_up("bob");
    assert_eq!(bob.post("/todos", &[("title", "bob's")]).status, 303);
    let r = alice.get("/api/todos");
    let todos: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let first = todos[0]["id"].as_i64().unwrap();
    assert_eq!(alice.post(&format!("/todos/{first}/done"), &[]).status, 303);
    assert_eq!(bob.post(&format!("/todos/{first}/delete"), &[]).status, 404);
    let r = alice.get("/api/todos");
    let todos: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(todos[0]["done"], true);
    assert_eq!(alice.titles(), ["one", "two", "three"]);
    assert_eq!(bob.titles(), ["bob's"]);
    let taken = {
        let mut carol = Visitor::new(app.addr());
        carol.get("/signup");
        carol.post(
            "/signup",
            &[("username", "alice"), ("password", "password123")],
        )
    };
    assert_eq!(
        taken.status, 409,
        "the unique violation is recognised on PostgreSQL too"
    );
    drop(app);
    drop(pg);
}

#[test]
fn an_axum_router_behind_nginx_fastcgi() {
    if webservers::skip_webservers() {
        return;
    }
    let bind = format!("127.0.0.1:{}", free_port());
    let _app = rgi_tests::Server::start("axum-bridge", &["--protocol", "fastcgi", "-b", &bind]);
    let (_nginx, front) = nginx_site(
        "nginx/axum-fastcgi.conf",
        "axum-nginx",
        &[("127.0.0.1:9100", &bind)],
    );
    let mut v = Visitor::new(&front);
    let r = v.get("/hello/rgi");
    assert_eq!((r.status, r.body.as_str()), (200, "hello rgi\n"));
    assert_eq!(v.get("/").body, "axum via RGI\n");
    assert_eq!(v.get("/nope").status, 404);
    let echo = v
        .request("POST", "/echo", Some("a=1&b=%20two"))
        .expect("POST /echo");
    assert_eq!((echo.status, echo.body.as_str()), (200, "a=1&b=%20two"));
}
