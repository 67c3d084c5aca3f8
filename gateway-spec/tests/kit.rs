//! The composition kit: one-line responses, the spare `StartResponse`, closure middleware,
//! `ApplicationExt` and tower layers on RGI applications.

use std::io::Write;

use http::{header, HeaderValue, Method, StatusCode};
use rgi::lint::{Check, Lint, LintMode};
use rgi::middleware::{from_fn, map_request, map_response};
use rgi::testing::TestClient;
use rgi::{app_fn, ApplicationExt, Body, Environ, Response, StartResponse};

fn client<A: rgi::Application>(app: A) -> TestClient<Lint<A>> {
    TestClient::new(Lint::new(app))
}

#[test]
fn one_line_answers_have_their_status_type_and_body() {
    let app = app_fn(|environ, start| async move {
        match environ.path_info() {
            b"/text" => start.text("t"),
            b"/html" => start.html("<p>h</p>"),
            b"/json" => start.json(&serde_json::json!({"a": [1, 2]})),
            b"/bytes" => start.bytes("image/png", &b"\x89PNG"[..]),
            b"/303" => start.see_other("/next?x=1"),
            b"/308" => start.redirect(StatusCode::PERMANENT_REDIRECT, "/new"),
            b"/204" => start.empty(StatusCode::NO_CONTENT),
            b"/err" => start.error(StatusCode::NOT_FOUND),
            b"/err-msg" => {
                start.error_with(StatusCode::UNPROCESSABLE_ENTITY, "field `name` is empty")
            }
            _ => start.error(StatusCode::IM_A_TEAPOT),
        }
    });
    let c = client(app);
    let r = c.get("/text").send_blocking();
    assert_eq!(
        (r.status(), r.header("content-type"), r.text().as_str()),
        (StatusCode::OK, Some("text/plain; charset=utf-8"), "t")
    );
    let r = c.get("/html").send_blocking();
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = c.get("/json").send_blocking();
    assert_eq!(
        (r.header("content-type"), r.text().as_str()),
        (Some("application/json"), r#"{"a":[1,2]}"#)
    );
    let r = c.get("/bytes").send_blocking();
    assert_eq!(
        (r.header("content-type"), r.body().len()),
        (Some("image/png"), 4)
    );
    let r = c.post("/303").send_blocking();
    assert_eq!(
        (r.status(), r.header("location")),
        (StatusCode::SEE_OTHER, Some("/next?x=1"))
    );
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let r = c.get("/308").send_blocking();
    assert_eq!(
        (r.status(), r.header("location")),
        (StatusCode::PERMANENT_REDIRECT, Some("/new"))
    );
    let r = c.get("/204").send_blocking();
    assert_eq!(
        (r.status(), r.header("content-type"), r.body().len()),
        (StatusCode::NO_CONTENT, None, 0)
    );
    let r = c.get("/err").send_blocking();
    assert_eq!(
        (r.status(), r.text().as_str()),
        (StatusCode::NOT_FOUND, "404 Not Found\n")
    );
    let r = c.get("/err-msg").send_blocking();
    assert_eq!(
        r.text(),
        "422 Unprocessable Entity: field `name` is empty\n"
    );
    // HEAD: the helpers need no special case; the length is that of the GET body.
    let r = c.head("/json").send_blocking();
    assert_eq!(
        (r.header("content-length"), r.body().len()),
        (Some("11"), 0)
    );
}

#[test]
fn a_bad_redirect_or_header_is_an_error_the_server_answers_500() {
    let app = app_fn(|environ, start| async move {
        match environ.path_info() {
            b"/not-3xx" => start.redirect(StatusCode::OK, "/x"),
            b"/bad-name" => start.header("bad name", "v").text("x"),
            b"/bad-value" => start
                .status(StatusCode::OK)
                .header("x-a", "a\r\nb")
                .text("x"),
            b"/hop" => start.header("connection", "close").text("x"),
            _ => start.see_other("/a\nb"),
        }
    });
    let c = TestClient::new(app);
    for path in ["/not-3xx", "/bad-name", "/bad-value", "/hop", "/newline"] {
        assert_eq!(c.get(path).send_blocking().status(), 500, "{path}");
    }
    assert_eq!(c.errors().len(), 5, "{:?}", c.errors());
}

#[test]
fn header_pairs_append_and_keep_an_explicit_content_type() {
    let app = app_fn(|_, start| async move {
        start
            .status(StatusCode::CREATED)
            .headers([
                ("vary", "accept"),
                ("vary", "cookie"),
                ("content-type", "text/csv"),
            ])
            .text("a,b\n")
    });
    let r = client(app).get("/").send_blocking();
    assert_eq!(r.status(), 201);
    let vary: Vec<_> = r.headers().get_all("vary").iter().collect();
    assert_eq!(vary, ["accept", "cookie"]);
    assert_eq!(r.header("content-type"), Some("text/csv"));
}

#[test]
fn file_answers_by_extension_and_404_for_missing_files_and_directories() {
    let dir = std::env::temp_dir().join(format!("rgi-kit-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("app.css"))
        .unwrap()
        .write_all(b"body{}")
        .unwrap();
    let root = dir.clone();
    let app = app_fn(move |environ, start| {
        let root = root.clone();
        async move {
            let name = String::from_utf8_lossy(&environ.path_info()[1..]).into_owned();
            start.file(root.join(name))
        }
    });
    let c = client(app);
    let r = c.get("/app.css").send_blocking();
    assert_eq!(
        (r.status(), r.header("content-type"), r.text().as_str()),
        (StatusCode::OK, Some("text/css; charset=utf-8"), "body{}")
    );
    assert_eq!(
        c.head("/app.css").send_blocking().header("content-length"),
        Some("6")
    );
    assert_eq!(c.get("/missing.css").send_blocking().status(), 404);
    assert_eq!(
        c.get("/").send_blocking().status(),
        404,
        "a directory is not a file"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_spare_answers_after_the_inner_app_failed_or_panicked() {
    let failing = app_fn(|environ: Environ, start: StartResponse| async move {
        if environ.path_info() == b"/panic" {
            panic!("boom");
        }
        if environ.path_info() == b"/ok" {
            return start.text("fine");
        }
        let _ = start;
        Err("database is down".into())
    });
    let app = failing.layer(from_fn(|environ, start, next| async move {
        let spare = start.spare();
        let call = std::panic::AssertUnwindSafe(next.call(environ, start));
        match futures_util::FutureExt::catch_unwind(call).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => spare.error(StatusCode::SERVICE_UNAVAILABLE),
            Err(_) => spare.error(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }));
    let lint = Lint::new(app).mode(LintMode::Log);
    let report = lint.report();
    let c = TestClient::new(lint);
    assert_eq!(c.get("/ok").send_blocking().text(), "fine");
    assert_eq!(c.get("/down").send_blocking().status(), 503);
    let r = c.get("/panic").send_blocking();
    assert_eq!(
        (r.status(), r.text().as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error\n"
        )
    );
    let r = c.head("/down").send_blocking();
    assert_eq!(
        (r.status(), r.body().len()),
        (StatusCode::SERVICE_UNAVAILABLE, 0),
        "a spare keeps HEAD-ness"
    );
    assert!(report.violations().is_empty(), "{:?}", report.violations());
}

#[test]
fn the_lint_warns_when_a_spare_answers_with_success() {
    let app = app_fn(|_, start| async move {
        let spare = start.spare();
        drop(start);
        spare.text("pretending all is well")
    });
    let lint = Lint::new(app).mode(LintMode::Log);
    let report = lint.report();
    assert_eq!(TestClient::new(lint).get("/").send_blocking().status(), 200);
    let checks: Vec<_> = report.violations().iter().map(|v| v.check).collect();
    assert_eq!(checks, [Check::SpareSuccess]);
}

#[test]
fn rewriting_a_body_cannot_leave_a_stale_content_length() {
    let app = app_fn(|_, start| async move { start.header("content-length", "5").text("short") })
        .layer(map_response(|response: Response| {
            assert_eq!(response.headers()[header::CONTENT_LENGTH], "5");
            response.map_body(|_| Body::from("a much longer body"))
        }));
    let c = client(app);
    let r = c.get("/").send_blocking();
    assert_eq!(
        (r.text().as_str(), r.header("content-length")),
        ("a much longer body", None)
    );
    assert_eq!(
        r.body().len(),
        18,
        "the server frames the new body from its exact length"
    );
    let r = c.head("/").send_blocking();
    assert_eq!(
        (r.body().len(), r.header("content-length")),
        (0, None),
        "HEAD: the old length is gone"
    );

    let app = app_fn(|_, start| async move { start.text("short") }).layer(map_response(
        |mut response: Response| {
            response.set_body(Body::from_stream(futures_util::stream::iter([Ok::<
                _,
                std::io::Error,
            >(
                "streamed",
            )])));
            response
        },
    ));
    let r = client(app).get("/").send_blocking();
    assert_eq!(
        (r.text().as_str(), r.header("content-length")),
        ("streamed", None)
    );
}

#[test]
fn closure_middleware_sees_requests_in_and_responses_out_in_layer_order() {
    let app = app_fn(|environ, start| async move {
        let trail = environ
            .headers()
            .get("x-trail")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        start.text(trail)
    })
    .layer(map_request(|environ: &mut Environ| {
        append(environ, "inner")
    }))
    .layer(map_request(|environ: &mut Environ| {
        append(environ, "outer")
    }))
    .layer(map_response(|mut r: Response| {
        r.headers_mut()
            .append("x-out", HeaderValue::from_static("first"));
        r
    }))
    .layer(map_response(|mut r: Response| {
        r.headers_mut()
            .append("x-out", HeaderValue::from_static("last"));
        r
    }))
    .boxed();
    let r = client(app).get("/").send_blocking();
    assert_eq!(r.text(), "outer,inner");
    let out: Vec<_> = r.headers().get_all("x-out").iter().collect();
    assert_eq!(out, ["first", "last"]);
}

fn append(environ: &mut Environ, what: &str) {
    let old = environ
        .headers()
        .get("x-trail")
        .map(|v| v.to_str().unwrap().to_owned());
    let new = match old {
        Some(old) => format!("{old},{what}"),
        None => what.to_owned(),
    };
    environ
        .headers_mut()
        .insert("x-trail", HeaderValue::from_str(&new).unwrap());
}

#[test]
fn from_fn_may_answer_itself_without_calling_next() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let app = app_fn(move |_, start| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move { start.text("inner") }
    })
    .layer(from_fn(|environ, start, next| async move {
        if environ.headers().contains_key("authorization") {
            next.call(environ, start).await
        } else {
            start
                .status(StatusCode::UNAUTHORIZED)
                .header("www-authenticate", "Basic realm=\"x\"")
                .text("who?")
        }
    }));
    let c = client(app);
    assert_eq!(c.get("/").send_blocking().status(), 401);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(
        c.get("/")
            .header("authorization", "x")
            .send_blocking()
            .text(),
        "inner"
    );
}

#[test]
fn a_tower_layer_wraps_an_rgi_app_and_the_environ_survives() {
    use tower::util::{MapRequestLayer, MapResponseLayer};
    let app = app_fn(|mut environ: Environ, start| async move {
        let body = environ.input_mut().read_to_bytes().await?;
        let text = format!(
            "{} {} {} script={} q={} remote={:?} ext={:?} body={}",
            environ.method(),
            String::from_utf8_lossy(environ.path_info()),
            environ
                .headers()
                .get("x-in")
                .map_or("-", |v| v.to_str().unwrap()),
            String::from_utf8_lossy(environ.script_name()),
            String::from_utf8_lossy(environ.query_string()),
            environ
                .remote_addr()
                .map(|(a, _)| String::from_utf8_lossy(a).into_owned()),
            environ.extensions().get::<u32>(),
            String::from_utf8_lossy(&body),
        );
        start.text(text)
    })
    .tower_layer(MapResponseLayer::new(|mut r: http::Response<Body>| {
        r.headers_mut()
            .insert("x-tower", HeaderValue::from_static("1"));
        r
    }))
    .tower_layer(MapRequestLayer::new(|mut r: http::Request<rgi::Input>| {
        r.headers_mut()
            .insert("x-in", HeaderValue::from_static("tower"));
        r
    }))
    .layer(map_request(|environ: &mut Environ| {
        environ.extensions_mut().insert(7u32);
        assert!(environ.mount("/app"));
    }));
    let c = client(app);
    let r = c.post("/app/a%20b?x=1").body("payload").send_blocking();
    assert_eq!(r.header("x-tower"), Some("1"));
    assert_eq!(
        r.text(),
        "POST /a b tower script=/app q=x=1 remote=Some(\"127.0.0.1\") ext=Some(7) body=payload"
    );
}

#[test]
fn a_tower_layer_that_rewrites_the_uri_moves_path_info() {
    use tower::util::MapRequestLayer;
    let app = app_fn(|environ: Environ, start| async move {
        start.text(format!(
            "{}|{}|{}",
            String::from_utf8_lossy(environ.script_name()),
            String::from_utf8_lossy(environ.path_info()),
            String::from_utf8_lossy(environ.query_string())
        ))
    })
    .tower_layer(MapRequestLayer::new(|mut r: http::Request<rgi::Input>| {
        *r.uri_mut() = "/app/v2/x%2Fy?new=1".parse().unwrap();
        *r.method_mut() = Method::PUT;
        r
    }))
    .layer(map_request(|environ: &mut Environ| {
        assert!(environ.mount("/app"));
    }));
    let r = client(app).get("/app/v1").send_blocking();
    assert_eq!(r.text(), "/app|/v2/x/y|new=1");
}
