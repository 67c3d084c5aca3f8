//! Routing: conflicts, methods (405/HEAD/OPTIONS), trailing slashes, reverse routing under a mount
//! point and in blueprints, optional segments, hooks and error handlers.

use http::StatusCode;
use rgi::testing::TestClient;
use rgi::{Application, Environ, StartResponse};
use rgi_framework::{blocking, get, post, App, Blueprint, Error, Path, Site, TrailingSlash, Urls};

async fn ok() -> &'static str {
    "ok"
}

async fn other() -> &'static str {
    "other"
}

/// The site mounted at `prefix` (what a server does for `SCRIPT_NAME`).
fn mounted(site: Site, prefix: &'static str) -> impl Application {
    rgi::app_fn(move |mut environ: Environ, start: StartResponse| {
        let site = site.clone();
        async move {
            assert!(environ.mount(prefix));
            site.call(environ, start).await
        }
    })
}

#[test]
fn conflicting_routes_are_a_build_error_naming_both() {
    let err = App::new()
        .route("/users/{id}", get(ok))
        .route("/users/{name}", get(other))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("/users/{name}") && text.contains("/users/{id}"),
        "{text}"
    );

    let err = App::new()
        .route("/files/{*path}", get(ok))
        .route("/files/{*rest}", get(ok))
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`/files/{*rest}` conflicts with route `/files/{*path}`"),
        "{err}"
    );
}

#[test]
fn malformed_routes_are_errors_not_panics() {
    // matchit itself panics on some of these; they must be refused before insertion.
    for bad in [
        "{*path}",
        "/a/{*path}/b",
        "/a/{",
        "/a/{x}{y}",
        "/a/}",
        "nostart",
    ] {
        let err = App::new()
            .route("/{foo}", get(ok))
            .route(bad, get(ok))
            .build()
            .unwrap_err();
        assert!(
            err.to_string().contains(&format!("route `{bad}`")),
            "{bad}: {err}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let err = App::new()
        .route("/a", get(ok))
        .name("x")
        .route("/b", get(ok))
        .name("x")
        .route("/c", get(ok).get(other))
        .build()
        .unwrap_err();
    assert_eq!(err.problems().len(), 2, "{err}");
    assert!(err
        .to_string()
        .contains("route name `x` is used by both `/a` and `/b`"));
    assert!(err.to_string().contains("GET is handled twice"));
}

#[test]
fn same_path_in_two_calls_merges_methods() {
    let app = App::new()
        .route("/t", get(ok))
        .route("/t", post(other))
        .build()
        .unwrap();
    let client = TestClient::new(app);
    assert_eq!(client.get("/t").send_blocking().text(), "ok");
    assert_eq!(client.post("/t").send_blocking().text(), "other");
}

#[test]
fn methods_405_head_and_options() {
    let app = App::new()
        .route("/items", get(ok).post(other))
        .build()
        .unwrap();
    let client = TestClient::new(app);

    let r = client.put("/items").send_blocking();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS, POST"));

    let r = client.head("/items").send_blocking();
    assert_eq!(r.status(), 200);
    assert!(r.body().is_empty());
    assert_eq!(r.header("content-length"), Some("2"));

    let r = client
        .request(http::Method::OPTIONS, "/items")
        .send_blocking();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS, POST"));

    assert_eq!(client.get("/nothing").send_blocking().status(), 404);
}

#[test]
fn trailing_slash_redirects_to_the_registered_form() {
    let app = App::new()
        .route("/users", get(ok).post(ok))
        .route("/docs/", get(ok))
        .build()
        .unwrap();
    let client = TestClient::new(mounted(app.clone(), "/app"));

    let r = client.get("/app/users/?page=2").send_blocking();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header("location"), Some("/app/users?page=2"));

    let r = client.post("/app/users/").send_blocking();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);

    let r = client.get("/app/docs").send_blocking();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.header("location"), Some("/app/docs/"));

    // The mount point itself: its root is `/app/`.
    let r = client.get("/app").send_blocking();
    assert_eq!(r.header("location"), Some("/app/"));

    let strict = App::new()
        .route("/users", get(ok))
        .trailing_slash(TrailingSlash::Strict)
        .build()
        .unwrap();
    assert_eq!(
        TestClient::new(strict)
            .get("/users/")
            .send_blocking()
            .status(),
        404
    );
}

