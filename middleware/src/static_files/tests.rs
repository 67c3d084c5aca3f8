use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use http::{HeaderMap, StatusCode};
use rgi::testing::{TestClient, TestResponse};
use tower_layer::Layer as _;

use super::*;
use crate::Mount;

const SECRET: &str = "TOP SECRET: never served";
const HELLO: &str = "hello, file\n";

/// `BASE/secret.txt` outside the root, and `BASE/root/` with files, directories and symlinks.
struct Fixture {
    base: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = std::env::temp_dir().join(format!(
            "rgi-static-unit-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&base);
        let root = base.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::create_dir_all(root.join("noindex")).unwrap();
        fs::write(base.join("secret.txt"), SECRET).unwrap();
        fs::write(root.join("hello.txt"), HELLO).unwrap();
        fs::write(root.join("0123456789.txt"), "0123456789").unwrap();
        fs::write(root.join("sub/index.html"), "<h1>sub</h1>").unwrap();
        fs::write(root.join("style.css"), "body { color: red }").unwrap();
        fs::write(root.join("style.css.br"), "BROTLI BYTES").unwrap();
        fs::write(root.join("style.css.gz"), "GZIP BYTES").unwrap();
        fs::write(root.join("image.png"), [0x89, b'P', b'N', b'G']).unwrap();
        fs::write(root.join("data.unknownext"), "?").unwrap();
        // Literally named `%2e%2e` and `%2e`: what double encoding reaches.
        fs::create_dir_all(root.join("%2e%2e")).unwrap();
        fs::write(root.join("%2e"), "a file named %2e").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink(base.join("secret.txt"), root.join("link-out")).unwrap();
            symlink("../secret.txt", root.join("link-out-relative")).unwrap();
            symlink(&base, root.join("link-out-dir")).unwrap();
            symlink("hello.txt", root.join("link-in")).unwrap();
            symlink(base.join("secret.txt"), root.join("noindex/index.html")).unwrap();
        }
        Fixture { base }
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn client(&self) -> TestClient<Static> {
        TestClient::new(Static::new(self.root()))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn no_secret(uri: &str, response: &TestResponse) {
    assert!(
        !response.text().contains("TOP SECRET"),
        "{uri}: the secret leaked: {response:?}"
    );
}

/// Paths that try to leave the root, and what each gets. None may show the secret.
const TRAVERSAL: &[(&str, u16)] = &[
    ("/../secret.txt", 400),
    ("/..%2fsecret.txt", 400),
    ("/..%2Fsecret.txt", 400),
    ("/%2e%2e/secret.txt", 400),
    ("/%2E%2E/secret.txt", 400),
    ("/%2e%2e%2fsecret.txt", 400),
    ("/.%2e/secret.txt", 400),
    ("/%2e./secret.txt", 400),
    ("/sub/../../secret.txt", 400),
    ("/sub/%2e%2e/%2e%2e/secret.txt", 400),
    ("//../secret.txt", 400),
    ("/..%5csecret.txt", 400),
    ("/sub%5c..%5c..%5csecret.txt", 400),
    ("/%5c..%5csecret.txt", 400),
    ("/hello.txt%00", 400),
    ("/hello.txt%00.png", 400),
    ("/%00/../secret.txt", 400),
    // Double encoding is decoded once: names under the root, not a way up.
    ("/%252e%252e/secret.txt", 404),
    ("/%252e%252e%252fsecret.txt", 404),
    ("/%25252e%25252e/secret.txt", 404),
    ("/%252e", 200),
    // Overlong UTF-8 for `.` is not `.`.
    ("/%c0%ae%c0%ae/secret.txt", 404),
    ("/..;/secret.txt", 404),
    ("/link-out", 404),
    ("/link-out-relative", 404),
    ("/link-out-dir/secret.txt", 404),
    ("/link-out-dir/", 404),
    ("/noindex/", 404),
    ("/noindex/index.html", 404),
    ("/CON", 404),
    ("/con.txt", 404),
    ("/AUX", 404),
    ("/NUL", 404),
    ("/nul.html", 404),
    ("/COM1", 404),
    ("/com9.log", 404),
    ("/LPT1.txt", 404),
    ("/sub/PRN", 404),
    ("/secret.txt", 404),
    ("/root/secret.txt", 404),
];

#[test]
#[cfg(unix)]
fn traversal_table() {
    let fixture = Fixture::new();
    let client = fixture.client();
    for (uri, status) in TRAVERSAL {
        let response = client.get(uri).send_blocking();
        assert_eq!(response.status().as_u16(), *status, "GET {uri}");
        no_secret(uri, &response);
    }
    // The same table through a mount and as a layer: a refused path goes to the inner app.
    let mounted = TestClient::new(Mount::new().at("/static", Static::new(fixture.root())));
    let layered = TestClient::new(
        Static::new(fixture.root()).layer(rgi::app_fn(|_, start| async move {
            Ok(start.respond(StatusCode::IM_A_TEAPOT, HeaderMap::new(), "app")?)
        })),
    );
    for (uri, status) in TRAVERSAL {
        let response = mounted.get(&format!("/static{uri}")).send_blocking();
        assert_eq!(response.status().as_u16(), *status, "GET /static{uri}");
        no_secret(uri, &response);
        let response = layered.get(uri).send_blocking();
        let want = if *status == 200 { 200 } else { 418 };
        assert_eq!(response.status().as_u16(), want, "layered GET {uri}");
        no_secret(uri, &response);
    }
}

#[test]
#[cfg(unix)]
fn symlinks_inside_the_root_are_followed() {
    let fixture = Fixture::new();
    let response = fixture.client().get("/link-in").send_blocking();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text(), HELLO);
}

#[test]
fn files_have_their_media_type_validators_and_length() {
    let fixture = Fixture::new();
    let client = fixture.client();
    let table = [
        ("/hello.txt", "text/plain; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/image.png", "image/png"),
        ("/sub/index.html", "text/html; charset=utf-8"),
        ("/data.unknownext", "application/octet-stream"),
    ];
    for (uri, content_type) in table {
        let response = client.get(uri).send_blocking();
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert_eq!(response.header("content-type"), Some(content_type), "{uri}");
        assert!(response.header("etag").is_some_and(|e| e.starts_with('"')));
        assert!(response
            .header("last-modified")
            .is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(response.header("accept-ranges"), Some("bytes"));
    }
    let head = client.head("/hello.txt").send_blocking();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("12"));
    assert!(head.body().is_empty());
    let missing = client.get("/nope.txt").send_blocking();
    assert_eq!(
        (missing.status(), missing.text().as_str()),
        (StatusCode::NOT_FOUND, "404 Not Found\n")
    );
    assert_eq!(
        client.get("/hello.txt/").send_blocking().status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_body_is_a_file_body() {
    let fixture = Fixture::new();
    let app = rgi::app_fn({
        let files = Static::new(fixture.root());
        move |environ, start| {
            let files = files.clone();
            async move {
                let response = files.call(environ, start).await?;
                assert!(matches!(response.body().exact_len(), Some(12)));
                let kind = format!("{:?}", response.body());
                assert!(kind.starts_with("Body::File"), "{kind}");
                Ok(response)
            }
        }
    });
    assert_eq!(
        TestClient::new(app)
            .get("/hello.txt")
            .send_blocking()
            .text(),
        HELLO
    );
}

#[test]
fn conditional_requests() {
    let fixture = Fixture::new();
    let client = fixture.client();
    let first = client.get("/hello.txt").send_blocking();
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let not_modified = [
        ("if-none-match", etag.clone()),
        ("if-none-match", format!("\"other\", {etag}")),
        ("if-none-match", format!("W/{etag}")),
        ("if-none-match", "*".to_owned()),
        ("if-modified-since", modified.clone()),
        (
            "if-modified-since",
            "Fri, 01 Jan 2100 00:00:00 GMT".to_owned(),
        ),
    ];
    for (name, value) in &not_modified {
        let response = client
            .get("/hello.txt")
            .header(*name, value)
            .send_blocking();
        assert_eq!(
            response.status(),
            StatusCode::NOT_MODIFIED,
            "{name}: {value}"
        );
        assert!(response.body().is_empty());
        assert_eq!(response.header("etag"), Some(etag.as_str()));
        assert_eq!(response.header("content-type"), None);
    }
    let modified_cases: [&[(&str, &str)]; 4] = [
        &[("if-none-match", "\"other\"")],
        &[("if-modified-since", "Thu, 01 Jan 1970 00:00:00 GMT")],
        &[("if-modified-since", "not a date")],
        // If-None-Match decides when present: If-Modified-Since is then ignored.
        &[
            ("if-none-match", "\"other\""),
            ("if-modified-since", &modified),
        ],
    ];
    for headers in modified_cases {
        let mut request = client.get("/hello.txt");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send_blocking();
        assert_eq!(
            (response.status(), response.text().as_str()),
            (StatusCode::OK, HELLO),
            "{headers:?}"
        );
    }
    let failed = client
        .get("/hello.txt")
        .header("if-match", "\"other\"")
        .send_blocking();
    assert_eq!(failed.status(), StatusCode::PRECONDITION_FAILED);
    let weak = client
        .get("/hello.txt")
        .header("if-match", format!("W/{etag}"))
        .send_blocking();
    assert_eq!(
        weak.status(),
        StatusCode::PRECONDITION_FAILED,
        "If-Match compares strongly"
    );
    let matched = client
        .get("/hello.txt")
        .header("if-match", &etag)
        .send_blocking();
    assert_eq!(
        (matched.status(), matched.text().as_str()),
        (StatusCode::OK, HELLO)
    );
    let unmodified = client
        .get("/hello.txt")
        .header("if-unmodified-since", "Thu, 01 Jan 1970 00:00:00 GMT")
        .send_blocking();
    assert_eq!(unmodified.status(), StatusCode::PRECONDITION_FAILED);
}

#[test]
fn ranges() {
    let fixture = Fixture::new();
    let client = fixture.client();
    let etag = client
        .get("/0123456789.txt")
        .send_blocking()
        .header("etag")
        .unwrap()
        .to_owned();
    type Row = (
        &'static str,
        Option<&'static str>,
        u16,
        &'static str,
        Option<&'static str>,
    );
    let table: &[Row] = &[
        ("bytes=2-4", None, 206, "234", Some("bytes 2-4/10")),
        ("bytes=7-", None, 206, "789", Some("bytes 7-9/10")),
        ("bytes=-2", None, 206, "89", Some("bytes 8-9/10")),
        ("bytes=0-100", None, 206, "0123456789", Some("bytes 0-9/10")),
        (
            "bytes=10-",
            None,
            416,
            "416 Range Not Satisfiable\n",
            Some("bytes */10"),
        ),
        ("bytes=0-1,4-5", None, 200, "0123456789", None),
        ("bytes=4-2", None, 200, "0123456789", None),
        ("lines=1-2", None, 200, "0123456789", None),
        ("bytes=2-4", Some("\"stale\""), 200, "0123456789", None),
        (
            "bytes=2-4",
            Some("Thu, 01 Jan 1970 00:00:00 GMT"),
            200,
            "0123456789",
            None,
        ),
    ];
    for (range, if_range, status, body, content_range) in table {
        let mut request = client.get("/0123456789.txt").header("range", *range);
        if let Some(value) = if_range {
            request = request.header("if-range", *value);
        }
        let response = request.send_blocking();
        assert_eq!(response.status().as_u16(), *status, "{range} {if_range:?}");
        assert_eq!(response.text(), *body, "{range}");
        assert_eq!(response.header("content-range"), *content_range, "{range}");
    }
    let current = client
        .get("/0123456789.txt")
        .header("range", "bytes=0-0")
        .header("if-range", &etag)
        .send_blocking();
    assert_eq!(
        (current.status(), current.text().as_str()),
        (StatusCode::PARTIAL_CONTENT, "0")
    );
}

#[test]
fn precompressed_siblings_follow_accept_encoding() {
    let fixture = Fixture::new();
    let client = TestClient::new(Static::new(fixture.root()).precompressed(true));
    let table: &[(Option<&str>, &str, Option<&str>)] = &[
        (Some("br, gzip"), "BROTLI BYTES", Some("br")),
        (Some("gzip, br;q=0.5"), "GZIP BYTES", Some("gzip")),
        (Some("br;q=0, gzip"), "GZIP BYTES", Some("gzip")),
        (Some("zstd"), "body { color: red }", None),
        (Some("identity"), "body { color: red }", None),
        (None, "body { color: red }", None),
    ];
    let mut etags = Vec::new();
    for (accept, body, encoding) in table {
        let mut request = client.get("/style.css");
        if let Some(accept) = accept {
            request = request.header("accept-encoding", *accept);
        }
        let response = request.send_blocking();
        assert_eq!(response.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(response.text(), *body, "{accept:?}");
        assert_eq!(response.header("content-encoding"), *encoding, "{accept:?}");
        assert_eq!(
            response.header("content-type"),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(response.header("vary"), Some("accept-encoding"));
        etags.push(response.header("etag").unwrap().to_owned());
    }
    assert_ne!(etags[0], etags[1], "each variant has its own ETag");
    assert_ne!(etags[0], etags[3]);
    let range = client
        .get("/style.css")
        .header("accept-encoding", "br")
        .header("range", "bytes=0-3")
        .send_blocking();
    assert_eq!(
        (range.status(), range.text().as_str()),
        (StatusCode::PARTIAL_CONTENT, "body")
    );
    // Without `precompressed`, the siblings are plain files and never chosen.
    let plain = Fixture::new();
    let response = plain
        .client()
        .get("/style.css")
        .header("accept-encoding", "br")
        .send_blocking();
    assert_eq!(
        (response.header("content-encoding"), response.header("vary")),
        (None, None)
    );
}

#[test]
fn directories_and_their_index() {
    let fixture = Fixture::new();
    let client = fixture.client();
    let index = client.get("/sub/").send_blocking();
    assert_eq!(
        (index.status(), index.text().as_str()),
        (StatusCode::OK, "<h1>sub</h1>")
    );
    let redirect = client.get("/sub?x=1").send_blocking();
    assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.header("location"), Some("/sub/?x=1"));
    let redirect = client.get("//sub").send_blocking();
    assert_eq!(
        redirect.header("location"),
        Some("/sub/"),
        "never protocol-relative"
    );
    assert_eq!(
        client.get("/noindex").send_blocking().status(),
        StatusCode::NOT_FOUND
    );
    let root = client.get("/").send_blocking();
    assert_eq!(
        root.status(),
        StatusCode::NOT_FOUND,
        "no index.html at the root"
    );
    let mounted = TestClient::new(Mount::new().at("/static", Static::new(fixture.root())));
    let redirect = mounted.get("/static/sub").send_blocking();
    assert_eq!(redirect.header("location"), Some("/static/sub/"));
    let redirect = mounted.get("/static").send_blocking();
    assert_eq!(
        redirect.status(),
        StatusCode::NOT_FOUND,
        "the root has no index"
    );
    let without = TestClient::new(Static::new(fixture.root()).index_file(None));
    assert_eq!(
        without.get("/sub/").send_blocking().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        without.get("/sub").send_blocking().status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn only_get_and_head_as_an_application() {
    let fixture = Fixture::new();
    let client = fixture.client();
    for method in [
        http::Method::POST,
        http::Method::PUT,
        http::Method::DELETE,
        http::Method::OPTIONS,
    ] {
        let response = client.request(method.clone(), "/hello.txt").send_blocking();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
    }
}

#[test]
fn as_a_layer_misses_and_other_methods_reach_the_inner_app() {
    let fixture = Fixture::new();
    let inner = rgi::app_fn(|environ, start| async move {
        let body = format!(
            "app {} {}",
            environ.method(),
            String::from_utf8_lossy(environ.path_info())
        );
        Ok(start.respond(StatusCode::OK, HeaderMap::new(), body)?)
    });
    let client = TestClient::new(
        Static::new(fixture.root())
            .cache_control(HeaderValue::from_static("public, max-age=60"))
            .fallback(inner),
    );
    let file = client.get("/hello.txt").send_blocking();
    assert_eq!(
        (file.text().as_str(), file.header("cache-control")),
        (HELLO, Some("public, max-age=60"))
    );
    assert_eq!(
        client.get("/api/users").send_blocking().text(),
        "app GET /api/users"
    );
    assert_eq!(
        client.post("/hello.txt").send_blocking().text(),
        "app POST /hello.txt"
    );
    assert_eq!(client.get("/a%2fb").send_blocking().text(), "app GET /a/b");
}

#[test]
fn a_missing_root_serves_nothing() {
    let client = TestClient::new(Static::new("/nonexistent/rgi/static/root"));
    assert_eq!(
        client.get("/").send_blocking().status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        client.get("/etc/passwd").send_blocking().status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn a_full_blocking_pool_fails_the_request_as_overloaded() {
    /// An executor whose pool is always full.
    struct Full;
    impl rgi::Executor for Full {
        fn spawn_blocking(&self, _job: rgi::BlockingJob) -> Result<(), rgi::Overloaded> {
            Err(rgi::Overloaded)
        }
    }
    let fixture = Fixture::new();
    let files = Static::new(fixture.root());
    let environ = Environ::builder(Method::GET, "/hello.txt")
        .executor(Full)
        .build();
    let error = rgi::block_on(files.call(environ, StartResponse::new(&Method::GET))).unwrap_err();
    assert!(error.is::<rgi::Overloaded>(), "{error}");
    // A refused path never reaches the executor.
    let environ = Environ::builder(Method::GET, "/../x")
        .executor(Full)
        .build();
    let response = rgi::block_on(files.call(environ, StartResponse::new(&Method::GET))).unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
