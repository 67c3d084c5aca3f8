//! # rgi-middleware — layers between RGI servers and applications
//!
//! Every middleware here is an [`rgi::Application`] that wraps another, so layers stack in any order
//! and work under every RGI server. The set grows with its issue (logging, static files, sessions,
//! compression, proxy headers, limits); today it holds:
//!
//! - [`Builder`]: a stack that reads top to bottom (`enable`, `enable_if`, `mount`, `app`).
//! - [`mount`]: dispatch to applications mounted under URL prefixes (SCRIPT_NAME-aware).
//!
//! The validator middleware lives with the contract, as [`rgi::lint::Lint`].

pub mod builder;
pub mod mount;

pub use crate::builder::Builder;
pub use crate::mount::Mount;
