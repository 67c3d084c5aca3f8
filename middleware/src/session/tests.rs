//! The session layer, flash and CSRF driven through `rgi::testing::TestClient`.

use std::time::Duration;

use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use rgi::convert::ConnInfo;
use rgi::testing::{TestClient, TestResponse};
use rgi::{Application, Environ, Reply, Scheme, StartResponse};
use tower_layer::Layer as _;

use super::seal::{self, Envelope};
use super::store::unix_now;
use super::*;

/// One route per behaviour.
#[derive(Clone)]
struct App;

fn query(environ: &Environ) -> String {
    String::from_utf8_lossy(environ.query_string()).into_owned()
}

impl Application for App {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let session = Session::from_environ(&environ).expect("session layer");
        let body = match environ.path_info() {
            b"/login" => {
                session.regenerate();
                session.insert("user", &query(&environ))?;
                Flash::from_environ(&environ)
                    .unwrap()
                    .push("success", "Welcome");
                "ok".to_owned()
            }
            b"/whoami" => session
                .get::<String>("user")?
                .unwrap_or_else(|| "anonymous".into()),
            b"/logout" => {
                session.destroy();
                "bye".to_owned()
            }
            b"/big" => {
                session.insert("big", &"x".repeat(5000))?;
                "big".to_owned()
            }
            path @ (b"/set" | b"/put") => {
                let q = query(&environ);
                if path == b"/set" {
                    // Overlap with a concurrent request of the same session.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                session.insert(&q, &true)?;
                q
            }
            b"/keys" => session.keys().join(","),
            b"/flash" => Flash::from_environ(&environ)
                .unwrap()
                .take()
                .iter()
                .map(|m| format!("{}:{}", m.category, m.message))
                .collect::<Vec<_>>()
                .join(","),
            b"/form" | b"/hooks/in" if environ.method() == http::Method::GET => {
                CsrfToken::from_environ(&environ).unwrap().to_string()
            }
            b"/form" | b"/hooks/in" => {
                let body = environ.input_mut().read_to_bytes().await?;
                format!("got {}", String::from_utf8_lossy(&body))
            }
            _ => "?".to_owned(),
        };
        Ok(start.respond(StatusCode::OK, HeaderMap::new(), body)?)
    }
}

fn builder(keys: &Keys) -> SessionBuilder {
    SessionLayer::builder().keys(keys.clone()).debug(true)
}

fn client(layer: SessionLayer) -> TestClient<SessionMiddleware<App>> {
    TestClient::new(layer.layer(App))
}

/// `name=value` from the response's session `Set-Cookie`.
fn cookie_pair(response: &TestResponse) -> String {
    let line = response.header("set-cookie").expect("a Set-Cookie");
    line.split(';').next().unwrap().to_owned()
}

fn value_of(pair: &str) -> &str {
    pair.split_once('=').unwrap().1
}

fn get(client: &TestClient<impl Application>, path: &str, cookie: &str) -> TestResponse {
    client.get(path).header("cookie", cookie).send_blocking()
}

#[test]
fn a_cookie_session_round_trips_with_safe_attributes() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).build().unwrap());
    let login = client.get("/login?ada").send_blocking();
    let line = login.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
        assert!(line.contains(attribute), "{attribute} in {line}");
    }
    assert!(!line.contains("Secure"), "{line}");
    assert_eq!(login.header("vary"), Some("cookie"));
    let cookie = cookie_pair(&login);
    let whoami = get(&client, "/whoami", &cookie);
    assert_eq!(whoami.text(), "ada");
    assert!(
        whoami.header("set-cookie").is_none(),
        "unchanged: no cookie"
    );
    assert!(client.errors().is_empty(), "{:?}", client.errors());
}

#[test]
fn https_makes_the_cookie_secure_and_script_name_is_its_path() {
    let keys = Keys::ephemeral().unwrap();
    let app = crate::Mount::new().at("/app", builder(&keys).build().unwrap().layer(App));
    let client = TestClient::new(app).with_conn(ConnInfo {
        scheme: Scheme::Https,
        ..ConnInfo::default()
    });
    let line = client
        .get("/app/login?ada")
        .send_blocking()
        .header("set-cookie")
        .unwrap()
        .to_owned();
    assert!(
        line.contains("Secure") && line.contains("Path=/app;"),
        "{line}"
    );
}

#[test]
fn every_tampered_cookie_is_an_empty_session_logged_once() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).build().unwrap());
    let cookie = cookie_pair(&client.get("/login?ada").send_blocking());
    let value = value_of(&cookie).to_owned();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&value)
        .unwrap();
    let mut bad_values = Vec::new();
    for i in 0..raw.len() {
        let mut flipped = raw.clone();
        flipped[i] ^= 0x80;
        bad_values.push(base64::engine::general_purpose::STANDARD.encode(flipped));
    }
    bad_values.push(value[..value.len() / 2].to_owned());
    bad_values.push(value[..value.len() - 1].to_owned());
    bad_values.push(format!("{value}{}", "A".repeat(8000)));
    bad_values.push("!!!not-base64!!!".to_owned());
    bad_values.push(String::new());
    let before = client.errors().len();
    for (logged, bad) in (before..).zip(&bad_values) {
        let response = get(&client, "/whoami", &format!("rgi_session={bad}"));
        assert_eq!(response.status(), StatusCode::OK, "{bad}");
        assert_eq!(response.text(), "anonymous", "{bad}");
        let errors = client.errors();
        assert_eq!(
            errors.len(),
            logged + 1,
            "one line per broken cookie: {:?}",
            &errors[logged..]
        );
        assert!(
            errors[logged].starts_with("debug: rgi sessions: cookie `rgi_session`"),
            "{}",
            errors[logged]
        );
    }
}

