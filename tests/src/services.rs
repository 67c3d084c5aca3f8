//! The data services tests start for themselves: [`Redis`] and [`Postgres`] (Debian's
//! `redis-server` and `postgresql`), each in a temporary directory, on loopback, with no
//! persistence worth keeping, and stopped by PID when their guard drops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::webservers::{self, free_port, require, TempDir};

/// Poll `f` every 20 ms until it holds or `limit` passes; whether it held.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A `redis-server` on a unix socket (and, from [`Redis::start_on_loopback`], on a
/// `127.0.0.1` port), no persistence; stopped by PID (TERM, then KILL) on drop.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    socket: PathBuf,
    port: Option<u16>,
    _dir: TempDir,
}

impl Redis {
    /// Redis on a unix socket only.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing or does not come up within 10 s.
    pub fn start() -> Redis {
        Self::spawn(None)
    }

    /// Redis on a unix socket and on `127.0.0.1:PORT` (a free port), as other machines reach it.
    ///
    /// # Panics
    ///
    /// As [`start`](Redis::start).
    pub fn start_on_loopback() -> Redis {
        Self::spawn(Some(free_port()))
    }

    fn spawn(port: Option<u16>) -> Redis {
        let program = require("redis-server");
        let dir = TempDir::new("redis");
        let socket = dir.join("redis.sock");
        let mut command = Command::new(program);
        match port {
            Some(port) => command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]),
            None => command.args(["--port", "0"]),
        };
        let child = command
            .arg("--unixsocket")
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server");
        let mut redis = Redis {
            child,
            socket,
            port,
            _dir: dir,
        };
        let up = wait_until(Duration::from_secs(10), || {
            redis.socket.exists()
                && port.is_none_or(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
                || matches!(redis.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && matches!(redis.child.try_wait(), Ok(None)),
            "redis-server did not come up in 10 s"
        );
        redis
    }

    /// `redis+unix:///…/redis.sock`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// `redis://127.0.0.1:PORT`, when started with [`start_on_loopback`](Redis::start_on_loopback).
    pub fn tcp_url(&self) -> Option<String> {
        self.port.map(|p| format!("redis://127.0.0.1:{p}"))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        webservers::send_signal(self.child.id(), "TERM");
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A PostgreSQL server of the test's own: `initdb` into a temporary directory (user `todo`, trust
/// authentication), `postgres` on a free `127.0.0.1` port with `fsync=off`; stopped by PID
/// (SIGINT: fast shutdown) on drop. As root, both run as the package's `postgres` user.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    port: u16,
}

impl Postgres {
    /// Start it, with its data under `dir`.
    ///
    /// # Panics
    ///
    /// When PostgreSQL is not installed or does not come up within 30 s.
    pub fn start(dir: &TempDir) -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|mut versions| versions.next())
            .and_then(|v| v.ok())
            .map(|v| v.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .expect("PostgreSQL is not installed: run ./test.sh (it installs postgresql)");
        let data = dir.subdir("pgdata", 0o700);
        // initdb and postgres refuse to run as root: drop to the package's `postgres` user.
        let as_user = |program: &str| {
            let mut cmd = if webservers::is_root() {
                let mut c = Command::new(require("setpriv"));
                c.args([
                    "--reuid=postgres",
                    "--regid=postgres",
                    "--init-groups",
                    "--",
                ]);
                c.arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            cmd.env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("LC_ALL", "C");
            cmd
        };
        if webservers::is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let out = as_user("initdb")
            .args(["-U", "todo", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _ in 0..5 {
            let port = free_port();
            let mut child = as_user("postgres")
                .arg("-D")
                .arg(&data)
                .args([
                    "-p",
                    &port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-k",
                ])
                .arg(dir.path())
                .args(["-c", "fsync=off"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn postgres");
            let up = wait_until(Duration::from_secs(30), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || matches!(child.try_wait(), Ok(Some(_)))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Postgres { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("postgres did not start");
    }

    /// `postgres://todo@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://todo@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        webservers::send_signal(self.child.id(), "INT");
        if !wait_until(Duration::from_secs(15), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
