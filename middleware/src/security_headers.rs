//! Security headers: the response headers every site should send, set once for the whole application.
//!
//! | header | default | note |
//! |---|---|---|
//! | `Strict-Transport-Security` | `max-age=63072000; includeSubDomains` | only on `https` requests (`rgi.url_scheme`, so behind a proxy put [`ProxyFix`](crate::proxy_fix) further out); RFC 6797 says to ignore it over plain HTTP |
//! | `X-Content-Type-Options` | `nosniff` | |
//! | `X-Frame-Options` | `DENY` | `SAMEORIGIN` for sites that frame themselves |
//! | `Referrer-Policy` | `strict-origin-when-cross-origin` | |
//! | `Content-Security-Policy` | none | a fixed policy, or one made per request by a closure (e.g. with a nonce the application also needs) |
//!
//! A header the application set itself is never overwritten: a page that must be framed sets its own
//! `X-Frame-Options`, and that one is sent.
//!
//! ```
//! use http::HeaderValue;
//! use rgi::ApplicationExt;
//! use rgi_middleware::security_headers::SecurityHeadersLayer;
//!
//! let app = rgi::app_fn(|_, start| async move { start.html("<p>hi</p>") })
//!     .layer(SecurityHeadersLayer::new().content_security_policy("default-src 'self'"));
//! let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
//! assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
//! assert_eq!(response.header("content-security-policy"), Some("default-src 'self'"));
//! assert_eq!(response.header("strict-transport-security"), None); // plain http
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use rgi::{Application, Environ, Layer, Reply, Scheme, StartResponse};

type CspFn = dyn Fn(&mut Environ) -> Option<HeaderValue> + Send + Sync;

#[derive(Clone)]
enum Csp {
    None,
    Fixed(HeaderValue),
    PerRequest(Arc<CspFn>),
}

#[derive(Clone)]
struct Config {
    hsts: Option<HeaderValue>,
    /// Fixed headers sent on every response: nosniff, frame options, referrer policy.
    fixed: Vec<(HeaderName, HeaderValue)>,
    csp: Csp,
}

/// Makes [`SecurityHeaders`]; see the [module docs](self).
#[derive(Clone)]
pub struct SecurityHeadersLayer {
    config: Arc<Config>,
}

impl fmt::Debug for SecurityHeadersLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityHeadersLayer")
            .field("hsts", &self.config.hsts)
            .field("fixed", &self.config.fixed)
            .finish_non_exhaustive()
    }
}

impl Default for SecurityHeadersLayer {
    fn default() -> Self {
        SecurityHeadersLayer::new()
    }
}

