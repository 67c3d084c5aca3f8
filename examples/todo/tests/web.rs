//! Every behaviour of the todo app, in process through `rgi::testing::TestClient`, on SQLite.

use std::path::PathBuf;
use std::sync::Mutex;

use example_todo::{app, Db};
use http::StatusCode;
use rgi::testing::{TestClient, TestResponse};
use rgi::BoxApp;
use rgi_middleware::session::{Keys, SessionLayer};

/// A fresh app on a fresh database, removed on drop.
struct Fixture {
    client: TestClient<BoxApp>,
    dir: PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn fixture(name: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("todo-web-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::open(&format!("sqlite:{}", dir.join("todo.db").display()), 4).unwrap();
    db.migrate().await.unwrap();
    let sessions = SessionLayer::builder()
        .keys(Keys::ephemeral().unwrap())
        .build()
        .unwrap();
    let statics = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static"));
    Fixture {
        client: TestClient::new(app(db, &statics, sessions).unwrap()),
        dir,
    }
}

/// One visitor: a cookie jar and the last CSRF token seen.
struct Visitor<'a> {
    client: &'a TestClient<BoxApp>,
    cookie: Mutex<Option<String>>,
    token: Mutex<String>,
}

impl<'a> Visitor<'a> {
    fn new(f: &'a Fixture) -> Self {
        Visitor {
            client: &f.client,
            cookie: Mutex::new(None),
            token: Mutex::new(String::new()),
        }
    }

