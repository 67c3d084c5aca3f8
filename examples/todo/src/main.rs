//! `todo`: the todo app under any RGI gateway.
//!
//! `--database URL` (or `TODO_DATABASE`; default `sqlite:todo.db`) is the app's own flag; it is
//! taken off the command line before the launcher reads the rest, and passed to worker processes
//! (`-w N`) through `TODO_DATABASE`. Migrations run before serving, in every process (they are
//! serialised by the database, so processes starting together do not race).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use example_todo::{app, Db};
use rgi_middleware::session::SessionLayer;

const DATABASE_ENV: &str = "TODO_DATABASE";

/// Remove `--database URL` / `--database=URL` from `args`; the last one given.
fn take_database(args: &mut Vec<OsString>) -> Result<Option<String>, String> {
    let mut found = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        if arg == "--database" {
            if i + 1 >= args.len() {
                return Err("--database needs a URL".into());
            }
            found = Some(args[i + 1].to_string_lossy().into_owned());
            args.drain(i..i + 2);
        } else if let Some(url) = arg.strip_prefix("--database=") {
            found = Some(url.to_owned());
            args.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(found)
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let url = match take_database(&mut args) {
        Ok(Some(url)) => {
            // Worker processes re-execute this binary with the remaining arguments.
            std::env::set_var(DATABASE_ENV, &url);
            url
        }
        Ok(None) => std::env::var(DATABASE_ENV).unwrap_or_else(|_| "sqlite:todo.db".into()),
        Err(e) => {
            eprintln!("todo: {e}");
            return ExitCode::from(2);
        }
    };
    let static_dir = std::env::var_os("TODO_STATIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")));
    // A CGI request is one process per request: the database must already be migrated.
    if std::env::var_os("GATEWAY_INTERFACE").is_none() {
        if let Err(e) = migrate(&url) {
            eprintln!("todo: {e}");
            return ExitCode::from(2);
        }
    }
    let db = match Db::open(&url, 8) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("todo: {e}");
            return ExitCode::from(2);
        }
    };
    let sessions = match SessionLayer::builder().build() {
        Ok(layer) => layer,
        Err(e) => {
            eprintln!("todo: sessions: {e}");
            return ExitCode::from(2);
        }
    };
    rgi_servers::run_from(app(db, &static_dir, sessions), args)
}

/// Create or upgrade the schema, on a runtime of its own (the server's does not exist yet).
fn migrate(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = Db::open(url, 1)?;
        let done = db.migrate().await;
        db.close().await;
        done
    })?;
    Ok(())
}
