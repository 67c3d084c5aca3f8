//! HTTP Basic authentication (RFC 7617): a user name and password on every request, checked against
//! an htpasswd-style file or a closure.
//!
//! A request without valid credentials gets `401 Unauthorized` with
//! `WWW-Authenticate: Basic realm="…", charset="UTF-8"`; a valid one reaches the application with
//! `REMOTE_USER` (the user name) and `AUTH_TYPE` (`Basic`) set. Send Basic credentials only over
//! https: they are not encrypted.
//!
//! ## The credentials file
//!
//! One `user:hash` per line, as Apache's `htpasswd` writes them; blank lines and `#` comments are
//! skipped. Hashes:
//!
//! | form | made by | note |
//! |---|---|---|
//! | `$2y$…`, `$2b$…`, `$2a$…` | `htpasswd -B` | bcrypt: recommended; checked on the blocking pool (it is slow on purpose) |
//! | `{SHA}base64` | `htpasswd -s` | unsalted SHA-1: only for compatibility |
//! | `{PLAIN}password` | by hand | the password itself: for tests and development |
//!
//! Apache's `$apr1$` (MD5) and `crypt(3)` hashes are refused when the file is loaded, with the line
//! number: a file that cannot be checked is an error at start-up, not a locked-out user later.
//!
//! Every comparison is constant-time (`subtle`), plain and `{SHA}` passwords are compared as SHA-256
//! digests so their length does not leak either, and an unknown user costs the same check as a known
//! one, so response times tell nothing about which names exist.
//!
//! ```
//! use rgi::ApplicationExt;
//! use rgi_middleware::basic_auth::{BasicAuthLayer, Htpasswd};
//!
//! let users = Htpasswd::parse("alice:{PLAIN}wonderland\n").unwrap();
//! let app = rgi::app_fn(|environ, start| async move {
//!     start.text(format!("hello {}", environ.get("REMOTE_USER").unwrap().to_string_lossy()))
//! })
//! .layer(BasicAuthLayer::new("staff", users));
//!
//! let client = rgi::testing::TestClient::new(app);
//! let denied = client.get("/").send_blocking();
//! assert_eq!(denied.status(), 401);
//! assert_eq!(denied.header("www-authenticate"), Some(r#"Basic realm="staff", charset="UTF-8""#));
//! // "alice:wonderland" in base64
//! let ok = client.get("/").header("authorization", "Basic YWxpY2U6d29uZGVybGFuZA==").send_blocking();
//! assert_eq!(ok.text(), "hello alice");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use http::header::{self, HeaderValue};
use http::StatusCode;
use rgi::{Application, Environ, Layer, Reply, StartResponse};
use sha1::Digest as _;
use subtle::ConstantTimeEq;

/// Compare two byte strings in constant time (for a given length): for credential closures.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// One stored password.
#[derive(Clone)]
enum Hash {
    /// SHA-256 of the plain password (compared as digests: constant time, length hidden).
    Plain([u8; 32]),
    /// The SHA-1 digest of `{SHA}`.
    Sha1([u8; 20]),
    /// A bcrypt hash string.
    Bcrypt(String),
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, &'static str> {
        if let Some(plain) = text.strip_prefix("{PLAIN}") {
            Ok(Hash::Plain(sha2::Sha256::digest(plain.as_bytes()).into()))
        } else if let Some(b64) = text.strip_prefix("{SHA}") {
            let digest = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "the {SHA} hash is not base64")?;
            let digest: [u8; 20] = digest
                .try_into()
                .map_err(|_| "the {SHA} hash is not 20 bytes")?;
            Ok(Hash::Sha1(digest))
        } else if ["$2y$", "$2b$", "$2a$"].iter().any(|p| text.starts_with(p)) {
            if text.len() != 60 {
                return Err("the bcrypt hash is not 60 characters");
            }
            Ok(Hash::Bcrypt(text.to_owned()))
        } else if text.starts_with("$apr1$") {
            Err("$apr1$ (MD5) hashes are not supported; use htpasswd -B (bcrypt)")
        } else {
            Err("unknown hash; use htpasswd -B (bcrypt), -s ({SHA}) or {PLAIN}")
        }
    }

    /// Whether `password` matches; bcrypt blocks for a while.
    fn verify(&self, password: &str) -> bool {
        match self {
            Hash::Plain(digest) => {
                let given: [u8; 32] = sha2::Sha256::digest(password.as_bytes()).into();
                constant_time_eq(&given, digest)
            }
            Hash::Sha1(digest) => {
                let given: [u8; 20] = sha1::Sha1::digest(password.as_bytes()).into();
                constant_time_eq(&given, digest)
            }
            // bcrypt compares its digests with `subtle` too.
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }

    fn is_slow(&self) -> bool {
        matches!(self, Hash::Bcrypt(_))
    }
}

