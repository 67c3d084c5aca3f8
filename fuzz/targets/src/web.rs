//! The web layers: session cookies, the framework's extractors and router, the static-file resolver.
//! Every request is a raw HTTP/1.1 request (see [`parse_request`](crate::parse_request)) sent
//! through the in-process test client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use http::StatusCode;
use rgi::testing::{TestClient, TestResponse};
use rgi::{Application, Layer as _};
use rgi_framework::{get, post, App, Cookies, Error, Form, Json, Limits, Multipart, Query};
use rgi_middleware::session::{Keys, MemoryStore, Session, SessionLayer};
use rgi_middleware::Static;
use serde::Deserialize;

use crate::http_input::{parse_request, RawRequest};

/// Send `raw` to `client` (`None` when the test client cannot represent it: not a valid URI).
fn send<A: Application>(client: &TestClient<A>, raw: RawRequest) -> Option<TestResponse> {
    raw.uri.parse::<http::Uri>().ok()?;
    let mut request = client.request(raw.method, &raw.uri);
    for (name, value) in raw.headers {
        if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
            request = request.header(name, value);
        }
    }
    Some(request.body(raw.body).send_blocking())
}

/// A client's bytes never make a server error (5xx) out of a layer that only parses them.
fn assert_not_server_error(response: &TestResponse) {
    assert!(
        !response.status().is_server_error(),
        "{}: {}",
        response.status(),
        response.text()
    );
}

/// The key ring of the session target: fixed, so every run opens the same cookies.
fn keys() -> Keys {
    Keys::parse("cmdpLWZ1enotc2Vzc2lvbi1rZXktb2YtdGhpcnR5LXR3by1ieXRlcw").expect("a valid secret")
}

/// Whatever cookie a request presents, it never opens to a session with values (the cookies are
/// sealed), and never fails the request.
pub(crate) fn session_cookie(data: &[u8]) {
    let Some(raw) = parse_request(data) else {
        return;
    };
    let cookie_layer = SessionLayer::builder()
        .keys(keys())
        .build()
        .expect("a layer");
    let stored = SessionLayer::builder()
        .keys(keys())
        .store(MemoryStore::new())
        .build()
        .expect("a layer");
    for layer in [cookie_layer, stored] {
        let client = TestClient::new(layer.layer(rgi::app_fn(|environ, start| async move {
            let session = Session::from_environ(&environ).expect("the session layer runs first");
            assert!(
                session.is_empty(),
                "a forged cookie opened: {:?}",
                session.keys()
            );
            start.text("ok")
        })));
        let Some(response) = send(&client, raw_clone(&raw)) else {
            return;
        };
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text());
    }
}

fn raw_clone(raw: &RawRequest) -> RawRequest {
    RawRequest {
        method: raw.method.clone(),
        uri: raw.uri.clone(),
        headers: raw.headers.clone(),
        body: raw.body.clone(),
    }
}

#[derive(Debug, Deserialize)]
struct Person {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    age: u8,
}

async fn form_map(Form(map): Form<HashMap<String, String>>) -> String {
    map.len().to_string()
}

async fn form_person(Form(_): Form<Person>) -> &'static str {
    "ok"
}

async fn query(Query(_): Query<Person>) -> &'static str {
    "ok"
}

async fn query_list(Query(list): Query<Vec<(String, String)>>) -> String {
    list.len().to_string()
}

async fn json_value(Json(value): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(value)
}

async fn json_person(Json(_): Json<Person>) -> &'static str {
    "ok"
}

async fn cookies(cookies: Cookies) -> String {
    format!("{:?}", cookies.get("a"))
}

async fn upload(mut form: Multipart) -> Result<String, Error> {
    let mut fields = 0;
    while let Some(field) = form.next_field().await? {
        fields += 1;
        if field.file_name().is_some() {
            field.save().await?;
        } else {
            field.bytes().await?;
        }
    }
    Ok(fields.to_string())
}

