//! [`SessionLayer`]: loads the session before the inner application runs, saves it after.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use rgi::{Application, Environ, Errors, Reply, Response, Scheme, StartResponse};

use super::handle::{Session, SessionData};
use super::keys::{KeyError, Keys, SecretConfig};
use super::seal::{self, Envelope, Rejected};
use super::store::{unix_now, Changes, SessionStore, StoreError};

/// Browsers drop a cookie whose `Set-Cookie` line (name, value and attributes) exceeds 4096 bytes.
pub const DEFAULT_MAX_COOKIE_BYTES: usize = 4096;

/// The default cookie name.
pub const DEFAULT_COOKIE_NAME: &str = "rgi_session";

/// How long a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Expires this long after the last request that re-issued it. To avoid a new cookie on every
    /// response, the session is re-issued once a quarter of this has passed since it was last.
    Sliding(Duration),
    /// Expires this long after it was created (login), however active.
    Absolute(Duration),
}

impl Expiry {
    fn lifetime(self) -> Duration {
        match self {
            Expiry::Sliding(d) | Expiry::Absolute(d) => d,
        }
    }
}

/// Why the session layer could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionConfigError {
    /// No usable key (see [`super::keys`]).
    Keys(KeyError),
    /// The cookie name is not a valid cookie token.
    CookieName(String),
    /// The lifetime is zero.
    ZeroLifetime,
}

impl fmt::Display for SessionConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionConfigError::Keys(e) => e.fmt(f),
            SessionConfigError::CookieName(name) => {
                write!(f, "rgi sessions: `{name}` is not a valid cookie name")
            }
            SessionConfigError::ZeroLifetime => {
                f.write_str("rgi sessions: the session lifetime is zero")
            }
        }
    }
}

impl std::error::Error for SessionConfigError {}

impl From<KeyError> for SessionConfigError {
    fn from(e: KeyError) -> Self {
        SessionConfigError::Keys(e)
    }
}

/// Configures a [`SessionLayer`]; from [`SessionLayer::builder`].
#[must_use]
pub struct SessionBuilder {
    keys: Option<Keys>,
    secrets: Option<SecretConfig>,
    store: Option<Arc<dyn SessionStore>>,
    cookie_name: String,
    expiry: Expiry,
    max_cookie_bytes: usize,
    debug: Option<bool>,
}

impl fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("cookie_name", &self.cookie_name)
            .field("expiry", &self.expiry)
            .field("server_side", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// Use this key ring (otherwise the keys come from [`SessionBuilder::secrets`]).
    pub fn keys(mut self, keys: Keys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Take the keys from these environment values (default: [`SecretConfig::from_process_env`]).
    pub fn secrets(mut self, secrets: SecretConfig) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Keep values in `store`; the cookie then holds only the session's id. Default: the whole
    /// session in the cookie.
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The cookie's name (default `rgi_session`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// How long sessions live (default: sliding, 14 days).
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// The largest `Set-Cookie` line sent (default 4096). A larger session is not saved: the error is
    /// written to `rgi.errors` and the response goes out without the cookie.
    pub fn max_cookie_bytes(mut self, bytes: usize) -> Self {
        self.max_cookie_bytes = bytes;
        self
    }

    /// Write a `debug:` line to `rgi.errors` for each presented cookie that yields an empty session
    /// (tampered, expired, retired key). Default: on unless `RGI_ENV=production`.
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = Some(on);
        self
    }

    /// Build the layer.
    ///
    /// # Errors
    ///
    /// No key in production, a bad secret, a bad cookie name, a zero lifetime.
    pub fn build(self) -> Result<SessionLayer, SessionConfigError> {
        let secrets = self.secrets.unwrap_or_else(SecretConfig::from_process_env);
        let keys = match self.keys {
            Some(keys) => keys,
            None => {
                let resolved = secrets.resolve()?;
                if let Some(warning) = resolved.warning {
                    eprintln!("{warning}");
                }
                resolved.keys
            }
        };
        let name_ok = !self.cookie_name.is_empty()
            && self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !name_ok {
            return Err(SessionConfigError::CookieName(self.cookie_name));
        }
        if self.expiry.lifetime().as_secs() == 0 {
            return Err(SessionConfigError::ZeroLifetime);
        }
        Ok(SessionLayer {
            config: Arc::new(Config {
                keys,
                store: self.store,
                cookie_name: self.cookie_name,
                expiry: self.expiry,
                max_cookie_bytes: self.max_cookie_bytes,
                debug: self.debug.unwrap_or(!secrets.is_production()),
            }),
        })
    }
}

