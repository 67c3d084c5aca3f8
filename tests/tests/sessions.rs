//! Sessions across processes and machines (issue 12): three RGI FastCGI backends (separate
//! processes, `-w 2` each) behind a real nginx `upstream` (`keepalive 16`, `fastcgi_keep_conn on`,
//! round robin); a client (curl with a cookie jar) logs in on one backend and is logged in on every
//! request, whichever backend and worker answers — with cookie sessions and with the Redis store
//! (a real `redis-server` on a unix socket, started and stopped by PID). The file store is shared
//! by the workers of one backend. Every loop is bounded; every process is stopped by PID.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rgi_tests::services::Redis;
use rgi_tests::webservers::{self, Nginx, TempDir};
use rgi_tests::{curl, Server};

const APP: &str = "sessionapp";
/// Two secrets, newest first: every backend shares them.
const KEYS: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=,\
                    000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// nginx in front of `backends` FastCGI servers, round robin, with kept-alive upstream connections.
struct Cluster {
    nginx: Nginx,
    _backends: Vec<Server>,
    jar: PathBuf,
}

impl Cluster {
    fn start(name: &str, backends: usize, store: &str) -> Cluster {
        let servers: Vec<Server> = (0..backends)
            .map(|i| {
                let backend = format!("b{i}");
                Server::start_with_env(
                    APP,
                    &["--protocol", "fastcgi", "-w", "2", "--bind", "127.0.0.1:0"],
                    &[
                        ("SESSION_STORE", store),
                        ("SESSION_BACKEND", &backend),
                        ("RGI_SECRET_KEYS", KEYS),
                        ("RGI_ENV", "production"),
                    ],
                )
            })
            .collect();
        let members: String = servers
            .iter()
            .map(|s| format!("server {}; ", s.addr()))
            .collect();
        let http = format!("    upstream rgi_sessions {{ {members}keepalive 16; }}\n");
        let server = format!(
            "        location / {{ include {}; fastcgi_pass rgi_sessions; fastcgi_keep_conn on; }}\n",
            webservers::nginx_stock_params("fastcgi_params").display()
        );
        let dir = TempDir::new(name);
        let jar = dir.join("cookies.txt");
        Cluster {
            nginx: Nginx::start(dir, &http, &server),
            _backends: servers,
            jar,
        }
    }

