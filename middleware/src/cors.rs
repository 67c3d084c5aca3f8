//! CORS, through tower-http: a recipe, not a reimplementation.
//!
//! tower-http's [`CorsLayer`](https://docs.rs/tower-http/latest/tower_http/cors/struct.CorsLayer.html)
//! answers preflight `OPTIONS` requests and adds `Access-Control-Allow-*` headers; wrapped in
//! [`rgi::tower::TowerLayer`] it is an RGI layer like any other, and the application under it still gets
//! its environ (not rebuilt from an `http::Request`). Add `tower-http` with its `cors` feature to your
//! `Cargo.toml`:
//!
//! ```
//! use http::{HeaderValue, Method};
//! use rgi::tower::TowerLayer;
//! use rgi::ApplicationExt;
//! use tower_http::cors::CorsLayer;
//!
//! let api = rgi::app_fn(|_, start| async move { start.json(&serde_json::json!({"ok": true})) });
//! let app = api.layer(TowerLayer::new(
//!     CorsLayer::new()
//!         .allow_origin(HeaderValue::from_static("https://app.example"))
//!         .allow_methods([Method::GET, Method::POST])
//!         .allow_headers([http::header::CONTENT_TYPE]),
//! ));
//!
//! let client = rgi::testing::TestClient::new(app);
//! let preflight = client
//!     .request(Method::OPTIONS, "/items")
//!     .header("origin", "https://app.example")
//!     .header("access-control-request-method", "POST")
//!     .send_blocking();
//! assert_eq!(preflight.header("access-control-allow-origin"), Some("https://app.example"));
//! let simple = client.get("/items").header("origin", "https://app.example").send_blocking();
//! assert_eq!(simple.text(), r#"{"ok":true}"#);
//! assert_eq!(simple.header("access-control-allow-origin"), Some("https://app.example"));
//! ```
//!
//! In a [`Builder`](crate::Builder): `.enable(TowerLayer::new(CorsLayer::permissive()))`, or
//! `enable_if` for the API paths only.

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Method};
    use rgi::testing::TestClient;
    use rgi::tower::TowerLayer;
    use rgi::{Environ, StartResponse};
    use tower_http::cors::CorsLayer;

    use crate::request_id::{RequestId, RequestIdLayer};
    use crate::Builder;

    #[test]
    fn cors_in_a_builder_stack_keeps_the_environ_and_refuses_other_origins() {
        let app = Builder::new()
            .enable(RequestIdLayer::new())
            .enable(TowerLayer::new(
                // A list (even of one) is matched against the request's Origin; a single
                // `HeaderValue` would be sent to every origin as it is.
                CorsLayer::new()
                    .allow_origin([HeaderValue::from_static("https://app.example")])
                    .allow_methods([Method::GET, Method::PUT]),
            ))
            .app(rgi::app_fn(
                |environ: Environ, start: StartResponse| async move {
                    // An extension set above the tower layer is still here.
                    let id = environ.extensions().get::<RequestId>().is_some();
                    start.text(format!("id {id}"))
                },
            ));
        let client = TestClient::new(app);

        let r = client
            .get("/")
            .header("origin", "https://app.example")
            .send_blocking();
        assert_eq!(r.text(), "id true");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some("https://app.example")
        );

        let r = client
            .get("/")
            .header("origin", "https://evil.example")
            .send_blocking();
        assert_eq!(
            r.text(),
            "id true",
            "the request is served; the browser withholds it"
        );
        assert_eq!(r.header("access-control-allow-origin"), None);

        let r = client
            .request(Method::OPTIONS, "/")
            .header("origin", "https://app.example")
            .header("access-control-request-method", "PUT")
            .send_blocking();
        assert_eq!(r.status(), 200);
        assert!(r
            .header("access-control-allow-methods")
            .unwrap()
            .contains("PUT"));
        assert!(r.header("x-request-id").is_some(), "layers above still run");
        assert!(
            r.text().is_empty(),
            "the preflight never reaches the application"
        );
    }
}