struct Config {
    keys: Keys,
    store: Option<Arc<dyn SessionStore>>,
    cookie_name: String,
    expiry: Expiry,
    max_cookie_bytes: usize,
    debug: bool,
}

/// The session middleware as a layer: wrap an application with `layer.layer(app)` (or the kit's
/// `app.layer(layer)`). Cheap to clone.
///
/// ```
/// use rgi_middleware::session::{Keys, Session, SessionLayer};
/// use rgi::Layer as _;
///
/// let app = rgi::app_fn(|environ, start| async move {
///     let session = Session::from_environ(&environ).expect("session layer");
///     let n: u32 = session.get("n")?.unwrap_or(0);
///     session.insert("n", &(n + 1))?;
///     Ok(start.respond(http::StatusCode::OK, Default::default(), format!("{n}"))?)
/// });
/// let layer = SessionLayer::builder().keys(Keys::ephemeral()?).build()?;
/// let client = rgi::testing::TestClient::new(layer.layer(app));
/// let first = client.get("/").send_blocking();
/// let cookie = first.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
/// assert_eq!(client.get("/").header("cookie", cookie).send_blocking().text(), "1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    config: Arc<Config>,
}

impl SessionLayer {
    /// Start configuring: cookie sessions, sliding 14-day expiry, keys from the environment.
    pub fn builder() -> SessionBuilder {
        SessionBuilder {
            keys: None,
            secrets: None,
            store: None,
            cookie_name: DEFAULT_COOKIE_NAME.to_owned(),
            expiry: Expiry::Sliding(Duration::from_secs(14 * 24 * 3600)),
            max_cookie_bytes: DEFAULT_MAX_COOKIE_BYTES,
            debug: None,
        }
    }
}

impl fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie_name", &self.config.cookie_name)
            .field("expiry", &self.config.expiry)
            .field("server_side", &self.config.store.is_some())
            .field("keys", &self.config.keys)
            .finish()
    }
}

impl<A: Application> tower_layer::Layer<A> for SessionLayer {
    type Service = SessionMiddleware<A>;

    fn layer(&self, inner: A) -> SessionMiddleware<A> {
        SessionMiddleware {
            inner,
            config: self.config.clone(),
        }
    }
}

/// An application wrapped by a [`SessionLayer`].
#[derive(Clone)]
pub struct SessionMiddleware<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A> fmt::Debug for SessionMiddleware<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("cookie_name", &self.config.cookie_name)
            .finish_non_exhaustive()
    }
}

/// What the request brought.
struct Loaded {
    session: Session,
    /// The opened envelope of a valid cookie.
    envelope: Option<Envelope>,
    /// The valid cookie was sealed by an older key.
    rekey: bool,
    /// Some cookie of our name was presented (valid or not): a logout must remove it.
    presented: bool,
    /// The server-side id, when the store knows it.
    id: Option<String>,
}

/// Where the cookie is sent and how.
struct CookieScope {
    /// Borrowed `/` at the root (no allocation for the usual case).
    path: Cow<'static, str>,
    secure: bool,
}

