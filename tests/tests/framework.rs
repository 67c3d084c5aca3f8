//! The rgi-framework application `frameworkapp` end to end: behind real nginx speaking FastCGI (at the
//! root and mounted at `/app`), and run by real lighttpd as a CGI program (at the root and aliased to
//! `/app`), driven by curl. Covers routing, url_for under a mount prefix, blueprints, templates,
//! forms with 303, JSON, 405 and trailing-slash redirects on every gateway.

use rgi_tests::webservers::{self, lighttpd_quote, Lighttpd, Nginx, TempDir};
use rgi_tests::{binary, fetch, Server};

const APP: &str = "frameworkapp";

/// The same checks through any front: `base` is `http://host:port`, `prefix` the mount point.
fn check(base: &str, prefix: &str) {
    let url = |path: &str| format!("{base}{prefix}{path}");

    let r = fetch(&url("/"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        format!(
            "hello={prefix}/hello/a%20b%2Fc\nnotes={prefix}/notes?page=1\nadmin={prefix}/admin/\n"
        )
    );

    let r = fetch(&url("/hello/a%20b"), &[]);
    assert_eq!((r.status, r.body.as_str()), (200, "Hello, a b!\n"));

    let r = fetch(&url("/admin/"), &[]);
    assert_eq!(
        r.body,
        format!("admin at {prefix}/admin/ (mounted at {prefix:?})\n")
    );

    // Templates: inheritance, autoescape, url_for in a template.
    let r = fetch(&url("/notes"), &[]);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(r.body.contains("<title>Notes</title>"), "{}", r.body);
    assert!(
        r.body.contains("<li>&lt;b&gt;first&lt;/b&gt;</li>"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("action=\"{prefix}/notes\"")),
        "{}",
        r.body
    );

    // A form POST answers 303 to the list (under the mount point).
    let r = fetch(&url("/notes"), &["--data", "text=second+note"]);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(format!("{prefix}/notes")));

    let r = fetch(&url("/notes/"), &[]);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some(format!("{prefix}/notes")));

    let r = fetch(&url("/notes"), &["-X", "PUT"]);
    assert_eq!(r.status, 405);
    assert_eq!(
        r.header("allow").as_deref(),
        Some("GET, HEAD, OPTIONS, POST")
    );

    let json = ["-H", "content-type: application/json"];
    let r = fetch(
        &url("/api/sum"),
        &[&json[..], &["--data", r#"{"numbers":[1,2,3]}"#]].concat(),
    );
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"sum":6}"#));
    let r = fetch(
        &url("/api/sum"),
        &[&json[..], &["--data", r#"{"numbers":[1,"x"]}"#]].concat(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("numbers[1]"), "{}", r.body);

    let r = fetch(&url("/missing"), &[]);
    assert_eq!(r.status, 404);
}

#[test]
fn behind_nginx_fastcgi() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("fw-ngx-fcgi");
    let root = Server::start(APP, &["--protocol", "fastcgi"]);
    let mount = Server::start(APP, &["--protocol", "fastcgi", "--script-name", "/app"]);
    let params = webservers::nginx_stock_params("fastcgi_params");
    let server = format!(
        "        location / {{ include {p}; fastcgi_pass {root}; }}\n\
         \x20       location /app/ {{ include {p}; fastcgi_pass {mount}; }}\n",
        p = params.display(),
        root = root.addr(),
        mount = mount.addr(),
    );
    let mut nginx = Nginx::start(dir, "", &server);
    let base = format!("http://{}", nginx.addr());
    check(&base, "");
    check(&base, "/app");
    nginx.stop();
}

#[test]
fn lighttpd_cgi() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("fw-lty-cgi");
    let app = lighttpd_quote(dir.install_executable(&binary(APP), "app.cgi"));
    let conf = format!(
        "server.modules = ( \"mod_alias\", \"mod_cgi\" )\n\
         server.document-root = {app}\n\
         cgi.assign = ( \".cgi\" => \"\" )\n\
         $HTTP[\"url\"] =~ \"^/app(/|$)\" {{ alias.url = ( \"/app\" => {app} ) }}\n"
    );
    let mut lighttpd = Lighttpd::start(dir, &conf);
    let base = format!("http://{}", lighttpd.addr());
    check(&base, "");
    check(&base, "/app");
    lighttpd.stop();
}
