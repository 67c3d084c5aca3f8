//! The environ: CGI meta-variables, `HTTP_*` views of headers, `environ_from_cgi` and the builder.

use http::Method;
use rgi::{environ_from_cgi, Environ, EnvironError, Scheme};

fn cgi(vars: &[(&str, &[u8])]) -> Result<Environ, EnvironError> {
    environ_from_cgi(vars.iter().map(|(k, v)| (k.as_bytes(), *v)))
}

#[test]
fn every_cgi_key_reads_back_what_was_set() {
    let mut environ = Environ::builder(Method::GET, "/").build();
    let cases: &[(&str, &str)] = &[
        ("REQUEST_METHOD", "PATCH"),
        ("SCRIPT_NAME", "/app"),
        ("PATH_INFO", "/x/y"),
        ("QUERY_STRING", "a=1&b=2"),
        ("REQUEST_URI", "/app/x/y?a=1&b=2"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "42"),
        ("SERVER_NAME", "example.org"),
        ("SERVER_PORT", "8443"),
        ("SERVER_PROTOCOL", "HTTP/1.0"),
        ("REMOTE_ADDR", "192.0.2.7"),
        ("REMOTE_PORT", "50123"),
        ("AUTH_TYPE", "Basic"),
        ("REMOTE_USER", "alice"),
        ("DOCUMENT_ROOT", "/srv/www"),
        ("PATH_TRANSLATED", "/srv/www/x/y"),
        ("HTTP_USER_AGENT", "curl/8"),
        ("HTTP_X_REQUEST_ID", "abc"),
    ];
    for (key, value) in cases {
        environ
            .set(key, value.to_string())
            .unwrap_or_else(|e| panic!("set {key}: {e}"));
    }
    for (key, value) in cases {
        assert_eq!(environ.get(key).unwrap(), *value, "{key}");
    }
    assert_eq!(environ.method(), Method::PATCH);
    assert_eq!(environ.script_name(), b"/app");
    assert_eq!(environ.path_info(), b"/x/y");
    assert_eq!(environ.query_string(), b"a=1&b=2");
    assert_eq!(environ.request_uri(), Some(&b"/app/x/y?a=1&b=2"[..]));
    assert_eq!(environ.content_length(), Some(42));
    assert_eq!(environ.server_name(), b"example.org");
    assert_eq!(environ.server_port(), 8443);
    assert_eq!(environ.protocol(), b"HTTP/1.0");
    assert_eq!(
        environ.remote_addr(),
        Some((&b"192.0.2.7"[..], Some(50123)))
    );
    assert_eq!(environ.headers()["user-agent"], "curl/8");
    assert_eq!(environ.headers()["x-request-id"], "abc");

    // Computed keys.
    assert_eq!(environ.get("GATEWAY_INTERFACE").unwrap(), "CGI/1.1");
    assert_eq!(environ.get("rgi.version").unwrap(), "1.0");
    assert_eq!(environ.get("rgi.url_scheme").unwrap(), "http");
    assert!(environ.get("HTTPS").is_none());
    assert!(environ.get("SERVER_SOFTWARE").is_some());
    environ.set("HTTPS", "on").unwrap();
    assert_eq!(environ.url_scheme(), Scheme::Https);
    assert_eq!(environ.get("HTTPS").unwrap(), "on");
    assert_eq!(environ.get("rgi.url_scheme").unwrap(), "https");
    environ.set("HTTPS", "off").unwrap();
    assert_eq!(environ.url_scheme(), Scheme::Http);
    assert!(environ.get("HTTPS").is_none());
}

