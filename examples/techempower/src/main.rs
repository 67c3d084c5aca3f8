//! `techempower`: TechEmpower's tests under any RGI gateway.
//!
//! `--database URL` (or `TECHEMPOWER_DATABASE`) and `--pool N` (or `TECHEMPOWER_POOL`, default 16)
//! are the app's own flags, taken off the command line before the launcher reads the rest and
//! passed to worker processes (`-w N`) through the environment.

use std::ffi::OsString;
use std::process::ExitCode;

use example_techempower::{app, Db};

const DATABASE_ENV: &str = "TECHEMPOWER_DATABASE";
const POOL_ENV: &str = "TECHEMPOWER_POOL";
const DEFAULT_DATABASE: &str = "postgres://benchmarkdbuser@127.0.0.1/hello_world";

/// Remove `--NAME VALUE` / `--NAME=VALUE` from `args` and put the last value in `env`.
fn take_flag(args: &mut Vec<OsString>, name: &str, env: &str) -> Result<(), String> {
    let flag = format!("--{name}");
    let prefix = format!("--{name}=");
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].to_string_lossy().into_owned();
        if arg == flag {
            let value = args
                .get(i + 1)
                .ok_or(format!("{flag} needs a value"))?
                .clone();
            std::env::set_var(env, value);
            args.drain(i..i + 2);
        } else if let Some(value) = arg.strip_prefix(&prefix) {
            std::env::set_var(env, value);
            args.remove(i);
        } else {
            i += 1;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let taken = take_flag(&mut args, "database", DATABASE_ENV)
        .and_then(|()| take_flag(&mut args, "pool", POOL_ENV));
    if let Err(e) = taken {
        eprintln!("techempower: {e}");
        return ExitCode::from(2);
    }
    let url = std::env::var(DATABASE_ENV).unwrap_or_else(|_| DEFAULT_DATABASE.into());
    let pool = match std::env::var(POOL_ENV).map(|v| v.parse::<usize>()) {
        Err(_) => 16,
        Ok(Ok(n)) if n > 0 => n,
        Ok(_) => {
            eprintln!("techempower: --pool wants a number of connections (1 or more)");
            return ExitCode::from(2);
        }
    };
    let site = Db::open(&url, pool)
        .map_err(|e| e.to_string())
        .and_then(|db| app(db).map_err(|e| e.to_string()));
    match site {
        Ok(site) => rgi_servers::run_from(site, args),
        Err(e) => {
            eprintln!("techempower: {e}");
            ExitCode::from(2)
        }
    }
}
