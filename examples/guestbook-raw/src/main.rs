//! The guestbook on the `rgi` contract alone: what a WSGI user writes by hand, with no framework.
//! `examples/guestbook` is the same application on `rgi-framework`; the two side by side show what
//! the framework saves (see examples/README.md).
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the entries, newest first, and the form |
//! | `POST /sign` (`name`, `message`) | `303` to `/`; invalid: `422` with the form, the errors and the input |
//! | `GET /entries.json` | the entries as a JSON array, newest first |
//! | another method | `405` with `Allow` |
//! | another path | `404` |
//!
//! Every link and redirect starts with `SCRIPT_NAME`, so the app works at the root, under
//! `--script-name /gb` and behind nginx at a prefix.
//!
//! Entries live in process memory: they are lost on restart, each worker (`-w N`) has its own, and
//! under CGI (one process per request) a signed entry is gone before the next request.

use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use http::{header, Method, StatusCode};
use rgi::{Application, Environ, Reply, StartResponse};
use serde::Serialize;

/// The longest name, in characters.
const MAX_NAME: usize = 80;
/// The longest message, in characters.
const MAX_MESSAGE: usize = 2000;
/// The largest form body read, in bytes; more is `413`.
const MAX_FORM_BYTES: u64 = 64 * 1024;

/// One signature.
#[derive(Clone, Default, Serialize)]
struct Entry {
    name: String,
    message: String,
}

/// The application: the entries, oldest first.
#[derive(Default)]
struct Guestbook {
    entries: Mutex<Vec<Entry>>,
}

impl Guestbook {
    /// The entries, newest first.
    fn newest_first(&self) -> Vec<Entry> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().rev().cloned().collect()
    }

    /// The page: the errors (if any), the form holding `form`, the entries.
    fn page(&self, root: &str, form: &Entry, errors: &[String]) -> String {
        let root = escape(root);
        let errors: String = errors
            .iter()
            .map(|e| format!("<p class=\"error\">{}</p>\n", escape(e)))
            .collect();
        let entries: String = self
            .newest_first()
            .iter()
            .map(|e| {
                format!(
                    "<li><strong>{}</strong>: {}</li>\n",
                    escape(&e.name),
                    escape(&e.message)
                )
            })
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Guestbook</title></head>\n\
             <body>\n<h1>Guestbook</h1>\n{errors}\
             <form method=\"post\" action=\"{root}/sign\">\n\
             <label>Name <input name=\"name\" maxlength=\"{MAX_NAME}\" value=\"{name}\"></label>\n\
             <label>Message <textarea name=\"message\" maxlength=\"{MAX_MESSAGE}\">{message}</textarea></label>\n\
             <button>Sign</button>\n</form>\n<ul class=\"entries\">\n{entries}</ul>\n\
             <p><a href=\"{root}/entries.json\">JSON</a></p>\n</body>\n</html>\n",
            name = escape(&form.name),
            message = escape(&form.message),
        )
    }

    /// `POST /sign`: read and check the form, then store the entry or show the form again.
    async fn sign(&self, mut environ: Environ, start: StartResponse, root: &str) -> Reply {
        let content_type = environ
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            let message = "expected Content-Type: application/x-www-form-urlencoded";
            return start.error_with(StatusCode::UNSUPPORTED_MEDIA_TYPE, message);
        }
        // The server answers 413 (over the limit) or 400 (a short body) for these errors.
        let body = environ
            .take_input()
            .with_limit(MAX_FORM_BYTES)
            .read_to_bytes()
            .await?;
        let mut form = Entry::default();
        for (key, value) in form_urlencoded::parse(&body) {
            match &*key {
                "name" => form.name = value.trim().to_owned(),
                "message" => form.message = value.trim().to_owned(),
                _ => {}
            }
        }
        let errors = problems(&form);
        if !errors.is_empty() {
            let page = self.page(root, &form, &errors);
            return start.status(StatusCode::UNPROCESSABLE_ENTITY).html(page);
        }
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(form);
        start.see_other(&format!("{root}/"))
    }
}

impl Application for Guestbook {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let root = String::from_utf8_lossy(environ.script_name()).into_owned();
        let read = matches!(*environ.method(), Method::GET | Method::HEAD);
        match environ.path_info() {
            // Mounted at `/gb` and asked for `/gb`: the page is `/gb/`.
            b"" => start.redirect(StatusCode::MOVED_PERMANENTLY, &format!("{root}/")),
            b"/" if read => start.html(self.page(&root, &Entry::default(), &[])),
            b"/entries.json" if read => start.json(&self.newest_first()),
            b"/" | b"/entries.json" => not_allowed(start, "GET, HEAD"),
            b"/sign" if *environ.method() == Method::POST => self.sign(environ, start, &root).await,
            b"/sign" => not_allowed(start, "POST"),
            _ => start.error(StatusCode::NOT_FOUND),
        }
    }
}

/// `405 Method Not Allowed` with the methods the path takes.
fn not_allowed(start: StartResponse, allow: &'static str) -> Reply {
    start
        .status(StatusCode::METHOD_NOT_ALLOWED)
        .header(header::ALLOW, allow)
        .text("405 Method Not Allowed\n")
}

/// What is wrong with a (trimmed) form, one sentence each.
fn problems(form: &Entry) -> Vec<String> {
    let mut problems = Vec::new();
    for (label, value, max) in [
        ("Name", &form.name, MAX_NAME),
        ("Message", &form.message, MAX_MESSAGE),
    ] {
        match value.chars().count() {
            0 => problems.push(format!("{label} is required.")),
            n if n > max => problems.push(format!("{label} is longer than {max} characters.")),
            _ => {}
        }
    }
    problems
}

/// `text` made safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn main() -> ExitCode {
    rgi_servers::run(Guestbook::default())
}
