//! A development debug page: when the application fails, the browser shows why.
//!
//! On an `Err` or a panic, the client gets a `500` HTML page with the error and its chain of
//! `source()`s, the backtrace when one was captured (panics, with `RUST_BACKTRACE=1`; Rust errors carry
//! none on stable), every environ variable and the request headers (`Authorization`, `Cookie` and
//! `Proxy-Authorization` shown as `[redacted]`). The failure also goes to `rgi.errors`.
//!
//! **It shows internals to whoever makes the request.** It is never on by default: it runs only where a
//! [`DebugPageLayer`] is added, and the layer refuses to be made — [`DebugPageLayer::from_env`] returns
//! [`DebugPageRefused`], not a panic — when `RGI_ENV` is `production`. Add it only in development:
//!
//! ```
//! use rgi::ApplicationExt;
//! use rgi_middleware::debug_page::DebugPageLayer;
//!
//! let app = rgi::app_fn(|_, _start| async move { Err("template `home.html` not found".into()) });
//! // In a real program: DebugPageLayer::from_env(), which reads RGI_ENV.
//! let layer = DebugPageLayer::for_env(Some("development")).expect("not production");
//! let page = rgi::testing::TestClient::new(app.layer(layer)).get("/").send_blocking();
//! assert_eq!(page.status(), 500);
//! assert!(page.text().contains("template `home.html` not found"));
//!
//! assert!(DebugPageLayer::for_env(Some("production")).is_err());
//! ```
//!
//! Installing the layer also installs a panic hook (once per process, keeping the previous hook
//! running) that remembers each thread's last panic backtrace for the page.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::panic::AssertUnwindSafe;
use std::sync::Once;

use futures_util::FutureExt;
use http::StatusCode;
use rgi::{Application, BoxError, Environ, Layer, Reply, StartResponse};

use crate::catch_panic::panic_message;

/// The debug page was asked for where `RGI_ENV` is `production`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugPageRefused;

impl fmt::Display for DebugPageRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the debug page is refused: RGI_ENV is production (it would show internals to any client)")
    }
}

impl std::error::Error for DebugPageRefused {}

/// Makes [`DebugPage`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct DebugPageLayer {
    _checked: (),
}

impl DebugPageLayer {
    /// The layer, unless the process environment has `RGI_ENV=production`.
    ///
    /// # Errors
    ///
    /// [`DebugPageRefused`] in production.
    pub fn from_env() -> Result<Self, DebugPageRefused> {
        DebugPageLayer::for_env(std::env::var("RGI_ENV").ok().as_deref())
    }

    /// The layer, unless `rgi_env` (the value of `RGI_ENV`, `None` when unset) is `production`
    /// (any case, surrounding spaces ignored).
    ///
    /// # Errors
    ///
    /// [`DebugPageRefused`] in production.
    pub fn for_env(rgi_env: Option<&str>) -> Result<Self, DebugPageRefused> {
        if rgi_env.is_some_and(|e| e.trim().eq_ignore_ascii_case("production")) {
            return Err(DebugPageRefused);
        }
        install_hook();
        Ok(DebugPageLayer { _checked: () })
    }
}

impl<A> Layer<A> for DebugPageLayer {
    type Service = DebugPage<A>;

    fn layer(&self, inner: A) -> DebugPage<A> {
        DebugPage { inner }
    }
}

/// The middleware made by [`DebugPageLayer`].
#[derive(Debug, Clone)]
pub struct DebugPage<A> {
    inner: A,
}

thread_local! {
    static LAST_PANIC: RefCell<Option<Backtrace>> = const { RefCell::new(None) };
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // `capture` honours RUST_BACKTRACE / RUST_LIB_BACKTRACE and is cheap when they are off.
            let backtrace = Backtrace::capture();
            LAST_PANIC.with(|slot| *slot.borrow_mut() = Some(backtrace));
            previous(info);
        }));
    });
}

/// What the page shows about the request, taken before the environ moves into the application.
struct Snapshot {
    title: String,
    vars: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

const REDACTED: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

impl Snapshot {
    fn of(environ: &Environ) -> Self {
        let redacted = |name: &str| REDACTED.iter().any(|r| name.eq_ignore_ascii_case(r));
        let vars = environ
            .vars()
            .into_iter()
            .map(|(k, v)| {
                let hidden = k
                    .strip_prefix("HTTP_")
                    .is_some_and(|h| redacted(&h.replace('_', "-")));
                let value = if hidden {
                    "[redacted]".to_owned()
                } else {
                    v.to_string_lossy().into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        let headers = environ
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = if redacted(name.as_str()) {
                    "[redacted]".to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.to_string(), value)
            })
            .collect();
        let title = format!(
            "{} {}{}",
            environ.method(),
            String::from_utf8_lossy(environ.script_name()),
            String::from_utf8_lossy(environ.path_info())
        );
        Snapshot {
            title,
            vars,
            headers,
        }
    }
}

impl<A: Application> Application for DebugPage<A> {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        let snapshot = Snapshot::of(&environ);
        let errors = environ.errors().clone();
        let spare = start.spare();
        // As in `catch_panic`: the panicked future is dropped, never polled again.
        let caught = AssertUnwindSafe(self.inner.call(environ, start))
            .catch_unwind()
            .await;
        let (status, chain, backtrace) = match caught {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(error)) => (rgi::convert::error_status(&error), chain_of(&error), None),
            Err(payload) => {
                let message = format!("panic: {}", panic_message(&*payload));
                let backtrace = LAST_PANIC.with(|slot| slot.borrow_mut().take());
                (StatusCode::INTERNAL_SERVER_ERROR, vec![message], backtrace)
            }
        };
        errors.log(format_args!(
            "rgi: {} failed: {}",
            snapshot.title,
            chain.join(": ")
        ));
        spare
            .status(status)
            .header("cache-control", "no-store")
            .html(render(status, &snapshot, &chain, backtrace.as_ref()))
    }
}