impl<A: Application> Application for SessionMiddleware<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let now = unix_now();
        let errors = environ.errors().clone();
        let presented = cookie_values(environ.headers(), &self.config.cookie_name);
        let loaded = match self.load(presented, &errors, now).await {
            Ok(loaded) => loaded,
            Err(error) => {
                errors.log(format_args!(
                    "rgi sessions: cannot load the session: {error}"
                ));
                return unavailable(start);
            }
        };
        let scope = CookieScope {
            path: cookie_path(environ.script_name()),
            secure: environ.url_scheme() == Scheme::Https,
        };
        environ.extensions_mut().insert(loaded.session.clone());
        let mut response = self.inner.call(environ, start).await?;
        match self.save(loaded, now).await {
            Ok(None) => Ok(response),
            Ok(Some(issue)) => {
                self.set_cookie(&mut response, issue, &scope, now, &errors);
                Ok(response)
            }
            Err(error) => {
                errors.log(format_args!(
                    "rgi sessions: cannot save the session: {error}"
                ));
                unavailable(response.discard())
            }
        }
    }
}

/// The cookie to send after a save.
enum Issue {
    /// A sealed session.
    Set(Envelope),
    /// Remove the cookie (logout, or every value removed).
    Remove,
}

impl<A> SessionMiddleware<A> {
    /// Open the presented cookie values (first that opens wins) and load the session.
    async fn load(
        &self,
        values: Vec<String>,
        errors: &Errors,
        now: u64,
    ) -> Result<Loaded, StoreError> {
        let config = &self.config;
        let presented = !values.is_empty();
        let mut opened = None;
        let mut rejected = None;
        for value in values {
            match seal::open(&config.keys, &config.cookie_name, &value, now) {
                Ok(ok) => {
                    opened = Some(ok);
                    break;
                }
                Err(why) => rejected = Some(why),
            }
        }
        if let (None, Some(why), true) = (&opened, rejected, config.debug) {
            log_rejected(errors, &config.cookie_name, why);
        }
        let Some((envelope, rekey)) = opened else {
            return Ok(Loaded {
                session: Session::default(),
                envelope: None,
                rekey: false,
                presented,
                id: None,
            });
        };
        let (data, id) = match (&config.store, &envelope.id) {
            (Some(store), Some(id)) => match store.load(id).await? {
                Some(data) => (data, Some(id.clone())),
                // Unknown or expired in the store: a new session, never the presented id.
                None => (SessionData::new(), None),
            },
            _ => (envelope.data.clone().unwrap_or_default(), None),
        };
        Ok(Loaded {
            session: Session::with_data(data),
            envelope: Some(envelope),
            rekey,
            presented,
            id,
        })
    }

