//! Sessions, flash messages and CSRF protection, as middleware on the `cookie` crate.
//!
//! - [`SessionLayer`] loads the request's [`Session`] into the environ's extensions before the inner
//!   application runs and saves it after (the cookie is sent only when something changed, the
//!   session must move to the newest key, or a sliding expiry is due).
//! - **Cookie sessions** (the default, nothing to run): the values themselves, sealed in the cookie
//!   with AES-256-GCM by the cookie crate's private jar, the cookie's name bound as associated data;
//!   issued-at, creation time and expiry are inside the sealed payload, so a cookie replayed after its
//!   expiry is an empty session. A session whose cookie would exceed 4 KB is not saved (a clear line
//!   in `rgi.errors`, the response still sent, without a broken cookie).
//! - **Server-side sessions** ([`store`]): memory, files, SQLite, Redis; the cookie then holds a
//!   sealed random id. [`Session::regenerate`] on login, [`Session::destroy`] on logout.
//! - **Keys** ([`keys`]): `RGI_SECRET_KEYS` (or a file), newest first, with rotation; no default secret.
//! - [`Flash`] messages and [`Csrf`] protection live in the session.
//!
//! # Broken cookies
//!
//! A presented cookie that does not open (a flipped byte, truncated, garbage base64, a value copied
//! from another cookie name, a retired key) or that has expired gives an **empty session**: never an
//! error page. Each such request writes one line starting `debug: ` to `rgi.errors` when the
//! layer's debug logging is on ([`SessionBuilder::debug`]; on by default unless
//! `RGI_ENV=production`): `rgi.errors` has no levels, so debug lines are opt-out, not filtered.
//!
//! # Cookie attributes
//!
//! `HttpOnly`, `SameSite=Lax`, `Path` = the application's `SCRIPT_NAME` (or `/`), `Max-Age` = the
//! remaining lifetime, and `Secure` whenever `rgi.url_scheme` is `https` (run a proxy-fix layer
//! first behind a TLS-terminating proxy). Responses that set the cookie get `Vary: Cookie`.

pub mod csrf;
pub mod flash;
mod handle;
pub mod keys;
mod layer;
mod seal;
pub mod store;

pub use self::csrf::{
    Csrf, CsrfMiddleware, CsrfRejection, CsrfToken, CSRF_HEADER, DEFAULT_CSRF_FIELD,
};
pub use self::flash::{Flash, FlashMessage};
pub use self::handle::{Session, SessionData, SessionValueError};
pub use self::keys::{KeyError, Keys, SecretConfig};
pub use self::layer::{
    Expiry, SessionBuilder, SessionConfigError, SessionLayer, SessionMiddleware,
    DEFAULT_COOKIE_NAME, DEFAULT_MAX_COOKIE_BYTES,
};
#[cfg(feature = "redis")]
pub use self::store::RedisStore;
#[cfg(feature = "sqlite")]
pub use self::store::SqliteStore;
pub use self::store::{Changes, FileStore, MemoryStore, SessionStore, StoreError};

#[cfg(test)]
mod tests;
