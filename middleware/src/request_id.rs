//! Request ids: every request gets an `X-Request-Id`, generated here or trusted from the proxy.
//!
//! The id is stored in the environ's extensions as a [`RequestId`] (for the application, the panic
//! catcher and error pages), written back into the request's `X-Request-Id` header (so an access log
//! format with `%({x-request-id}i)s` shows it), and echoed in the response's `X-Request-Id` header
//! (unless the application set its own).
//!
//! A generated id is 128 unpredictable bits (a keyed hash of a counter, its keys drawn from the operating
//! system once per thread: no system call per request), as 32 lowercase hex digits. An incoming
//! id is used only when [`RequestIdLayer::trust_incoming`] is on (the proxy in front sets or sanitises
//! the header, as nginx's `proxy_set_header X-Request-Id $request_id` does), and only if it looks like an
//! id: 1 to 128 characters of `A-Z a-z 0-9 - _ . : + / =`. Anything else is replaced, so a client cannot
//! smuggle spaces, quotes or control characters into logs.
//!
//! ```
//! use rgi::ApplicationExt;
//! use rgi_middleware::request_id::{RequestId, RequestIdLayer};
//!
//! let app = rgi::app_fn(|environ, start| async move {
//!     let id = environ.extensions().get::<RequestId>().map(|id| id.to_string());
//!     start.text(id.unwrap_or_default())
//! })
//! .layer(RequestIdLayer::new());
//!
//! let response = rgi::testing::TestClient::new(app).get("/").send_blocking();
//! let echoed = response.header("x-request-id").unwrap();
//! assert_eq!(echoed.len(), 32);
//! assert_eq!(response.text(), echoed);
//! ```

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use http::header::{HeaderName, HeaderValue};
use rgi::{Application, Environ, Layer, Reply, StartResponse};

/// The default header: `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id accepted when trusted.
const MAX_LEN: usize = 128;

/// The id of one request, in the environ's extensions. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A new random id: 128 unpredictable bits as 32 lowercase hex digits (no system call: see the
    /// [module docs](self)).
    pub fn generate() -> Self {
        let bytes = random_128();
        let mut hex = [0u8; 32];
        for (i, b) in bytes.iter().enumerate() {
            hex[2 * i] = HEX[usize::from(b >> 4)];
            hex[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        // Hex digits are always a valid header value.
        RequestId(HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("0")))
    }

    /// `value` as an id, when it looks like one (1–128 characters of `A-Z a-z 0-9 - _ . : + / =`).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let valid = !value.is_empty()
            && value.len() <= MAX_LEN
            && value
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(&b));
        if !valid {
            return None;
        }
        HeaderValue::from_bytes(value).ok().map(RequestId)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever accepted or generated.
        self.0.to_str().unwrap_or("")
    }

    /// The id as a header value.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

thread_local! {
    /// This thread's id generator: SipHash keys drawn from the operating system when the thread
    /// first makes an id, and a counter.
    static GENERATOR: (RandomState, Cell<u64>) = (RandomState::new(), Cell::new(0));
}

/// 128 bits no client can predict, without a system call per request: a keyed hash (SipHash, whose
/// keys `RandomState` draws from the operating system once per thread) of a per-thread counter,
/// twice. Ids of different threads differ by their keys; a thread's ids by its counter.
fn random_128() -> [u8; 16] {
    GENERATOR.with(|(keys, counter)| {
        let n = counter.get();
        counter.set(n.wrapping_add(2));
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&keys.hash_one(n).to_le_bytes());
        bytes[8..].copy_from_slice(&keys.hash_one(n.wrapping_add(1)).to_le_bytes());
        bytes
    })
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

/// Gives every request a [`RequestId`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RequestIdLayer {
    header: HeaderName,
    trust_incoming: bool,
}

impl Default for RequestIdLayer {
    fn default() -> Self {
        RequestIdLayer::new()
    }
}

impl RequestIdLayer {
    /// Generate an id for every request, in `X-Request-Id`; incoming ids are not trusted.
    pub fn new() -> Self {
        RequestIdLayer {
            header: X_REQUEST_ID,
            trust_incoming: false,
        }
    }

