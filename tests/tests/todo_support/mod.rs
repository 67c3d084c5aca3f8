//! Shared by the todo end-to-end tests: the deploy/ files with their ports substituted, todo
//! backends, and a small cookie-keeping HTTP/1.0 client over loopback (no chunking to undo).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use rgi_tests::webservers::{free_port, Nginx, TempDir};
use rgi_tests::{workspace_root, Server};

/// The session key every todo process of one deployment shares (base64 of 32 bytes).
pub(crate) const SECRET: &str = "dG9kby10ZXN0cy1zaGFyZWQtc2Vzc2lvbi1rZXktMzI=";

/// A file from deploy/, as shipped.
pub(crate) fn deploy_file(path: &str) -> String {
    let full = workspace_root().join("deploy").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// Replace `from` (which must occur) by `to` in a deploy file's text.
pub(crate) fn substitute(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the deploy file no longer contains {from:?}"
    );
    text.replace(from, to)
}

/// nginx serving a deploy/nginx site file: `listen 80;` becomes a free loopback port and each
/// `(from, to)` pair is substituted. Returns nginx and the site's address.
pub(crate) fn nginx_site(file: &str, label: &str, pairs: &[(&str, &str)]) -> (Nginx, String) {
    let port = free_port();
    let mut conf = substitute(
        &deploy_file(file),
        "listen 80;",
        &format!("listen 127.0.0.1:{port};"),
    );
    for (from, to) in pairs {
        conf = substitute(&conf, from, to);
    }
    (
        Nginx::start(TempDir::new(label), &conf, ""),
        format!("127.0.0.1:{port}"),
    )
}

/// The app's static files.
pub(crate) fn static_dir() -> PathBuf {
    workspace_root().join("examples/todo/static")
}

/// Start a todo backend speaking `args` (protocol, binds, -w …) on the database `url`.
pub(crate) fn todo_backend(url: &str, args: &[&str]) -> Server {
    let mut all = vec!["--database", url];
    all.extend_from_slice(args);
    let statics = static_dir().display().to_string();
    Server::start_with_env(
        "todo",
        &all,
        &[
            ("RGI_SECRET_KEYS", SECRET),
            ("TODO_STATIC", statics.as_str()),
        ],
    )
}

/// A SQLite URL for a database file in `dir`.
pub(crate) fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite:{}", dir.join("todo.db").display())
}

/// One HTTP/1.1 response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Reply {
    /// A header's value (first one), case-insensitive name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A visitor: one cookie (the session) and the last CSRF token seen; one connection per request.
#[derive(Debug, Default)]
pub(crate) struct Visitor {
    pub(crate) addr: String,
    /// The app's mount point, put in front of every path asked for (`""` or `/todo`).
    pub(crate) prefix: String,
    pub(crate) cookie: Option<String>,
    pub(crate) token: String,
}

impl Visitor {
    pub(crate) fn new(addr: &str) -> Visitor {
        Self::mounted(addr, "")
    }

    /// A visitor of the app mounted at `prefix` (`/todo`): paths are given relative to it.
    pub(crate) fn mounted(addr: &str, prefix: &str) -> Visitor {
        Visitor {
            addr: addr.to_owned(),
            prefix: prefix.to_owned(),
            ..Visitor::default()
        }
    }

    /// Send one request; `Err` when the connection failed or the reply was cut.
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut head = format!(
            "{method} {}{path} HTTP/1.0\r\nHost: todo.example.com\r\nConnection: close\r\n",
            self.prefix
        );
        if let Some(cookie) = &self.cookie {
            head.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        let body = form.unwrap_or("");
        if form.is_some() {
            head.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other(format!("no response head in {text:?}")))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
        let reply = Reply {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        };
        for line in reply.head.lines() {
            if let Some(v) = line
                .strip_prefix("set-cookie:")
                .or(line.strip_prefix("Set-Cookie:"))
            {
                self.cookie = Some(v.trim().split(';').next().unwrap_or("").to_owned());
            }
        }
        if let Some(at) = reply.body.find("name=\"csrf_token\" value=\"") {
            let rest = &reply.body[at + 25..];
            self.token = rest[..rest.find('"').unwrap_or(0)].to_owned();
        }
        Ok(reply)
    }

