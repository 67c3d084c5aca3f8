//! The lint: every [`Check`] fires on the mistake it names, and correct requests pass clean.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use rgi::lint::{
    check_environ, check_response, Check, Lint, LintLayer, LintMode, Severity, Violation,
};
use rgi::testing::TestClient;
use rgi::{
    app_fn, environ_from_cgi, Application, Body, BoxError, Environ, Errors, Response, ServerInfo,
    StartResponse,
};

// ---------------------------------------------------------------------------------------------------
// Helpers

fn checks(found: &[Violation]) -> Vec<Check> {
    found.iter().map(|v| v.check).collect()
}

fn assert_fires(found: &[Violation], check: Check, severity: Severity) {
    assert!(
        found
            .iter()
            .any(|v| v.check == check && v.severity == severity),
        "expected {check:?} ({severity:?}), got {found:?}"
    );
}

fn good_environ() -> rgi::EnvironBuilder {
    Environ::builder(Method::GET, "/path?x=1").remote("192.0.2.1", Some(5555))
}

fn text_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h
}

fn respond(
    method: &Method,
    status: StatusCode,
    headers: HeaderMap,
    body: impl Into<Body>,
) -> Response {
    StartResponse::new(method)
        .respond(status, headers, body)
        .unwrap()
}

fn cgi(vars: &[(&str, &str)]) -> Environ {
    environ_from_cgi(vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))).unwrap()
}

/// Call `app` with an environ for `method /`, collect the body; errors go to the returned capture.
async fn drive<A: Application>(
    app: &A,
    method: Method,
) -> (
    http::response::Parts,
    Result<Bytes, BoxError>,
    rgi::Captured,
) {
    let (errors, captured) = Errors::capture();
    let environ = Environ::builder(method, "/")
        .server_info(Arc::new(ServerInfo {
            errors,
            ..ServerInfo::default()
        }))
        .build();
    let response = rgi::convert::call_app(app, environ).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes());
    (parts, body, captured)
}

/// An app that answers with `status`, `headers` and the body `make_body()` builds.
fn fixed<F>(status: StatusCode, headers: HeaderMap, make_body: F) -> impl Application
where
    F: Fn() -> Body + Send + Sync + 'static,
{
    let make_body = Arc::new(make_body);
    app_fn(move |_, start| {
        let headers = headers.clone();
        let make_body = Arc::clone(&make_body);
        async move { Ok(start.respond(status, headers, make_body())?) }
    })
}

/// A body whose exact size hint says 10 but which produces 3 bytes.
struct LyingBody {
    sent: bool,
}

impl http_body::Body for LyingBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent {
            Poll::Ready(None)
        } else {
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"abc")))))
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(if self.sent { 7 } else { 10 })
    }
}

fn stream_of(parts: &'static [&'static str]) -> Body {
    Body::from_stream(futures_util::stream::iter(
        parts.iter().map(|p| Ok::<_, Infallible>(*p)),
    ))
}

// ---------------------------------------------------------------------------------------------------
// Clean cases

#[test]
fn a_correct_environ_passes_clean() {
    assert_eq!(check_environ(&good_environ().build()), []);
    assert_eq!(
        check_environ(&Environ::builder(Method::OPTIONS, "*").build()),
        []
    );
    assert_eq!(
        check_environ(
            &Environ::builder(Method::GET, "/app/x")
                .mount("/app")
                .build()
        ),
        []
    );
    assert_eq!(
        check_environ(&Environ::builder(Method::POST, "/").body("abc").build()),
        []
    );
    assert_eq!(
        check_environ(
            &Environ::builder(Method::GET, "/")
                .protocol("INCLUDED")
                .build()
        ),
        []
    );
    assert_eq!(
        check_environ(
            &Environ::builder(Method::GET, "/")
                .protocol("HTTP/2")
                .build()
        ),
        []
    );
    let environ = cgi(&[
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", "/app"),
        ("PATH_INFO", ""),
        ("SERVER_NAME", "example.org"),
        ("SERVER_PORT", "8080"),
        ("REMOTE_ADDR", "::1"),
        ("REMOTE_PORT", "1234"),
    ]);
    assert_eq!(check_environ(&environ), []);
}

