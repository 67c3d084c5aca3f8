//! Faults around a running server, end to end with real processes: the disk under the access log
//! fills up, the access log is deleted and `SIGUSR1` sent, the port is taken at start, a client
//! leaves in the middle of a large response, a middleware layer panics, PostgreSQL goes away under
//! `todo` and comes back, Redis restarts under load with sessions in it. Each must give a clear
//! line in the error log (or on stderr at start), keep serving what it can, and lose no committed
//! data. SECURITY.md ("Faults") lists each with its behaviour.

mod todo_support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rgi_tests::services::{wait_until, Postgres, Redis};
use rgi_tests::webservers::{descendants, TempDir};
use rgi_tests::{binary, Server};
use todo_support::{sqlite_url, todo_backend, Visitor};

/// `GET path` over HTTP/1.0 on a new connection: the status and body, `None` when the connection
/// failed or no status came within 30 s.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: faults\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

/// The lines of a file (none when it is missing).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The worker processes of a process manager (its descendants), waiting (at most 30 s) for `n`.
fn workers(server: &Server, n: usize) -> Vec<u32> {
    assert!(
        wait_until(Duration::from_secs(30), || descendants(server.pid()).len()
            == n),
        "expected {n} workers, have {:?}",
        descendants(server.pid())
    );
    let mut pids = descendants(server.pid());
    pids.sort_unstable();
    pids
}

/// A tmpfs mounted for the test, lazily unmounted when dropped.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the filesystem under `path` with a file of zeros until it is full (bounded).
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).expect("create the filler");
    let chunk = [0u8; 4096];
    for _ in 0..100_000 {
        if file.write_all(&chunk).is_err() {
            return;
        }
    }
    panic!("{} never filled up", path.display());
}

#[test]
fn a_full_disk_under_the_access_log_loses_lines_not_requests_and_says_so_once() {
    let dir = TempDir::new("faults-full");
    let mnt = dir.subdir("mnt", 0o755);
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let _mount = mounted.then(|| Mount(mnt.clone()));
    let access = if mounted {
        mnt.join("access.log")
    } else {
        PathBuf::from("/dev/full")
    };
    println!(
        "disk full: {}",
        if mounted {
            "a 256 KiB tmpfs, filled up, then freed"
        } else {
            "/dev/full (mounting a tmpfs is not permitted here)"
        }
    );
    let errors = dir.join("error.log");
    let server = Server::start(
        "testapp",
        &[
            "-w",
            "1",
            "--access-logfile",
            access.to_str().unwrap(),
            "--error-logfile",
            errors.to_str().unwrap(),
        ],
    );
    let addr = server.addr().to_owned();
    workers(&server, 1);
    if mounted {
        for i in 0..5 {
            assert_eq!(get(&addr, &format!("/fast?before={i}")).unwrap().0, 200);
        }
        assert!(wait_until(Duration::from_secs(10), || lines(&access).len() == 5));
        fill(&mnt.join("filler"));
    }
    // Enough requests to fill what is left of the log's last page, and many more.
    let started = Instant::now();
    for i in 0..150 {
        let reply = get(&addr, &format!("/fast?full={i}"));
        assert_eq!(reply, Some((200, "fast\n".to_owned())), "request {i}");
    }
    println!(
        "150 requests with the disk full answered in {:?}",
        started.elapsed()
    );
    let failing = |text: &String| text.contains("access log") && text.contains("cannot write");
    assert!(
        wait_until(Duration::from_secs(10), || lines(&errors)
            .iter()
            .any(failing)),
        "no error line: {:?}",
        lines(&errors)
    );
    let reports: Vec<String> = lines(&errors).into_iter().filter(failing).collect();
    println!("error log: {reports:?}");
    assert_eq!(
        reports.len(),
        1,
        "one line, not one per request: {reports:?}"
    );
    assert!(
        reports[0].contains("[ERROR]")
            && (reports[0].contains("No space left on device")
                || reports[0].contains("is the disk full?")),
        "{reports:?}"
    );
    if !mounted {
        return;
    }
    let during = lines(&access).len();
    assert!(during < 150, "{during} lines written on a full disk");
    std::fs::remove_file(mnt.join("filler")).unwrap();
    for i in 0..5 {
        assert_eq!(get(&addr, &format!("/fast?after={i}")).unwrap().0, 200);
    }
    let resumed = wait_until(Duration::from_secs(10), || {
        let text = lines(&access);
        (0..5).all(|i| {
            text.iter()
                .any(|l| l.contains(&format!("GET /fast?after={i} ")))
        })
    });
    assert!(resumed, "the log did not resume: {:?}", lines(&access));
    let recovered: Vec<String> = lines(&errors)
        .into_iter()
        .filter(|l| l.contains("writing again"))
        .collect();
    println!("after freeing space: {recovered:?}");
    assert_eq!(recovered.len(), 1, "{:?}", lines(&errors));
    assert!(recovered[0].contains("lines were lost"), "{recovered:?}");
}

