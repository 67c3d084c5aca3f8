//! The guestbook yardstick end to end (issue 18): `examples/guestbook-raw` (the `rgi` contract
//! alone) and `examples/guestbook` (rgi-framework with sessions, a flash message and CSRF) answer
//! the same requests the same way over RGI's HTTP server (at the root and with `--script-name
//! /gb`), behind nginx speaking FastCGI (stock `fastcgi_params`, at `/` and at `/gb/`) and run by
//! lighttpd as a CGI program (at the root and aliased to `/gb`), driven by curl.
//!
//! Covered everywhere: the page and its mount-aware links, `422` with the form, the errors and the
//! escaped input, `415`, `303` to the page, `GET /entries.json`, `404`, `405` with `Allow`, `HEAD`;
//! for the framework version also the flash after the redirect, `403` for a form without the CSRF
//! token and `405` (not `403`) for a wrong method without one: CSRF is checked after routing.
//! Entries live in process memory, so only the servers that outlive a request (HTTP, FastCGI) are
//! checked for the entries, newest first, on the page and in the JSON; under CGI a signature is
//! answered with its `303` and then forgotten (the flash survives: it lives in the session cookie).

use std::path::PathBuf;

use rgi_tests::webservers::{self, lighttpd_quote, Lighttpd, Nginx, TempDir};
use rgi_tests::{binary, fetch, Fetched, Server};

/// The session secret every process of the framework guestbook shares (CGI runs one per request).
const KEYS: &str = "6775657374626f6f6b2d746573742d6b65792d6f662d33322d6279746573212121";

/// One of the two guestbooks.
#[derive(Clone, Copy, Debug)]
struct Book {
    /// The binary.
    bin: &'static str,
    /// Whether its form carries a CSRF token (and its pages flash messages).
    csrf: bool,
}

const RAW: Book = Book {
    bin: "guestbook-raw",
    csrf: false,
};
const FRAMEWORK: Book = Book {
    bin: "guestbook",
    csrf: true,
};

/// Whether signed entries are there on the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Memory {
    /// One long-running process (HTTP, FastCGI) keeps them.
    Kept,
    /// A process per request (CGI): gone after the answer.
    PerRequest,
}

/// A browser: a cookie jar, and the CSRF token of the last page it read.
struct Visitor {
    jar: PathBuf,
    token: Option<String>,
}

impl Visitor {
    fn new(dir: &TempDir, name: &str) -> Visitor {
        let jar = dir.join(&format!("{name}.cookies"));
        std::fs::write(&jar, "").expect("write cookie jar");
        Visitor { jar, token: None }
    }

    /// `url` with the jar's cookies (and whatever `extra` adds), keeping what the server sets.
    fn fetch(&self, url: &str, extra: &[&str]) -> Fetched {
        let jar = self.jar.to_str().expect("UTF-8 temp path");
        fetch(url, &[&["-b", jar, "-c", jar][..], extra].concat())
    }

    /// GET a page and remember its CSRF token.
    fn page(&mut self, url: &str) -> Fetched {
        let got = self.fetch(url, &[]);
        self.token = csrf_token(&got.body);
        got
    }

    /// POST the form with `name` and `message` (and the token, when the page had one).
    fn sign(&self, url: &str, name: &str, message: &str) -> Fetched {
        let (name, message) = (format!("name={name}"), format!("message={message}"));
        let mut args = vec!["--data-urlencode", &name, "--data-urlencode", &message];
        let token = self.token.as_ref().map(|t| format!("csrf_token={t}"));
        if let Some(token) = &token {
            args.extend(["--data-urlencode", token]);
        }
        self.fetch(url, &args)
    }

    /// As [`fetch`](Visitor::fetch), with the last page's token in the `X-CSRF-Token` header (what
    /// scripts send), when it had one.
    fn fetch_as_script(&self, url: &str, extra: &[&str]) -> Fetched {
        let header = self.token.as_ref().map(|t| format!("X-CSRF-Token: {t}"));
        let mut args: Vec<&str> = header.iter().flat_map(|h| ["-H", h.as_str()]).collect();
        args.extend_from_slice(extra);
        self.fetch(url, &args)
    }
}

