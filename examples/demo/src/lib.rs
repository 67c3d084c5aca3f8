//! The demo application: any method, any path → `200 application/json` with every string-valued
//! environ key, and the length and sha256 of the request body read through `rgi.input`.
//!
//! ```json
//! {"environ": {"REQUEST_METHOD": "POST", "PATH_INFO": "/x", ...}, "body_len": 5, "body_sha256": "..."}
//! ```
//!
//! Values that are not UTF-8 are shown with U+FFFD replacement characters.

use rgi::{Application, Environ, Reply, StartResponse};
use sha2::{Digest, Sha256};

/// The demo application.
#[derive(Debug, Default, Clone, Copy)]
pub struct Demo;

impl Application for Demo {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        // Stream the body through the hash: memory stays flat whatever the upload size.
        let mut hasher = Sha256::new();
        let mut body_len = 0u64;
        while let Some(chunk) = environ.input_mut().chunk().await {
            let chunk = chunk?;
            body_len += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let vars: serde_json::Map<String, serde_json::Value> = environ
            .vars()
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v.to_string_lossy().into_owned().into()))
            .collect();
        let digest = hasher.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let json = serde_json::json!({
            "environ": vars,
            "body_len": body_len,
            "body_sha256": hex,
        });
        start.bytes("application/json", format!("{json}\n"))
    }
}
