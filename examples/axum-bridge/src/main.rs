//! Run with: `cargo run -p example-axum-bridge -- --bind 127.0.0.1:8000`, then
//! `curl http://127.0.0.1:8000/hello/rgi`.

fn main() -> std::process::ExitCode {
    rgi_servers::run(example_axum_bridge::app())
}