#[test]
fn a_value_moved_to_another_cookie_name_does_not_open() {
    let keys = Keys::ephemeral().unwrap();
    let issuer = client(builder(&keys).build().unwrap());
    let value = value_of(&cookie_pair(&issuer.get("/login?ada").send_blocking())).to_owned();
    let other = client(builder(&keys).cookie_name("other").build().unwrap());
    let response = get(&other, "/whoami", &format!("other={value}"));
    assert_eq!(response.text(), "anonymous");
    assert_eq!(other.errors().len(), 1);
}

#[test]
fn an_expired_cookie_replayed_is_an_empty_session() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).build().unwrap());
    let now = unix_now();
    let expired = Envelope {
        iat: now - 100,
        ctd: now - 100,
        exp: now - 1,
        data: Some(SessionData::from([("user".into(), "ada".into())])),
        id: None,
    };
    let value = seal::seal(&keys, DEFAULT_COOKIE_NAME, &expired);
    let response = get(&client, "/whoami", &format!("rgi_session={value}"));
    assert_eq!(response.text(), "anonymous");
    assert!(
        client.errors()[0].contains("has expired"),
        "{:?}",
        client.errors()
    );
}

#[test]
fn rotation_reissues_under_the_newest_key_and_retired_keys_open_nothing() {
    let old = Keys::ephemeral().unwrap();
    let new = Keys::ephemeral().unwrap();
    let old_cookie = cookie_pair(
        &client(builder(&old).build().unwrap())
            .get("/login?ada")
            .send_blocking(),
    );

    let ring = Keys::new(vec![new.newest().clone(), old.newest().clone()]).unwrap();
    let rotating = client(builder(&ring).build().unwrap());
    let response = get(&rotating, "/whoami", &old_cookie);
    assert_eq!(response.text(), "ada");
    let reissued = cookie_pair(&response);

    let retired = client(builder(&new).build().unwrap());
    assert_eq!(get(&retired, "/whoami", &old_cookie).text(), "anonymous");
    assert_eq!(get(&retired, "/whoami", &reissued).text(), "ada");
}

#[test]
fn a_session_too_big_for_a_cookie_is_not_saved_and_says_why() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).build().unwrap());
    let response = client.get("/big").send_blocking();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), "big");
    assert!(response.header("set-cookie").is_none());
    let errors = client.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("over the 4096-byte limit")),
        "{errors:?}"
    );
}

#[test]
fn logout_removes_the_cookie() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).build().unwrap());
    let cookie = cookie_pair(&client.get("/login?ada").send_blocking());
    let line = get(&client, "/logout", &cookie)
        .header("set-cookie")
        .unwrap()
        .to_owned();
    assert!(
        line.starts_with("rgi_session=;") && line.contains("Max-Age=0"),
        "{line}"
    );
}

#[test]
fn sliding_expiry_reissues_after_a_quarter_absolute_keeps_the_creation_time() {
    let keys = Keys::ephemeral().unwrap();
    let now = unix_now();
    let aged = Envelope {
        iat: now - 4000,
        ctd: now - 4000,
        exp: now + 100,
        data: Some(SessionData::from([("user".into(), "ada".into())])),
        id: None,
    };
    let value = seal::seal(&keys, DEFAULT_COOKIE_NAME, &aged);
    let cookie = format!("rgi_session={value}");
    let sliding = client(
        builder(&keys)
            .expiry(Expiry::Sliding(Duration::from_secs(10_000)))
            .build()
            .unwrap(),
    );
    let renewed = get(&sliding, "/whoami", &cookie);
    let line = renewed.header("set-cookie").expect("re-issued").to_owned();
    assert!(line.contains("Max-Age=10000"), "{line}");

    let absolute = client(
        builder(&keys)
            .expiry(Expiry::Absolute(Duration::from_secs(10_000)))
            .build()
            .unwrap(),
    );
    assert!(get(&absolute, "/whoami", &cookie)
        .header("set-cookie")
        .is_none());
    let changed = get(&absolute, "/put?x", &cookie);
    let line = changed.header("set-cookie").unwrap().to_owned();
    let max_age: u64 = line
        .split("Max-Age=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (5990..=6000).contains(&max_age),
        "counts from creation: {line}"
    );
}

#[test]
fn production_without_keys_refuses_to_build() {
    let error = SessionLayer::builder()
        .secrets(SecretConfig {
            env: Some("production".into()),
            ..SecretConfig::default()
        })
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("set RGI_SECRET_KEYS"), "{error}");
    let with_keys = SessionLayer::builder().secrets(SecretConfig {
        env: Some("production".into()),
        secret_keys: Some(
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f".into(),
        ),
        ..SecretConfig::default()
    });
    assert!(with_keys.build().is_ok());
}

