//! Every extractor, and every rejection: 400, 413, 415, 422 with a short message naming the problem.

use bytes::Bytes;
use http::StatusCode;
use rgi::testing::{TestClient, TestResponse};
use rgi_framework::{
    get, post, App, Cookies, Error, Form, Json, Limits, Multipart, Path, Query, Site, State,
};
use rgi_middleware::session::{Keys, SessionLayer, SessionMiddleware};
use serde::Deserialize;

#[derive(Debug, Deserialize, serde::Serialize)]
struct Person {
    name: String,
    age: u8,
}

#[derive(Debug, Deserialize)]
struct Order {
    items: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    #[allow(dead_code)]
    sku: String,
    qty: u32,
}

async fn form(Form(p): Form<Person>) -> String {
    format!("{} {}", p.name, p.age)
}

async fn json(Json(p): Json<Person>) -> Json<Person> {
    Json(p)
}

async fn order(Json(o): Json<Order>) -> String {
    o.items.iter().map(|i| i.qty).sum::<u32>().to_string()
}

async fn query(Query(p): Query<Person>) -> String {
    format!("{} {}", p.name, p.age)
}

async fn tuple(Path((a, b)): Path<(String, i32)>) -> String {
    format!("{a}:{b}")
}

async fn text(body: String) -> String {
    body
}

async fn bytes(body: Bytes) -> String {
    body.len().to_string()
}

async fn cookies(c: Cookies) -> String {
    format!("{:?} {:?}", c.get("a"), c.get("b"))
}

#[derive(Clone)]
struct Greeting(&'static str);

async fn state(State(g): State<Greeting>) -> &'static str {
    g.0
}

async fn missing_state(State(n): State<u64>) -> String {
    n.to_string()
}

async fn upload(mut form: Multipart) -> Result<String, Error> {
    let mut out = Vec::new();
    while let Some(field) = form.next_field().await? {
        let name = field.name().unwrap_or("").to_owned();
        if field.file_name().is_some() {
            let saved = field.save().await?;
            let on_disk = std::fs::read(saved.file.path())?;
            out.push(format!(
                "{name}:file:{}:{}:{}",
                saved.file_name.unwrap_or_default(),
                saved.size,
                on_disk.len()
            ));
        } else {
            out.push(format!("{name}={}", field.text().await?));
        }
    }
    Ok(out.join(","))
}

fn app() -> Site {
    App::new()
        .route("/form", post(form).get(form))
        .route("/json", post(json))
        .route("/order", post(order))
        .route("/query", get(query))
        .route("/t/{a}/{b}", get(tuple))
        .route("/text", post(text))
        .route("/bytes", post(bytes))
        .route("/cookies", get(cookies))
        .route("/state", get(state))
        .route("/missing-state", get(missing_state))
        .route("/upload", post(upload))
        .state(Greeting("hello state"))
        .limits({
            let mut limits = Limits::default();
            limits.body = 64;
            limits.multipart_field = 32;
            limits.multipart_total = 200;
            limits
        })
        .build()
        .unwrap()
}