/// The value of the hidden `csrf_token` input on `page`.
fn csrf_token(page: &str) -> Option<String> {
    let start = page.find("name=\"csrf_token\" value=\"")? + "name=\"csrf_token\" value=\"".len();
    let len = page[start..].find('"')?;
    Some(page[start..start + len].to_owned())
}

/// Assert that `got`'s body holds `needle`.
fn contains(got: &Fetched, context: &str, needle: impl AsRef<str>) {
    let needle = needle.as_ref();
    assert!(
        got.body.contains(needle),
        "{context}: no {needle:?} in\n{}",
        got.body
    );
}

fn is_html(got: &Fetched) -> bool {
    got.header("content-type").as_deref() == Some("text/html; charset=utf-8")
}

/// Every behaviour of `book`, reached at `base` + `prefix`.
fn check(book: Book, base: &str, prefix: &str, memory: Memory, dir: &TempDir) {
    let url = |path: &str| format!("{base}{prefix}{path}");
    let label = format!("{}{}", book.bin, prefix.replace('/', "-"));
    let mut visitor = Visitor::new(dir, &label);
    let context = format!("{} at {base}{prefix}", book.bin);

    // The page: the form posts, and the JSON link points, under the mount point.
    let got = visitor.page(&url("/"));
    assert_eq!(got.status, 200, "{context}: {}", got.body);
    assert!(is_html(&got), "{context}: {}", got.head);
    contains(
        &got,
        &context,
        format!("<form method=\"post\" action=\"{prefix}/sign\">"),
    );
    contains(&got, &context, format!("href=\"{prefix}/entries.json\""));
    assert_eq!(
        visitor.token.is_some(),
        book.csrf,
        "{context}: {}",
        got.body
    );

    let head = fetch(&url("/"), &["-I"]);
    assert_eq!(head.status, 200, "{context}: HEAD");
    assert!(
        head.body.is_empty(),
        "{context}: HEAD answered a body: {:?}",
        head.body
    );

    // Invalid forms: 422 with the form again, each error, and the input (trimmed, escaped).
    let got = visitor.sign(&url("/sign"), "   ", "  <b>hi</b> & bye ");
    assert_eq!(got.status, 422, "{context}: {}", got.body);
    assert!(is_html(&got), "{context}: {}", got.head);
    contains(&got, &context, "Name is required.");
    contains(
        &got,
        &context,
        ">&lt;b&gt;hi&lt;/b&gt; &amp; bye</textarea>",
    );
    assert!(
        !got.body.contains("<b>hi</b>"),
        "{context}: unescaped input: {}",
        got.body
    );
    contains(&got, &context, format!("action=\"{prefix}/sign\""));

    let long_name = "n".repeat(81);
    let got = visitor.sign(&url("/sign"), &long_name, "");
    assert_eq!(got.status, 422, "{context}: {}", got.body);
    contains(&got, &context, "Name is longer than 80 characters.");
    contains(&got, &context, "Message is required.");
    contains(&got, &context, format!("value=\"{long_name}\""));

    let long_message = "é".repeat(2001);
    let got = visitor.sign(&url("/sign"), "Ada", &long_message);
    assert_eq!(got.status, 422, "{context}: {}", got.body);
    contains(&got, &context, "Message is longer than 2000 characters.");
    // Characters, not bytes: 2000 two-byte characters fit.
    let got = visitor.sign(&url("/sign"), "Ada", &"é".repeat(2000));
    assert_eq!(got.status, 303, "{context}: {}", got.body);

    // Not a form: 415 (the script's way of passing CSRF: the token in a header).
    let not_a_form = [
        "-H",
        "content-type: text/plain",
        "--data",
        "name=Ada&message=hi",
    ];
    let got = visitor.fetch_as_script(&url("/sign"), &not_a_form);
    assert_eq!(got.status, 415, "{context}: {}", got.body);

    // Valid forms: 303 to the page, under the mount point.
    for (name, message) in [("  Ada <3 ", "first"), ("Bob", "second & more")] {
        let got = visitor.sign(&url("/sign"), name, message);
        assert_eq!(got.status, 303, "{context}: {}", got.body);
        assert_eq!(
            got.header("location"),
            Some(format!("{prefix}/")),
            "{context}"
        );
    }
    let got = visitor.page(&url("/"));
    assert_eq!(got.status, 200, "{context}: {}", got.body);
    if book.csrf {
        // Each signature's flash message, kept across the redirects and shown once.
        contains(&got, &context, "Thank you for signing, Bob!");
        contains(&got, &context, "Thank you for signing, Ada &lt;3!");
        let again = visitor.page(&url("/"));
        assert!(
            !again.body.contains("Thank you"),
            "{context}: flash shown twice: {}",
            again.body
        );
    }
    let json = fetch(&url("/entries.json"), &[]);
    assert_eq!(json.status, 200, "{context}: {}", json.body);
    assert_eq!(
        json.header("content-type").as_deref(),
        Some("application/json"),
        "{context}"
    );
    let entries: serde_json::Value =
        serde_json::from_str(&json.body).expect("entries.json is JSON");
    let entries = entries.as_array().expect("entries.json is an array");
    if memory == Memory::Kept {
        // Newest first, trimmed, escaped on the page and plain in JSON.
        let bob = got
            .body
            .find("<li><strong>Bob</strong>: second &amp; more</li>");
        let ada = got.body.find("<li><strong>Ada &lt;3</strong>: first</li>");
        assert!(
            bob.is_some() && ada.is_some() && bob < ada,
            "{context}: {}",
            got.body
        );
        let names: Vec<&str> = entries.iter().filter_map(|e| e["name"].as_str()).collect();
        assert_eq!(names, ["Bob", "Ada <3", "Ada"], "{context}: {}", json.body);
        assert_eq!(entries[0]["message"], "second & more", "{context}");
    } else {
        assert!(
            entries.is_empty(),
            "{context}: a CGI process kept entries: {}",
            json.body
        );
        assert!(!got.body.contains("<li>"), "{context}: {}", got.body);
    }

    // Wrong method: 405 with Allow.
    let got = visitor.fetch(&url("/sign"), &[]);
    assert_eq!(got.status, 405, "{context}: {}", got.body);
    let allow = got.header("allow").unwrap_or_default();
    assert!(
        allow.contains("POST") && !allow.contains("GET"),
        "{context}: Allow: {allow}"
    );
    let got = visitor.fetch_as_script(&url("/entries.json"), &["-X", "DELETE"]);
    assert_eq!(got.status, 405, "{context}: {}", got.body);
    let allow = got.header("allow").unwrap_or_default();
    assert!(
        allow.contains("GET") && !allow.contains("DELETE"),
        "{context}: Allow: {allow}"
    );
    if book.csrf {
        // CSRF is checked after routing: a method the route does not take is 405 without a token
        // too; a form without the token is 403 and stores nothing.
        let got = fetch(&url("/entries.json"), &["-X", "DELETE"]);
        assert_eq!(got.status, 405, "{context}: {}", got.body);
        let got = visitor.fetch(&url("/sign"), &["--data", "name=Eve&message=forged"]);
        assert_eq!(got.status, 403, "{context}: {}", got.body);
        let json = fetch(&url("/entries.json"), &[]);
        assert!(
            !json.body.contains("Eve"),
            "{context}: a forged form was stored: {}",
            json.body
        );
    }

    // Unknown paths: 404.
    for path in ["/nope", "/sign/extra", "/entries.json.bak"] {
        let got = fetch(&url(path), &[]);
        assert_eq!(got.status, 404, "{context}: {path}: {}", got.body);
    }
}

