//! The same todo binary under every gateway, each deploy/ file used as shipped (ports and paths
//! substituted), each run the whole visit of `todo_support::every_step` (sign up → log in → add →
//! list → done → delete → API, and a form without its token: 403):
//!
//! | test | front | todo |
//! |---|---|---|
//! | `nginx_proxy_pass` | nginx `proxy_pass` (`nginx/todo-http.conf`) | `--protocol http` |
//! | `nginx_fastcgi_pass` | nginx `fastcgi_pass` + stock `fastcgi_params` (`nginx/todo-fastcgi.conf`) | `--protocol fastcgi` |
//! | `nginx_scgi_pass` | nginx `scgi_pass` + stock `scgi_params` (`nginx/todo-scgi.conf`) | `--protocol scgi` |
//! | `nginx_uwsgi_pass` | nginx `uwsgi_pass` + stock `uwsgi_params` (`nginx/todo-uwsgi.conf`) | `--protocol uwsgi` |
//! | `lighttpd_mod_cgi` | lighttpd `mod_cgi` at `/todo` (`lighttpd/todo-cgi.conf`) | a CGI program, one process per request |
//! | `lighttpd_mod_fastcgi_bin_path` | lighttpd `mod_fastcgi` `bin-path` (`lighttpd/todo-fastcgi.conf`) | started by lighttpd, socket on fd 0 |
//! | `two_sync_workers`, `two_async_workers` | — | HTTP, `-w 2 -k sync` / `-w 2 -k async` |
//!
//! Every todo runs on SQLite (a file: CGI processes share it like workers do).

mod todo_support;

use rgi_tests::webservers::{self, free_port, lighttpd_quote, Lighttpd, TempDir};
use todo_support::{deploy_file, every_step, nginx_site, sqlite_url, substitute, todo_backend};

/// todo speaking `protocol` behind nginx with the deploy file `conf` (its backend address `addr`).
fn behind_nginx(label: &str, conf: &str, addr: &str, protocol: &str) {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new(label);
    let bind = format!("127.0.0.1:{}", free_port());
    let _todo = todo_backend(&sqlite_url(&dir), &["--protocol", protocol, "-b", &bind]);
    let (_nginx, front) = nginx_site(conf, &format!("{label}-nginx"), &[(addr, &bind)]);
    every_step(&front, "", "ada");
}

#[test]
fn nginx_proxy_pass() {
    behind_nginx(
        "todo-http",
        "nginx/todo-http.conf",
        "127.0.0.1:8000",
        "http",
    );
}

#[test]
fn nginx_fastcgi_pass() {
    behind_nginx(
        "todo-fcgi",
        "nginx/todo-fastcgi.conf",
        "127.0.0.1:9000",
        "fastcgi",
    );
}

#[test]
fn nginx_scgi_pass() {
    behind_nginx(
        "todo-scgi",
        "nginx/todo-scgi.conf",
        "127.0.0.1:9000",
        "scgi",
    );
}

#[test]
fn nginx_uwsgi_pass() {
    behind_nginx(
        "todo-uwsgi",
        "nginx/todo-uwsgi.conf",
        "127.0.0.1:9000",
        "uwsgi",
    );
}

#[test]
fn two_sync_workers() {
    let dir = TempDir::new("todo-sync");
    let todo = todo_backend(&sqlite_url(&dir), &["-w", "2", "-k", "sync"]);
    every_step(todo.addr(), "", "bea");
}

#[test]
fn two_async_workers() {
    let dir = TempDir::new("todo-async");
    let todo = todo_backend(&sqlite_url(&dir), &["-w", "2", "-k", "async"]);
    every_step(todo.addr(), "", "cy");
}

/// A lighttpd deploy file with its paths pointed into `dir`: the binary installed as `program`,
/// a database directory the unprivileged server user may write, a copy of the static files, the
/// session key in a file. Returns the text and the database URL.
fn lighttpd_site(dir: &TempDir, file: &str, binary_at: &str, program: &str) -> (String, String) {
    let binary = dir.install_executable(&rgi_tests::binary("todo"), program);
    let lib = dir.subdir("lib", 0o777);
    let statics = dir.subdir("static", 0o755);
    for name in ["todo.css", "favicon.svg"] {
        std::fs::copy(todo_support::static_dir().join(name), statics.join(name)).expect("copy");
    }
    let keys = dir.file("secret-keys", 0o644);
    std::fs::write(&keys, format!("{}\n", todo_support::SECRET)).expect("write the key");
    let run = dir.subdir("run", 0o1777);
    let mut conf = deploy_file(file);
    for (from, to) in [
        (binary_at, &binary),
        ("/var/lib/todo", &lib),
        ("/usr/share/todo/static", &statics),
        ("/etc/todo/secret-keys", &keys),
    ] {
        conf = substitute(&conf, from, &to.display().to_string());
    }
    if conf.contains("/run/lighttpd") {
        conf = substitute(&conf, "/run/lighttpd", &run.display().to_string());
    }
    let docroot = lighttpd_quote(dir.subdir("htdocs", 0o755));
    let conf = format!("server.document-root = {docroot}\n{conf}");
    (conf, format!("sqlite:{}", lib.join("todo.db").display()))
}

#[test]
fn lighttpd_mod_cgi() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("todo-cgi");
    let at = "/usr/lib/cgi-bin/todo.cgi";
    let (conf, url) = lighttpd_site(&dir, "lighttpd/todo-cgi.conf", at, "todo.cgi");
    // The schema first, as the deploy file says; then the server's user must be able to write it.
    let migrated = std::process::Command::new(rgi_tests::binary("todo"))
        .args(["--database", &url, "--migrate"])
        .status()
        .expect("todo --migrate");
    assert!(migrated.success());
    let db = url.trim_start_matches("sqlite:");
    std::fs::set_permissions(db, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let lighttpd = Lighttpd::start(dir, &conf);
    every_step(&lighttpd.addr(), "/todo", "dee");
}

#[test]
fn lighttpd_mod_fastcgi_bin_path() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("todo-lfcgi");
    let (conf, _) = lighttpd_site(
        &dir,
        "lighttpd/todo-fastcgi.conf",
        "/usr/local/bin/todo",
        "todo",
    );
    let lighttpd = Lighttpd::start(dir, &conf);
    every_step(&lighttpd.addr(), "", "eve");
}
