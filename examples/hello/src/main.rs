//! Run with: `cargo run -p example-hello -- --bind 127.0.0.1:8000`, then `curl http://127.0.0.1:8000/`.

fn main() -> std::process::ExitCode {
    rgi_servers::run(example_hello::Hello::default())
}
