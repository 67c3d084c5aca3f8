//! The bodies of RGI's fuzz targets, one function per target, each taking the fuzzer's bytes.
//!
//! They live in this stable crate so that two callers run exactly the same code: the cargo-fuzz
//! crate in `fuzz/` (nightly, libFuzzer, one thin `fuzz_target!` per function) and the
//! `corpus` test here, which replays every committed corpus file on stable as part of the README's
//! test command. A target panics only on a real bug: a panic in the code under test, or a broken
//! invariant (a request body longer than its `CONTENT_LENGTH`, a file served from outside the
//! static root, a 5xx for a client's malformed input…).

mod http_input;
mod web;
mod wire;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and of `fuzz/corpus/*/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("fastcgi_records", wire::fastcgi_records),
    ("fastcgi_connection", wire::fastcgi_connection),
    ("scgi", wire::scgi),
    ("uwsgi", wire::uwsgi),
    ("cgi_environ", wire::cgi_environ),
    ("http_environ", http_input::http_environ),
    ("input", http_input::input),
    ("session_cookie", web::session_cookie),
    ("extractors", web::extractors),
    ("router", web::router),
    ("static_path", web::static_path),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub use http_input::{parse_request, RawRequest};
pub use wire::assert_cgi_round_trip;