#[test]
fn a_correct_response_passes_clean() {
    let get = Method::GET;
    assert_eq!(
        check_response(&get, &respond(&get, StatusCode::OK, text_headers(), "x")),
        []
    );
    assert_eq!(
        check_response(
            &get,
            &respond(&get, StatusCode::NO_CONTENT, HeaderMap::new(), ())
        ),
        []
    );
    let mut headers = text_headers();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
    assert_eq!(
        check_response(&get, &respond(&get, StatusCode::OK, headers, "x")),
        []
    );
    // 304 may repeat the Content-Length of the full response.
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("100"));
    assert_eq!(
        check_response(&get, &respond(&get, StatusCode::NOT_MODIFIED, headers, ())),
        []
    );
}

#[test]
fn a_correct_app_behind_lint_has_no_violations_and_closes_every_body() {
    let lint = Lint::new(fixed(StatusCode::OK, text_headers(), || {
        stream_of(&["a", "b", "c"])
    }));
    let report = lint.report();
    let client = TestClient::new(lint);
    for _ in 0..3 {
        let response = client.get("/x").send_blocking();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text(), "abc");
    }
    let response = client.head("/x").send_blocking();
    assert_eq!(response.body(), "");
    assert_eq!(report.violations(), []);
    assert_eq!(report.requests(), 4);
    assert_eq!(report.open_bodies(), 0);
    assert_eq!(client.errors(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------------------------------
// check_environ: one test per check

#[test]
fn script_name_check_guards_an_invariant_the_environ_already_enforces() {
    // Check::ScriptName cannot fire on an environ built through the public API: every way of setting
    // SCRIPT_NAME goes through `set_path`, which refuses the values the check looks for.
    let mut environ = Environ::builder(Method::GET, "/x").build();
    assert!(environ.set_path("/", "/x").is_err());
    assert!(environ.set_path("app", "/x").is_err());
    assert!(environ.set("SCRIPT_NAME", "rel").is_err());
    assert!(!environ.mount("x"));
    assert!(Environ::builder(Method::GET, "/x")
        .path("/", "/x")
        .try_build()
        .is_err());
    assert!(environ_from_cgi([
        (&b"REQUEST_METHOD"[..], &b"GET"[..]),
        (b"SCRIPT_NAME", b"app")
    ])
    .is_err());
    let connect = Environ::builder(Method::CONNECT, "example.org:443")
        .mount("example.org:443")
        .build();
    assert_eq!(connect.script_name(), b"");
    assert!(!checks(&check_environ(&environ)).contains(&Check::ScriptName));
    assert!(!checks(&check_environ(&connect)).contains(&Check::ScriptName));
}

#[test]
fn path_info_star_is_an_error_except_for_options() {
    let found = check_environ(&Environ::builder(Method::GET, "*").build());
    assert_fires(&found, Check::PathInfo, Severity::Error);
    assert!(!checks(&check_environ(
        &Environ::builder(Method::OPTIONS, "*").build()
    ))
    .contains(&Check::PathInfo));
}

#[test]
fn empty_script_name_and_path_info_is_an_error() {
    let found = check_environ(&cgi(&[("REQUEST_METHOD", "GET")]));
    assert_fires(&found, Check::EmptyPath, Severity::Error);
    // But for CONNECT.
    let found = check_environ(&cgi(&[("REQUEST_METHOD", "CONNECT")]));
    assert!(!checks(&found).contains(&Check::EmptyPath), "{found:?}");
}

#[test]
fn a_query_string_with_a_space_or_fragment_is_an_error() {
    for bad in ["a b", "a#b", "a\tb", "a\x7fb"] {
        let mut environ = good_environ().build();
        environ.set("QUERY_STRING", bad).unwrap();
        assert_fires(
            &check_environ(&environ),
            Check::QueryString,
            Severity::Error,
        );
    }
}

#[test]
fn a_content_length_that_is_not_digits_or_repeated_is_an_error() {
    let found = check_environ(&good_environ().header("Content-Length", "12abc").build());
    assert_fires(&found, Check::ContentLengthVar, Severity::Error);
    let found = check_environ(&good_environ().header("Content-Length", "-1").build());
    assert_fires(&found, Check::ContentLengthVar, Severity::Error);
    let found = check_environ(
        &good_environ()
            .header("Content-Length", "3")
            .header("Content-Length", "3")
            .build(),
    );
    assert_fires(&found, Check::ContentLengthVar, Severity::Error);
}

#[test]
fn content_length_that_disagrees_with_the_input_is_an_error() {
    let environ = good_environ()
        .header("Content-Length", "5")
        .input(rgi::Input::from_bytes("abc"))
        .build();
    assert_fires(
        &check_environ(&environ),
        Check::InputLength,
        Severity::Error,
    );
    let environ = good_environ()
        .header("Content-Length", "3")
        .input(rgi::Input::from_bytes("abc"))
        .build();
    assert_eq!(check_environ(&environ), []);
}

#[test]
fn an_empty_server_name_or_port_zero_is_an_error() {
    assert_fires(
        &check_environ(&good_environ().server("", 80).build()),
        Check::ServerNamePort,
        Severity::Error,
    );
    assert_fires(
        &check_environ(&good_environ().server("example.org", 0).build()),
        Check::ServerNamePort,
        Severity::Error,
    );
}

#[test]
fn a_malformed_server_protocol_is_an_error() {
    for bad in ["HTTP/x", "http/1.1", "HTTP/1.1 ", "HTTP/11.1", "SPDY/3", ""] {
        let found = check_environ(&good_environ().protocol(bad).build());
        assert_fires(&found, Check::ServerProtocol, Severity::Error);
    }
}

#[test]
fn a_remote_addr_that_is_not_an_ip_is_an_error() {
    let found = check_environ(&good_environ().remote("example.org", Some(1)).build());
    assert_fires(&found, Check::RemoteAddr, Severity::Error);
}

#[test]
fn a_remote_port_without_remote_addr_is_an_error() {
    let found = check_environ(&cgi(&[
        ("REQUEST_METHOD", "GET"),
        ("PATH_INFO", "/"),
        ("REMOTE_PORT", "4000"),
    ]));
    assert_fires(&found, Check::RemoteAddr, Severity::Error);
}

#[test]
fn a_request_uri_of_no_known_form_is_an_error() {
    for bad in ["relative/path", "/with space", "/frag#ment"] {
        let mut environ = good_environ().build();
        environ.set("REQUEST_URI", bad).unwrap();
        assert_fires(&check_environ(&environ), Check::RequestUri, Severity::Error);
    }
    // Absolute form and CONNECT's authority form are fine.
    let environ = Environ::builder(Method::GET, "http://example.org/x").build();
    assert!(!checks(&check_environ(&environ)).contains(&Check::RequestUri));
    let environ = Environ::builder(Method::CONNECT, "example.org:443").build();
    assert!(!checks(&check_environ(&environ)).contains(&Check::RequestUri));
}

#[test]
fn a_request_uri_path_that_disagrees_with_script_name_and_path_info_is_a_warning() {
    let environ = Environ::builder(Method::GET, "/a/b")
        .path("/a", "/c")
        .build();
    let found = check_environ(&environ);
    assert_fires(&found, Check::RequestUriPath, Severity::Warning);
    assert!(
        found.iter().all(|v| v.severity == Severity::Warning),
        "{found:?}"
    );
    // Percent-decoding is taken into account.
    let environ = Environ::builder(Method::GET, "/a%20b/%2Fc")
        .mount("/a b")
        .build();
    assert_eq!(check_environ(&environ), []);
}

// ---------------------------------------------------------------------------------------------------
// check_response: one test per check

#[test]
fn an_informational_or_out_of_range_status_is_an_error() {
    for code in [101, 103, 600, 999] {
        let mut response = respond(&Method::GET, StatusCode::OK, text_headers(), "x");
        *response.status_mut() = StatusCode::from_u16(code).unwrap();
        assert_fires(
            &check_response(&Method::GET, &response),
            Check::Status,
            Severity::Error,
        );
    }
}

#[test]
fn a_hop_by_hop_header_set_by_middleware_is_an_error() {
    for name in rgi::HOP_BY_HOP {
        let mut response = respond(&Method::GET, StatusCode::OK, text_headers(), "x");
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static("x"));
        assert_fires(
            &check_response(&Method::GET, &response),
            Check::HopByHopHeader,
            Severity::Error,
        );
    }
}

#[test]
fn a_status_header_set_by_middleware_is_an_error() {
    let mut response = respond(&Method::GET, StatusCode::OK, text_headers(), "x");
    response
        .headers_mut()
        .insert("status", HeaderValue::from_static("200 OK"));
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::StatusHeader,
        Severity::Error,
    );
}

