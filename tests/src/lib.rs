//! Harness for RGI's end-to-end tests: start the real example binaries on loopback, talk to them with
//! raw sockets and curl, and stop every process by its PID.
//!
//! Every wait is bounded; every child is killed when its guard drops, even when a test panics.

pub mod certs;
pub mod services;
pub mod stack;
pub mod webservers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The workspace root (where `Cargo.toml` and `target/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The path of a workspace binary (`hello`, `demo`, `testapp`…), after asking cargo once per
/// test process to bring every workspace binary up to date (so that `cargo test --workspace` works
/// from a clean clone and a stale binary is rebuilt).
///
/// Always `--workspace --bins`, as `test.sh` builds them: building one binary alone (`--bin NAME`)
/// unifies features over that package only, so it would recompile the shared crates with another
/// feature set (about a minute on two cores) once for every package a test run starts.
///
/// # Panics
///
/// When the binaries cannot be built.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let path = target_dir().join(profile).join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "--workspace", "--bins"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
        *built = true;
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A running server process, stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Lines the server printed on stdout ("rgi: listening on …").
    pub banner: Vec<String>,
    /// The first TCP address it listens on (`127.0.0.1:PORT`), if any.
    pub addr: Option<String>,
    stopped: bool,
}

impl Server {
    /// Start binary `name` with `args`; unless `args` contain `--bind`/`-b`, it listens on
    /// `127.0.0.1:0` (a free port). Waits (at most 30 s) until it has printed one "listening on" line
    /// per `--bind`.
    ///
    /// # Panics
    ///
    /// When the server does not come up.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Self::start_with_env(name, args, &[])
    }

    /// As [`start`](Server::start), with extra environment variables.
    ///
    /// # Panics
    ///
    /// When the server does not come up.
    pub fn start_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_program(&binary(name), args, env)
    }

    /// As [`start_with_env`](Server::start_with_env), running the program at `program` (e.g. a
    /// copy of a test binary).
    ///
    /// # Panics
    ///
    /// When the server does not come up.
    pub fn start_program(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let name = program.display();
        let mut args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let binds = args.iter().filter(|a| *a == "--bind" || *a == "-b").count();
        let expected = if binds == 0 {
            args.extend(["--bind".into(), "127.0.0.1:0".into()]);
            1
        } else {
            binds
        };
        let mut child = Command::new(program)
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut banner = Vec::new();
        while banner.len() < expected {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => banner.push(line),
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "{name} did not start listening within 30 s (banner so far: {banner:?})"
                    );
                }
            }
        }
        let addr = banner.iter().find_map(|l| {
            let after = l.split("://").nth(1)?;
            let addr = after.split_whitespace().next()?;
            (!addr.starts_with("unix:")).then(|| addr.to_owned())
        });
        Server {
            child,
            banner,
            addr,
            stopped: false,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://ADDR` + `path`.
    ///
    /// # Panics
    ///
    /// When the server has no TCP listener.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.addr.as_deref().expect("server has a TCP address")
        )
    }

    /// The TCP address.
    ///
    /// # Panics
    ///
    /// When the server has no TCP listener.
    pub fn addr(&self) -> &str {
        self.addr.as_deref().expect("server has a TCP address")
    }

    /// Send `signal` (e.g. "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status();
    }

    /// Stop with SIGTERM and wait (at most `timeout`, then SIGKILL) for the exit status.
    pub fn stop_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.stopped {
            return None;
        }
        self.stopped = true;
        self.signal("TERM");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Wait for the process to exit by itself (at most `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stopped = true;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop_within(Duration::from_secs(5));
        }
    }
}

/// Run curl with `args` (always with `-sS` and a 30 s overall limit).
///
/// # Panics
///
/// When curl cannot be run.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl (is it installed?)")
}

/// One response as `curl -i` printed it: the status, the head (status line and headers) and the
/// body. Interim `1xx` heads (`100 Continue` to a large POST) are skipped.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The final status code.
    pub status: u16,
    /// The final status line and headers.
    pub head: String,
    /// The body, as lossy UTF-8.
    pub body: String,
}

impl Fetched {
    /// The first header named `name` (any case), trimmed.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Request `url` with curl (`-i`, plus `extra`: `-X PUT`, `--data …`, `-b jar`…).
///
/// # Panics
///
/// When curl fails (no connection, a timeout) or prints no status line.
pub fn fetch(url: &str, extra: &[&str]) -> Fetched {
    let mut args = vec!["-i", url];
    args.extend_from_slice(extra);
    let out = curl(&args);
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rest = String::from_utf8_lossy(&out.stdout).into_owned();
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((&rest, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        if (100..200).contains(&status) && !body.is_empty() {
            rest = body.to_owned();
            continue;
        }
        return Fetched {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        };
    }
}

/// A raw HTTP/1.1 exchange: write `request` bytes, read until the peer closes or `timeout` passes.
///
/// # Panics
///
/// When the connection cannot be made.
pub fn raw_exchange(addr: &str, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    stream.write_all(request).expect("write request");
    read_until_close(&mut stream, timeout)
}

/// Read from `stream` until EOF or `timeout` (whichever first).
pub fn read_until_close(stream: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(_) => break,
        }
    }
    out
}

/// Hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parse the JSON body of the `demo` application.
///
/// # Panics
///
/// When `body` is not JSON.
pub fn demo_json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "demo body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })
}
