//! [`Builder`]: a middleware stack that reads top to bottom, like Plack::Builder and Rack::Builder.

use std::fmt;
use std::sync::Arc;

use rgi::{Application, ApplicationExt, BoxApp, Environ, Layer, Reply, StartResponse};

use crate::Mount;

type Wrap = Box<dyn FnOnce(BoxApp) -> BoxApp + Send>;

/// A stack of layers over an application and applications mounted under prefixes.
///
/// Layers are listed outermost first: the first [`enable`](Builder::enable)d layer sees the request
/// first and the response last. Layers wrap everything below them, mounted applications included.
///
/// ```
/// use http::StatusCode;
/// use rgi::{Environ, Response};
/// use rgi::middleware::{map_request, map_response};
/// use rgi_middleware::Builder;
///
/// let api = rgi::app_fn(|environ, start| async move {
///     start.json(&serde_json::json!({"path": String::from_utf8_lossy(environ.path_info())}))
/// });
/// let site = rgi::app_fn(|_, start| async move { start.html("<h1>home</h1>") });
///
/// let app = Builder::new()
///     .enable(map_response(|mut r: Response| {
///         r.headers_mut().insert("x-frame-options", http::HeaderValue::from_static("DENY"));
///         r
///     }))
///     .enable_if(
///         |environ: &Environ| environ.path_info().starts_with(b"/api"),
///         map_request(|environ: &mut Environ| {
///             environ.headers_mut().insert("accept", http::HeaderValue::from_static("application/json"));
///         }),
///     )
///     .mount("/api", api)
///     .app(site);
///
/// let client = rgi::testing::TestClient::new(app);
/// let r = client.get("/api/users").send_blocking();
/// assert_eq!((r.text().as_str(), r.header("x-frame-options")), (r#"{"path":"/users"}"#, Some("DENY")));
/// assert_eq!(client.get("/").send_blocking().text(), "<h1>home</h1>");
/// ```
#[derive(Default)]
pub struct Builder {
    /// Outermost first.
    layers: Vec<Wrap>,
    mount: Mount,
    mounted: usize,
}

impl Builder {
    /// An empty stack.
    pub fn new() -> Self {
        Builder::default()
    }

    /// Add `layer` below the layers enabled so far.
    pub fn enable<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxApp> + Send + 'static,
        L::Service: Application,
    {
        self.layers
            .push(Box::new(move |inner| inner.layer(layer).boxed()));
        self
    }

    /// Add `layer`, used only for requests where `condition(&environ)` holds (Plack's `enable_if`);
    /// other requests go straight to what is below it.
    pub fn enable_if<P, L>(mut self, condition: P, layer: L) -> Self
    where
        P: Fn(&Environ) -> bool + Send + Sync + 'static,
        L: Layer<BoxApp> + Send + 'static,
        L::Service: Application,
    {
        self.layers.push(Box::new(move |inner| {
            Conditional {
                condition: Arc::new(condition),
                with: inner.clone().layer(layer).boxed(),
                without: inner,
            }
            .boxed()
        }));
        self
    }

    /// Add `layer` only when `enabled` is true (configuration-time switches: a debug page in
    /// development, the lint in tests).
    pub fn enable_when<L>(self, enabled: bool, layer: L) -> Self
    where
        L: Layer<BoxApp> + Send + 'static,
        L::Service: Application,
    {
        if enabled {
            self.enable(layer)
        } else {
            self
        }
    }

    /// Mount `app` under `prefix` (see [`Mount`]): it sees `SCRIPT_NAME` grown by the prefix and the rest
    /// of the path as `PATH_INFO`.
    pub fn mount(mut self, prefix: &str, app: impl Application) -> Self {
        self.mount = self.mount.at(prefix, app);
        self.mounted += 1;
        self
    }

    /// Finish with `app` answering every request no mount took.
    pub fn app(self, app: impl Application) -> BoxApp {
        let base = if self.mounted == 0 {
            app.boxed()
        } else {
            self.mount.at("/", app).boxed()
        };
        Self::wrap(self.layers, base)
    }

    /// Finish with only the mounted applications (`404 Not Found` for other paths).
    pub fn build(self) -> BoxApp {
        Self::wrap(self.layers, self.mount.boxed())
    }

    fn wrap(layers: Vec<Wrap>, base: BoxApp) -> BoxApp {
        layers
            .into_iter()
            .rev()
            .fold(base, |inner, wrap| wrap(inner))
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("layers", &self.layers.len())
            .field("mount", &self.mount)
            .finish()
    }
}

/// The application made by [`Builder::enable_if`].
struct Conditional {
    condition: Arc<dyn Fn(&Environ) -> bool + Send + Sync>,
    with: BoxApp,
    without: BoxApp,
}

impl Application for Conditional {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        if (self.condition)(&environ) {
            self.with.call(environ, start).await
        } else {
            self.without.call(environ, start).await
        }
    }
}
