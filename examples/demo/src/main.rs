//! Run with: `cargo run -p example-demo -- --bind 127.0.0.1:8000`, then
//! `curl -d hello http://127.0.0.1:8000/some/path?x=1`.

fn main() -> std::process::ExitCode {
    rgi_servers::run(example_demo::Demo)
}