    /// GET `path` with the client's cookie jar (read and updated, as a browser does).
    fn get(&self, path: &str) -> String {
        let jar = self.jar.to_str().unwrap();
        let out = curl(&["-b", jar, "-c", jar, &self.nginx.url(path)]);
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GET `path` sending exactly `cookie` (no jar).
    fn get_with(&self, path: &str, cookie: &str) -> String {
        let out = curl(&["-H", &format!("cookie: {cookie}"), &self.nginx.url(path)]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The session cookie in the jar, as `name=value`.
    fn cookie(&self) -> String {
        let jar = std::fs::read_to_string(&self.jar).expect("cookie jar");
        let line = jar
            .lines()
            .find(|l| l.contains("\trgi_session\t"))
            .expect("a session cookie in the jar");
        format!("rgi_session={}", line.rsplit('\t').next().unwrap())
    }
}

/// `(backend, pid)` of a `/whoami` answer, after checking its user.
fn answered_by(answer: &str, user: &str) -> (String, String) {
    let field = |name: &str| {
        answer
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {answer:?}"))
            .to_owned()
    };
    assert_eq!(field("user="), user, "{answer}");
    (field("backend="), field("pid="))
}

/// Log in, then check that every backend (and more than one worker process) sees the login and the
/// session's writes; then log out. Returns the session cookie as it was while logged in.
fn logged_in_everywhere(cluster: &Cluster, backends: usize) -> String {
    assert_eq!(cluster.get("/login?ada"), "logged in ada");
    assert_eq!(cluster.get("/flash"), "info: welcome ada");
    assert_eq!(cluster.get("/flash"), "", "a flash message is shown once");
    let mut seen = BTreeSet::new();
    let mut pids = BTreeSet::new();
    for round in 1..=(6 * backends) {
        let (backend, pid) = answered_by(&cluster.get("/whoami"), "ada");
        seen.insert(backend);
        pids.insert(pid);
        // A write on whichever backend answers is read by the next, on another one.
        assert_eq!(cluster.get("/count"), round.to_string());
    }
    println!(
        "answered by backends {seen:?}, {} worker processes",
        pids.len()
    );
    assert_eq!(
        seen.len(),
        backends,
        "round robin reached every backend: {seen:?}"
    );
    assert!(pids.len() >= backends, "{pids:?}");
    cluster.cookie()
}

#[test]
fn cookie_sessions_hold_across_three_fastcgi_backends_behind_nginx() {
    if webservers::skip_webservers() {
        return;
    }
    let cluster = Cluster::start("sessions-cookie", 3, "cookie");
    logged_in_everywhere(&cluster, 3);
    // CSRF: the token made on one backend is accepted by the others, a wrong one by none.
    let token = cluster.get("/form");
    let jar = cluster.jar.to_str().unwrap();
    for _ in 0..3 {
        let ok = curl(&[
            "-b",
            jar,
            "-d",
            &format!("x=1&csrf_token={token}"),
            &cluster.nginx.url("/form"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&ok.stdout),
            format!("posted x=1&csrf_token={token}")
        );
        let bad = curl(&[
            "-b",
            jar,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-d",
            "csrf_token=nope",
            &cluster.nginx.url("/form"),
        ]);
        assert_eq!(String::from_utf8_lossy(&bad.stdout), "403");
    }
    assert_eq!(cluster.get("/logout"), "logged out");
    for _ in 0..3 {
        answered_by(&cluster.get("/whoami"), "-");
    }
}

#[test]
fn redis_sessions_hold_across_three_fastcgi_backends_and_logout_revokes_everywhere() {
    if webservers::skip_webservers() {
        return;
    }
    let redis = Redis::start();
    let cluster = Cluster::start("sessions-redis", 3, &format!("redis:{}", redis.url()));
    // A session before login (the CSRF token of a login form).
    let before_login = {
        cluster.get("/form");
        cluster.cookie()
    };
    let logged_in = logged_in_everywhere(&cluster, 3);
    assert_ne!(before_login, logged_in);
    // Login regenerated the id: the pre-login cookie is a fresh, anonymous session everywhere.
    for _ in 0..3 {
        answered_by(&cluster.get_with("/whoami", &before_login), "-");
    }
    assert_eq!(cluster.get("/logout"), "logged out");
    // The record is gone from Redis: replaying the logged-in cookie opens nothing, on any backend.
    for _ in 0..3 {
        answered_by(&cluster.get_with("/whoami", &logged_in), "-");
    }
}

#[test]
fn the_file_store_is_shared_by_the_workers_of_one_backend() {
    if webservers::skip_webservers() {
        return;
    }
    let files = TempDir::new("sessions-files");
    let store = format!("file:{}", files.join("sessions").display());
    let cluster = Cluster::start("sessions-file", 1, &store);
    assert_eq!(cluster.get("/login?ada"), "logged in ada");
    let mut pids = BTreeSet::new();
    // Concurrent clients spread the load over both workers; each request reads the same session.
    // Which worker accepts is the kernel's choice: keep asking (bounded) until both have answered.
    for round in 0..100 {
        let answers: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| cluster.get_with("/whoami", &cluster.cookie())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for answer in &answers {
            pids.insert(answered_by(answer, "ada").1);
        }
        if pids.len() >= 2 && round >= 2 {
            break;
        }
    }
    println!("the file store served by worker processes {pids:?}");
    assert!(pids.len() >= 2, "both workers answered: {pids:?}");
    let records = std::fs::read_dir(Path::new(&files.join("sessions")))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(records, 1);
    // Writes from both workers accumulate (each save merges under the directory lock).
    for round in 1..=8 {
        assert_eq!(cluster.get("/count"), round.to_string());
    }
}

/// The Redis store against a real Redis: per-key merge of concurrent saves, destroy, Redis' TTL.
#[test]
fn the_redis_store_merges_concurrent_saves_and_expires_by_ttl() {
    use rgi_middleware::session::{Changes, RedisStore, SessionStore};
    if webservers::skip_webservers() {
        return;
    }
    let redis = Redis::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = RedisStore::connect(&redis.url()).await.expect("connect");
        let id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let one = |key: &str, value: i32| Changes {
            set: [(key.to_owned(), value.into())].into(),
            removed: Default::default(),
        };
        let ttl = Duration::from_secs(60);
        let (a, b) = (one("a", 1), one("b", 2));
        let (ra, rb) = tokio::join!(store.save(id, &a, ttl), store.save(id, &b, ttl));
        ra.unwrap();
        rb.unwrap();
        let data = store.load(id).await.unwrap().expect("the record");
        assert_eq!((data["a"].as_i64(), data["b"].as_i64()), (Some(1), Some(2)));
        let remove_a = Changes {
            set: Default::default(),
            removed: ["a".to_owned()].into(),
        };
        store.save(id, &remove_a, ttl).await.unwrap();
        assert_eq!(store.load(id).await.unwrap().unwrap().len(), 1);
        store.destroy(id).await.unwrap();
        assert_eq!(store.load(id).await.unwrap(), None);
        assert!(
            store.load("../x").await.is_err(),
            "malformed ids are refused"
        );

        store
            .save(id, &one("x", 1), Duration::from_secs(1))
            .await
            .unwrap();
        assert!(store.load(id).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            store.load(id).await.unwrap(),
            None,
            "Redis expired the record"
        );
    });
}