    /// Use another header name (e.g. `X-Correlation-Id`) for the incoming and the echoed id.
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }

    /// Keep a well-formed id the request already carries (set by a proxy you control). Off by default:
    /// a client-chosen id could collide with another request's in your logs.
    pub fn trust_incoming(mut self, trust: bool) -> Self {
        self.trust_incoming = trust;
        self
    }
}

impl<A> Layer<A> for RequestIdLayer {
    type Service = SetRequestId<A>;

    fn layer(&self, inner: A) -> SetRequestId<A> {
        SetRequestId {
            inner,
            config: self.clone(),
        }
    }
}

/// The middleware made by [`RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct SetRequestId<A> {
    inner: A,
    config: RequestIdLayer,
}

impl<A: Application> Application for SetRequestId<A> {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let header = &self.config.header;
        let incoming = environ
            .headers()
            .get(header)
            .filter(|_| self.config.trust_incoming)
            .and_then(|v| RequestId::parse(v.as_bytes()));
        let id = incoming.unwrap_or_else(RequestId::generate);
        environ
            .headers_mut()
            .insert(header.clone(), id.header_value().clone());
        environ.extensions_mut().insert(id.clone());
        let mut response = self.inner.call(environ, start).await?;
        if !response.headers().contains_key(header) {
            response
                .headers_mut()
                .insert(header.clone(), id.header_value().clone());
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;
    use rgi::ApplicationExt;

    fn echo() -> impl Application {
        rgi::app_fn(|environ: Environ, start: StartResponse| async move {
            let ext = environ.extensions().get::<RequestId>().cloned();
            let header = environ.headers().get(X_REQUEST_ID).cloned();
            assert_eq!(ext.as_ref().map(RequestId::header_value), header.as_ref());
            start.text(ext.map(|id| id.to_string()).unwrap_or_default())
        })
    }

    #[test]
    fn generated_ids_are_unique_hex_and_echoed() {
        let client = TestClient::new(echo().layer(RequestIdLayer::new()));
        let a = client.get("/").send_blocking();
        let b = client.get("/").send_blocking();
        let (ia, ib) = (
            a.header("x-request-id").unwrap(),
            b.header("x-request-id").unwrap(),
        );
        assert_ne!(ia, ib);
        assert_eq!(a.text(), ia);
        assert!(
            ia.len() == 32 && ia.bytes().all(|c| HEX.contains(&c)),
            "{ia}"
        );
    }

    #[test]
    fn incoming_ids_are_ignored_unless_trusted() {
        let untrusted = TestClient::new(echo().layer(RequestIdLayer::new()));
        let r = untrusted
            .get("/")
            .header("x-request-id", "abc-123")
            .send_blocking();
        assert_ne!(r.text(), "abc-123");

        let trusted = TestClient::new(echo().layer(RequestIdLayer::new().trust_incoming(true)));
        let r = trusted
            .get("/")
            .header("x-request-id", "abc-123")
            .send_blocking();
        assert_eq!(
            (r.text().as_str(), r.header("x-request-id")),
            ("abc-123", Some("abc-123"))
        );
    }

    #[test]
    fn malformed_trusted_ids_are_replaced() {
        let trusted = TestClient::new(echo().layer(RequestIdLayer::new().trust_incoming(true)));
        for bad in ["a b", "x\"y", "", &"x".repeat(129), "é"] {
            let r = trusted.get("/").header("x-request-id", bad).send_blocking();
            assert_eq!(r.text().len(), 32, "{bad:?} was kept");
        }
    }

    #[test]
    fn another_header_name_and_the_apps_own_header_win() {
        let app = rgi::app_fn(|_environ: Environ, start: StartResponse| async move {
            start.header("x-correlation-id", "mine").text("")
        })
        .layer(RequestIdLayer::new().header(HeaderName::from_static("x-correlation-id")));
        let r = TestClient::new(app).get("/").send_blocking();
        assert_eq!(r.header("x-correlation-id"), Some("mine"));
        assert_eq!(r.header("x-request-id"), None);
    }
}