/// The mount point itself (`/gb`, no slash) redirects to the page (`/gb/`).
fn check_bare_mount(book: Book, base: &str) {
    let got = fetch(&format!("{base}/gb"), &[]);
    assert_eq!(got.status, 301, "{} at {base}/gb: {}", book.bin, got.body);
    assert_eq!(
        got.header("location").as_deref(),
        Some("/gb/"),
        "{}",
        book.bin
    );
}

/// RGI's own HTTP server, at the root and with `--script-name /gb`.
fn over_http(book: Book) {
    let dir = TempDir::new(&format!("{}-http", book.bin));
    let env = [("RGI_SECRET_KEYS", KEYS)];
    let root = Server::start_with_env(book.bin, &[], &env);
    check(
        book,
        &format!("http://{}", root.addr()),
        "",
        Memory::Kept,
        &dir,
    );
    let mounted = Server::start_with_env(book.bin, &["--script-name", "/gb"], &env);
    check_bare_mount(book, &format!("http://{}", mounted.addr()));
    check(
        book,
        &format!("http://{}", mounted.addr()),
        "/gb",
        Memory::Kept,
        &dir,
    );
}

/// nginx with the stock `fastcgi_params`: `/` to one backend, `/gb/` to another started with
/// `--script-name /gb`.
fn behind_nginx_fastcgi(book: Book) {
    if webservers::skip_webservers() {
        return;
    }
    let work = TempDir::new(&format!("{}-work", book.bin));
    let dir = TempDir::new(&format!("{}-ngx", book.bin));
    let env = [("RGI_SECRET_KEYS", KEYS)];
    let root = Server::start_with_env(book.bin, &["--protocol", "fastcgi"], &env);
    let mount = Server::start_with_env(
        book.bin,
        &["--protocol", "fastcgi", "--script-name", "/gb"],
        &env,
    );
    let params = webservers::nginx_stock_params("fastcgi_params");
    let server = format!(
        "        location / {{ include {p}; fastcgi_pass {root}; }}\n\
         \x20       location /gb/ {{ include {p}; fastcgi_pass {mount}; }}\n",
        p = params.display(),
        root = root.addr(),
        mount = mount.addr(),
    );
    let mut nginx = Nginx::start(dir, "", &server);
    let base = format!("http://{}", nginx.addr());
    check(book, &base, "", Memory::Kept, &work);
    check(book, &base, "/gb", Memory::Kept, &work);
    nginx.stop();
}