#[test]
fn vars_lists_every_present_key_once() {
    let environ = Environ::builder(Method::POST, "/p?q=1")
        .header("Accept", "*/*")
        .header("Accept", "text/html")
        .header("Content-Type", "text/plain")
        .header("X-Custom", "1")
        .remote("10.0.0.1", Some(4000))
        .var("REMOTE_USER", "bob")
        .body("hello")
        .build();
    let vars = environ.vars();
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_ref()).collect();
    for expected in [
        "REQUEST_METHOD",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "REQUEST_URI",
        "CONTENT_TYPE",
        "CONTENT_LENGTH",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SERVER_SOFTWARE",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "GATEWAY_INTERFACE",
        "rgi.version",
        "rgi.url_scheme",
        "REMOTE_USER",
        "HTTP_ACCEPT",
        "HTTP_X_CUSTOM",
    ] {
        assert_eq!(
            names.iter().filter(|n| **n == expected).count(),
            1,
            "{expected} in {names:?}"
        );
    }
    assert!(!names.contains(&"HTTPS"));
    assert!(!names.contains(&"HTTP_CONTENT_TYPE"));
    assert!(!names.contains(&"HTTP_CONTENT_LENGTH"));
    // Every listed value is what get() says.
    for (k, v) in &vars {
        assert_eq!(environ.get(k).as_ref(), Some(v), "{k}");
    }
    let accept = vars.iter().find(|(k, _)| k == "HTTP_ACCEPT").unwrap();
    assert_eq!(accept.1, "*/*, text/html");
    // Debug never panics and shows the keys.
    let debug = format!("{environ:?}");
    assert!(debug.contains("HTTP_X_CUSTOM"), "{debug}");
}

#[test]
fn http_variables_are_views_of_the_headers() {
    let mut environ = Environ::builder(Method::GET, "/")
        .header("User-Agent", "curl/8")
        .header("X-Forwarded-For", "192.0.2.1")
        .build();
    assert_eq!(environ.get("HTTP_USER_AGENT").unwrap(), "curl/8");
    assert_eq!(environ.get("HTTP_X_FORWARDED_FOR").unwrap(), "192.0.2.1");
    assert!(environ.get("HTTP_ACCEPT").is_none());
    // Setting an HTTP_* key sets the header; removing it removes the header.
    environ.set("HTTP_ACCEPT_LANGUAGE", "fr").unwrap();
    assert_eq!(environ.headers()["accept-language"], "fr");
    environ.remove("HTTP_USER_AGENT");
    assert!(environ.headers().get("user-agent").is_none());
    assert!(environ.get("HTTP_USER_AGENT").is_none());
}

#[test]
fn repeated_headers_are_joined_with_a_comma_and_cookies_with_a_semicolon() {
    let environ = Environ::builder(Method::GET, "/")
        .header("Accept", "text/html")
        .header("Accept", "application/json")
        .header("X-Trace", "a")
        .header("X-Trace", "b")
        .header("X-Trace", "c")
        .header("Cookie", "a=1")
        .header("Cookie", "b=2")
        .build();
    assert_eq!(
        environ.get("HTTP_ACCEPT").unwrap(),
        "text/html, application/json"
    );
    assert_eq!(environ.get("HTTP_X_TRACE").unwrap(), "a, b, c");
    assert_eq!(environ.get("HTTP_COOKIE").unwrap(), "a=1; b=2");
}

#[test]
fn http_content_type_and_length_are_never_present() {
    let mut environ = Environ::builder(Method::POST, "/")
        .header("Content-Type", "text/plain")
        .body("abc")
        .build();
    assert_eq!(environ.get("CONTENT_TYPE").unwrap(), "text/plain");
    assert_eq!(environ.get("CONTENT_LENGTH").unwrap(), "3");
    assert!(environ.get("HTTP_CONTENT_TYPE").is_none());
    assert!(environ.get("HTTP_CONTENT_LENGTH").is_none());
    assert!(environ.set("HTTP_CONTENT_TYPE", "x/y").is_err());
    assert!(environ.set("HTTP_CONTENT_LENGTH", "9").is_err());
    assert_eq!(environ.get("CONTENT_TYPE").unwrap(), "text/plain");

    // From CGI, a gateway's HTTP_CONTENT_* variables are ignored.
    let environ = cgi(&[
        ("REQUEST_METHOD", b"POST"),
        ("PATH_INFO", b"/"),
        ("HTTP_CONTENT_TYPE", b"evil/type"),
        ("HTTP_CONTENT_LENGTH", b"999"),
        ("CONTENT_TYPE", b"text/plain"),
        ("CONTENT_LENGTH", b"3"),
    ])
    .unwrap();
    assert_eq!(environ.get("CONTENT_TYPE").unwrap(), "text/plain");
    assert_eq!(environ.content_length(), Some(3));
    assert!(environ.get("HTTP_CONTENT_TYPE").is_none());
    assert!(environ.get("HTTP_CONTENT_LENGTH").is_none());
}

