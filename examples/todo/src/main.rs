//! `todo`: the todo app under any RGI gateway.
//!
//! The app's own flags are taken off the command line before the launcher reads the rest, and
//! passed to worker processes (`-w N`) through the environment:
//!
//! - `--database URL` (`TODO_DATABASE`; default `sqlite:todo.db`): `sqlite:PATH` or `postgres://…`.
//! - `--sessions STORE` (`TODO_SESSIONS`; default `cookie`): `cookie` (sealed cookies: the processes
//!   share only `RGI_SECRET_KEYS`) or a Redis URL, `redis://HOST:PORT` or `redis+unix:///PATH`
//!   (sessions kept in Redis, shared by many machines, revoked on log-out everywhere).
//! - `--migrate`: create or upgrade the schema and exit. A server migrates by itself when it
//!   starts (in every process: the database serialises them); a CGI program, one process per
//!   request, never does, so run this once before deploying one.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use example_todo::{app, Db};
use rgi_middleware::session::{RedisStore, SessionLayer};

type BoxError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("todo: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, BoxError> {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let database = flag(&mut args, "--database", "TODO_DATABASE")?;
    let database = database.unwrap_or_else(|| "sqlite:todo.db".into());
    let store = flag(&mut args, "--sessions", "TODO_SESSIONS")?;
    let store = store.unwrap_or_else(|| "cookie".into());
    let migrate_only = switch(&mut args, "--migrate");
    let static_dir = std::env::var_os("TODO_STATIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static")));

    if migrate_only || std::env::var_os("GATEWAY_INTERFACE").is_none() {
        migrate(&database)?;
    }
    if migrate_only {
        return Ok(ExitCode::SUCCESS);
    }
    let db = Db::open(&database, 8)?;
    let app = app(db, &static_dir, sessions(&store)?)?;
    Ok(rgi_servers::run_from(app, args))
}

/// The session layer for `store`: `cookie` or a Redis URL.
fn sessions(store: &str) -> Result<SessionLayer, BoxError> {
    let builder = SessionLayer::builder();
    let builder = match store {
        "cookie" => builder,
        url if url.starts_with("redis://") || url.starts_with("redis+unix://") => {
            builder.store(RedisStore::new(url)?)
        }
        other => {
            return Err(format!("--sessions {other:?}: want `cookie` or redis://HOST:PORT").into())
        }
    };
    Ok(builder.build()?)
}

/// Remove `name VALUE` / `name=VALUE` from `args` (the last one given wins) and remember it in
/// `env` for the worker processes; without the flag, the value of `env`.
fn flag(args: &mut Vec<OsString>, name: &str, env: &str) -> Result<Option<String>, String> {
    let mut found = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        if arg == name {
            let value = args.get(i + 1).ok_or(format!("{name} needs a value"))?;
            found = Some(value.to_string_lossy().into_owned());
            args.drain(i..i + 2);
        } else if let Some(value) = arg.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
            found = Some(value.to_owned());
            args.remove(i);
        } else {
            i += 1;
        }
    }
    match found {
        // Worker processes re-execute this binary with the remaining arguments.
        Some(value) => {
            std::env::set_var(env, &value);
            Ok(Some(value))
        }
        None => Ok(std::env::var(env).ok()),
    }
}

/// Remove the switch `name` from `args`; whether it was there.
fn switch(args: &mut Vec<OsString>, name: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != name);
    args.len() != before
}

/// Create or upgrade the schema, on a runtime of its own (the server's does not exist yet).
fn migrate(url: &str) -> Result<(), BoxError> {
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
