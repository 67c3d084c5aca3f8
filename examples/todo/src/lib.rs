//! The todo app: sign up, log in, a list of todos per user, on SQLite (the default) or PostgreSQL;
//! written on rgi-framework, with rgi-middleware's sessions, CSRF protection and static files.
//!
//! ```text
//! todo                                            # HTTP on 127.0.0.1:8000, sqlite:todo.db
//! todo --database postgres://todo@127.0.0.1/todo --sessions redis://127.0.0.1:6379 \
//!      --protocol fastcgi -b 127.0.0.1:9000 -w 4
//! ```
//!
//! - [`pages`]: the HTML pages (routes, handlers, templates in `templates/`).
//! - [`api`]: the JSON API, a second app mounted at `/api`.
//! - [`user`]: the signed-in [`User`](user::User), a guard extractor.
//! - [`db`]: the data layer (sqlx, argon2id passwords).
//!
//! `--database URL` (or `TODO_DATABASE`) picks the database and `--sessions` (or `TODO_SESSIONS`)
//! the session store; every other flag is the RGI launcher's. Session cookies are sealed with
//! `RGI_SECRET_KEYS` (required when processes share sessions: `-w N`, several backends).
//! `TODO_STATIC` points at the static files (default: the crate's `static/`).

pub mod api;
pub mod db;
pub mod pages;
pub mod user;

use std::path::Path;
use std::sync::Arc;

use rgi::BoxApp;
use rgi_middleware::session::{Csrf, SessionLayer};
use rgi_middleware::{Builder, Static};

pub use crate::db::Db;

/// The whole app: sessions (outermost, so every part sees the same session), CSRF protection on
/// every form, then `/static`, `/api` and the pages.
///
/// # Errors
///
/// A route or template that does not build (a bug: the unit tests build it).
pub fn app(
    db: Db,
    static_dir: &Path,
    sessions: SessionLayer,
) -> Result<BoxApp, Box<dyn std::error::Error>> {
    let db = Arc::new(db);
    Ok(Builder::new()
        .enable(sessions)
        .enable(Csrf::new())
        .mount("/static", Static::new(static_dir))
        .mount("/api", api::site(db.clone())?)
        .app(pages::site(db, static_dir)?))
}