#[test]
fn a_proxy_header_never_appears_as_http_proxy() {
    let environ = Environ::builder(Method::GET, "/")
        .header("Proxy", "http://evil.example:8080")
        .build();
    assert!(environ.get("HTTP_PROXY").is_none());
    assert!(environ.vars().iter().all(|(k, _)| k != "HTTP_PROXY"));
    assert_eq!(environ.headers()["proxy"], "http://evil.example:8080");

    // Nor from a CGI gateway that passed it through.
    let environ = cgi(&[
        ("REQUEST_METHOD", b"GET"),
        ("PATH_INFO", b"/"),
        ("HTTP_PROXY", b"http://evil.example:8080"),
    ])
    .unwrap();
    assert!(environ.get("HTTP_PROXY").is_none());
    assert!(environ.vars().iter().all(|(k, _)| k != "HTTP_PROXY"));
}

#[test]
fn a_header_with_an_underscore_never_appears_as_an_http_variable() {
    let environ = Environ::builder(Method::GET, "/")
        .header("X_Forwarded_For", "6.6.6.6")
        .header("X-Forwarded-For", "192.0.2.1")
        .build();
    assert_eq!(environ.get("HTTP_X_FORWARDED_FOR").unwrap(), "192.0.2.1");
    let vars = environ.vars();
    let xff: Vec<_> = vars
        .iter()
        .filter(|(k, _)| k == "HTTP_X_FORWARDED_FOR")
        .collect();
    assert_eq!(xff.len(), 1);
    assert_eq!(xff[0].1, "192.0.2.1");
    assert_eq!(environ.headers()["x_forwarded_for"], "6.6.6.6");

    // Only the underscore one: nothing.
    let environ = Environ::builder(Method::GET, "/")
        .header("X_Real_Ip", "6.6.6.6")
        .build();
    assert!(environ.get("HTTP_X_REAL_IP").is_none());
    assert!(environ.vars().iter().all(|(k, _)| !k.starts_with("HTTP_")));
    assert_eq!(environ.headers()["x_real_ip"], "6.6.6.6");
}

#[test]
fn non_utf8_header_values_are_kept_as_bytes() {
    let environ = Environ::builder(Method::GET, "/")
        .header("X-Name", b"caf\xe9")
        .build();
    let v = environ.get("HTTP_X_NAME").unwrap();
    assert!(v.to_str().is_err());
    assert_eq!(v.as_bytes(), b"caf\xe9");
    assert_eq!(v.to_string_lossy(), "caf\u{fffd}");
    let _ = format!("{environ:?}");
    let _ = environ.vars();
}

#[test]
fn non_utf8_cgi_values_are_kept_as_bytes() {
    let environ = cgi(&[
        ("REQUEST_METHOD", b"GET"),
        ("SCRIPT_NAME", b"/caf\xe9"),
        ("PATH_INFO", b"/\xff\xfe"),
        ("QUERY_STRING", b"q=\xe9"),
        ("DOCUMENT_ROOT", b"/srv/caf\xe9"),
        ("REMOTE_USER", b"ren\xe9e"),
        ("HTTP_X_NAME", b"caf\xe9"),
    ])
    .unwrap();
    for (key, raw) in [
        ("SCRIPT_NAME", &b"/caf\xe9"[..]),
        ("PATH_INFO", b"/\xff\xfe"),
        ("QUERY_STRING", b"q=\xe9"),
        ("DOCUMENT_ROOT", b"/srv/caf\xe9"),
        ("REMOTE_USER", b"ren\xe9e"),
        ("HTTP_X_NAME", b"caf\xe9"),
    ] {
        let v = environ.get(key).unwrap();
        assert!(v.to_str().is_err(), "{key}");
        assert_eq!(v.as_bytes(), raw, "{key}");
    }
    let _ = format!("{environ:?}");
    assert!(rgi::lint::check_environ(&environ)
        .iter()
        .all(|v| v.check != rgi::lint::Check::ScriptName));
}

#[test]
fn a_non_utf8_variable_name_is_skipped() {
    let vars: [(&[u8], &[u8]); 3] = [
        (b"REQUEST_METHOD", b"GET"),
        (b"PATH_INFO", b"/"),
        (b"X\xff", b"1"),
    ];
    let environ = environ_from_cgi(vars).unwrap();
    assert_eq!(environ.path_info(), b"/");
}