#[test]
fn url_for_under_a_mount_point_and_in_blueprints() {
    async fn links(urls: Urls) -> Result<String, Error> {
        Ok([
            urls.url_for("post", [("id", "a b/c")])?,
            urls.url_for("files", [("path", "x y/z.txt")])?,
            urls.url_for("admin.user", [("id", "7"), ("tab", "a&b")])?,
            urls.url_for("admin.reports.daily", [("day", "ü")])?,
        ]
        .join(" "))
    }
    let reports = Blueprint::new("reports")
        .route("/{day}", get(ok))
        .name("daily");
    let admin = Blueprint::new("admin")
        .route("/users/{id}", get(ok))
        .name("user")
        .blueprint("/reports", reports);
    let app = App::new()
        .route("/", get(links))
        .route("/posts/{id}", get(ok))
        .name("post")
        .route("/files/{*path}", get(ok))
        .name("files")
        .blueprint("/admin", admin)
        .build()
        .unwrap();
    let client = TestClient::new(mounted(app.clone(), "/my app"));
    assert_eq!(
        client.get("/my%20app/").send_blocking().text(),
        "/my%20app/posts/a%20b%2Fc /my%20app/files/x%20y/z.txt /my%20app/admin/users/7?tab=a%26b /my%20app/admin/reports/%C3%BC"
    );
    // The URLs it builds are the ones it routes.
    assert_eq!(
        client
            .get("/my%20app/admin/reports/%C3%BC")
            .send_blocking()
            .text(),
        "ok"
    );

    assert_eq!(
        app.url_for("", "post", [("nope", "1")])
            .unwrap_err()
            .to_string(),
        "url_for(`post`): missing parameter `id`"
    );
    assert_eq!(
        app.url_for("", "missing", [("id", "1")])
            .unwrap_err()
            .to_string(),
        "url_for: no route is named `missing`"
    );
}

#[test]
fn optional_trailing_segment() {
    #[derive(serde::Deserialize)]
    struct Page {
        page: Option<u32>,
    }
    async fn page(Path(p): Path<Page>) -> String {
        format!("{:?}", p.page)
    }
    let app = App::new()
        .route("/blog/{page?}", get(page))
        .name("blog")
        .build()
        .unwrap();
    assert_eq!(app.url_for("", "blog", [("page", 3)]).unwrap(), "/blog/3");
    assert_eq!(
        app.url_for("", "blog", Vec::<(&str, &str)>::new()).unwrap(),
        "/blog"
    );
    let client = TestClient::new(app);
    assert_eq!(client.get("/blog").send_blocking().text(), "None");
    assert_eq!(client.get("/blog/2").send_blocking().text(), "Some(2)");
}

#[test]
fn literal_prefix_and_suffix_in_a_segment() {
    async fn img(Path(id): Path<u32>) -> String {
        format!("image {id}")
    }
    let app = App::new().route("/img-{id}.png", get(img)).build().unwrap();
    let client = TestClient::new(app);
    assert_eq!(client.get("/img-42.png").send_blocking().text(), "image 42");
    let r = client.get("/img-x.png").send_blocking();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .contains("path parameter `id`: `x` is not an unsigned integer"),
        "{}",
        r.text()
    );
}

#[test]
fn route_listing() {
    let app = App::new()
        .route("/", get(ok))
        .name("index")
        .blueprint(
            "/admin",
            Blueprint::new("admin")
                .route("/", get(other).post(ok))
                .name("home"),
        )
        .build()
        .unwrap();
    let rows: Vec<String> = app
        .routes()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.method,
                r.path,
                r.name.as_deref().unwrap_or("-"),
                r.handler
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "GET / index routing::ok",
            "GET /admin/ admin.home routing::other",
            "POST /admin/ admin.home routing::ok",
        ]
    );
}