#[test]
fn flash_messages_show_once() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).build().unwrap());
    let mut cookie = cookie_pair(&client.get("/login?ada").send_blocking());
    let shown = get(&client, "/flash", &cookie);
    assert_eq!(shown.text(), "success:Welcome");
    cookie = cookie_pair(&shown);
    assert_eq!(get(&client, "/flash", &cookie).text(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_session_keeps_only_an_id_in_the_cookie_and_regenerates_on_login() {
    let keys = Keys::ephemeral().unwrap();
    let store = MemoryStore::new();
    let client = client(builder(&keys).store(store.clone()).build().unwrap());
    let first = cookie_pair(&client.get("/login?ada").send().await);
    assert_eq!(
        client
            .get("/whoami")
            .header("cookie", &first)
            .send()
            .await
            .text(),
        "ada"
    );
    assert_eq!(store.len(), 1);
    // Logging in again moves the session to a new id; the old id is gone from the store.
    let second = cookie_pair(
        &client
            .get("/login?bob")
            .header("cookie", &first)
            .send()
            .await,
    );
    assert_ne!(first, second);
    assert_eq!(store.len(), 1);
    assert_eq!(
        client
            .get("/whoami")
            .header("cookie", &first)
            .send()
            .await
            .text(),
        "anonymous"
    );
    assert_eq!(
        client
            .get("/whoami")
            .header("cookie", &second)
            .send()
            .await
            .text(),
        "bob"
    );
    let bye = client.get("/logout").header("cookie", &second).send().await;
    assert!(bye.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert!(store.is_empty());
    assert_eq!(
        client
            .get("/whoami")
            .header("cookie", &second)
            .send()
            .await
            .text(),
        "anonymous"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_of_one_session_keep_both_writes_in_a_store() {
    let keys = Keys::ephemeral().unwrap();
    let client = client(builder(&keys).store(MemoryStore::new()).build().unwrap());
    let cookie = cookie_pair(&client.get("/login?ada").send().await);
    let (a, b) = tokio::join!(
        client.get("/set?a").header("cookie", &cookie).send(),
        client.get("/set?b").header("cookie", &cookie).send(),
    );
    assert_eq!((a.text(), b.text()), ("a".to_owned(), "b".to_owned()));
    let keys_now = client
        .get("/keys")
        .header("cookie", &cookie)
        .send()
        .await
        .text();
    assert_eq!(keys_now, "_flash,a,b,user");
}

fn csrf_client(keys: &Keys) -> TestClient<SessionMiddleware<CsrfMiddleware<App>>> {
    let csrf = Csrf::new().exempt("/hooks").max_form_bytes(1000);
    TestClient::new(builder(keys).build().unwrap().layer(csrf.layer(App)))
}

#[test]
fn csrf_checks_forms_and_headers_and_leaves_the_body_readable() {
    let keys = Keys::ephemeral().unwrap();
    let client = csrf_client(&keys);
    let page = client.get("/form").send_blocking();
    let token = page.text();
    let cookie = cookie_pair(&page);
    let post = |body: String, content_type: &str| {
        client
            .post("/form")
            .header("cookie", &cookie)
            .header("content-type", content_type)
            .body(body)
            .send_blocking()
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let ok = post(format!("name=ada&csrf_token={token}"), FORM);
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.text(), format!("got name=ada&csrf_token={token}"));

    let missing = post("name=ada".into(), FORM);
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(
        missing.text().contains("security token"),
        "{}",
        missing.text()
    );
    assert_eq!(
        post(format!("csrf_token={token}x"), FORM).status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(format!("csrf_token={token}"), "text/plain").status(),
        StatusCode::FORBIDDEN
    );
    let big = format!("csrf_token={token}&pad={}", "x".repeat(1000));
    assert_eq!(post(big, FORM).status(), StatusCode::PAYLOAD_TOO_LARGE);

    let multipart = format!(
        "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XX\r\n\
         Content-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--XX--\r\n"
    );
    let ok = post(multipart.clone(), "multipart/form-data; boundary=XX");
    assert_eq!(ok.status(), StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.text(), format!("got {multipart}"));

    let header = |value: &str| {
        client
            .post("/form")
            .header("cookie", &cookie)
            .header("x-csrf-token", value)
            .body("{}")
            .send_blocking()
            .status()
    };
    assert_eq!(header(&token), StatusCode::OK);
    assert_eq!(header("nope"), StatusCode::FORBIDDEN);
    // Without a session there is no token to match.
    assert_eq!(
        client
            .post("/form")
            .header("x-csrf-token", &token)
            .send_blocking()
            .status(),
        StatusCode::FORBIDDEN
    );
    // Exempt prefix: no token needed.
    assert_eq!(
        client.post("/hooks/in").body("x").send_blocking().status(),
        StatusCode::OK
    );
    // Every refusal above was the client's mistake: answered, not logged as an error.
    assert_eq!(client.errors(), Vec::<String>::new());
}