#[test]
fn cgi_without_request_method_is_an_error() {
    let err = cgi(&[("PATH_INFO", b"/"), ("SERVER_NAME", b"x")]).unwrap_err();
    assert_eq!(err, EnvironError::Missing("REQUEST_METHOD"));
    assert!(cgi(&[("REQUEST_METHOD", b"GE T")]).is_err());
}

#[test]
fn cgi_script_name_slash_is_normalised_to_empty() {
    let environ = cgi(&[("REQUEST_METHOD", b"GET"), ("SCRIPT_NAME", b"/")]).unwrap();
    assert_eq!(environ.script_name(), b"");
    assert_eq!(environ.path_info(), b"/");

    let environ = cgi(&[
        ("REQUEST_METHOD", b"GET"),
        ("SCRIPT_NAME", b"/"),
        ("PATH_INFO", b"/x"),
    ])
    .unwrap();
    assert_eq!(environ.script_name(), b"");
    assert_eq!(environ.path_info(), b"/x");
}

#[test]
fn cgi_bad_server_port_is_an_error() {
    for port in [&b"http"[..], b"-1", b"65536", b" 80"] {
        let err = cgi(&[("REQUEST_METHOD", b"GET"), ("SERVER_PORT", port)]).unwrap_err();
        assert!(
            matches!(&err, EnvironError::Invalid { name, .. } if name == "SERVER_PORT"),
            "{port:?}: {err:?}"
        );
    }
    let environ = cgi(&[("REQUEST_METHOD", b"GET"), ("SERVER_PORT", b"8080")]).unwrap();
    assert_eq!(environ.server_port(), 8080);
}

#[test]
fn cgi_https_on_gives_the_https_scheme() {
    for on in [&b"on"[..], b"ON", b"1"] {
        let environ = cgi(&[("REQUEST_METHOD", b"GET"), ("HTTPS", on)]).unwrap();
        assert_eq!(environ.url_scheme(), Scheme::Https, "{on:?}");
        assert_eq!(environ.get("rgi.url_scheme").unwrap(), "https");
        assert_eq!(environ.get("HTTPS").unwrap(), "on");
    }
    for off in [&b"off"[..], b"", b"0"] {
        let environ = cgi(&[("REQUEST_METHOD", b"GET"), ("HTTPS", off)]).unwrap();
        assert_eq!(environ.url_scheme(), Scheme::Http, "{off:?}");
        assert!(environ.get("HTTPS").is_none());
    }
}

#[test]
fn cgi_script_name_and_path_info_may_come_in_any_order() {
    let a = cgi(&[
        ("REQUEST_METHOD", b"GET"),
        ("SCRIPT_NAME", b"/app"),
        ("PATH_INFO", b"/x"),
    ])
    .unwrap();
    let b = cgi(&[
        ("PATH_INFO", b"/x"),
        ("SCRIPT_NAME", b"/app"),
        ("REQUEST_METHOD", b"GET"),
    ])
    .unwrap();
    for e in [&a, &b] {
        assert_eq!(e.script_name(), b"/app");
        assert_eq!(e.path_info(), b"/x");
    }
}

#[test]
fn cgi_defaults_and_ignored_keys() {
    let environ = cgi(&[
        ("REQUEST_METHOD", b"GET"),
        ("PATH_INFO", b"/"),
        ("GATEWAY_INTERFACE", b"CGI/1.0"),
        ("SERVER_SOFTWARE", b"Apache"),
        ("rgi.url_scheme", b"https"),
    ])
    .unwrap();
    assert_eq!(environ.query_string(), b"");
    assert_eq!(environ.get("QUERY_STRING").unwrap(), "");
    assert_eq!(environ.get("GATEWAY_INTERFACE").unwrap(), "CGI/1.1");
    assert_eq!(environ.url_scheme(), Scheme::Http);
    assert_eq!(environ.request_uri(), None);
}

#[test]
fn cgi_values_with_cr_or_lf_in_headers_are_errors() {
    assert!(cgi(&[
        ("REQUEST_METHOD", b"GET"),
        ("HTTP_X", b"a\r\nSet-Cookie: x")
    ])
    .is_err());
    assert!(cgi(&[("REQUEST_METHOD", b"GET"), ("DOCUMENT_ROOT", b"a\0b")]).is_err());
}

