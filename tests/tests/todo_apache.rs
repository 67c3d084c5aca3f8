//! The todo app behind Apache httpd 2.4, each deploy/apache file used as shipped (the port and the
//! paths substituted):
//!
//! - `apache/todo-fcgi.conf`: `mod_proxy_fcgi` to a todo FastCGI process manager (`-w 2`) on TCP.
//! - `apache/todo-cgi.conf`: `mod_cgid` running todo as a CGI program, a process per request, on a
//!   SQLite database created beforehand with `--check-config`.
//!
//! In both a visitor signs up, logs out, logs in again, adds a todo and sees it in the page and in
//! the JSON API.

mod todo_support;

use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use rgi_tests::binary;
use rgi_tests::webservers::{self, free_port, Apache, TempDir};
use todo_support::{
    deploy_file, sqlite_url, static_dir, substitute, todo_backend, Visitor, SECRET,
};

/// Start Apache on a free port with a deploy/apache site file, its `*:80` made that port and each
/// `(from, to)` pair substituted. Returns Apache and the site's address.
fn apache_site(file: &str, dir: TempDir, pairs: &[(&str, &str)]) -> (Apache, String) {
    let port = free_port();
    let mut conf = substitute(&deploy_file(file), "*:80", &format!("*:{port}"));
    for (from, to) in pairs {
        conf = substitute(&conf, from, to);
    }
    (
        Apache::start_on(dir, port, &conf),
        format!("127.0.0.1:{port}"),
    )
}

/// Sign up as `name`, log out, log in again, add a todo: it is in the list and in the API.
fn sign_up_log_in_add_and_list(front: &str, name: &str) {
    let mut v = Visitor::new(front);
    let r = v.get("/");
    assert_eq!(r.status, 303, "not logged in: {}{}", r.head, r.body);
    assert!(
        r.header("location").is_some_and(|l| l.ends_with("/login")),
        "{}",
        r.head
    );
    v.sign_up(name);
    let r = v.post("/logout", &[]);
    assert_eq!(r.status, 303, "log-out: {}{}", r.head, r.body);
    assert_eq!(v.get("/").status, 303, "the list after log-out");

    let mut v = Visitor::new(front);
    v.get("/login");
    let r = v.post("/login", &[("username", name), ("password", "password123")]);
    assert_eq!(r.status, 303, "log-in: {}{}", r.head, r.body);
    let title = format!("first todo of {name} via Apache");
    let r = v.post("/todos", &[("title", &title)]);
    assert_eq!(r.status, 303, "add: {}{}", r.head, r.body);
    let page = v.get("/");
    assert_eq!(page.status, 200, "{}{}", page.head, page.body);
    assert!(
        page.body
            .contains(&format!("<span class=\"title\">{title}</span>")),
        "the new todo is not in the list: {}",
        page.body
    );
    assert_eq!(v.titles(), vec![title]);
    let css = v.get("/static/todo.css");
    assert_eq!(css.status, 200, "static CSS: {}", css.head);
}

#[test]
fn todo_behind_apache_mod_proxy_fcgi() {
    if webservers::skip_webservers() {
        return;
    }
    let data = TempDir::new("todo-apache-fcgi-data");
    let bind = format!("127.0.0.1:{}", free_port());
    let _backend = todo_backend(
        &sqlite_url(&data),
        &["--protocol", "fastcgi", "-b", &bind, "-w", "2"],
    );
    let (apache, front) = apache_site(
        "apache/todo-fcgi.conf",
        TempDir::new("todo-apache-fcgi"),
        &[("127.0.0.1:9000", &bind)],
    );
    sign_up_log_in_add_and_list(&front, "fcgi-user");
    drop(apache);
}

#[test]
fn todo_behind_apache_mod_cgid() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("todo-apache-cgi");
    let program = dir.install_executable(&binary("todo"), "todo");
    // Apache runs CGI programs as an unprivileged user: the database and its WAL files live in a
    // directory that user can write, and the file made by the migration is made writable too.
    let data = dir.subdir("data", 0o1777);
    let db = data.join("todo.db");
    let url = format!("sqlite:{}", db.display());
    let migrated = Command::new(&program)
        .args(["--database", &url, "--check-config"])
        .env("RGI_SECRET_KEYS", SECRET)
        .output()
        .expect("run todo --check-config");
    assert!(
        migrated.status.success(),
        "todo --check-config: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    fs::set_permissions(&db, Permissions::from_mode(0o666)).expect("chmod the database");
    let program = program.display().to_string();
    let statics = static_dir().display().to_string();
    let (apache, front) = apache_site(
        "apache/todo-cgi.conf",
        dir,
        &[
            ("sqlite:/var/lib/todo/todo.db", &url),
            ("/usr/share/todo/static", &statics),
            ("REPLACE-WITH-32-RANDOM-BYTES-IN-BASE64", SECRET),
            ("/usr/lib/cgi-bin/todo", &program),
        ],
    );
    sign_up_log_in_add_and_list(&front, "cgi-user");
    drop(apache);
}
