//! Real web servers in front of RGI: **nginx**, **lighttpd** and **Apache httpd**, each started by a
//! test on loopback with a configuration the test writes into a fresh temporary directory, and
//! stopped by PID.
//!
//! Nothing here installs anything: when a server is missing, [`require`] fails the test with a
//! message that says to run the README test command (which installs them). Set
//! `RGI_SKIP_WEBSERVERS=1` to skip such tests instead ([`skip_webservers`]).
//!
//! ```no_run
//! use rgi_tests::webservers::{Nginx, TempDir};
//! let dir = TempDir::new("example");
//! let nginx = Nginx::start(dir, "", "location / { return 200 'hi'; }");
//! println!("{}", nginx.url("/"));
//! ```

use std::collections::hash_map::RandomState;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, Permissions};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable that turns "web server missing" from a failure into a skip.
pub const SKIP_ENV: &str = "RGI_SKIP_WEBSERVERS";

/// The Debian/Ubuntu packages these tests need (what the README test command installs).
pub const APT_PACKAGES: &str = "nginx-light lighttpd apache2 curl nghttp2-client";

/// The only environment variable the web servers (and what they spawn) inherit.
const CLEAN_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

/// How long a web server may take to accept connections after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a web server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// True (after printing a notice) when `RGI_SKIP_WEBSERVERS=1`: the caller should return early.
pub fn skip_webservers() -> bool {
    let skip = std::env::var(SKIP_ENV).is_ok_and(|v| v == "1");
    if skip {
        println!("NOTICE: {SKIP_ENV}=1: skipping a test that needs nginx/lighttpd/apache2");
    }
    skip
}

/// The path of `program` (searched in `PATH`, then `/usr/sbin` and `/sbin`).
///
/// # Panics
///
/// When it is not installed, with a message saying how to install it.
pub fn require(program: &str) -> PathBuf {
    find_program(program).unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed. These end-to-end tests run real nginx, lighttpd and Apache: \
             run ./test.sh, the README test command (it installs them: apt-get install -y \
             {APT_PACKAGES}), or set {SKIP_ENV}=1 to skip these tests."
        )
    })
}

/// The stock nginx params file `name` (`fastcgi_params`, `scgi_params`, `uwsgi_params`), as the
/// nginx package installs it in `/etc/nginx`.
///
/// # Panics
///
/// When it is missing, with a message saying how to install it.
pub fn nginx_stock_params(name: &str) -> PathBuf {
    let path = Path::new("/etc/nginx").join(name);
    assert!(
        path.is_file(),
        "nginx's stock {} is missing (Debian package nginx-common): run ./test.sh, the README test \
         command (it installs {APT_PACKAGES}), or set {SKIP_ENV}=1 to skip these tests.",
        path.display()
    );
    path
}

fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// True when this process runs as root (web servers then need an unprivileged user).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// A free TCP port on 127.0.0.1, picked at random in 20000–32000 (below the ephemeral range, so a
/// port just released by a client socket in TIME_WAIT is not handed out) and checked by binding it.
///
/// # Panics
///
/// When no free port is found in 200 tries.
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let port = 20000 + (random_u64() % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-32000 after 200 tries");
}