/// A credentials file that cannot be used.
#[derive(Debug)]
pub enum HtpasswdError {
    /// The file could not be read.
    Io(std::io::Error),
    /// A line is not `user:hash` with a supported hash.
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for HtpasswdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HtpasswdError::Io(e) => write!(f, "htpasswd: {e}"),
            HtpasswdError::Line { line, reason } => write!(f, "htpasswd line {line}: {reason}"),
        }
    }
}

impl std::error::Error for HtpasswdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HtpasswdError::Io(e) => Some(e),
            HtpasswdError::Line { .. } => None,
        }
    }
}

/// Users and password hashes from an htpasswd-style file; see the [module docs](self).
#[derive(Clone)]
pub struct Htpasswd {
    users: HashMap<String, Hash>,
    /// Checked for unknown users, so that they cost as much as known ones.
    decoy: Hash,
}

impl fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Htpasswd {
    /// Read the file at `path`.
    ///
    /// # Errors
    ///
    /// When it cannot be read, or a line is malformed or uses an unsupported hash.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, HtpasswdError> {
        let text = std::fs::read_to_string(path).map_err(HtpasswdError::Io)?;
        Htpasswd::parse(&text)
    }

    /// Parse the file's text.
    ///
    /// # Errors
    ///
    /// As [`load`](Htpasswd::load).
    pub fn parse(text: &str) -> Result<Self, HtpasswdError> {
        let mut users = HashMap::new();
        let mut decoy = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason| HtpasswdError::Line {
                line: i + 1,
                reason,
            };
            let (user, hash) = line.split_once(':').ok_or_else(|| err("no `:`"))?;
            if user.is_empty() {
                return Err(err("empty user name"));
            }
            let hash = Hash::parse(hash).map_err(err)?;
            // The slowest kind present is the decoy: an unknown user never answers faster.
            if decoy.as_ref().is_none_or(|d: &Hash| !d.is_slow()) {
                decoy = Some(hash.clone());
            }
            users.insert(user.to_owned(), hash);
        }
        Ok(Htpasswd {
            users,
            decoy: decoy.unwrap_or(Hash::Plain([0; 32])),
        })
    }

    /// Whether `user` exists and `password` is theirs (may block on bcrypt).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let _ = self.decoy.verify(password);
                false
            }
        }
    }

    fn is_slow(&self, user: &str) -> bool {
        self.users.get(user).unwrap_or(&self.decoy).is_slow()
    }
}

type CheckFn = dyn Fn(&str, &str) -> bool + Send + Sync;

#[derive(Clone)]
enum Check {
    File(Arc<Htpasswd>),
    Fn(Arc<CheckFn>),
}

/// Makes [`BasicAuth`]; see the [module docs](self).
#[derive(Clone)]
pub struct BasicAuthLayer {
    challenge: HeaderValue,
    check: Check,
}

impl fmt::Debug for BasicAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuthLayer")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