impl SecurityHeadersLayer {
    /// The defaults in the [module docs](self).
    pub fn new() -> Self {
        SecurityHeadersLayer {
            config: Arc::new(Config {
                hsts: Some(HeaderValue::from_static(
                    "max-age=63072000; includeSubDomains",
                )),
                fixed: vec![
                    (
                        header::X_CONTENT_TYPE_OPTIONS,
                        HeaderValue::from_static("nosniff"),
                    ),
                    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                    (
                        header::REFERRER_POLICY,
                        HeaderValue::from_static("strict-origin-when-cross-origin"),
                    ),
                ],
                csp: Csp::None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    fn set_fixed(self, name: HeaderName, value: Option<HeaderValue>) -> Self {
        self.edit(|c| {
            c.fixed.retain(|(n, _)| *n != name);
            if let Some(value) = value {
                c.fixed.push((name, value));
            }
        })
    }

    /// HSTS with this `max-age`, `includeSubDomains` and `preload` as given (only sent over https).
    pub fn hsts(self, max_age: Duration, include_subdomains: bool, preload: bool) -> Self {
        let mut value = format!("max-age={}", max_age.as_secs());
        if include_subdomains {
            value.push_str("; includeSubDomains");
        }
        if preload {
            value.push_str("; preload");
        }
        let value = HeaderValue::try_from(value).ok();
        self.edit(|c| c.hsts = value)
    }

    /// Send no `Strict-Transport-Security` (a site that is also served over plain HTTP on purpose).
    pub fn without_hsts(self) -> Self {
        self.edit(|c| c.hsts = None)
    }

    /// `X-Frame-Options`: `DENY` (default), `SAMEORIGIN`, or `None` to send none.
    pub fn frame_options(self, value: Option<HeaderValue>) -> Self {
        self.set_fixed(header::X_FRAME_OPTIONS, value)
    }

    /// `Referrer-Policy` (default `strict-origin-when-cross-origin`), or `None` to send none.
    pub fn referrer_policy(self, value: Option<HeaderValue>) -> Self {
        self.set_fixed(header::REFERRER_POLICY, value)
    }

    /// Send no `X-Content-Type-Options: nosniff`.
    pub fn without_nosniff(self) -> Self {
        self.set_fixed(header::X_CONTENT_TYPE_OPTIONS, None)
    }

    /// A fixed `Content-Security-Policy`. A policy that is not a valid header value (CR, LF, NUL) sends
    /// none; build it with `HeaderValue` to catch that early.
    pub fn content_security_policy(self, policy: &str) -> Self {
        let csp = match HeaderValue::from_str(policy) {
            Ok(value) => Csp::Fixed(value),
            Err(_) => Csp::None,
        };
        self.edit(|c| c.csp = csp)
    }

    /// A `Content-Security-Policy` made per request. The closure gets the environ before the
    /// application does, so it can leave what the application needs in an extension (a nonce for
    /// inline scripts); `None` sends no policy for that request.
    ///
    /// ```
    /// use http::HeaderValue;
    /// use rgi::ApplicationExt;
    /// use rgi_middleware::request_id::RequestId;
    /// use rgi_middleware::security_headers::SecurityHeadersLayer;
    ///
    /// #[derive(Clone)]
    /// struct Nonce(String);
    ///
    /// let app = rgi::app_fn(|environ, start| async move {
    ///     let nonce = environ.extensions().get::<Nonce>().unwrap().0.clone();
    ///     start.html(format!("<script nonce=\"{nonce}\">go()</script>"))
    /// })
    /// .layer(SecurityHeadersLayer::new().content_security_policy_fn(|environ| {
    ///     let nonce = RequestId::generate().to_string(); // 128 random bits
    ///     let policy = format!("script-src 'nonce-{nonce}'");
    ///     environ.extensions_mut().insert(Nonce(nonce));
    ///     HeaderValue::try_from(policy).ok()
    /// }));
    /// let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
    /// let policy = response.header("content-security-policy").unwrap();
    /// let nonce = policy.strip_prefix("script-src 'nonce-").unwrap().trim_end_matches('\'');
    /// assert!(response.text().contains(nonce));
    /// ```
    pub fn content_security_policy_fn<F>(self, f: F) -> Self
    where
        F: Fn(&mut Environ) -> Option<HeaderValue> + Send + Sync + 'static,
    {
        self.edit(|c| c.csp = Csp::PerRequest(Arc::new(f)))
    }
}

impl<A> Layer<A> for SecurityHeadersLayer {
    type Service = SecurityHeaders<A>;

    fn layer(&self, inner: A) -> SecurityHeaders<A> {
        SecurityHeaders {
            inner,
            config: Arc::clone(&self.config),
        }
    }
}

/// The middleware made by [`SecurityHeadersLayer`].
#[derive(Clone)]
pub struct SecurityHeaders<A> {
    inner: A,
    config: Arc<Config>,
}

impl<A: fmt::Debug> fmt::Debug for SecurityHeaders<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityHeaders")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<A: Application> Application for SecurityHeaders<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let https = environ.url_scheme() == Scheme::Https;
        let csp = match &self.config.csp {
            Csp::None => None,
            Csp::Fixed(value) => Some(value.clone()),
            Csp::PerRequest(f) => f(&mut environ),
        };
        let mut response = self.inner.call(environ, start).await?;
        let headers = response.headers_mut();
        for (name, value) in &self.config.fixed {
            headers.entry(name).or_insert_with(|| value.clone());
        }
        if let (true, Some(hsts)) = (https, &self.config.hsts) {
            headers
                .entry(header::STRICT_TRANSPORT_SECURITY)
                .or_insert_with(|| hsts.clone());
        }
        if let Some(csp) = csp {
            headers
                .entry(header::CONTENT_SECURITY_POLICY)
                .or_insert(csp);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::convert::ConnInfo;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    fn app() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            match environ.path_info() {
                b"/framed" => start
                    .status(http::StatusCode::OK)
                    .headers([
                        ("x-frame-options", "SAMEORIGIN"),
                        ("content-security-policy", "mine"),
                    ])
                    .text("own"),
                _ => start.text("plain"),
            }
        })
    }

    fn https() -> ConnInfo {
        ConnInfo {
            scheme: Scheme::Https,
            ..ConnInfo::default()
        }
    }

    #[test]
    fn defaults_and_hsts_only_over_https() {
        let layer = SecurityHeadersLayer::new();
        let r = TestClient::new(app().layer(layer.clone()))
            .get("/")
            .send_blocking();
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(
            r.header("referrer-policy"),
            Some("strict-origin-when-cross-origin")
        );
        assert_eq!(r.header("strict-transport-security"), None);
        assert_eq!(r.header("content-security-policy"), None);
        let r = TestClient::new(app().layer(layer))
            .with_conn(https())
            .get("/")
            .send_blocking();
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=63072000; includeSubDomains")
        );
    }

    #[test]
    fn the_applications_headers_win() {
        let layer = SecurityHeadersLayer::new().content_security_policy("default-src 'none'");
        let r = TestClient::new(app().layer(layer))
            .get("/framed")
            .send_blocking();
        assert_eq!(r.header("x-frame-options"), Some("SAMEORIGIN"));
        assert_eq!(r.header("content-security-policy"), Some("mine"));
        assert_eq!(r.headers().get_all("x-frame-options").iter().count(), 1);
    }

    #[test]
    fn everything_is_configurable() {
        let layer = SecurityHeadersLayer::new()
            .hsts(Duration::from_secs(60), false, true)
            .frame_options(None)
            .referrer_policy(Some(HeaderValue::from_static("no-referrer")))
            .without_nosniff()
            .content_security_policy_fn(|environ| {
                (environ.path_info() == b"/")
                    .then(|| HeaderValue::from_static("default-src 'self'"))
            });
        let c = TestClient::new(app().layer(layer)).with_conn(https());
        let r = c.get("/").send_blocking();
        assert_eq!(
            r.header("strict-transport-security"),
            Some("max-age=60; preload")
        );
        assert_eq!(r.header("x-frame-options"), None);
        assert_eq!(r.header("x-content-type-options"), None);
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(
            r.header("content-security-policy"),
            Some("default-src 'self'")
        );
        assert_eq!(
            c.get("/other")
                .send_blocking()
                .header("content-security-policy"),
            None
        );
        let r = TestClient::new(app().layer(SecurityHeadersLayer::new().without_hsts()))
            .with_conn(https())
            .get("/")
            .send_blocking();
        assert_eq!(r.header("strict-transport-security"), None);
        let bad = SecurityHeadersLayer::new().content_security_policy("a\nb");
        let r = TestClient::new(app().layer(bad)).get("/").send_blocking();
        assert_eq!(r.header("content-security-policy"), None);
    }
}