/// The framework's extractors on small limits: urlencoded forms, queries, JSON, multipart, cookies.
/// Malformed input is a 4xx, never a 5xx.
pub(crate) fn extractors(data: &[u8]) {
    static SITE: OnceLock<rgi_framework::Site> = OnceLock::new();
    let site = SITE.get_or_init(|| {
        App::new()
            .route("/form", post(form_map))
            .route("/form/person", post(form_person))
            .route("/query", get(query))
            .route("/query/list", get(query_list))
            .route("/json", post(json_value))
            .route("/json/person", post(json_person))
            .route("/cookies", get(cookies))
            .route("/upload", post(upload))
            .limits({
                let mut limits = Limits::default();
                limits.body = 4096;
                limits.multipart_field = 1024;
                limits.multipart_total = 8192;
                limits.temp_dir = Some(scratch_dir("uploads"));
                limits
            })
            .build()
            .expect("valid routes")
    });
    let Some(raw) = parse_request(data) else {
        return;
    };
    if let Some(response) = send(&TestClient::new(site.clone()), raw) {
        assert_not_server_error(&response);
    }
}

/// A route table (one pattern per line) and a request (the last line): building never panics, and
/// a built table answers every path without a server error; every named route's URL, filled in with
/// values from the input, is a path the table answers.
pub(crate) fn router(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let Some(path) = lines.pop() else {
        return;
    };
    let mut app = App::new();
    for (i, pattern) in lines.iter().enumerate().take(16) {
        let name = format!("r{i}");
        let answer = name.clone();
        app = app
            .route(pattern, get(move || std::future::ready(answer.clone())))
            .name(&name);
    }
    let Ok(site) = app.build() else {
        return;
    };
    let client = TestClient::new(site.clone());
    if path.parse::<http::Uri>().is_ok() && path.starts_with('/') {
        assert_not_server_error(&client.get(path).send_blocking());
    }
    for (i, _) in lines.iter().enumerate().take(16) {
        let params = [("id", path), ("name", path), ("rest", path)];
        if let Ok(url) = site.url_for("", &format!("r{i}"), params) {
            let uri = url.parse::<http::Uri>().expect("url_for gives a valid URI");
            let response = client.get(&uri.to_string()).send_blocking();
            assert_not_server_error(&response);
        }
    }
}

/// A directory for this process's scratch files, made once.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("rgi-fuzz-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// What lies outside the static root: it must never be served.
const SECRET: &[u8] = b"OUTSIDE-THE-ROOT-9f1c";

/// The static-file middleware over a root with files, a directory, a symlink inside and a symlink
/// to a file outside: no request, however encoded, is answered with a file from outside the root,
/// and every file served is one of the root's.
pub(crate) fn static_path(data: &[u8]) {
    static ROOT: OnceLock<(PathBuf, Vec<Vec<u8>>)> = OnceLock::new();
    let (root, contents) = ROOT.get_or_init(|| {
        let base = scratch_dir("static");
        std::fs::write(base.join("secret.txt"), SECRET).expect("write");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("dir")).expect("mkdir");
        let files: [(&str, &[u8]); 4] = [
            ("index.html", b"<h1>index</h1>"),
            ("a.txt", b"file a"),
            ("dir/index.html", b"<p>dir</p>"),
            ("dir/b %2e.css", b"b{}"),
        ];
        for (name, content) in files {
            std::fs::write(root.join(name), content).expect("write");
        }
        let _ = std::os::unix::fs::symlink(base.join("secret.txt"), root.join("out.txt"));
        let _ = std::os::unix::fs::symlink("../secret.txt", root.join("dir/up.txt"));
        let _ = std::os::unix::fs::symlink("a.txt", root.join("in.txt"));
        let contents = files.iter().map(|(_, c)| c.to_vec()).collect();
        (root, contents)
    });
    let Some(raw) = parse_request(data) else {
        return;
    };
    let client = TestClient::new(Static::new(root));
    let Some(response) = send(&client, raw) else {
        return;
    };
    let body = response.body();
    assert!(
        !body.windows(SECRET.len()).any(|w| w == SECRET),
        "a file outside the root was served"
    );
    if response.status() == StatusCode::OK && !body.is_empty() {
        assert!(
            contents.iter().any(|c| c == body),
            "served {:?}, not a file of the root",
            String::from_utf8_lossy(body)
        );
    }
    assert_not_server_error(&response);
}