#[test]
fn content_type_on_204_is_an_error() {
    let response = respond(&Method::GET, StatusCode::NO_CONTENT, text_headers(), ());
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentTypeForbidden,
        Severity::Error,
    );
}

#[test]
fn content_type_on_304_is_an_error() {
    let response = respond(&Method::GET, StatusCode::NOT_MODIFIED, text_headers(), ());
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentTypeForbidden,
        Severity::Error,
    );
}

#[test]
fn a_missing_content_type_is_an_error_with_a_body_and_a_warning_without() {
    let response = respond(&Method::GET, StatusCode::OK, HeaderMap::new(), "x");
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentTypeMissing,
        Severity::Error,
    );
    let response = respond(&Method::GET, StatusCode::OK, HeaderMap::new(), ());
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentTypeMissing,
        Severity::Warning,
    );
    let response = respond(&Method::HEAD, StatusCode::OK, HeaderMap::new(), "x");
    assert_fires(
        &check_response(&Method::HEAD, &response),
        Check::ContentTypeMissing,
        Severity::Warning,
    );
}

#[test]
fn content_length_on_204_is_an_error() {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    let response = respond(&Method::GET, StatusCode::NO_CONTENT, headers, ());
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentLengthHeader,
        Severity::Error,
    );
}

#[test]
fn a_content_length_header_that_is_not_digits_or_repeated_is_an_error() {
    let mut headers = text_headers();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1 "));
    let response = respond(&Method::GET, StatusCode::OK, headers, "x");
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentLengthHeader,
        Severity::Error,
    );

    let mut headers = text_headers();
    headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
    headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("1"));
    let response = respond(&Method::GET, StatusCode::OK, headers, "x");
    assert_fires(
        &check_response(&Method::GET, &response),
        Check::ContentLengthHeader,
        Severity::Error,
    );
}

