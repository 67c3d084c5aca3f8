//! The data services tests start for themselves: [`Redis`] and [`Postgres`] (Debian's
//! `redis-server` and `postgresql`), each in a temporary directory, on loopback, stopped by PID when
//! their guard drops. Both can be stopped and started again on the same data (the fault tests).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::webservers::{self, free_port, require, TempDir};

/// Poll `f` every 20 ms until it holds or `limit` passes; whether it held.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
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
/// `127.0.0.1` port), no persistence unless [`Redis::start_persistent`]; stopped by PID (TERM, then
/// KILL) on drop.
#[derive(Debug)]
pub struct Redis {
    child: Child,
    socket: PathBuf,
    port: Option<u16>,
    appendonly: bool,
    dir: TempDir,
}

impl Redis {
    /// Redis on a unix socket only.
    ///
    /// # Panics
    ///
    /// When `redis-server` is missing or does not come up within 10 s.
    pub fn start() -> Redis {
        Self::spawn(None, false, TempDir::new("redis"))
    }

    /// Redis on a unix socket and on `127.0.0.1:PORT` (a free port), as other machines reach it.
    ///
    /// # Panics
    ///
    /// As [`start`](Redis::start).
    pub fn start_on_loopback() -> Redis {
        Self::spawn(Some(free_port()), false, TempDir::new("redis"))
    }

    /// Redis on a unix socket with its append-only file on (`appendfsync always`): what was
    /// written survives [`restart`](Redis::restart).
    ///
    /// # Panics
    ///
    /// As [`start`](Redis::start).
    pub fn start_persistent() -> Redis {
        Self::spawn(None, true, TempDir::new("redis"))
    }

    /// Stop the server (TERM, as a service manager does) and start it again on the same socket,
    /// port and directory. Returns once it answers again.
    ///
    /// # Panics
    ///
    /// When it does not come back within 10 s.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Start a [`stop`](Redis::stop)ped server again, as [`restart`](Redis::restart) does.
    ///
    /// # Panics
    ///
    /// As [`restart`](Redis::restart).
    pub fn start_again(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        self.child = Self::launch(&self.dir, &self.socket, self.port, self.appendonly);
        self.wait_up();
    }

    /// Stop the server (TERM, then KILL after 5 s) and wait for it; nothing when it has stopped.
    pub fn stop(&mut self) {
        // A reaped child's status is cached: its PID (perhaps reused by now) is not signalled.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        webservers::send_signal(self.child.id(), "TERM");
        if !wait_until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    fn spawn(port: Option<u16>, appendonly: bool, dir: TempDir) -> Redis {
        let socket = dir.join("redis.sock");
        let child = Self::launch(&dir, &socket, port, appendonly);
        let mut redis = Redis {
            child,
            socket,
            port,
            appendonly,
            dir,
        };
        redis.wait_up();
        redis
    }

    fn launch(dir: &TempDir, socket: &Path, port: Option<u16>, appendonly: bool) -> Child {
        let mut command = Command::new(require("redis-server"));
        match port {
            Some(port) => command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]),
            None => command.args(["--port", "0"]),
        };
        command
            .arg("--unixsocket")
            .arg(socket)
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(if appendonly {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server")
    }

    fn wait_up(&mut self) {
        let port = self.port;
        let up = wait_until(Duration::from_secs(10), || {
            self.socket.exists()
                && port.is_none_or(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_ok())
                || matches!(self.child.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && matches!(self.child.try_wait(), Ok(None)),
            "redis-server did not come up in 10 s"
        );
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
        self.stop();
    }
}

/// A PostgreSQL server of the test's own: `initdb` into a temporary directory (user `todo`, trust
/// authentication), `postgres` on a free `127.0.0.1` port with `fsync=off`; stopped by PID
/// (SIGINT: fast shutdown) on drop. As root, both run as the package's `postgres` user.
#[derive(Debug)]
pub struct Postgres {
    child: Child,
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    sockets: PathBuf,
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
        if webservers::is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(ok.success());
        }
        let out = as_postgres_user(&bin, "initdb")
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
            if let Some(child) = launch_postgres(&bin, &data, dir.path(), port) {
                return Postgres {
                    child,
                    port,
                    bin,
                    data,
                    sockets: dir.path().to_path_buf(),
                };
            }
        }
        panic!("postgres did not start");
    }

    /// `postgres://todo@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://todo@127.0.0.1:{}/postgres", self.port)
    }

    /// Stop the server as `pg_ctl stop -m fast` does (SIGINT: sessions are ended, committed data
    /// kept), waiting at most 15 s (then SIGKILL); nothing when it has stopped.
    pub fn stop(&mut self) {
        // A reaped child's status is cached: its PID (perhaps reused by now) is not signalled.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        webservers::send_signal(self.child.id(), "INT");
        if !wait_until(Duration::from_secs(15), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// Start a [`stop`](Postgres::stop)ped server again on the same data and port.
    ///
    /// # Panics
    ///
    /// When it does not come up within 30 s (twice).
    pub fn start_again(&mut self) {
        for _ in 0..2 {
            if let Some(child) = launch_postgres(&self.bin, &self.data, &self.sockets, self.port) {
                self.child = child;
                return;
            }
        }
        panic!("postgres did not start again on port {}", self.port);
    }
}

/// `program` of PostgreSQL's `bin`, run as the package's `postgres` user when we are root (initdb
/// and postgres refuse to run as root).
fn as_postgres_user(bin: &Path, program: &str) -> Command {
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
}

/// `postgres` on `data`, listening on `127.0.0.1:port` and a socket in `sockets`; `None` when it
/// exits or does not listen within 30 s.
fn launch_postgres(bin: &Path, data: &Path, sockets: &Path, port: u16) -> Option<Child> {
    let mut child = as_postgres_user(bin, "postgres")
        .arg("-D")
        .arg(data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-k",
        ])
        .arg(sockets)
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
        return Some(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