/// `Basic realm="…", charset="UTF-8"` with the realm as a quoted string (control characters dropped).
fn challenge(realm: &str) -> HeaderValue {
    let mut quoted = String::with_capacity(realm.len());
    for c in realm.chars().filter(|c| !c.is_control()) {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    HeaderValue::try_from(format!(r#"Basic realm="{quoted}", charset="UTF-8""#))
        .unwrap_or(HeaderValue::from_static(r#"Basic charset="UTF-8""#))
}

impl BasicAuthLayer {
    /// Check credentials against `users`, asking for them in `realm`.
    pub fn new(realm: &str, users: Htpasswd) -> Self {
        BasicAuthLayer {
            challenge: challenge(realm),
            check: Check::File(Arc::new(users)),
        }
    }

    /// Check credentials with `f(user, password)`. Compare secrets with [`constant_time_eq`]; the
    /// closure runs on the async thread, so it must not block.
    pub fn with_fn<F>(realm: &str, f: F) -> Self
    where
        F: Fn(&str, &str) -> bool + Send + Sync + 'static,
    {
        BasicAuthLayer {
            challenge: challenge(realm),
            check: Check::Fn(Arc::new(f)),
        }
    }
}

impl<A> Layer<A> for BasicAuthLayer {
    type Service = BasicAuth<A>;

    fn layer(&self, inner: A) -> BasicAuth<A> {
        BasicAuth {
            inner,
            config: self.clone(),
        }
    }
}

/// The middleware made by [`BasicAuthLayer`].
#[derive(Clone)]
pub struct BasicAuth<A> {
    inner: A,
    config: BasicAuthLayer,
}

impl<A: fmt::Debug> fmt::Debug for BasicAuth<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// `Authorization: Basic base64(user:password)`, decoded; `None` when absent or malformed.
fn credentials(environ: &Environ) -> Option<(String, String)> {
    let value = environ
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl<A: Application> Application for BasicAuth<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let user = match credentials(&environ) {
            Some((user, password)) => {
                match self.verify(environ.executor(), &user, password).await {
                    Ok(true) => Some(user),
                    Ok(false) => None,
                    Err(overloaded) => return Err(overloaded),
                }
            }
            None => None,
        };
        let Some(user) = user else {
            return start
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, self.config.challenge.clone())
                .text("401 Unauthorized\n");
        };
        // A user name with a NUL cannot be a meta-variable: refused like a wrong password would be.
        if environ.set("REMOTE_USER", user).is_err() {
            return start
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, self.config.challenge.clone())
                .text("401 Unauthorized\n");
        }
        let _ = environ.set("AUTH_TYPE", "Basic");
        self.inner.call(environ, start).await
    }
}

impl<A> BasicAuth<A> {
    async fn verify(
        &self,
        executor: &rgi::SharedExecutor,
        user: &str,
        password: String,
    ) -> Result<bool, rgi::BoxError> {
        match &self.config.check {
            Check::Fn(f) => Ok(f(user, &password)),
            Check::File(users) if !users.is_slow(user) => Ok(users.verify(user, &password)),
            Check::File(users) => {
                // bcrypt takes tens of milliseconds by design: off the async thread.
                let (tx, rx) = tokio::sync::oneshot::channel();
                let users = Arc::clone(users);
                let user = user.to_owned();
                let job = executor.spawn_blocking(Box::new(move || {
                    let _ = tx.send(users.verify(&user, &password));
                }));
                job?;
                Ok(rx.await.unwrap_or(false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    fn app(layer: BasicAuthLayer) -> TestClient<BasicAuth<impl Application>> {
        TestClient::new(
            rgi::app_fn(|environ: Environ, start: StartResponse| async move {
                let var = |k| environ.get(k).map(|v| v.to_string_lossy().into_owned());
                start.text(format!("{:?} {:?}", var("REMOTE_USER"), var("AUTH_TYPE")))
            })
            .layer(layer),
        )
    }

    fn file() -> Htpasswd {
        let bcrypt = bcrypt::hash("b-secret", 4).unwrap();
        let sha = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(b"s-secret"));
        Htpasswd::parse(&format!(
            "# staff\n\nplain:{{PLAIN}}p-secret\nsha:{{SHA}}{sha}\nbc:{bcrypt}\n"
        ))
        .unwrap()
    }

    #[test]
    fn every_hash_kind_accepts_its_password_only() {
        let c = app(BasicAuthLayer::new("staff", file()));
        for (user, good) in [
            ("plain", "p-secret"),
            ("sha", "s-secret"),
            ("bc", "b-secret"),
        ] {
            let r = c
                .get("/")
                .header("authorization", basic(&format!("{user}:{good}")))
                .send_blocking();
            assert_eq!(r.text(), format!("Some({user:?}) Some(\"Basic\")"));
            for bad in ["", "wrong", &good[..good.len() - 1], &format!("{good}x")] {
                let r = c
                    .get("/")
                    .header("authorization", basic(&format!("{user}:{bad}")))
                    .send_blocking();
                assert_eq!(r.status(), 401, "{user}:{bad}");
            }
        }
        let r = c
            .get("/")
            .header("authorization", basic("nobody:p-secret"))
            .send_blocking();
        assert_eq!(r.status(), 401);
    }

    #[test]
    fn malformed_authorization_headers_are_401() {
        let c = app(BasicAuthLayer::new("a \"quoted\" realm", file()));
        for bad in [
            "Basic",
            "Basic !!!notbase64",
            "Bearer cGxhaW46cC1zZWNyZXQ=",
            "Basic cGxhaW4tcC1zZWNyZXQ=", // "plain-p-secret": no colon
            "Basic //79/A==",             // not UTF-8
            "",
        ] {
            let r = c.get("/").header("authorization", bad).send_blocking();
            assert_eq!(r.status(), 401, "{bad}");
            assert_eq!(
                r.header("www-authenticate"),
                Some(r#"Basic realm="a \"quoted\" realm", charset="UTF-8""#)
            );
        }
        // The scheme is case-insensitive, the password may contain colons.
        let c = app(BasicAuthLayer::new(
            "x",
            Htpasswd::parse("u:{PLAIN}a:b").unwrap(),
        ));
        let r = c
            .get("/")
            .header("authorization", basic("u:a:b").replace("Basic", "bAsIc"))
            .send_blocking();
        assert_eq!(r.status(), 200);
    }

    #[test]
    fn a_closure_checks_credentials() {
        let layer = BasicAuthLayer::with_fn("api", |user, password| {
            user == "bot" && constant_time_eq(password.as_bytes(), b"token")
        });
        let c = app(layer);
        assert_eq!(
            c.get("/")
                .header("authorization", basic("bot:token"))
                .send_blocking()
                .status(),
            200
        );
        assert_eq!(
            c.get("/")
                .header("authorization", basic("bot:tokem"))
                .send_blocking()
                .status(),
            401
        );
    }

    #[test]
    fn unusable_files_are_errors_with_the_line() {
        for (text, line) in [
            ("ok:{PLAIN}x\nbroken", 2),
            (":{PLAIN}x", 1),
            ("u:$apr1$abc$def", 1),
            ("u:{SHA}notbase64!", 1),
            ("u:{SHA}YWJj", 1),
            ("u:$2y$short", 1),
            ("u:crypt0123", 1),
        ] {
            match Htpasswd::parse(text) {
                Err(HtpasswdError::Line { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            Htpasswd::load("/no/such/htpasswd"),
            Err(HtpasswdError::Io(_))
        ));
    }

    #[test]
    fn comparisons_are_constant_time_digests() {
        // Plain passwords are stored and compared as SHA-256 digests with `subtle`: equal-length
        // inputs whatever the password, so neither contents nor length shape the time taken.
        let Hash::Plain(stored) = Hash::parse("{PLAIN}secret").unwrap() else {
            panic!("not plain")
        };
        assert_eq!(stored, <[u8; 32]>::from(sha2::Sha256::digest(b"secret")));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        // An unknown user is checked against the slowest hash in the file.
        let users = file();
        assert!(users.decoy.is_slow());
        assert!(!users.verify("ghost", "b-secret"));
    }
}