/// A fresh, uniquely named temporary directory (mode 0755, so that a web server's unprivileged
/// workers can read it), removed with its contents when dropped.
///
/// Set `RGI_KEEP_TEMP=1` to keep it for inspection.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create `$TMPDIR/rgi-LABEL-PID-RANDOM`.
    ///
    /// # Panics
    ///
    /// When the directory cannot be created.
    pub fn new(label: &str) -> TempDir {
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let path = base.join(format!(
                "rgi-{label}-{}-{:x}",
                std::process::id(),
                random_u64() ^ u64::from(nanos)
            ));
            match DirBuilder::new().mode(0o755).create(&path) {
                Ok(()) => {
                    // The umask may have narrowed the mode.
                    fs::set_permissions(&path, Permissions::from_mode(0o755))
                        .expect("chmod temp dir");
                    return TempDir { path };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("create {}: {e}", path.display()),
            }
        }
        panic!("could not create a unique temp dir in {}", base.display());
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Create the subdirectory `name` with `mode` (e.g. `0o755`, or `0o1777` for one an unprivileged
    /// server writes to) and return its path.
    ///
    /// # Panics
    ///
    /// When it cannot be created.
    pub fn subdir(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.path.join(name);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        fs::set_permissions(&path, Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Create the empty file `name` with `mode` (e.g. a log `0o666` an unprivileged server appends to).
    ///
    /// # Panics
    ///
    /// When it cannot be created.
    pub fn file(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.path.join(name);
        fs::write(&path, b"").unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        fs::set_permissions(&path, Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        path
    }

    /// Put an executable copy of `binary` at `path/name` (mode 0755; a hard link when possible) and
    /// return its path. A private copy also makes its processes recognisable by `/proc/PID/exe`.
    ///
    /// # Panics
    ///
    /// When it cannot be copied.
    pub fn install_executable(&self, binary: &Path, name: &str) -> PathBuf {
        let dest = self.path.join(name);
        if fs::hard_link(binary, &dest).is_err() {
            fs::copy(binary, &dest)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", binary.display(), dest.display()));
        }
        fs::set_permissions(&dest, Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dest.display()));
        dest
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("RGI_KEEP_TEMP").is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The group of user `nobody` a server run as root switches to: `nogroup` on Debian, else `nobody`.
fn unprivileged_group() -> &'static str {
    if read_lossy(Path::new("/etc/group")).contains("\nnogroup:") {
        "nogroup"
    } else {
        "nobody"
    }
}

/// Send `signal` ("TERM", "KILL") to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every descendant of `pid` (children, their children…), from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|p| Some((p, parent_of(p)?)))
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parents {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out
}

/// Processes whose executable lies under `dir` (private copies installed with
/// [`TempDir::install_executable`]), e.g. FastCGI or CGI children that outlived their server.
pub fn processes_running_from(dir: &Path) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe.starts_with(dir))
        })
        .collect()
}

/// Stop `child` (whose PID is `pid`), its descendants and any process running an executable from
/// `dir`: SIGTERM, a bounded wait, then SIGKILL by PID.
fn stop_tree(child: &mut Child, pid: u32, dir: &Path) {
    let mut others = descendants(pid);
    send_signal(pid, "TERM");
    let deadline = Instant::now() + STOP_TIMEOUT;
    let mut exited = false;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !exited {
        let _ = child.kill();
        let _ = child.wait();
    }
    for p in processes_running_from(dir) {
        if !others.contains(&p) {
            others.push(p);
        }
    }
    // Give the server's children a moment to follow their parent, then force them.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && others.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in others {
        if alive(p) {
            send_signal(p, "KILL");
        }
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Wait until `port` accepts connections while `child` runs and `ready()` holds; `Err` (with the
/// exit status) when the child exits first or the wait times out.
fn wait_ready(child: &mut Child, port: u16, ready: &impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        if ready()
            && TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "did not accept connections within {START_TIMEOUT:?}"
    ))
}

/// The accessors and the stopping `Drop` of a web server started by [`launch`] (fields `child`,
/// `pid` of its main process, `port`, `stopped`, `dir`).
macro_rules! foreground_server {
    ($server:ident, $name:literal) => {
        impl $server {
            /// The port it listens on (127.0.0.1).
            pub fn port(&self) -> u16 {
                self.port
            }

            /// `127.0.0.1:PORT`.
            pub fn addr(&self) -> String {
                format!("127.0.0.1:{}", self.port)
            }

            /// `http://127.0.0.1:PORT` + `path`.
            pub fn url(&self, path: &str) -> String {
                format!("http://127.0.0.1:{}{path}", self.port)
            }

            /// The (master) process id.
            pub fn pid(&self) -> u32 {
                self.pid
            }

            /// The temporary directory holding its config and logs.
            pub fn dir(&self) -> &TempDir {
                &self.dir
            }

            /// The error log (and anything the server or its children wrote to stderr) so far.
            pub fn error_log(&self) -> String {
                format!(
                    "{}{}",
                    read_lossy(&self.dir.join("stderr.log")),
                    read_lossy(&self.dir.join("error.log"))
                )
            }

            /// Stop it now, with everything it spawned: SIGTERM to the master, a bounded wait, then
            /// SIGKILL to it and its children.
            pub fn stop(&mut self) {
                if !self.stopped {
                    self.stopped = true;
                    let pid = self.pid;
                    stop_tree(&mut self.child, pid, self.dir.path());
                }
            }
        }

        impl Drop for $server {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    // Not eprintln!: a panic inside a drop during a panic aborts (and leaks the
                    // servers).
                    let _ = writeln!(
                        std::io::stderr(),
                        concat!(
                            "--- ",
                            $name,
                            " error log ({}) ---\n{}--- end of ",
                            $name,
                            " error log ---"
                        ),
                        self.dir.join("error.log").display(),
                        self.error_log()
                    );
                }
                self.stop();
            }
        }
    };
}