#[test]
fn a_body_on_204_or_304_is_an_error() {
    for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
        let response = respond(&Method::GET, status, HeaderMap::new(), "x");
        assert_fires(
            &check_response(&Method::GET, &response),
            Check::BodyForbidden,
            Severity::Error,
        );
    }
}

#[test]
fn a_non_ascii_header_value_is_a_warning() {
    let mut headers = text_headers();
    headers.insert("x-name", HeaderValue::from_bytes(b"caf\xe9").unwrap());
    let response = respond(&Method::GET, StatusCode::OK, headers, "x");
    let found = check_response(&Method::GET, &response);
    assert_fires(&found, Check::HeaderValueText, Severity::Warning);
    assert!(found.iter().all(|v| v.severity == Severity::Warning));
}

// ---------------------------------------------------------------------------------------------------
// Lint around apps: modes and body-level checks

#[test]
fn strict_mode_answers_500_before_the_response_starts() {
    let called = Arc::new(AtomicUsize::new(0));
    let called2 = Arc::clone(&called);
    let app = app_fn(move |_, start| {
        called2.fetch_add(1, Ordering::SeqCst);
        async move { Ok(start.respond(StatusCode::OK, HeaderMap::new(), "no content type")?) }
    });
    let lint = Lint::new(app);
    let report = lint.report();
    let client = TestClient::new(lint.clone());
    let response = client.get("/").send_blocking();
    assert_eq!(response.status(), 500);
    assert!(!response.text().contains("no content type"));
    assert_eq!(report.errors()[0].check, Check::ContentTypeMissing);
    assert!(
        client
            .errors()
            .iter()
            .any(|l| l.contains("ContentTypeMissing")),
        "{:?}",
        client.errors()
    );
    assert_eq!(called.load(Ordering::SeqCst), 1);
    assert_eq!(report.open_bodies(), 0);

    // A bad environ fails before the application is called at all. (The test client refuses a
    // bad `Content-Length` itself, with 400, as the HTTP server does: here a buggy layer in front
    // of the lint makes one.)
    assert_eq!(
        client
            .get("/")
            .header("Content-Length", "abc")
            .send_blocking()
            .status(),
        400
    );
    let corrupt = rgi::middleware::map_request(|environ: &mut rgi::Environ| {
        environ
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("abc"));
    });
    let client = TestClient::new(rgi::Layer::layer(&corrupt, lint.clone()));
    let response = client.get("/").send_blocking();
    assert_eq!(response.status(), 500);
    assert_eq!(called.load(Ordering::SeqCst), 1);
    assert!(checks(&report.errors()).contains(&Check::ContentLengthVar));
}

