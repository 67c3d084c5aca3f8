//! The static-files application the end-to-end traversal test drives through every gateway.
//!
//! Serves the directory named by `RGI_STATIC_ROOT` (required) with
//! [`Static`], under the conditional and compression layers, and answers
//! `405` to methods other than GET and HEAD. Run with:
//! `RGI_STATIC_ROOT=public cargo run -p rgi-tests --bin staticapp -- --bind 127.0.0.1:8000`.

use rgi_middleware::{Builder, CompressionLayer, ConditionalLayer, Static};

/// The environment variable naming the directory served.
const ROOT_ENV: &str = "RGI_STATIC_ROOT";

fn main() -> std::process::ExitCode {
    let Some(root) = std::env::var_os(ROOT_ENV) else {
        eprintln!("staticapp: set {ROOT_ENV} to the directory to serve");
        return std::process::ExitCode::from(2);
    };
    let app = Builder::new()
        .enable(ConditionalLayer::new())
        .enable(CompressionLayer::new())
        .app(Static::new(root).precompressed(true));
    rgi_servers::run(app)
}