#[test]
fn a_deleted_access_log_is_created_again_on_usr1_by_every_worker() {
    let dir = TempDir::new("faults-usr1");
    let access = dir.join("access.log");
    let errors = dir.join("error.log");
    let server = Server::start(
        "testapp",
        &[
            "-w",
            "2",
            "--access-logfile",
            access.to_str().unwrap(),
            "--error-logfile",
            errors.to_str().unwrap(),
        ],
    );
    let addr = server.addr().to_owned();
    let before = workers(&server, 2);
    for i in 0..20 {
        assert_eq!(get(&addr, &format!("/fast?before={i}")).unwrap().0, 200);
    }
    assert!(wait_until(Duration::from_secs(10), || lines(&access).len() == 20));
    std::fs::remove_file(&access).unwrap();
    // Lines written now go to the deleted file: lost, as with any logger until it reopens.
    for i in 0..10 {
        assert_eq!(get(&addr, &format!("/fast?gone={i}")).unwrap().0, 200);
    }
    server.signal("USR1");
    assert!(
        wait_until(Duration::from_secs(10), || access.exists()),
        "USR1 did not create the access log again"
    );
    // The master passes USR1 on to each worker; give the second one time to reopen too.
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..40 {
        assert_eq!(get(&addr, &format!("/fast?after={i}")).unwrap().0, 200);
    }
    let complete = wait_until(Duration::from_secs(10), || {
        let text = lines(&access);
        (0..40).all(|i| {
            text.iter()
                .any(|l| l.contains(&format!("GET /fast?after={i} ")))
        })
    });
    let new = lines(&access);
    println!(
        "after rm + USR1: the new file holds {} lines (40 requests sent)",
        new.len()
    );
    assert!(complete, "lines missing from the new file: {new:?}");
    assert_eq!(new.len(), 40, "{new:?}");
    assert_eq!(before, workers(&server, 2), "the workers were replaced");
    let errors = lines(&errors);
    assert!(
        !errors.iter().any(|l| l.contains("cannot reopen")),
        "{errors:?}"
    );
}

#[test]
fn a_port_in_use_at_start_is_one_clear_line_and_a_non_zero_exit() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for extra in [&[][..], &["-w", "2"][..]] {
        let mut child = Command::new(binary("testapp"))
            .args(["--bind", &addr])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("testapp {extra:?} kept running on a port in use");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        println!("port in use ({extra:?}): {status}, stderr: {stderr:?}");
        assert!(!status.success(), "{status}");
        assert_ne!(status.code(), Some(101), "a panic's exit code");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
        let about: Vec<&str> = stderr.lines().filter(|l| l.contains(&addr)).collect();
        assert_eq!(about.len(), 1, "one line naming {addr}: {stderr}");
        assert!(
            about[0].to_lowercase().contains("in use"),
            "the line says why: {stderr}"
        );
    }
    drop(taken);
}