#[test]
fn hooks_and_custom_error_handlers() {
    async fn boom() -> Result<String, Error> {
        Err(Error::internal(std::io::Error::other("disk on fire")))
    }
    async fn panics() -> String {
        panic!("handler bug")
    }
    let app = App::new()
        .route("/", get(ok))
        .route("/boom", get(boom))
        .route("/panic", get(panics))
        .route("/blocking", get(blocking(|| "from a thread")))
        .before_request(|environ| {
            if environ.headers().contains_key("x-deny") {
                return Err(Error::new(StatusCode::FORBIDDEN, "denied"));
            }
            Ok(())
        })
        .after_request(|response| {
            response
                .headers_mut()
                .insert("x-after", "1".parse().unwrap());
        })
        .error_handler(StatusCode::NOT_FOUND, |_| {
            rgi_framework::Html("<h1>Nothing here</h1>")
        })
        .error_handler(StatusCode::METHOD_NOT_ALLOWED, |e| {
            format!("custom {}", e.status())
        })
        .error_handler(StatusCode::INTERNAL_SERVER_ERROR, |_| "we are sorry")
        .build()
        .unwrap();
    let client = TestClient::new(app);

    let r = client.get("/").send_blocking();
    assert_eq!((r.text().as_str(), r.header("x-after")), ("ok", Some("1")));

    let r = client.get("/").header("x-deny", "1").send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.text().as_str()),
        (403, "403 Forbidden: denied\n")
    );

    let r = client.get("/missing").send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.text().as_str()),
        (404, "<h1>Nothing here</h1>")
    );
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));

    let r = client.post("/").send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.header("allow")),
        (405, Some("GET, HEAD, OPTIONS"))
    );
    assert_eq!(r.text(), "custom 405 Method Not Allowed");

    let r = client.get("/boom").send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.text().as_str()),
        (500, "we are sorry")
    );
    assert!(
        client.errors().iter().any(|l| l.contains("disk on fire")),
        "{:?}",
        client.errors()
    );

    let r = client.get("/panic").send_blocking();
    assert_eq!((r.status().as_u16(), r.header("x-after")), (500, Some("1")));

    assert_eq!(
        client.get("/blocking").send_blocking().text(),
        "from a thread"
    );
}

#[test]
fn an_errors_headers_reach_the_client_and_survive_a_custom_handler() {
    use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
    async fn locked() -> Result<String, Error> {
        Err(
            Error::new(StatusCode::UNAUTHORIZED, "who are you?").with_header(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"x\""),
            ),
        )
    }
    async fn busy() -> Result<String, Error> {
        Err(Error::status_only(StatusCode::SERVICE_UNAVAILABLE)
            .with_header(RETRY_AFTER, HeaderValue::from_static("5")))
    }
    async fn away() -> Result<String, Error> {
        Err(Error::see_other("/elsewhere?a=1"))
    }
    async fn broken() -> Result<String, Error> {
        Err(Error::see_other("/bad\nheader"))
    }
    let app = App::new()
        .route("/locked", get(locked))
        .route("/busy", get(busy))
        .route("/away", get(away))
        .route("/broken", get(broken))
        .error_handler(StatusCode::SERVICE_UNAVAILABLE, |_| "come back later")
        .build()
        .unwrap();
    let client = TestClient::new(app);

    let r = client.get("/locked").send_blocking();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"x\""));
    assert_eq!(r.text(), "401 Unauthorized: who are you?\n");

    let r = client.get("/busy").send_blocking();
    assert_eq!(
        (
            r.status().as_u16(),
            r.header("retry-after"),
            r.text().as_str()
        ),
        (503, Some("5"), "come back later")
    );

    let r = client.get("/away").send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.header("location")),
        (303, Some("/elsewhere?a=1"))
    );
    // A location that cannot be a header is the application's bug: a 500, no header.
    let r = client.get("/broken").send_blocking();
    assert_eq!((r.status().as_u16(), r.header("location")), (500, None));
}
