//! Every item SPEC.md names in brackets is an intra-doc link, so a renamed or removed item breaks
//! `cargo doc` (`-D warnings`) instead of leaving the text behind. Its Rust examples are compiled and
//! run by `gateway-spec/tests/spec_examples.rs`. (The names it uses unqualified are brought into scope
//! for rustdoc at the crate root, where rustdoc resolves an included document's links.)
//!
#![doc = include_str!("../SPEC.md")]
