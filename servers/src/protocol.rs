//! The network protocols a server speaks on its listeners, each a transport on the shared
//! [pipeline](crate::pipeline): its framing, its `SERVER_SOFTWARE`, and how it serves a listener.

use std::io;
use std::sync::Arc;

use clap::ValueEnum;
use rgi::{Application, Capabilities, ServerInfo};
use tokio_util::sync::CancellationToken;

use crate::bind::Listener;
use crate::config::Config;
use crate::gateway::oneshot;
use crate::pipeline::Pipeline;

/// The network protocol a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1, for browsers, curl, or a proxy (`proxy_pass`).
    Http,
    /// FastCGI (`fastcgi_pass`, lighttpd `mod_fastcgi`).
    Fastcgi,
    /// SCGI (`scgi_pass`).
    Scgi,
    /// The uwsgi protocol (`uwsgi_pass`), modifier1 = 0.
    Uwsgi,
}

impl Protocol {
    /// The URL scheme printed for a listener (`rgi: listening on fastcgi://…`), also the prefix of
    /// the server's error lines.
    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Fastcgi => "fastcgi",
            Protocol::Scgi => "scgi",
            Protocol::Uwsgi => "uwsgi",
        }
    }

    /// As [`scheme`](Protocol::scheme), and `https` for HTTP with [`Config::tls`].
    pub fn listener_scheme(self, config: &Config) -> &'static str {
        match (self, &config.tls) {
            (Protocol::Http, Some(_)) => "https",
            _ => self.scheme(),
        }
    }

    /// `SERVER_SOFTWARE` as applications served over this protocol see it.
    pub fn software(self) -> &'static str {
        match self {
            Protocol::Http => crate::http::SOFTWARE,
            Protocol::Fastcgi => crate::fastcgi::SOFTWARE,
            Protocol::Scgi => crate::scgi::SOFTWARE,
            Protocol::Uwsgi => crate::uwsgi::SOFTWARE,
        }
    }

    /// The [`ServerInfo`] an async server of this protocol shares across requests: multithreaded, a
    /// bounded blocking pool on the current runtime, errors to stderr.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn server_info(self, config: &Config, multiprocess: bool) -> Arc<ServerInfo> {
        Arc::new(ServerInfo {
            software: self.software().into(),
            multithread: true,
            multiprocess,
            run_once: false,
            capabilities: Capabilities::STREAMING | Capabilities::STREAMING_INPUT,
            executor: Arc::new(rgi::TokioBlocking::current(
                config.blocking_threads + config.blocking_queue,
            )),
            errors: rgi::Errors::stderr(),
        })
    }

    /// Serve `app` on `listeners` until `shutdown` is cancelled, then stop accepting (answering the
    /// connections already queued), let in-flight requests finish (at most
    /// [`Config::graceful_timeout`]) and return. No access log, request deadline or request
    /// counting: those are the process manager's ([`crate::arbiter`]).
    ///
    /// Must run inside a tokio runtime whose blocking pool has [`Config::blocking_threads`] threads.
    /// FastCGI checks TCP peers against `FCGI_WEB_SERVER_ADDRS` when that variable is set. HTTP with
    /// [`Config::tls`] serves HTTPS and reloads the certificate on `SIGHUP`.
    ///
    /// ```no_run
    /// # async fn example() -> std::io::Result<()> {
    /// use std::sync::Arc;
    /// use rgi_servers::{bind::{Bind, BindOptions}, config::Config, Protocol};
    ///
    /// let app = Arc::new(rgi::app_fn(|_, start| async move {
    ///     Ok(start.respond(http::StatusCode::OK, Default::default(), "hi\n")?)
    /// }));
    /// let listener = Bind::Unix("/run/app.fcgi".into()).listen(BindOptions::default())?.into_tokio()?;
    /// let config = Config::default();
    /// let server = Protocol::Fastcgi.server_info(&config, false);
    /// let shutdown = tokio_util::sync::CancellationToken::new();
    /// Protocol::Fastcgi.serve(vec![listener], app, config, server, shutdown).await
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Only for failures that stop the whole server; per-connection errors are logged to the
    /// server's `rgi.errors` and the server goes on.
    pub async fn serve<A: Application>(
        self,
        listeners: Vec<Listener>,
        app: Arc<A>,
        config: Config,
        server: Arc<ServerInfo>,
        shutdown: CancellationToken,
    ) -> io::Result<()> {
        if let (Protocol::Http, Some(tls)) = (self, &config.tls) {
            crate::tls::reload_on_hangup(tls.clone(), server.errors.clone())?;
        }
        let pipeline = Arc::new(Pipeline::new(app, config, server, self.scheme()));
        let _drain = pipeline.control.drain_on(shutdown);
        self.run(listeners, pipeline).await
    }

    /// Serve `listeners` through `pipeline` until it drains.
    pub(crate) async fn run<A: Application>(
        self,
        listeners: Vec<Listener>,
        pipeline: Arc<Pipeline<A>>,
    ) -> io::Result<()> {
        match self {
            Protocol::Http => crate::http::serve(listeners, pipeline).await,
            Protocol::Fastcgi => crate::fastcgi::serve(listeners, pipeline).await,
            Protocol::Scgi => oneshot::serve(listeners, pipeline, &crate::scgi::WIRE).await,
            Protocol::Uwsgi => oneshot::serve(listeners, pipeline, &crate::uwsgi::WIRE).await,
        }
    }
}