/// Read the head and `keep` body bytes of `GET path`, then close the connection.
fn leave_midway(addr: &str, path: &str, keep: usize) -> usize {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: faults\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut got = 0;
    let mut buf = [0u8; 16 * 1024];
    while got < keep {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

#[test]
fn a_client_leaving_mid_response_costs_nothing_but_its_response() {
    for class in ["sync", "async"] {
        let dir = TempDir::new("faults-leave");
        let access = dir.join("access.log");
        let errors = dir.join("error.log");
        let server = Server::start(
            "testapp",
            &[
                "-w",
                "1",
                "-k",
                class,
                "--access-logfile",
                access.to_str().unwrap(),
                "--error-logfile",
                errors.to_str().unwrap(),
            ],
        );
        let addr = server.addr().to_owned();
        let worker = workers(&server, 1);
        const BIG: usize = 64 << 20;
        for i in 0..10 {
            let got = leave_midway(&addr, &format!("/big?bytes={BIG}&n={i}"), 256 * 1024);
            assert!(got >= 256 * 1024, "{class}: only {got} bytes came");
            let got = leave_midway(&addr, &format!("/infinite?n={i}"), 1024);
            assert!(got >= 1024, "{class}: only {got} bytes of /infinite came");
            assert_eq!(
                get(&addr, "/fast"),
                Some((200, "fast\n".to_owned())),
                "{class}: the worker stopped serving after {i} abandoned responses"
            );
        }
        assert_eq!(worker, workers(&server, 1), "{class}: the worker died");
        // Every abandoned response is in the access log, with the bytes actually sent.
        let logged = wait_until(Duration::from_secs(10), || {
            let text = lines(&access);
            (0..10).all(|i| {
                text.iter()
                    .any(|l| l.contains(&format!("GET /big?bytes={BIG}&n={i} ")))
                    && text
                        .iter()
                        .any(|l| l.contains(&format!("GET /infinite?n={i} ")))
            })
        });
        let text = lines(&access);
        assert!(logged, "{class}: abandoned responses not logged: {text:?}");
        let big = text.iter().find(|l| l.contains("GET /big?")).unwrap();
        println!("{class}: an abandoned 64 MiB response is logged as: {big}");
        let sent: u64 = big
            .split("\" 200 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no status and size in {big:?}"));
        assert!(sent < BIG as u64, "{class}: logged as whole: {big}");
        let errors = lines(&errors);
        assert!(
            !errors.iter().any(|l| l.contains("panicked")),
            "{class}: {errors:?}"
        );
    }
}

#[test]
fn a_panicking_middleware_layer_is_a_logged_500_and_the_worker_serves_on() {
    for class in ["sync", "async"] {
        let dir = TempDir::new("faults-panic");
        let errors = dir.join("error.log");
        let server = Server::start(
            "testapp",
            &[
                "-w",
                "1",
                "-k",
                class,
                "--error-logfile",
                errors.to_str().unwrap(),
            ],
        );
        let addr = server.addr().to_owned();
        let worker = workers(&server, 1);
        for round in 0..5 {
            for (path, message) in [
                (
                    "/panic-layer-before",
                    "deliberate panic in a middleware layer, before the app",
                ),
                (
                    "/panic-layer-after",
                    "deliberate panic in a middleware layer, after the app",
                ),
            ] {
                let reply = get(&addr, path);
                assert_eq!(
                    reply.as_ref().map(|r| r.0),
                    Some(500),
                    "{class} {path} (round {round}): {reply:?}"
                );
                let logged = wait_until(Duration::from_secs(10), || {
                    lines(&errors).iter().any(|l| l.contains(message))
                });
                assert!(logged, "{class}: {message:?} not in {:?}", lines(&errors));
                assert_eq!(
                    get(&addr, "/fast"),
                    Some((200, "fast\n".to_owned())),
                    "{class}: not serving after {path}"
                );
            }
        }
        assert_eq!(
            worker,
            workers(&server, 1),
            "{class}: the worker was replaced"
        );
        let panics: Vec<String> = lines(&errors)
            .into_iter()
            .filter(|l| l.contains("deliberate panic in a middleware layer"))
            .collect();
        println!(
            "{class}: {} panic lines, e.g. {:?}",
            panics.len(),
            panics.first()
        );
    }
}

/// Requests answered while a service is down: status (0: no answer) and how long each took.
type Answers = Vec<(u16, Duration)>;

/// Ask `visitor` for `path` `n` times, timing each.
fn timed(visitor: &mut Visitor, path: &str, n: usize) -> Answers {
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let status = visitor.request("GET", path, None).map_or(0, |r| r.status);
            (status, started.elapsed())
        })
        .collect()
}

#[test]
fn postgres_going_away_is_a_quick_503_and_every_committed_todo_is_there_after() {
    let dir = TempDir::new("faults-pg");
    let mut pg = Postgres::start(&dir);
    let errors = dir.join("error.log");
    let server = todo_backend(
        &pg.url(),
        &["-w", "1", "--error-logfile", errors.to_str().unwrap()],
    );
    let addr = server.addr().to_owned();
    let mut v = Visitor::new(&addr);
    v.sign_up("outage");
    let committed: Vec<String> = (0..5).map(|i| format!("before the outage {i}")).collect();
    for title in &committed {
        assert_eq!(v.post("/todos", &[("title", title)]).status, 303);
    }
    assert_eq!(v.titles(), committed);

    pg.stop();
    let mut down = timed(&mut v, "/", 3);
    down.extend(timed(&mut v, "/api/todos", 3));
    let started = Instant::now();
    let post = v
        .try_post("/todos", &[("title", "during the outage")])
        .map_or(0, |r| r.status);
    down.push((post, started.elapsed()));
    println!("PostgreSQL down: {down:?}");
    for (status, took) in &down {
        assert!(
            matches!(status, 500 | 503),
            "not a clean error while the database is down: {down:?}"
        );
        // todo waits at most 3 s for a connection.
        assert!(*took < Duration::from_secs(10), "a request hung: {down:?}");
    }
    let logged = wait_until(Duration::from_secs(10), || {
        lines(&errors)
            .iter()
            .any(|l| l.contains("database unavailable"))
    });
    let log = lines(&errors);
    assert!(logged, "no database line in the error log: {log:?}");
    println!(
        "error log: {:?}",
        log.iter().find(|l| l.contains("database unavailable"))
    );

    pg.start_again();
    let back = wait_until(Duration::from_secs(60), || {
        v.request("GET", "/api/todos", None)
            .is_ok_and(|r| r.status == 200)
    });
    assert!(back, "todo did not serve again after PostgreSQL came back");
    assert_eq!(v.titles(), committed, "committed todos lost");
    assert_eq!(v.post("/todos", &[("title", "after")]).status, 303);
    let mut all = committed.clone();
    all.push("after".to_owned());
    assert_eq!(v.titles(), all);
}