    /// Persist the request's changes; the cookie to send, if any.
    async fn save(&self, loaded: Loaded, now: u64) -> Result<Option<Issue>, StoreError> {
        let config = &self.config;
        let (data, changed, regenerate, destroyed) = {
            let mut state = loaded.session.lock();
            (
                std::mem::take(&mut state.data),
                std::mem::take(&mut state.changed),
                state.regenerate,
                state.destroyed,
            )
        };
        if let (true, Some(store), Some(id)) = (destroyed, &config.store, &loaded.id) {
            store.destroy(id).await?;
        }
        let fresh = loaded.envelope.is_none() || destroyed || regenerate;
        if data.is_empty() {
            // An emptied session is no session: its record goes too.
            if let (false, Some(store), Some(id)) = (destroyed, &config.store, &loaded.id) {
                if !changed.is_empty() {
                    store.destroy(id).await?;
                }
            }
            let emptied = destroyed || !changed.is_empty();
            return Ok((emptied && loaded.presented).then_some(Issue::Remove));
        }
        let ctd = match &loaded.envelope {
            Some(envelope) if !fresh => envelope.ctd,
            _ => now,
        };
        let exp = match config.expiry {
            Expiry::Sliding(d) => now + d.as_secs(),
            Expiry::Absolute(d) => ctd + d.as_secs(),
        };
        let renew = match (config.expiry, &loaded.envelope) {
            (Expiry::Sliding(d), Some(envelope)) => now >= envelope.iat + d.as_secs() / 4,
            _ => false,
        };
        if !(fresh || renew || loaded.rekey || !changed.is_empty()) {
            return Ok(None);
        }
        let mut envelope = Envelope {
            iat: now,
            ctd,
            exp,
            data: None,
            id: None,
        };
        let ttl = Duration::from_secs(exp.saturating_sub(now).max(1));
        match &config.store {
            None => envelope.data = Some(data),
            Some(store) => {
                let id = match (&loaded.id, fresh) {
                    (Some(id), false) => {
                        let changes = Changes {
                            removed: changed
                                .iter()
                                .filter(|k| !data.contains_key(*k))
                                .cloned()
                                .collect(),
                            set: data
                                .into_iter()
                                .filter(|(k, _)| changed.contains(k))
                                .collect(),
                        };
                        store.save(id, &changes, ttl).await?;
                        id.clone()
                    }
                    _ => {
                        let id = new_session_id().map_err(StoreError::new)?;
                        let changes = Changes {
                            set: data,
                            removed: Default::default(),
                        };
                        store.save(&id, &changes, ttl).await?;
                        if let (false, Some(old)) = (destroyed, &loaded.id) {
                            store.destroy(old).await?;
                        }
                        id
                    }
                };
                envelope.id = Some(id);
            }
        }
        Ok(Some(Issue::Set(envelope)))
    }

    fn set_cookie(
        &self,
        response: &mut Response,
        issue: Issue,
        scope: &CookieScope,
        now: u64,
        errors: &Errors,
    ) {
        let config = &self.config;
        let (value, max_age) = match &issue {
            Issue::Set(envelope) => (
                seal::seal(&config.keys, &config.cookie_name, envelope),
                envelope.exp.saturating_sub(now),
            ),
            Issue::Remove => (String::new(), 0),
        };
        let cookie = Cookie::build((config.cookie_name.as_str(), value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(scope.secure)
            .path(&*scope.path)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age).unwrap_or(i64::MAX),
            ))
            .build()
            .to_string();
        if cookie.len() > config.max_cookie_bytes {
            errors.log(format_args!(
                "rgi sessions: the session cookie would be {} bytes, over the {}-byte limit \
                 browsers keep; the session was NOT saved. Store less in the session, or use a \
                 server-side store.",
                cookie.len(),
                config.max_cookie_bytes
            ));
            return;
        }
        if let Ok(value) = HeaderValue::try_from(cookie) {
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, value);
            // A response that sets a session cookie is this user's alone.
            headers.append(header::VARY, HeaderValue::from_static("cookie"));
        }
    }
}

/// A new session id: 32 bytes from the operating system's CSPRNG, URL-safe base64 (43 characters).
pub(crate) fn new_session_id() -> Result<String, getrandom::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Every value of a cookie called `name` in the request's `Cookie` headers.
fn cookie_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
        .collect()
}

fn log_rejected(errors: &Errors, name: &str, why: Rejected) {
    errors.log(format_args!(
        "debug: rgi sessions: cookie `{name}` {}; starting an empty session",
        why.describe()
    ));
}

/// The cookie's `Path`: the application's SCRIPT_NAME, so two apps mounted side by side keep apart.
fn cookie_path(script_name: &[u8]) -> Cow<'static, str> {
    match std::str::from_utf8(script_name) {
        Ok(path) if path.starts_with('/') && !path.contains(';') => Cow::Owned(path.to_owned()),
        _ => Cow::Borrowed("/"),
    }
}

fn unavailable(start: StartResponse) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(start.respond(
        StatusCode::SERVICE_UNAVAILABLE,
        headers,
        "503 Service Unavailable: the session store cannot be reached\n",
    )?)
}