    pub(crate) fn get(&mut self, path: &str) -> Reply {
        self.request("GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// POST a form with the CSRF token; `Err` on a connection failure.
    pub(crate) fn try_post(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf_token", &self.token.clone());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        self.request("POST", path, Some(&form.finish()))
    }

    pub(crate) fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        self.try_post(path, fields)
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Sign up as `name` and land on the list.
    pub(crate) fn sign_up(&mut self, name: &str) {
        self.get("/signup");
        let r = self.post(
            "/signup",
            &[("username", name), ("password", "password123")],
        );
        assert_eq!(r.status, 303, "sign-up: {}{}", r.head, r.body);
    }

    /// GET `path`, again (at most 20 times, 100 ms apart) while nginx answers 502: a backend
    /// restarting behind an upstream may close a kept-alive connection under a request.
    pub(crate) fn get_through_restarts(&mut self, path: &str) -> Reply {
        for _ in 0..20 {
            match self.request("GET", path, None) {
                Ok(r) if r.status != 502 => return r,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        self.get(path)
    }

    /// The titles of the session user's todos, from the JSON API.
    pub(crate) fn titles(&mut self) -> Vec<String> {
        let r = self.get_through_restarts("/api/todos");
        assert_eq!(r.status, 200, "{}{}", r.head, r.body);
        let todos: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
        todos
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["title"].as_str().expect("title").to_owned())
            .collect()
    }
}

/// Every step of one user's visit, through whatever stands at `addr` with the app mounted at
/// `prefix`: the list refused (303 to the log-in page), sign up, log out, log in, add two todos,
/// see them listed, mark one done, delete the other, read the JSON API after each, the stylesheet,
/// and a form posted without its `csrf_token` refused with 403 and nothing stored.
pub(crate) fn every_step(addr: &str, prefix: &str, name: &str) {
    let mut v = Visitor::mounted(addr, prefix);
    let home = format!("{prefix}/");
    let r = v.get("/");
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some(format!("{prefix}/login").as_str())),
        "{}",
        r.head
    );

    v.sign_up(name);
    assert!(v.get("/").body.contains(&format!("Welcome, {name}!")));
    let r = v.post("/logout", &[]);
    assert_eq!(
        r.header("location"),
        Some(format!("{prefix}/login").as_str())
    );
    assert!(v.get("/login").body.contains("You have been logged out."));
    let r = v.post("/login", &[("username", name), ("password", "password123")]);
    assert_eq!((r.status, r.header("location")), (303, Some(home.as_str())));
    assert!(v.get("/").body.contains(&format!("Logged in as {name}.")));

    for title in ["milk", "bread"] {
        let r = v.post("/todos", &[("title", title)]);
        assert_eq!((r.status, r.header("location")), (303, Some(home.as_str())));
    }
    let list = v.get("/");
    assert!(list.body.contains("Added “bread”."), "{}", list.body);
    assert!(list.body.contains(">milk</span>") && list.body.contains(">bread</span>"));
    assert_eq!(v.titles(), ["milk", "bread"]);

    let todos: serde_json::Value = serde_json::from_str(&v.get("/api/todos").body).expect("JSON");
    let (milk, bread) = (
        todos[0]["id"].as_i64().unwrap(),
        todos[1]["id"].as_i64().unwrap(),
    );
    assert_eq!(v.post(&format!("/todos/{milk}/done"), &[]).status, 303);
    assert_eq!(v.post(&format!("/todos/{bread}/delete"), &[]).status, 303);
    let todos: serde_json::Value = serde_json::from_str(&v.get("/api/todos").body).expect("JSON");
    assert_eq!(
        todos,
        serde_json::json!([{"id": milk, "title": "milk", "done": true}])
    );

    let css = v.get("/static/todo.css");
    assert_eq!(css.status, 200);
    assert!(css
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/css")));

    // The same form without its token: refused, and nothing was added.
    let r = v
        .request("POST", "/todos", Some("title=forged"))
        .expect("POST without csrf_token");
    assert_eq!(r.status, 403, "{}{}", r.head, r.body);
    assert_eq!(v.titles(), ["milk"]);
}