#[test]
fn redis_restarting_under_load_fails_requests_cleanly_and_keeps_its_sessions() {
    let dir = TempDir::new("faults-redis");
    let mut redis = Redis::start_persistent();
    let errors = dir.join("error.log");
    let mut args = vec!["-w", "1", "--error-logfile", errors.to_str().unwrap()];
    let url = redis.url();
    args.extend(["--sessions", url.as_str()]);
    let server = todo_backend(&sqlite_url(&dir), &args);
    let addr = server.addr().to_owned();
    let worker = workers(&server, 1);

    let mut visitors: Vec<Visitor> = (0..4)
        .map(|i| {
            let mut v = Visitor::new(&addr);
            v.sign_up(&format!("load{i}"));
            assert_eq!(v.post("/todos", &[("title", "kept")]).status, 303);
            v
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(u16, Duration)>::new()));
    let load: Vec<_> = visitors
        .drain(..)
        .map(|mut v| {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let status = v.request("GET", "/api/todos", None).map_or(0, |r| r.status);
                    seen.lock().unwrap().push((status, started.elapsed()));
                }
                v
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    redis.stop();
    std::thread::sleep(Duration::from_secs(2));
    redis.start_again();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let mut visitors: Vec<Visitor> = load.into_iter().map(|h| h.join().unwrap()).collect();
    let seen = seen.lock().unwrap().clone();
    let failed: Vec<_> = seen.iter().filter(|(s, _)| *s != 200).collect();
    let slowest = seen.iter().map(|(_, d)| *d).max().unwrap_or_default();
    println!(
        "Redis restarted under load: {} requests, {} not 200 ({:?}), slowest {:?}",
        seen.len(),
        failed.len(),
        failed
            .iter()
            .map(|(s, _)| *s)
            .collect::<std::collections::BTreeSet<_>>(),
        slowest
    );
    assert!(seen.len() > 20, "the load did not run: {seen:?}");
    for (status, _) in &seen {
        assert!(
            matches!(status, 200 | 500 | 503),
            "not a clean failure: {status} in {failed:?}"
        );
    }
    assert!(
        slowest < Duration::from_secs(15),
        "a request hung: {slowest:?}"
    );
    assert_eq!(worker, workers(&server, 1), "the worker died");
    // The store reconnects by itself: how long until a session's request succeeds again?
    let since = Instant::now();
    let recovered = wait_until(Duration::from_secs(30), || {
        visitors[0]
            .request("GET", "/api/todos", None)
            .is_ok_and(|r| r.status == 200)
    });
    println!(
        "first 200 again {:?} after the load stopped (Redis up 3 s before)",
        since.elapsed()
    );
    assert!(recovered, "the session store did not reconnect within 30 s");
    // The sessions made before the restart survived it (appendonly), and log-ins work again.
    for v in &mut visitors {
        let r = v.get("/api/todos");
        assert_eq!(
            r.status, 200,
            "a session did not survive: {}{}",
            r.head, r.body
        );
        assert_eq!(v.titles(), ["kept"]);
    }
    let mut fresh = Visitor::new(&addr);
    fresh.get("/login");
    let r = fresh.post(
        "/login",
        &[("username", "load0"), ("password", "password123")],
    );
    assert_eq!(
        r.status, 303,
        "log-in after the restart: {}{}",
        r.head, r.body
    );
    assert_eq!(fresh.titles(), ["kept"]);
    let log = lines(&errors);
    assert!(!log.iter().any(|l| l.contains("panicked")), "{log:?}");
    if !failed.is_empty() {
        assert!(
            log.iter()
                .any(|l| l.to_lowercase().contains("redis") || l.contains("session")),
            "failed requests but no line about the store: {log:?}"
        );
    }
    println!(
        "error log about the store: {:?}",
        log.iter()
            .find(|l| l.to_lowercase().contains("redis") || l.contains("session"))
    );
}
