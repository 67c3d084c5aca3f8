//! The application the session end-to-end tests drive (tests/tests/sessions.rs): the session layer
//! and CSRF around a few routes, configured by the environment.
//!
//! - `SESSION_STORE`: `cookie` (default), `memory`, `file:<dir>` or `redis:<url>`.
//! - `SESSION_BACKEND`: a name for this backend, echoed in every answer.
//! - `RGI_SECRET_KEYS`, `RGI_ENV`: the keys (see `rgi_middleware::session::keys`).
//! - `PROXY_FIX=1`: believe `X-Forwarded-*` from 127.0.0.1 (a TLS-terminating proxy), so
//!   `X-Forwarded-Proto: https` makes the cookie `Secure`.
//! - `DEBUG_PAGE=1`: the development debug page on errors (refused, and the process exits, with
//!   `RGI_ENV=production`).
//!
//! | path | behaviour |
//! |---|---|
//! | `/login?NAME` | new session id, `user` = NAME, a flash message |
//! | `/whoami` | `user=NAME backend=B pid=P` (`user=-` when logged out) |
//! | `/count` | increments `count`, answers it |
//! | `/flash` | the pending flash messages, once |
//! | `/logout` | destroys the session |
//! | `GET /form` | the CSRF token |
//! | `POST /form` | (CSRF-checked) `posted <body>` |
//! | `/fail` | an application error (500; the debug page when on) |

use std::process::ExitCode;

use rgi::{Application, ApplicationExt, Environ, Reply, StartResponse};
use rgi_middleware::debug_page::DebugPageLayer;
use rgi_middleware::proxy_fix::ProxyFixLayer;
use rgi_middleware::session::{
    Csrf, CsrfToken, FileStore, Flash, MemoryStore, RedisStore, Session, SessionLayer,
};
use rgi_middleware::Builder;

struct App {
    backend: String,
}

impl Application for App {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let session = Session::from_environ(&environ).ok_or("no session layer")?;
        let query = String::from_utf8_lossy(environ.query_string()).into_owned();
        let body = match environ.path_info() {
            b"/login" => {
                session.regenerate();
                session.insert("user", &query)?;
                Flash::from_environ(&environ)
                    .ok_or("no session")?
                    .push("info", format!("welcome {query}"));
                format!("logged in {query}")
            }
            b"/whoami" => {
                let user: Option<String> = session.get("user")?;
                format!(
                    "user={} backend={} pid={}",
                    user.as_deref().unwrap_or("-"),
                    self.backend,
                    std::process::id()
                )
            }
            b"/count" => {
                let count = session.get::<u64>("count")?.unwrap_or(0) + 1;
                session.insert("count", &count)?;
                count.to_string()
            }
            b"/flash" => {
                let messages = Flash::from_environ(&environ).ok_or("no session")?.take();
                let shown: Vec<String> = messages
                    .iter()
                    .map(|m| format!("{}: {}", m.category, m.message))
                    .collect();
                shown.join("\n")
            }
            b"/logout" => {
                session.destroy();
                "logged out".to_owned()
            }
            b"/form" if environ.method() == http::Method::GET => CsrfToken::from_environ(&environ)
                .ok_or("no session")?
                .to_string(),
            b"/form" => {
                let body = environ.input_mut().read_to_bytes().await?;
                format!("posted {}", String::from_utf8_lossy(&body))
            }
            b"/fail" => return Err("sessionapp: deliberate failure".into()),
            _ => return start.error(http::StatusCode::NOT_FOUND),
        };
        start.text(body)
    }
}

fn main() -> ExitCode {
    let store = std::env::var("SESSION_STORE").unwrap_or_else(|_| "cookie".to_owned());
    let builder = SessionLayer::builder();
    let builder = match store.split_once(':') {
        _ if store == "cookie" => builder,
        _ if store == "memory" => builder.store(MemoryStore::new()),
        Some(("file", dir)) => match FileStore::new(dir) {
            Ok(files) => builder.store(files),
            Err(e) => {
                eprintln!("sessionapp: file store {dir}: {e}");
                return ExitCode::FAILURE;
            }
        },
        Some(("redis", url)) => match RedisStore::new(url) {
            Ok(redis) => builder.store(redis),
            Err(e) => {
                eprintln!("sessionapp: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!(
                "sessionapp: SESSION_STORE must be cookie, memory, file:<dir> or redis:<url>"
            );
            return ExitCode::FAILURE;
        }
    };
    let sessions = match builder.build() {
        Ok(layer) => layer,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let backend = std::env::var("SESSION_BACKEND").unwrap_or_else(|_| "-".to_owned());
    let on = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let debug_page = if on("DEBUG_PAGE") {
        match DebugPageLayer::from_env() {
            Ok(layer) => Some(layer),
            Err(e) => {
                eprintln!("sessionapp: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let mut stack = Builder::new().enable_when(on("PROXY_FIX"), ProxyFixLayer::new());
    if let Some(layer) = debug_page {
        stack = stack.enable(layer);
    }
    let app = stack.app(App { backend }.layer(Csrf::new()).layer(sessions));
    rgi_servers::run(app)
}