/// A web server being started: the command to run with its config written, and what to show when
/// it does not come up.
struct Launch {
    command: Command,
    /// The config text, shown in the panic message.
    conf: String,
    /// Files in the server's directory whose text explains a failed start.
    logs: &'static [&'static str],
}

/// Start a foreground web server on the first of `ports` it can bind (at most 5 tries, a new port
/// only when the last one was taken): `configure(port)` writes its config; it is ready when `port`
/// accepts connections and `ready()` holds. Its stderr goes to `stderr.log` in `dir`.
///
/// # Panics
///
/// When it does not come up, with its config and logs.
fn launch(
    name: &str,
    dir: &TempDir,
    mut ports: impl Iterator<Item = u16>,
    configure: impl Fn(u16) -> Launch,
    ready: impl Fn() -> bool,
) -> (Child, u16) {
    let mut last_error = format!("{name}: no port to start on");
    for port in ports.by_ref().take(5) {
        let Launch {
            mut command,
            conf,
            logs,
        } = configure(port);
        let stderr = fs::File::create(dir.join("stderr.log")).expect("create stderr.log");
        // A clean environment: servers hand some of their own (LD_LIBRARY_PATH…) to CGI programs.
        let mut child = command
            .env_clear()
            .env("PATH", CLEAN_PATH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        match wait_ready(&mut child, port, &ready) {
            Ok(()) => return (child, port),
            Err(why) => {
                let log: String = ["stderr.log"]
                    .iter()
                    .chain(logs)
                    .map(|f| read_lossy(&dir.join(f)))
                    .collect();
                let pid = child.id();
                stop_tree(&mut child, pid, dir.path());
                last_error = format!("{name} {why}\n--- config ---\n{conf}\n--- log ---\n{log}");
                if !log.contains("Address already in use") {
                    break;
                }
            }
        }
    }
    panic!("{last_error}");
}

/// A running nginx (`nginx -c CONF -g 'daemon off;'`, a child of the test), stopped by the PID in
/// its pid file when dropped (SIGTERM, then SIGKILL). Its error log is printed when it is dropped
/// during a panic.
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    pid: u32,
    port: u16,
    stopped: bool,
    dir: TempDir,
}

impl Nginx {
    /// Write `nginx.conf` into `dir` and start nginx on `127.0.0.1:PORT` (a free port), with
    /// `http_extra` inside `http { }` (e.g. `upstream` blocks) and `server_body` inside the one
    /// `server { }` (its `location`s). The server is named `rgi.test`; request bodies up to 64 MiB
    /// are accepted; every temp path, the pid file and the logs are in `dir`.
    ///
    /// # Panics
    ///
    /// When nginx is not installed or does not come up (its error log is printed).
    pub fn start(dir: TempDir, http_extra: &str, server_body: &str) -> Nginx {
        let nginx = require("nginx");
        let d = dir.path().display().to_string();
        let temp = dir.subdir("tmp", 0o755);
        for sub in ["body", "fastcgi", "proxy", "scgi", "uwsgi"] {
            fs::create_dir_all(temp.join(sub)).expect("mkdir nginx temp");
        }
        let user = if is_root() { "user root;\n" } else { "" };
        let conf_path = dir.join("nginx.conf");
        let pid_file = dir.join("nginx.pid");
        let configure = |port: u16| {
            let conf = format!(
                "# Written by rgi-tests (tests/src/webservers.rs).\n\
                 {user}worker_processes 1;\n\
                 pid {d}/nginx.pid;\n\
                 error_log {d}/error.log info;\n\
                 events {{ worker_connections 256; }}\n\
                 http {{\n\
                 \x20   access_log {d}/access.log;\n\
                 \x20   default_type application/octet-stream;\n\
                 \x20   client_body_temp_path {d}/tmp/body;\n\
                 \x20   fastcgi_temp_path {d}/tmp/fastcgi;\n\
                 \x20   proxy_temp_path {d}/tmp/proxy;\n\
                 \x20   scgi_temp_path {d}/tmp/scgi;\n\
                 \x20   uwsgi_temp_path {d}/tmp/uwsgi;\n\
                 \x20   client_max_body_size 64m;\n\
                 {http_extra}\n\
                 \x20   server {{\n\
                 \x20       listen 127.0.0.1:{port} default_server;\n\
                 \x20       server_name rgi.test;\n\
                 {server_body}\n\
                 \x20   }}\n\
                 }}\n"
            );
            fs::write(&conf_path, &conf).expect("write nginx.conf");
            let _ = fs::remove_file(&pid_file);
            let mut command = Command::new(&nginx);
            command
                .arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&conf_path)
                .args(["-g", "daemon off;"]);
            Launch {
                command,
                conf,
                logs: &["error.log"],
            }
        };
        let (child, port) = launch(
            "nginx",
            &dir,
            std::iter::repeat_with(free_port),
            configure,
            || pid_file.exists(),
        );
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| child.id());
        Nginx {
            child,
            pid,
            port,
            stopped: false,
            dir,
        }
    }
}