/// lighttpd's `mod_cgi` running the binary for every path, and for `/gb` through an alias (so
/// `SCRIPT_NAME` is `/gb`); the session secret comes through `mod_setenv`.
fn under_lighttpd_cgi(book: Book) {
    if webservers::skip_webservers() {
        return;
    }
    let work = TempDir::new(&format!("{}-work", book.bin));
    let dir = TempDir::new(&format!("{}-cgi", book.bin));
    let app = lighttpd_quote(dir.install_executable(&binary(book.bin), "app.cgi"));
    let conf = format!(
        "server.modules = ( \"mod_alias\", \"mod_setenv\", \"mod_cgi\" )\n\
         server.document-root = {app}\n\
         cgi.assign = ( \".cgi\" => \"\" )\n\
         setenv.add-environment = ( \"RGI_SECRET_KEYS\" => \"{KEYS}\" )\n\
         $HTTP[\"url\"] =~ \"^/gb(/|$)\" {{ alias.url = ( \"/gb\" => {app} ) }}\n"
    );
    let mut lighttpd = Lighttpd::start(dir, &conf);
    let base = format!("http://{}", lighttpd.addr());
    check(book, &base, "", Memory::PerRequest, &work);
    check(book, &base, "/gb", Memory::PerRequest, &work);
    check_bare_mount(book, &base);
    lighttpd.stop();
}

#[test]
fn raw_over_http() {
    over_http(RAW);
}

#[test]
fn framework_over_http() {
    over_http(FRAMEWORK);
}

#[test]
fn raw_behind_nginx_fastcgi() {
    behind_nginx_fastcgi(RAW);
}

#[test]
fn framework_behind_nginx_fastcgi() {
    behind_nginx_fastcgi(FRAMEWORK);
}

#[test]
fn raw_under_lighttpd_cgi() {
    under_lighttpd_cgi(RAW);
}

#[test]
fn framework_under_lighttpd_cgi() {
    under_lighttpd_cgi(FRAMEWORK);
}