fn check(r: TestResponse, status: u16, message: &str) {
    assert_eq!(r.status().as_u16(), status, "{}", r.text());
    assert!(
        r.text().contains(message),
        "expected {message:?} in {:?}",
        r.text()
    );
    assert!(r.text().len() < 200, "short messages: {}", r.text());
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

#[test]
fn form_extractor() {
    let c = TestClient::new(app());
    check(
        c.post("/form")
            .header("content-type", FORM)
            .body("name=Ann&age=30")
            .send_blocking(),
        200,
        "Ann 30",
    );
    check(c.get("/form?name=Bob&age=4").send_blocking(), 200, "Bob 4");
    check(
        c.post("/form")
            .header("content-type", "text/plain")
            .body("name=A&age=1")
            .send_blocking(),
        415,
        "x-www-form-urlencoded",
    );
    check(
        c.post("/form").body("name=A&age=1").send_blocking(),
        415,
        "expected Content-Type",
    );
    check(
        c.post("/form")
            .header("content-type", FORM)
            .body("name=Ann&age=old")
            .send_blocking(),
        422,
        "age: invalid digit",
    );
    check(
        c.post("/form")
            .header("content-type", FORM)
            .body("name=Ann")
            .send_blocking(),
        422,
        "missing field `age`",
    );
    check(
        c.post("/form")
            .header("content-type", FORM)
            .body("age=300&name=x")
            .send_blocking(),
        422,
        "age: number too large",
    );
    check(
        c.post("/form")
            .header("content-type", FORM)
            .body("x".repeat(65))
            .send_blocking(),
        413,
        "larger than 64 bytes",
    );
}

#[test]
fn json_extractor() {
    let c = TestClient::new(app());
    let r = c
        .post("/json")
        .header("content-type", JSON)
        .body(r#"{"name":"Ann","age":30}"#)
        .send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.header("content-type")),
        (200, Some(JSON))
    );
    assert_eq!(r.text(), r#"{"name":"Ann","age":30}"#);
    check(
        c.post("/json")
            .header("content-type", "application/vnd.api+json")
            .body(r#"{"name":"A","age":1}"#)
            .send_blocking(),
        200,
        "A",
    );
    check(
        c.post("/json")
            .header("content-type", "text/plain")
            .body("{}")
            .send_blocking(),
        415,
        "application/json",
    );
    check(
        c.post("/json")
            .header("content-type", JSON)
            .body(r#"{"name":"Ann","#)
            .send_blocking(),
        400,
        "malformed JSON",
    );
    check(
        c.post("/json")
            .header("content-type", JSON)
            .body(r#"{"name":"A","age":1} x"#)
            .send_blocking(),
        400,
        "malformed JSON: trailing",
    );
    check(
        c.post("/json")
            .header("content-type", JSON)
            .body(r#"{"name":"Ann","age":"30"}"#)
            .send_blocking(),
        422,
        "age: invalid type",
    );
    check(
        c.post("/json")
            .header("content-type", JSON)
            .body(r#"{"name":"Ann"}"#)
            .send_blocking(),
        422,
        "missing field `age`",
    );
    check(
        c.post("/order")
            .header("content-type", JSON)
            .body(r#"{"items":[{"sku":"a","qty":1},{"sku":"b","qty":-1}]}"#)
            .send_blocking(),
        422,
        "items[1].qty: invalid value",
    );
    check(
        c.post("/json")
            .header("content-type", JSON)
            .body(format!(r#"{{"name":"{}","age":1}}"#, "x".repeat(64)))
            .send_blocking(),
        413,
        "larger than 64 bytes",
    );
}

#[test]
fn query_path_body_cookie_state_extractors() {
    let c = TestClient::new(app());
    check(c.get("/query?name=Zoe&age=9").send_blocking(), 200, "Zoe 9");
    check(
        c.get("/query?name=Zoe").send_blocking(),
        400,
        "missing field `age`",
    );
    check(
        c.get("/query?name=Zoe&age=-1").send_blocking(),
        400,
        "age: invalid digit",
    );
    check(c.get("/t/x%20y/-5").send_blocking(), 200, "x y:-5");
    check(
        c.get("/t/x/five").send_blocking(),
        400,
        "path parameter `b`: `five` is not an integer",
    );
    check(c.post("/text").body("héllo").send_blocking(), 200, "héllo");
    check(
        c.post("/text").body(&b"\xff\xfe"[..]).send_blocking(),
        400,
        "not UTF-8",
    );
    check(
        c.post("/bytes").body(vec![0u8; 64]).send_blocking(),
        200,
        "64",
    );
    check(
        c.post("/bytes").body(vec![0u8; 65]).send_blocking(),
        413,
        "larger than 64",
    );
    let streamed = rgi::Body::from_stream(futures_util::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from_static(b"0123456789"))),
    ));
    check(
        c.post("/bytes").body_stream(streamed).send_blocking(),
        413,
        "larger than 64",
    );
    check(
        c.get("/cookies")
            .header("cookie", "a=1; b=two; =bad; c")
            .send_blocking(),
        200,
        "Some(\"1\") Some(\"two\")",
    );
    check(
        c.get("/cookies").header("cookie", ";;;===").send_blocking(),
        200,
        "None None",
    );
    check(c.get("/state").send_blocking(), 200, "hello state");
    check(
        c.get("/missing-state").send_blocking(),
        500,
        "500 Internal Server Error",
    );
    assert!(
        c.errors()
            .iter()
            .any(|l| l.contains("no state of type `u64`")),
        "{:?}",
        c.errors()
    );
}

fn multipart(parts: &[(&str, Option<&str>, &str)]) -> String {
    let mut body = String::new();
    for (name, file, data) in parts {
        body += "--BOUND\r\n";
        match file {
            Some(f) => body += &format!("content-disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\ncontent-type: text/plain\r\n\r\n"),
            None => body += &format!("content-disposition: form-data; name=\"{name}\"\r\n\r\n"),
        }
        body += data;
        body += "\r\n";
    }
    body + "--BOUND--\r\n"
}

#[test]
fn multipart_extractor() {
    let c = TestClient::new(app());
    let ct = "multipart/form-data; boundary=BOUND";
    let body = multipart(&[("title", None, "hi"), ("doc", Some("a.txt"), "file data")]);
    check(
        c.post("/upload")
            .header("content-type", ct)
            .body(body)
            .send_blocking(),
        200,
        "title=hi,doc:file:a.txt:9:9",
    );
    check(
        c.post("/upload")
            .header("content-type", "text/plain")
            .body("x")
            .send_blocking(),
        415,
        "multipart/form-data",
    );
    check(
        c.post("/upload")
            .header("content-type", "multipart/form-data")
            .body("x")
            .send_blocking(),
        415,
        "boundary",
    );
    let big_field = multipart(&[("doc", Some("a.txt"), &"x".repeat(33))]);
    check(
        c.post("/upload")
            .header("content-type", ct)
            .body(big_field)
            .send_blocking(),
        413,
        "field `doc` is larger than 32 bytes",
    );
    let many: Vec<(&str, Option<&str>, &str)> =
        (0..10).map(|_| ("f", None, "0123456789")).collect();
    check(
        c.post("/upload")
            .header("content-type", ct)
            .body(multipart(&many))
            .send_blocking(),
        413,
        "larger than 200 bytes",
    );
    check(
        c.post("/upload")
            .header("content-type", ct)
            .body("--BOUND\r\ngarbage")
            .send_blocking(),
        400,
        "malformed multipart",
    );
    let r = c
        .post("/upload")
        .header("content-type", ct)
        .body("--BOUND\r\ncontent-disposition: form-data; name=\"x\"\r\n\r\nunterminated")
        .send_blocking();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", r.text());
}

/// `site` behind a session layer with a fresh key.
fn with_sessions(site: Site) -> TestClient<SessionMiddleware<Site>> {
    let sessions = SessionLayer::builder()
        .keys(Keys::ephemeral().unwrap())
        .build()
        .unwrap();
    TestClient::new(rgi::ApplicationExt::layer(site, sessions))
}

/// The `name=value` of the session cookie `response` sets.
fn session_cookie(response: &TestResponse) -> String {
    let set = response.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn session_extractors_need_the_session_layer() {
    use rgi_middleware::session::Session;
    async fn count(session: Session) -> Result<String, Error> {
        let n: u32 = session.get("n")?.unwrap_or(0);
        session.insert("n", &(n + 1))?;
        Ok(n.to_string())
    }
    let site = App::new().route("/", get(count)).build().unwrap();
    let bare = TestClient::new(site.clone());
    check(
        bare.get("/").send_blocking(),
        500,
        "500 Internal Server Error",
    );
    assert!(
        bare.errors().iter().any(|l| l.contains("SessionLayer")),
        "{:?}",
        bare.errors()
    );

    let client = with_sessions(site);
    let first = client.get("/").send_blocking();
    assert_eq!(first.text(), "0");
    let cookie = session_cookie(&first);
    assert_eq!(
        client
            .get("/")
            .header("cookie", cookie)
            .send_blocking()
            .text(),
        "1"
    );
}

#[test]
fn csrf_is_checked_after_routing() {
    use rgi_middleware::session::{Csrf, CsrfToken};
    async fn form(token: CsrfToken) -> String {
        token.to_string()
    }
    async fn sign(Form(body): Form<std::collections::HashMap<String, String>>) -> String {
        format!("signed by {}", body["name"])
    }
    let site = App::new()
        .route("/form", get(form))
        .route("/sign", post(sign))
        .csrf(Csrf::new())
        .error_handler(StatusCode::FORBIDDEN, |_| "custom refusal")
        .build()
        .unwrap();
    let client = with_sessions(site);
    let page = client.get("/form").send_blocking();
    let token = page.text();
    let cookie = session_cookie(&page);
    let post = |body: String| {
        client
            .post("/sign")
            .header("cookie", cookie.as_str())
            .header("content-type", FORM)
            .body(body)
            .send_blocking()
    };
    check(
        post(format!("name=ada&csrf_token={token}")),
        200,
        "signed by ada",
    );
    // A wrong token is refused through the application's handler for 403.
    check(
        post(format!("name=eve&csrf_token={token}x")),
        403,
        "custom refusal",
    );
    // Routing answers first: a method the route does not take, a path no route has.
    let put = client
        .put("/sign")
        .header("cookie", cookie.as_str())
        .send_blocking();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.header("allow"), Some("OPTIONS, POST"));
    check(
        client.post("/nowhere").send_blocking(),
        404,
        "404 Not Found",
    );
}
