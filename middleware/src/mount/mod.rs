//! Mounting applications under URL prefixes (Plack's URLMap, Rack's `map`).
//!
//! [`Mount`] picks the application whose prefix is the longest one matching the request's
//! `PATH_INFO` on a segment boundary (`/api` matches `/api` and `/api/x`, never `/apix`), moves the
//! prefix from `PATH_INFO` to the end of `SCRIPT_NAME`, and calls it. So a mounted application sees
//! paths relative to its mount point and can rebuild full URLs from `SCRIPT_NAME`. Unmatched requests
//! get `404 Not Found`, unless an application is mounted at `/`.

use std::fmt;

use http::StatusCode;
use rgi::{Application, BoxApp, Environ, Reply, StartResponse};

/// Applications mounted under prefixes; see the [module docs](self).
///
/// ```
/// use http::StatusCode;
/// use rgi_middleware::Mount;
///
/// let api = rgi::app_fn(|environ, start| async move {
///     let body = format!("api sees {:?}", String::from_utf8_lossy(environ.path_info()));
///     Ok(start.respond(StatusCode::OK, Default::default(), body)?)
/// });
/// let app = Mount::new().at("/api", api);
/// let client = rgi::testing::TestClient::new(app);
/// assert_eq!(client.get("/api/users").send_blocking().text(), "api sees \"/users\"");
/// assert_eq!(client.get("/apix").send_blocking().status(), StatusCode::NOT_FOUND);
/// ```
#[derive(Clone, Default)]
pub struct Mount {
    /// Longest prefix first, so the first match is the best one.
    mounts: Vec<(String, BoxApp)>,
}

impl Mount {
    /// No applications mounted: every request gets 404.
    pub fn new() -> Self {
        Mount::default()
    }

    /// Mount `app` at `prefix` (`/` or `""` for the root). A later mount at the same prefix replaces
    /// the earlier one.
    pub fn at(mut self, prefix: &str, app: impl Application) -> Self {
        let prefix = format!("/{}", prefix.trim_matches('/'));
        let prefix = if prefix == "/" { String::new() } else { prefix };
        self.mounts.retain(|(p, _)| *p != prefix);
        self.mounts.push((prefix, BoxApp::new(app)));
        self.mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        self
    }

    /// The mounted prefixes, longest first.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.mounts.iter().map(|(p, _)| p.as_str())
    }
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field("prefixes", &self.prefixes().collect::<Vec<_>>())
            .finish()
    }
}

impl Application for Mount {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        for (prefix, app) in &self.mounts {
            if environ.mount(prefix) {
                return app.call(environ, start).await;
            }
        }
        start.error(StatusCode::NOT_FOUND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rgi::testing::TestClient;

    fn echo(name: &'static str) -> impl Application {
        rgi::app_fn(move |environ, start| async move {
            let body = format!(
                "{name} {} {}",
                String::from_utf8_lossy(environ.script_name()),
                String::from_utf8_lossy(environ.path_info())
            );
            start.text(body)
        })
    }

    #[test]
    fn the_longest_matching_prefix_wins_and_moves_to_script_name() {
        let app = Mount::new()
            .at("/", echo("root"))
            .at("/a", echo("a"))
            .at("/a/b/", echo("ab"));
        let client = TestClient::new(app);
        assert_eq!(client.get("/a/b/c").send_blocking().text(), "ab /a/b /c");
        assert_eq!(client.get("/a/bc").send_blocking().text(), "a /a /bc");
        assert_eq!(client.get("/a").send_blocking().text(), "a /a ");
        assert_eq!(client.get("/ab").send_blocking().text(), "root  /ab");
    }

    #[test]
    fn an_unmatched_path_is_404_without_a_root_mount() {
        let client = TestClient::new(Mount::new().at("/x", echo("x")));
        let response = client.get("/y").send_blocking();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }

    #[test]
    fn mounts_nest_under_an_outer_script_name() {
        let inner = Mount::new().at("/v1", echo("v1"));
        let outer = Mount::new().at("/api", inner);
        let client = TestClient::new(outer);
        assert_eq!(
            client.get("/api/v1/users").send_blocking().text(),
            "v1 /api/v1 /users"
        );
    }

    #[test]
    fn remounting_a_prefix_replaces_the_application() {
        let app = Mount::new().at("/x", echo("old")).at("/x/", echo("new"));
        assert_eq!(app.prefixes().collect::<Vec<_>>(), ["/x"]);
        assert_eq!(
            TestClient::new(app).get("/x/1").send_blocking().text(),
            "new /x /1"
        );
    }
}
