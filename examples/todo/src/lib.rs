//! The todo app: sign up, log in, a list of todos per user, on SQLite (the default) or PostgreSQL.
//!
//! ```text
//! todo                                            # HTTP on 127.0.0.1:8000, sqlite:todo.db
//! todo --database postgres://todo@127.0.0.1/todo --protocol fastcgi -b 127.0.0.1:9000 -w 4
//! ```
//!
//! `--database URL` (or `TODO_DATABASE`) picks the database; every other flag is the RGI
//! launcher's. Session cookies are sealed with `RGI_SECRET_KEYS` (required when processes share
//! sessions: `-w N`, several backends). `TODO_STATIC` points at the static files (default: the
//! crate's `static/`).

pub mod db;
pub mod pages;
pub mod web;

pub use crate::db::Db;
pub use crate::web::app;