foreground_server!(Nginx, "nginx");

/// A running lighttpd (`lighttpd -D -f CONF`, a foreground child of the test), stopped by its PID
/// when dropped, together with the CGI/FastCGI processes it spawned. Its error log is printed when it
/// is dropped during a panic.
#[derive(Debug)]
pub struct Lighttpd {
    child: Child,
    pid: u32,
    port: u16,
    stopped: bool,
    dir: TempDir,
}

impl Lighttpd {
    /// Write `lighttpd.conf` into `dir` and start lighttpd on `127.0.0.1:PORT` (a free port). The
    /// written config sets the bind address, port, error log, upload dir (all in `dir`), responses
    /// streamed as produced (`server.stream-response-body = 2`) and, when run as root, user
    /// `nobody`; `body` adds the rest (`server.modules`, `server.document-root`, `cgi.assign`,
    /// `fastcgi.server`…).
    ///
    /// # Panics
    ///
    /// When lighttpd is not installed or does not come up (its error log is printed).
    pub fn start(dir: TempDir, body: &str) -> Lighttpd {
        let lighttpd = require("lighttpd");
        let d = dir.path().display().to_string();
        dir.subdir("upload", 0o1777);
        // lighttpd opens its error log after dropping privileges.
        dir.file("error.log", 0o666);
        let user = if is_root() {
            let group = unprivileged_group();
            format!("server.username = \"nobody\"\nserver.groupname = \"{group}\"\n")
        } else {
            String::new()
        };
        let conf_path = dir.join("lighttpd.conf");
        let configure = |port: u16| {
            let conf = format!(
                "# Written by rgi-tests (tests/src/webservers.rs).\n\
                 server.bind = \"127.0.0.1\"\n\
                 server.port = {port}\n\
                 server.errorlog = \"{d}/error.log\"\n\
                 server.upload-dirs = ( \"{d}/upload\" )\n\
                 server.max-request-size = 65536\n\
                 server.stream-response-body = 2\n\
                 {user}\
                 {body}\n"
            );
            fs::write(&conf_path, &conf).expect("write lighttpd.conf");
            let mut command = Command::new(&lighttpd);
            command.arg("-D").arg("-f").arg(&conf_path);
            Launch {
                command,
                conf,
                logs: &["error.log"],
            }
        };
        let (child, port) = launch(
            "lighttpd",
            &dir,
            std::iter::repeat_with(free_port),
            configure,
            || true,
        );
        Lighttpd {
            pid: child.id(),
            child,
            port,
            stopped: false,
            dir,
        }
    }
}

foreground_server!(Lighttpd, "lighttpd");

/// Where Debian's `apache2` package installs Apache's modules.
pub const APACHE_MODULES: &str = "/usr/lib/apache2/modules";

/// The stock modules every [`Apache`] loads from [`APACHE_MODULES`]: the event MPM, access control,
/// aliases (`ScriptAlias`), `SetEnv`, CGI through `mod_cgid`, and the proxy with its FastCGI, SCGI,
/// uwsgi and HTTP back ends.
pub const APACHE_STOCK_MODULES: &[&str] = &[
    "mpm_event",
    "authz_core",
    "alias",
    "env",
    "cgid",
    "proxy",
    "proxy_fcgi",
    "proxy_scgi",
    "proxy_uwsgi",
    "proxy_http",
];

/// A running Apache httpd 2.4 (`apache2 -f CONF -DFOREGROUND`, a foreground child of the test),
/// stopped by its PID when dropped, together with its children (the worker process, the `mod_cgid`
/// daemon, CGI programs). Its error log is printed when it is dropped during a panic.
#[derive(Debug)]
pub struct Apache {
    child: Child,
    pid: u32,
    port: u16,
    stopped: bool,
    dir: TempDir,
}

