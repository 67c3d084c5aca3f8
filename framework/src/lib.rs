//! # rgi-framework
//!
//! The place of RGI's small web.py/Flask-like framework: URL mapping (matchit), typed parameters,
//! forms and JSON (serde), templates (tera), cookie sessions, errors, reverse URLs, and an in-process
//! test client — all as ordinary [`rgi::Application`]s and middleware.
//!
//! It is built by its own issue and holds no code yet; applications today implement
//! [`rgi::Application`] directly (see the `examples/` folder).