#[test]
fn log_mode_lets_the_response_through_and_logs_to_rgi_errors() {
    let lint =
        Lint::new(fixed(StatusCode::OK, HeaderMap::new(), || Body::from("x"))).mode(LintMode::Log);
    let report = lint.report();
    let client = TestClient::new(lint);
    let response = client.get("/").send_blocking();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), "x");
    assert_eq!(checks(&report.errors()), [Check::ContentTypeMissing]);
    let errors = client.errors();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("rgi lint error") && l.contains("ContentTypeMissing")),
        "{errors:?}"
    );
}

#[test]
fn warnings_never_fail_a_request_even_in_strict_mode() {
    let lint = Lint::new(fixed(StatusCode::OK, HeaderMap::new(), Body::empty));
    let report = lint.report();
    let client = TestClient::new(lint);
    assert_eq!(client.get("/").send_blocking().status(), 200);
    assert_eq!(report.errors(), []);
    assert_eq!(checks(&report.violations()), [Check::ContentTypeMissing]);
    assert!(client
        .errors()
        .iter()
        .any(|l| l.contains("rgi lint warning")));
}

#[tokio::test]
async fn a_body_shorter_than_content_length_is_an_error() {
    let mut headers = text_headers();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
    let lint = Lint::new(fixed(StatusCode::OK, headers, || Body::from("abc")));
    let report = lint.report();
    let (parts, body, _) = drive(&lint, Method::GET).await;
    assert_eq!(
        parts.status, 200,
        "the response started; the body is aborted"
    );
    let err = body.unwrap_err();
    assert!(err.to_string().contains("ContentLengthMismatch"), "{err}");
    assert_eq!(checks(&report.errors()), [Check::ContentLengthMismatch]);
    assert_eq!(report.open_bodies(), 0);
}

#[tokio::test]
async fn a_body_longer_than_content_length_is_an_error() {
    let mut headers = text_headers();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
    let lint = Lint::new(fixed(StatusCode::OK, headers, || {
        stream_of(&["ab", "cdef"])
    }));
    let report = lint.report();
    let (_, body, captured) = drive(&lint, Method::GET).await;
    assert!(body.is_err());
    assert_eq!(checks(&report.errors()), [Check::ContentLengthMismatch]);
    assert!(captured
        .lines()
        .iter()
        .any(|l| l.contains("ContentLengthMismatch")));
    assert_eq!(report.open_bodies(), 0);
}