#[test]
fn builder_percent_decodes_path_info_and_keeps_request_uri_raw() {
    let environ = Environ::builder(Method::GET, "/a%20b/c%2Fd/%E2%9C%93?x=%20&y").build();
    assert_eq!(environ.path_info(), "/a b/c/d/\u{2713}".as_bytes());
    assert_eq!(environ.query_string(), b"x=%20&y");
    assert_eq!(
        environ.request_uri(),
        Some(&b"/a%20b/c%2Fd/%E2%9C%93?x=%20&y"[..])
    );
    assert_eq!(
        environ.get("REQUEST_URI").unwrap(),
        "/a%20b/c%2Fd/%E2%9C%93?x=%20&y"
    );

    // Decoded bytes that are not UTF-8 stay bytes.
    let environ = Environ::builder(Method::GET, "/caf%E9").build();
    assert_eq!(environ.path_info(), b"/caf\xe9");
    assert!(environ.get("PATH_INFO").unwrap().to_str().is_err());
}

#[test]
fn builder_takes_the_path_of_an_absolute_form_target() {
    let environ = Environ::builder(Method::GET, "http://example.org:8080/p/q%21?a=1").build();
    assert_eq!(environ.path_info(), b"/p/q!");
    assert_eq!(environ.query_string(), b"a=1");
    assert_eq!(
        environ.request_uri(),
        Some(&b"http://example.org:8080/p/q%21?a=1"[..])
    );

    let environ = Environ::builder(Method::GET, "http://example.org").build();
    assert_eq!(environ.path_info(), b"/");
    let environ = Environ::builder(Method::GET, "http://example.org?x=1").build();
    assert_eq!(environ.path_info(), b"/");
    assert_eq!(environ.query_string(), b"x=1");
    // A "://" in the query or a later path segment is not absolute form.
    let environ = Environ::builder(Method::GET, "/go?to=http://x/y").build();
    assert_eq!(environ.path_info(), b"/go");
    let environ = Environ::builder(Method::GET, "/a/http://b").build();
    assert_eq!(environ.path_info(), b"/a/http://b");
}

#[test]
fn mount_splits_on_a_segment_boundary_only() {
    let environ = Environ::builder(Method::GET, "/app/x?q")
        .mount("/app")
        .build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/app"[..], &b"/x"[..])
    );
    assert_eq!(environ.query_string(), b"q");

    let environ = Environ::builder(Method::GET, "/app").mount("/app").build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/app"[..], &b""[..])
    );

    let environ = Environ::builder(Method::GET, "/app/")
        .mount("/app/")
        .build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/app"[..], &b"/"[..])
    );

    let environ = Environ::builder(Method::GET, "/apple")
        .mount("/app")
        .build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b""[..], &b"/apple"[..])
    );

    let environ = Environ::builder(Method::GET, "/other/app")
        .mount("/app")
        .build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b""[..], &b"/other/app"[..])
    );

    // Mounting at the root changes nothing.
    let environ = Environ::builder(Method::GET, "/x").mount("/").build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b""[..], &b"/x"[..])
    );

    // The mount point matches the decoded path.
    let environ = Environ::builder(Method::GET, "/my%20app/x")
        .mount("/my app")
        .build();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/my app"[..], &b"/x"[..])
    );
}

#[test]
fn set_path_rejects_a_slash_script_name_and_relative_paths() {
    let mut environ = Environ::builder(Method::GET, "/x").build();
    assert!(matches!(
        environ.set_path("/", "/x"),
        Err(EnvironError::Invalid { .. })
    ));
    assert!(environ.set_path("app", "/x").is_err());
    assert!(environ.set_path("/app", "x").is_err());
    assert!(environ.set("SCRIPT_NAME", "/").is_err());
    assert!(environ.set("PATH_INFO", "rel").is_err());
    // Nothing changed.
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b""[..], &b"/x"[..])
    );
    environ.set_path("/app", "").unwrap();
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/app"[..], &b""[..])
    );

    let err = Environ::builder(Method::GET, "/x")
        .path("/", "/x")
        .try_build()
        .unwrap_err();
    assert!(matches!(err, EnvironError::Invalid { name, .. } if name == "SCRIPT_NAME"));
}