/// The error and its `source()`s, outermost first.
fn chain_of(error: &BoxError) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(e) = cause {
        chain.push(e.to_string());
        cause = e.source();
    }
    chain
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, heading: &str, rows: &[(String, String)]) {
    let _ = write!(out, "<h2>{heading}</h2>\n<table>\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    out.push_str("</table>\n");
}

fn render(
    status: StatusCode,
    snapshot: &Snapshot,
    chain: &[String],
    backtrace: Option<&Backtrace>,
) -> String {
    let mut out = String::with_capacity(4096);
    let title = escape(&snapshot.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} — {title}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em;overflow:auto}}\
         th{{text-align:left;padding-right:1em;vertical-align:top}}td{{font-family:monospace;word-break:break-all}}</style>\n\
         </head><body>\n<h1>{} — {title}</h1>\n<p>Development debug page (RGI_ENV is not production).</p>\n<h2>Error</h2>\n<ol>\n",
        status.as_u16(),
        status
    );
    for (i, link) in chain.iter().enumerate() {
        let label = if i == 0 { "" } else { "caused by: " };
        let _ = writeln!(out, "<li>{label}<code>{}</code></li>", escape(link));
    }
    out.push_str("</ol>\n<h2>Backtrace</h2>\n");
    match backtrace {
        Some(bt) if bt.status() == BacktraceStatus::Captured => {
            let _ = writeln!(out, "<pre>{}</pre>", escape(&bt.to_string()));
        }
        Some(_) => out.push_str("<p>Not captured: run with <code>RUST_BACKTRACE=1</code>.</p>\n"),
        None => out.push_str("<p>None: errors carry no backtrace; panics show one with <code>RUST_BACKTRACE=1</code>.</p>\n"),
    }
    table(&mut out, "Environ", &snapshot.vars);
    table(&mut out, "Request headers", &snapshot.headers);
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loading <the> config")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn app() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            match environ.path_info() {
                b"/err" => Err(Box::new(Outer(std::io::Error::other("disk on fire"))) as BoxError),
                b"/panic" => panic!("index out of range"),
                _ => start.text("fine"),
            }
        })
    }

    fn client() -> TestClient<DebugPage<impl Application>> {
        TestClient::new(app().layer(DebugPageLayer::for_env(None).unwrap()))
    }

    #[test]
    fn production_refuses_to_build_it() {
        for env in ["production", "PRODUCTION", " production "] {
            assert_eq!(
                DebugPageLayer::for_env(Some(env)).unwrap_err(),
                DebugPageRefused
            );
        }
        for env in [None, Some("development"), Some("staging"), Some("")] {
            assert!(DebugPageLayer::for_env(env).is_ok(), "{env:?}");
        }
    }

    #[test]
    fn errors_show_their_chain_escaped_and_the_request() {
        let c = client();
        let r = c
            .get("/err?q=1")
            .header("x-trace", "<script>")
            .header("authorization", "Basic c2VjcmV0")
            .header("cookie", "session=s3cr3t")
            .send_blocking();
        assert_eq!(r.status(), 500);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let page = r.text();
        assert!(
            page.contains("<code>loading &lt;the&gt; config</code>"),
            "{page}"
        );
        assert!(page.contains("caused by: <code>disk on fire</code>"));
        assert!(page.contains("<th>QUERY_STRING</th><td>q=1</td>"));
        assert!(page.contains("<th>x-trace</th><td>&lt;script&gt;</td>"));
        assert!(!page.contains("<script>"));
        assert!(
            !page.contains("c2VjcmV0") && !page.contains("s3cr3t"),
            "secrets leaked"
        );
        assert!(page.contains("<th>HTTP_COOKIE</th><td>[redacted]</td>"));
        assert!(c.errors()[0].contains("loading <the> config: disk on fire"));
    }

    #[test]
    fn panics_show_a_page_and_the_client_keeps_serving() {
        let c = client();
        let r = c.get("/panic").send_blocking();
        assert_eq!(r.status(), 500);
        assert!(r.text().contains("panic: index out of range"));
        assert!(r.text().contains("<h2>Backtrace</h2>"));
        assert_eq!(c.get("/").send_blocking().text(), "fine");
        let r = c.head("/panic").send_blocking();
        assert_eq!((r.status().as_u16(), r.body().len()), (500, 0));
    }
}