#[test]
fn content_length_mismatch_in_log_mode_is_logged_and_the_bytes_go_through() {
    let mut headers = text_headers();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
    let lint =
        Lint::new(fixed(StatusCode::OK, headers, || Body::from("abcdef"))).mode(LintMode::Log);
    let report = lint.report();
    let client = TestClient::new(lint);
    let response = client.get("/").send_blocking();
    assert_eq!(response.text(), "abcdef");
    assert!(checks(&report.errors()).contains(&Check::ContentLengthMismatch));
    assert!(client
        .errors()
        .iter()
        .any(|l| l.contains("ContentLengthMismatch")));
}

#[tokio::test]
async fn a_body_that_breaks_its_exact_size_hint_is_an_error() {
    let lint = Lint::new(fixed(StatusCode::OK, text_headers(), || {
        Body::from_http_body(LyingBody { sent: false })
    }));
    let report = lint.report();
    let (_, body, _) = drive(&lint, Method::GET).await;
    let err = body.unwrap_err();
    assert!(err.to_string().contains("SizeHintMismatch"), "{err}");
    assert_eq!(checks(&report.errors()), [Check::SizeHintMismatch]);
    assert_eq!(report.open_bodies(), 0);
}

/// Middleware-ish: responds (for HEAD the body is dropped) and then breaks `inspect_body`'s rule by
/// putting other bytes in place of the (empty) body.
fn sets_body_after_respond() -> impl Application {
    app_fn(|_, start| async move {
        let response = start.respond(StatusCode::OK, text_headers(), ())?;
        Ok(response.inspect_body(|_| Body::from("leaked")))
    })
}

#[tokio::test]
async fn body_bytes_on_a_head_response_are_an_error() {
    let lint = Lint::new(sets_body_after_respond());
    let report = lint.report();
    let (_, body, _) = drive(&lint, Method::HEAD).await;
    assert!(
        body.is_err(),
        "strict: the HEAD body is aborted, got {body:?}"
    );
    assert_eq!(checks(&report.errors()), [Check::HeadBody]);
    assert_eq!(report.open_bodies(), 0);

    // The same app is fine for GET.
    let (_, body, _) = drive(&lint, Method::GET).await;
    assert_eq!(body.unwrap(), "leaked");
    assert_eq!(checks(&report.errors()), [Check::HeadBody]);
}

#[test]
fn body_bytes_on_a_head_response_are_logged_in_log_mode() {
    let lint = Lint::new(sets_body_after_respond()).mode(LintMode::Log);
    let report = lint.report();
    let client = TestClient::new(lint);
    let _ = client.head("/").send_blocking();
    assert_eq!(checks(&report.errors()), [Check::HeadBody]);
    assert!(client.errors().iter().any(|l| l.contains("HeadBody")));
}

#[tokio::test]
async fn streamed_body_bytes_on_a_204_are_an_error() {
    // The length of a stream is unknown up front, so this is only seen as the bytes flow.
    let lint = Lint::new(fixed(StatusCode::NO_CONTENT, HeaderMap::new(), || {
        stream_of(&["", "oops"])
    }));
    let report = lint.report();
    let (_, body, _) = drive(&lint, Method::GET).await;
    assert!(body.is_err(), "{body:?}");
    assert_eq!(checks(&report.errors()), [Check::BodyForbidden]);
    assert_eq!(report.open_bodies(), 0);

    // An empty stream on 204 is fine.
    let lint = Lint::new(fixed(StatusCode::NO_CONTENT, HeaderMap::new(), || {
        stream_of(&["", ""])
    }));
    let report = lint.report();
    let (_, body, _) = drive(&lint, Method::GET).await;
    assert_eq!(body.unwrap(), "");
    assert_eq!(report.violations(), []);
}

#[test]
fn a_full_body_on_a_204_fails_before_the_response_starts() {
    let lint = Lint::new(fixed(StatusCode::NO_CONTENT, HeaderMap::new(), || {
        Body::from("x")
    }));
    let report = lint.report();
    let response = TestClient::new(lint).get("/").send_blocking();
    assert_eq!(response.status(), 500);
    assert_eq!(checks(&report.errors()), [Check::BodyForbidden]);
}