#[test]
fn read_only_keys_cannot_be_set() {
    let mut environ = Environ::builder(Method::GET, "/").build();
    for key in [
        "GATEWAY_INTERFACE",
        "SERVER_SOFTWARE",
        "rgi.version",
        "rgi.input",
    ] {
        assert_eq!(
            environ.set(key, "x"),
            Err(EnvironError::ReadOnly(key.to_owned())),
            "{key}"
        );
    }
    assert!(environ.set("rgi.url_scheme", "ftp").is_err());
    environ.set("rgi.url_scheme", "https").unwrap();
    assert_eq!(environ.url_scheme(), Scheme::Https);
}

#[test]
fn builder_try_build_reports_the_first_bad_value() {
    let err = Environ::builder(Method::GET, "/")
        .var("SERVER_PORT", "nope")
        .var("REMOTE_PORT", "also-nope")
        .try_build()
        .unwrap_err();
    assert!(matches!(err, EnvironError::Invalid { name, .. } if name == "SERVER_PORT"));
    let err = Environ::builder(Method::GET, "/")
        .header("X", "a\nb")
        .try_build()
        .unwrap_err();
    assert!(matches!(err, EnvironError::Invalid { .. }));
    // build() ignores it.
    let environ = Environ::builder(Method::GET, "/")
        .var("SERVER_PORT", "nope")
        .build();
    assert_eq!(environ.server_port(), 80);
}

#[test]
fn content_length_is_parsed_strictly() {
    let environ = Environ::builder(Method::POST, "/")
        .header("Content-Length", "+5")
        .build();
    assert_eq!(environ.content_length(), None);
    let mut environ = Environ::builder(Method::POST, "/").build();
    assert!(environ.set("CONTENT_LENGTH", "-1").is_err());
    assert!(environ.set("CONTENT_LENGTH", "1e3").is_err());
    environ.set("CONTENT_LENGTH", "12").unwrap();
    assert_eq!(environ.content_length(), Some(12));
    environ.set("CONTENT_LENGTH", "").unwrap();
    assert_eq!(environ.content_length(), None);
    assert!(environ.get("CONTENT_LENGTH").is_none());
}

#[test]
fn extensions_and_input_travel_with_the_environ() {
    #[derive(Clone, Debug, PartialEq)]
    struct RequestId(u32);
    let mut environ = Environ::builder(Method::POST, "/")
        .extension(RequestId(7))
        .body("xyz")
        .build();
    assert_eq!(environ.extensions().get::<RequestId>(), Some(&RequestId(7)));
    environ.extensions_mut().insert(RequestId(8));
    assert_eq!(environ.extensions().get::<RequestId>(), Some(&RequestId(8)));
    assert_eq!(environ.input_ref().content_length(), Some(3));
    let mut input = environ.take_input();
    assert_eq!(environ.input_ref().content_length(), Some(0));
    let bytes = rgi::block_on(input.read_to_bytes()).unwrap();
    assert_eq!(bytes, "xyz");
}

#[test]
fn environ_mount_nests_and_reports_whether_the_path_was_under_it() {
    let mut environ = Environ::builder(Method::GET, "/api/v1/users").build();
    assert!(environ.mount("/api"));
    assert!(environ.mount("/v1/"));
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/api/v1"[..], &b"/users"[..])
    );
    assert!(!environ.mount("/use"), "not on a segment boundary");
    assert!(!environ.mount("/other"));
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/api/v1"[..], &b"/users"[..])
    );
    assert!(environ.mount("/users"));
    assert_eq!(
        (environ.script_name(), environ.path_info()),
        (&b"/api/v1/users"[..], &b""[..])
    );
    assert!(rgi::lint::check_environ(&environ).is_empty());
}