    fn remember(&self, response: &TestResponse) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            *self.cookie.lock().unwrap() = Some(pair);
        }
        let text = response.text();
        if let Some(at) = text.find("name=\"csrf_token\" value=\"") {
            let rest = &text[at + 25..];
            *self.token.lock().unwrap() = rest[..rest.find('"').unwrap()].to_owned();
        }
    }

    async fn get(&self, path: &str) -> TestResponse {
        let mut request = self.client.get(path);
        if let Some(cookie) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await;
        self.remember(&response);
        response
    }

    /// POST a form with the session's CSRF token added (unless `csrf` is false).
    async fn post_with(&self, path: &str, fields: &[(&str, &str)], csrf: bool) -> TestResponse {
        let mut form = form_urlencoded::Serializer::new(String::new());
        if csrf {
            form.append_pair("csrf_token", &self.token.lock().unwrap());
        }
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let mut request = self
            .client
            .post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        if let Some(cookie) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await;
        self.remember(&response);
        response
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        self.post_with(path, fields, true).await
    }

    /// Sign up (from the sign-up page) and follow the redirect home.
    async fn sign_up(&self, name: &str) -> TestResponse {
        self.get("/signup").await;
        let r = self
            .post(
                "/signup",
                &[("username", name), ("password", "password123")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text());
        self.get("/").await
    }

    async fn todos(&self) -> serde_json::Value {
        let r = self.get("/api/todos").await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.header("content-type"), Some("application/json"));
        serde_json::from_slice(r.body()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_are_sent_to_log_in() {
    let f = fixture("anon").await;
    let v = Visitor::new(&f);
    let r = v.get("/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login"));
    assert_eq!(v.get("/todos/1/edit").await.status(), StatusCode::SEE_OTHER);
    let r = v.get("/api/todos").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.text(), r#"{"error":"not logged in"}"#);
    let login = v.get("/login").await;
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.text().contains("name=\"csrf_token\""));
    // A POST that passes CSRF but has no user is refused, not performed.
    assert_eq!(
        v.post("/todos", &[("title", "x")]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(v.get("/nowhere").await.status(), StatusCode::NOT_FOUND);
    // Every page behind the log-in sends there first, whatever its id.
    let r = v.get("/todos/abc/edit").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login"));
    let r = v.get("/logout").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("OPTIONS, POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_log_in_log_out() {
    let f = fixture("users").await;
    let v = Visitor::new(&f);
    let home = v.sign_up("alice").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().contains("Welcome, alice!"), "{}", home.text());
    // The flash is shown once.
    assert!(!v.get("/").await.text().contains("Welcome, alice!"));

    let r = v.post("/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login"));
    let login = v.get("/login").await;
    assert!(login.text().contains("You have been logged out."));
    assert_eq!(v.get("/").await.status(), StatusCode::SEE_OTHER);

    let wrong = v
        .post(
            "/login",
            &[("username", "alice"), ("password", "nope nope")],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("Wrong user name or password."));
    assert!(wrong.text().contains("value=\"alice\""));
    let ok = v
        .post(
            "/login",
            &[("username", "alice"), ("password", "password123")],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert!(v.get("/").await.text().contains("Logged in as alice."));

    // Sign-up refusals show the form again with a message.
    let other = Visitor::new(&f);
    other.get("/signup").await;
    let taken = other
        .post(
            "/signup",
            &[("username", "alice"), ("password", "password123")],
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    assert!(taken.text().contains("That user name is taken."));
    let short = other
        .post("/signup", &[("username", "bob"), ("password", "short")])
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.text().contains("at least 8 characters"));
    let odd = other
        .post(
            "/signup",
            &[("username", "<bob>"), ("password", "password123")],
        )
        .await;
    assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        odd.text().contains("value=\"&lt;bob&gt;\""),
        "{}",
        odd.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_edit_toggle_delete_with_flashes() {
    let f = fixture("todos").await;
    let v = Visitor::new(&f);
    v.sign_up("carol").await;
    for title in ["milk", "bread", "<script>alert(1)</script>"] {
        let r = v.post("/todos", &[("title", title)]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.header("location"), Some("/"));
    }
    let page = v.get("/").await.text();
    assert!(
        page.contains("Added “&lt;script&gt;alert(1)&lt;/script&gt;”."),
        "{page}"
    );
    assert!(!page.contains("<script>alert"));
    let todos = v.todos().await;
    let ids: Vec<i64> = todos
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        todos[0],
        serde_json::json!({"id": ids[0], "title": "milk", "done": false})
    );
    assert_eq!(ids.len(), 3);

    let edit = v.get(&format!("/todos/{}/edit", ids[0])).await;
    assert_eq!(edit.status(), StatusCode::OK);
    assert!(edit.text().contains("value=\"milk\""));
    let r = v
        .post(&format!("/todos/{}", ids[0]), &[("title", "oat milk")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(v.get("/").await.text().contains("Renamed to “oat milk”."));

    let r = v.post(&format!("/todos/{}/done", ids[1]), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(v.get("/").await.text().contains("Marked “bread” done."));
    assert_eq!(v.todos().await[1]["done"], true);
    v.post(&format!("/todos/{}/done", ids[1]), &[]).await;
    assert!(v.get("/").await.text().contains("Marked “bread” not done."));
    assert_eq!(v.todos().await[1]["done"], false);

    let r = v.post(&format!("/todos/{}/delete", ids[2]), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(v.get("/").await.text().contains("Deleted “&lt;script&gt;"));
    assert_eq!(
        v.todos().await,
        serde_json::json!([
            {"id": ids[0], "title": "oat milk", "done": false},
            {"id": ids[1], "title": "bread", "done": false}
        ])
    );
    assert_eq!(
        v.post(&format!("/todos/{}/delete", ids[2]), &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_titles_show_the_form_again() {
    let f = fixture("titles").await;
    let v = Visitor::new(&f);
    v.sign_up("dave").await;
    let empty = v.post("/todos", &[("title", "   ")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().contains("The title must not be empty."));
    let long = "x".repeat(201);
    let r = v.post("/todos", &[("title", &long)]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("at most 200 characters"));
    assert!(r.text().contains(&long), "the typed title is kept");
    assert_eq!(v.todos().await, serde_json::json!([]));
    // 200 multi-byte characters are fine.
    let fine = "é".repeat(200);
    assert_eq!(
        v.post("/todos", &[("title", &fine)]).await.status(),
        StatusCode::SEE_OTHER
    );
    let id = v.todos().await[0]["id"].as_i64().unwrap();
    let r = v.post(&format!("/todos/{id}"), &[("title", "")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("The title must not be empty."));
    assert!(r.text().contains("<h1>Edit todo</h1>"));
    assert_eq!(v.todos().await[0]["title"], fine.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_todo_is_not_found() {
    let f = fixture("owners").await;
    let erin = Visitor::new(&f);
    erin.sign_up("erin").await;
    erin.post("/todos", &[("title", "erin's")]).await;
    let id = erin.todos().await[0]["id"].as_i64().unwrap();
    let frank = Visitor::new(&f);
    frank.sign_up("frank").await;
    assert_eq!(
        frank.get(&format!("/todos/{id}/edit")).await.status(),
        StatusCode::NOT_FOUND
    );
    // An id that is not a number: the framework's 400, naming the parameter.
    let r = frank.get("/todos/abc/edit").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().contains("id"), "{}", r.text());
    for path in [
        format!("/todos/{id}"),
        format!("/todos/{id}/done"),
        format!("/todos/{id}/delete"),
    ] {
        let r = frank.post(&path, &[("title", "mine now")]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(frank.todos().await, serde_json::json!([]));
    assert_eq!(
        erin.todos().await,
        serde_json::json!([{"id": id, "title": "erin's", "done": false}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_a_valid_csrf_token_are_403() {
    let f = fixture("csrf").await;
    let v = Visitor::new(&f);
    v.get("/signup").await;
    let r = v
        .post_with(
            "/signup",
            &[("username", "gina"), ("password", "password123")],
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    v.sign_up("gina").await;
    let r = v.post_with("/todos", &[("title", "sneaky")], false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = v
        .post_with(
            "/todos",
            &[("title", "sneaky"), ("csrf_token", "forged")],
            false,
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(v.todos().await, serde_json::json!([]));
    // Another visitor's token does not work with this session.
    let h = Visitor::new(&f);
    h.get("/login").await;
    *v.token.lock().unwrap() = h.token.lock().unwrap().clone();
    assert_eq!(v.post("/logout", &[]).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_and_layout() {
    let f = fixture("static").await;
    let v = Visitor::new(&f);
    let css = v.get("/static/todo.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    let icon = v.get("/static/favicon.svg").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert!(icon
        .header("content-type")
        .unwrap()
        .starts_with("image/svg+xml"));
    assert_eq!(
        v.get("/static/../Cargo.toml").await.status(),
        StatusCode::BAD_REQUEST
    );
    let page = v.get("/login").await.text();
    assert!(page.starts_with("<!doctype html>"));
    // Linked with a content hash (`static_url`), so browsers may cache them for good.
    assert!(page.contains("href=\"/static/todo.css?v="), "{page}");
    assert!(page.contains("href=\"/static/favicon.svg?v="), "{page}");
}