impl Apache {
    /// Write `httpd.conf` into `dir` and start Apache on `127.0.0.1:PORT` (a free port). The written
    /// config loads [`APACHE_STOCK_MODULES`], names the server `rgi.test`, keeps its pid file, error
    /// log, locks and `mod_cgid` socket in `dir`, runs one worker process of 25 threads and, when run
    /// as root, runs it as user `nobody` (Apache refuses to serve as root); `body` adds the rest
    /// (`ProxyPass`, `ScriptAlias`, `<VirtualHost>`…).
    ///
    /// # Panics
    ///
    /// When Apache is not installed or does not come up (its error log is printed).
    pub fn start(dir: TempDir, body: &str) -> Apache {
        Apache::start_on_ports(dir, std::iter::repeat_with(free_port), body)
    }

    /// As [`start`](Apache::start), on `port` only: for a site file whose `<VirtualHost>` names the
    /// port (the test substitutes a [`free_port`] into it).
    ///
    /// # Panics
    ///
    /// When Apache is not installed or does not come up (its error log is printed).
    pub fn start_on(dir: TempDir, port: u16, body: &str) -> Apache {
        Apache::start_on_ports(dir, std::iter::once(port), body)
    }

    fn start_on_ports(dir: TempDir, ports: impl Iterator<Item = u16>, body: &str) -> Apache {
        let apache = require("apache2");
        let d = dir.path().display().to_string();
        let run = dir.subdir("run", 0o755);
        dir.subdir("htdocs", 0o755);
        let modules: String = APACHE_STOCK_MODULES
            .iter()
            .map(|m| format!("LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n"))
            .collect();
        let user = if is_root() {
            format!("User nobody\nGroup {}\n", unprivileged_group())
        } else {
            String::new()
        };
        let conf_path = dir.join("httpd.conf");
        let pid_file = run.join("httpd.pid");
        let configure = |port: u16| {
            let conf = format!(
                "# Written by rgi-tests (tests/src/webservers.rs).\n\
                 ServerRoot {d}\n\
                 {modules}\
                 Listen 127.0.0.1:{port}\n\
                 ServerName rgi.test\n\
                 {user}\
                 PidFile {d}/run/httpd.pid\n\
                 DefaultRuntimeDir {d}/run\n\
                 ErrorLog {d}/error.log\n\
                 LogLevel warn\n\
                 DocumentRoot {d}/htdocs\n\
                 StartServers 1\n\
                 ServerLimit 1\n\
                 ThreadsPerChild 25\n\
                 MaxRequestWorkers 25\n\
                 MinSpareThreads 1\n\
                 MaxSpareThreads 50\n\
                 {body}\n"
            );
            fs::write(&conf_path, &conf).expect("write httpd.conf");
            let _ = fs::remove_file(&pid_file);
            let mut command = Command::new(&apache);
            command.arg("-f").arg(&conf_path).arg("-DFOREGROUND");
            Launch {
                command,
                conf,
                logs: &["error.log"],
            }
        };
        let (child, port) = launch("apache2", &dir, ports, configure, || pid_file.exists());
        Apache {
            pid: child.id(),
            child,
            port,
            stopped: false,
            dir,
        }
    }
}

foreground_server!(Apache, "apache2");

/// Quote `s` as a lighttpd config string.
pub fn lighttpd_quote(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "run ./test.sh, the README test command")]
    fn a_missing_server_fails_with_the_install_hint() {
        require("rgi-no-such-web-server");
    }

    #[test]
    fn temp_dirs_are_unique_world_readable_and_removed() {
        let a = TempDir::new("unit");
        let b = TempDir::new("unit");
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755);
        assert_eq!(
            fs::metadata(a.subdir("w", 0o1777))
                .expect("stat")
                .permissions()
                .mode()
                & 0o7777,
            0o1777
        );
        let path = a.path().to_path_buf();
        drop(a);
        assert!(std::env::var_os("RGI_KEEP_TEMP").is_some() || !path.exists());
    }

    #[test]
    fn free_ports_are_below_the_ephemeral_range_and_bindable() {
        let port = free_port();
        assert!((20000..32000).contains(&port));
        TcpListener::bind(("127.0.0.1", port)).expect("bind the free port");
    }
}
