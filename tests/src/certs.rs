//! Certificates for the TLS tests, made with the openssl CLI in a test's temporary directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::webservers::{self, TempDir};

/// Run openssl with `args` in `dir`.
///
/// # Panics
///
/// When openssl is missing or fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let openssl = webservers::require("openssl");
    let out = Command::new(openssl)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed P-256 certificate named `cn` with the `-addext` `extensions`: (`NAME.pem`,
/// `NAME.key`).
///
/// # Panics
///
/// As [`openssl`].
pub fn certificate(dir: &TempDir, name: &str, cn: &str, extensions: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key, subject) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("/CN={cn}"),
    );
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &subject,
        "-keyout",
        &key,
        "-out",
        &cert,
    ];
    for extension in extensions {
        args.extend(["-addext", extension]);
    }
    openssl(dir.path(), &args);
    (dir.join(&cert), dir.join(&key))
}

/// A self-signed server certificate for 127.0.0.1 (and `localhost`) named `cn`: (`NAME.pem`,
/// `NAME.key`).
///
/// # Panics
///
/// As [`openssl`].
pub fn self_signed(dir: &TempDir, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    certificate(
        dir,
        name,
        cn,
        &[
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "basicConstraints=critical,CA:FALSE",
        ],
    )
}