#[test]
fn cgi_params_from_nginx_on_a_unix_socket_build_an_environ() {
    // nginx's stock fastcgi_params pass every variable, empty when it does not apply: on a unix-socket
    // listener $server_port and $remote_port are empty, and a GET has empty $content_type/$content_length.
    let environ = cgi(&[
        ("QUERY_STRING", b""),
        ("REQUEST_METHOD", b"GET"),
        ("CONTENT_TYPE", b""),
        ("CONTENT_LENGTH", b""),
        ("SCRIPT_NAME", b""),
        ("REQUEST_URI", b"/x"),
        ("DOCUMENT_URI", b"/x"),
        ("DOCUMENT_ROOT", b"/srv/www"),
        ("SERVER_PROTOCOL", b"HTTP/1.1"),
        ("REQUEST_SCHEME", b"https"),
        ("HTTPS", b"on"),
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        ("SERVER_SOFTWARE", b"nginx/1.25.3"),
        ("REMOTE_ADDR", b"unix:"),
        ("REMOTE_PORT", b""),
        ("SERVER_ADDR", b"unix:/run/app.sock"),
        ("SERVER_PORT", b""),
        ("SERVER_NAME", b"example.org"),
        ("REDIRECT_STATUS", b"200"),
        ("PATH_INFO", b"/x"),
    ])
    .expect("nginx's parameters are accepted");
    assert_eq!(
        environ.server_port(),
        443,
        "an empty SERVER_PORT is the scheme's default"
    );
    assert!(environ.get("REMOTE_PORT").is_none());
    assert!(environ.get("CONTENT_TYPE").is_none());
    assert!(environ.get("CONTENT_LENGTH").is_none());
    assert!(environ.headers().get("content-type").is_none());
    assert_eq!(environ.content_length(), None);
    assert_eq!(environ.path_info(), b"/x");
    assert_eq!(environ.url_scheme(), Scheme::Https);
}

#[test]
fn empty_optional_variables_are_absent() {
    let mut environ = Environ::builder(Method::GET, "/")
        .header("Content-Type", "text/plain")
        .remote("192.0.2.1", Some(1000))
        .build();
    environ.set("CONTENT_TYPE", "").unwrap();
    assert!(environ.get("CONTENT_TYPE").is_none());
    environ.set("REMOTE_PORT", "").unwrap();
    assert!(environ.get("REMOTE_PORT").is_none());
    environ.set("REMOTE_ADDR", "").unwrap();
    assert!(environ.get("REMOTE_ADDR").is_none());
    assert_eq!(environ.remote_addr(), None);
}

#[test]
fn server_info_defaults_and_capabilities() {
    use rgi::{Capabilities, ServerInfo};
    let info = ServerInfo::default();
    assert!(!info.multithread && !info.multiprocess && !info.run_once);
    assert!(info.capabilities.contains(Capabilities::STREAMING));
    assert!(info.capabilities.contains(Capabilities::STREAMING_INPUT));
    assert!(!info.capabilities.contains(Capabilities::SENDFILE));
    assert!(Capabilities::empty().contains(Capabilities::empty()));
    let all = Capabilities::STREAMING | Capabilities::SENDFILE | Capabilities::STREAMING_INPUT;
    assert_eq!(
        format!("{all:?}"),
        r#"{"streaming", "sendfile", "streaming_input"}"#
    );
    assert_eq!(rgi::VERSION, (1, 0));
}

#[test]
fn a_connect_request_has_an_empty_path_info() {
    let environ = Environ::builder(Method::CONNECT, "example.com:443").build();
    assert_eq!(environ.path_info(), b"");
    assert_eq!(environ.get("REQUEST_URI").unwrap(), "example.com:443");
    assert!(rgi::lint::check_environ(&environ).is_empty());
}

#[test]
fn path_and_query_survive_mounting_and_a_new_request_uri() {
    let request = http::Request::get("/app/x/y?q=1&r=2")
        .body(String::new())
        .unwrap();
    let server = std::sync::Arc::new(rgi::ServerInfo::default());
    let mut environ = rgi::convert::environ_from_request(
        request,
        &rgi::convert::ConnInfo::default(),
        &server,
        rgi::convert::InputLimits::default(),
    )
    .expect("no Content-Length");
    assert!(environ.mount("/app"));
    assert_eq!(environ.script_name(), b"/app");
    assert_eq!(environ.path_info(), b"/x/y");
    assert!(environ.mount("/x"));
    assert_eq!(environ.path_info(), b"/y");
    environ.set("REQUEST_URI", "/elsewhere").unwrap();
    assert_eq!(environ.request_uri(), Some(&b"/elsewhere"[..]));
    assert_eq!(environ.path_info(), b"/y");
    assert_eq!(environ.query_string(), b"q=1&r=2");
    environ.set("PATH_INFO", "/z").unwrap();
    assert_eq!(environ.get("PATH_INFO").unwrap(), "/z");
}