#[tokio::test]
async fn every_body_is_closed_even_when_dropped_early() {
    let closed = Arc::new(AtomicUsize::new(0));
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let counter = Arc::clone(&closed);
    let app = app_fn(move |_, start| {
        let guard = Guard(Arc::clone(&counter));
        async move {
            let stream = futures_util::stream::iter(["one", "two", "three"].map(move |s| {
                let _ = &guard;
                Ok::<_, Infallible>(s)
            }));
            Ok(start.respond(StatusCode::OK, text_headers(), Body::from_stream(stream))?)
        }
    });
    let lint = Lint::new(app);
    let report = lint.report();

    // Read one chunk, then drop the body: a client that went away.
    let environ = Environ::builder(Method::GET, "/").build();
    let response = rgi::convert::call_app(&lint, environ).await;
    assert_eq!(report.open_bodies(), 1);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "one");
    assert_eq!(report.open_bodies(), 1);
    drop(body);
    assert_eq!(report.open_bodies(), 0);

    // Never polled at all.
    let environ = Environ::builder(Method::GET, "/").build();
    let response = rgi::convert::call_app(&lint, environ).await;
    assert_eq!(report.open_bodies(), 1);
    drop(response);
    assert_eq!(report.open_bodies(), 0);

    // Read to the end.
    let (_, body, _) = drive(&lint, Method::GET).await;
    assert_eq!(body.unwrap(), "onetwothree");
    assert_eq!(report.open_bodies(), 0);
    assert_eq!(report.requests(), 3);
    assert_eq!(report.violations(), []);
    // Closing the lint body closed the app's stream every time.
    assert_eq!(closed.load(Ordering::SeqCst), 3);
}

#[test]
fn lint_layer_wraps_apps_that_share_one_report() {
    use tower_layer::Layer;
    let layer = LintLayer::new().mode(LintMode::Log);
    let report = layer.report();
    let good = layer.layer(fixed(StatusCode::OK, text_headers(), || Body::from("ok")));
    let bad = layer.layer(fixed(StatusCode::NO_CONTENT, text_headers(), Body::empty));
    assert_eq!(TestClient::new(good).get("/").send_blocking().text(), "ok");
    assert_eq!(
        TestClient::new(bad).get("/").send_blocking().status(),
        204,
        "log mode lets it through"
    );
    assert_eq!(report.requests(), 2);
    assert_eq!(checks(&report.errors()), [Check::ContentTypeForbidden]);
    assert_eq!(report.open_bodies(), 0);

    // Strict by default.
    let strict = LintLayer::new().layer(fixed(StatusCode::NO_CONTENT, text_headers(), Body::empty));
    assert_eq!(
        TestClient::new(strict).get("/").send_blocking().status(),
        500
    );
}

#[test]
fn a_violation_displays_its_level_check_and_detail() {
    let response = respond(&Method::GET, StatusCode::NO_CONTENT, text_headers(), ());
    let v = check_response(&Method::GET, &response).remove(0);
    let text = v.to_string();
    assert!(
        text.starts_with("rgi lint error: ContentTypeForbidden: "),
        "{text}"
    );
}

#[test]
fn one_body_mistake_is_reported_once_in_log_mode() {
    let mut headers = text_headers();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("2"));
    let lint = Lint::new(fixed(StatusCode::OK, headers, || {
        stream_of(&["abc", "def", "ghi"])
    }))
    .mode(LintMode::Log);
    let report = lint.report();
    let client = TestClient::new(lint);
    assert_eq!(client.get("/").send_blocking().text(), "abcdefghi");
    assert_eq!(checks(&report.violations()), [Check::ContentLengthMismatch]);

    let lint = Lint::new(app_fn(|_, start| async move {
        let response = start.respond(StatusCode::OK, text_headers(), ())?;
        Ok(response.inspect_body(|_| stream_of(&["a", "b", "c"])))
    }))
    .mode(LintMode::Log);
    let report = lint.report();
    let _ = TestClient::new(lint).head("/").send_blocking();
    assert_eq!(checks(&report.violations()), [Check::HeadBody]);
}
