//! The settings table: parsing, precedence, defaults, and that every row is usable.

use super::*;

fn raw(args: &[&str]) -> Raw {
    let mut all = vec![OsString::from("app")];
    all.extend(args.iter().map(OsString::from));
    Raw::parse(&all).unwrap()
}

#[test]
fn the_combined_command_line_has_no_clashing_flags() {
    // clap panics (in debug builds, at every start) if the launcher and the process manager
    // ever claim the same argument name or short flag.
    command().debug_assert();
}

#[test]
fn gunicorn_short_flags_parse() {
    let r = raw(&["-w", "4", "-k", "sync", "--threads", "8", "-t", "5"]);
    assert!(r.wants_arbiter());
    let s = r.resolve().unwrap();
    assert_eq!(s.workers, 4);
    assert_eq!(s.worker_class, WorkerClass::Sync);
    assert_eq!(s.threads, 8);
    assert_eq!(s.timeout, Some(Duration::from_secs(5)));
    assert_eq!(s.request_timeout, None);
}

#[test]
fn without_process_flags_the_launcher_keeps_the_process() {
    assert!(!raw(&["-b", "127.0.0.1:0"]).wants_arbiter());
    assert!(!raw(&["--max-requests", "5"]).wants_arbiter());
    assert!(raw(&["--max-requests", "5", "-w", "2"]).wants_arbiter());
}

#[test]
fn defaults_are_documented_ones() {
    let s = raw(&["-w", "1"]).resolve().unwrap();
    assert_eq!(s.worker_class, WorkerClass::Async);
    assert_eq!(s.timeout, Some(Duration::from_secs(30)));
    assert_eq!(s.graceful_timeout, Duration::from_secs(30));
    assert_eq!(s.max_requests, 0);
    assert_eq!(s.error_log, LogTarget::Stderr);
    assert_eq!(s.access_log, None);
    assert_eq!(s.binds, vec![Bind::Tcp("127.0.0.1:8000".into())]);
}

#[test]
fn the_file_fills_in_what_the_command_line_left_out() {
    let dir = std::env::temp_dir().join(format!("rgi-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rgi.toml");
    std::fs::write(
        &path,
        "workers = 3\nworker_class = \"sync\"\ntimeout = 7\nbind = \"127.0.0.1:9\"\n\
         backlog = 64\ngraceful_timeout = 4\naccesslog = \"-\"\nmax_requests = 10\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let s = raw(&["-c", file, "-w", "2", "--graceful-timeout", "9"])
        .resolve()
        .unwrap();
    assert_eq!(s.workers, 2, "command line beats file");
    assert_eq!(
        s.graceful_timeout,
        Duration::from_secs(9),
        "launcher flag beats file"
    );
    assert_eq!(s.worker_class, WorkerClass::Sync, "file beats default");
    assert_eq!(s.timeout, Some(Duration::from_secs(7)));
    assert_eq!(s.bind_options.backlog, 64);
    assert_eq!(s.binds, vec![Bind::Tcp("127.0.0.1:9".into())]);
    assert_eq!(s.access_log, Some(LogTarget::Stdout));
    assert_eq!(s.max_requests, 10);
    let printed = s.render();
    assert!(printed.contains("workers = 2\n"), "{printed}");
    assert!(printed.contains("worker_class = \"sync\"\n"));
    std::fs::write(&path, "wrokers = 3\n").unwrap();
    let err = raw(&["-c", file]).resolve().unwrap_err();
    assert!(matches!(err, SettingsError::FileKey { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_values_are_typed_errors() {
    let err = raw(&["-w", "0"]).resolve().unwrap_err();
    assert!(matches!(
        err,
        SettingsError::Invalid {
            setting: "workers",
            ..
        }
    ));
    let err = raw(&["-w", "1", "--timeout=-1"]).resolve().unwrap_err();
    assert!(matches!(
        err,
        SettingsError::Invalid {
            setting: "timeout",
            ..
        }
    ));
    let err = raw(&["-w", "1", "--access-logformat", "%(zz)s"])
        .resolve()
        .unwrap_err();
    assert!(err.to_string().starts_with("access_log_format: "));
    let err = raw(&["-k", "sync", "--protocol", "scgi"])
        .resolve()
        .unwrap_err();
    assert!(matches!(
        err,
        SettingsError::Invalid {
            setting: "worker_class",
            ..
        }
    ));
    assert!(raw(&["-w", "2", "--protocol", "fastcgi"]).resolve().is_ok());
    let err = Raw::parse(&["app".into(), "-k".into(), "gevent".into()]).unwrap_err();
    assert!(matches!(err, SettingsError::Usage(_)));
}

#[test]
fn every_flag_variable_and_key_of_before_is_still_there() {
    let command = command();
    let longs: Vec<&str> = command
        .get_arguments()
        .filter_map(|a| a.get_long())
        .collect();
    for long in [
        "bind",
        "protocol",
        "script-name",
        "limit-request-line",
        "limit-request-fields",
        "limit-request-head",
        "limit-request-body",
        "header-timeout",
        "idle-release",
        "graceful-timeout",
        "threads",
        "blocking-threads",
        "blocking-queue",
        "max-connections",
        "max-requests",
        "max-requests-in-flight",
        "backlog",
        "reuse-port",
        "certfile",
        "keyfile",
        "ca-certs",
        "socket-mode",
        "workers",
        "worker-class",
        "timeout",
        "request-timeout",
        "max-requests-jitter",
        "pid",
        "access-logfile",
        "access-logformat",
        "error-logfile",
        "log-level",
        "config",
        "check-config",
    ] {
        assert!(longs.contains(&long), "--{long}");
    }
    for (short, long) in [
        ('b', "bind"),
        ('w', "workers"),
        ('k', "worker-class"),
        ('t', "timeout"),
        ('p', "pid"),
        ('c', "config"),
    ] {
        let arg = command
            .get_arguments()
            .find(|a| a.get_short() == Some(short))
            .unwrap();
        assert_eq!(arg.get_long(), Some(long));
    }
    for s in SETTINGS {
        if let Some(env) = s.env() {
            assert!(env.starts_with("RGI_"), "{env}");
        }
    }
    let envs: Vec<&str> = SETTINGS.iter().filter_map(|s| s.env()).collect();
    for env in [
        "RGI_PIDFILE",
        "RGI_ACCESS_LOGFILE",
        "RGI_ACCESS_LOGFORMAT",
        "RGI_ERROR_LOGFILE",
        "RGI_LOG_LEVEL",
        "RGI_CONFIG",
        "RGI_MAX_REQUESTS",
        "RGI_MAX_REQUESTS_IN_FLIGHT",
        "RGI_BIND",
    ] {
        assert!(envs.contains(&env), "{env}");
    }
    let keys: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| s.in_file())
        .map(|s| s.name())
        .collect();
    for key in [
        "bind",
        "workers",
        "worker_class",
        "threads",
        "timeout",
        "graceful_timeout",
        "request_timeout",
        "max_requests",
        "max_requests_jitter",
        "pidfile",
        "accesslog",
        "access_log_format",
        "errorlog",
        "loglevel",
        "backlog",
        "reuse_port",
        "socket_mode",
        "script_name",
        "limit_request_line",
        "limit_request_fields",
        "limit_request_head",
        "limit_request_body",
        "header_timeout",
        "idle_release",
        "blocking_threads",
        "blocking_queue",
        "protocol",
        "certfile",
        "keyfile",
        "ca_certs",
    ] {
        assert!(keys.contains(&key), "{key}");
    }
}

#[test]
fn the_declared_defaults_are_the_library_defaults() {
    let s = raw(&[]).resolve().unwrap();
    assert_eq!(s.server, Config::default());
    assert_eq!(s.bind_options, BindOptions::default());
    assert!(!s.process_manager);
    assert!(!s.is_given("bind"));
    assert_eq!(s.access_log_format_text, crate::accesslog::DEFAULT_FORMAT);
}

#[test]
fn every_choice_named_in_the_table_parses() {
    for s in SETTINGS {
        if let Kind::Choice(names) = s.kind {
            for name in names {
                let mut settings = Settings::blank();
                (s.apply)(&mut settings, &[(*name).to_owned()]).unwrap();
            }
        }
    }
}

#[test]
fn check_config_prints_a_file_that_reads_back_the_same() {
    let dir = std::env::temp_dir().join(format!("rgi-settings-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rgi.toml");
    let first = raw(&[
        "-w",
        "3",
        "-b",
        "127.0.0.1:1,unix:/tmp/x.sock",
        "--socket-mode",
        "660",
        "--pid",
        "/tmp/p",
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(h)s \"%(r)s\"",
        "--script-name",
        "/app",
        "--timeout",
        "2.5",
        "--reuse-port",
        "--log-level",
        "debug",
    ])
    .resolve()
    .unwrap();
    let printed = first.render();
    std::fs::write(&path, &printed).unwrap();
    let again = raw(&["-c", path.to_str().unwrap()]).resolve().unwrap();
    let reprinted = again.render();
    let body = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("# file"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&printed), body(&reprinted));
    assert!(printed.contains("socket_mode = \"660\"\n"), "{printed}");
    assert!(printed.contains("timeout = 2.5\n"), "{printed}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_values_of_the_wrong_type_and_half_tls_are_refused() {
    let dir = std::env::temp_dir().join(format!("rgi-settings-ty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rgi.toml");
    let file = path.to_str().unwrap();
    for (text, key) in [
        ("workers = \"many\"\n", "workers"),
        ("reuse_port = 1\n", "reuse_port"),
        ("bind = [1]\n", "bind"),
        ("timeout = \"5\"\n", "timeout"),
    ] {
        std::fs::write(&path, text).unwrap();
        match raw(&["-c", file]).resolve() {
            Err(SettingsError::FileKey { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{text}: {other:?}"),
        }
    }
    std::fs::write(&path, "certfile = \"/nonexistent/cert.pem\"\n").unwrap();
    let err = raw(&["-c", file]).resolve().unwrap_err();
    assert!(
        matches!(
            err,
            SettingsError::Invalid {
                setting: "certfile",
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(
        &path,
        "certfile = \"/nonexistent/c.pem\"\nkeyfile = \"/nonexistent/k.pem\"\n",
    )
    .unwrap();
    let err = raw(&["-c", file]).resolve().unwrap_err();
    assert!(matches!(err, SettingsError::Tls(_)), "{err}");
    assert!(err.to_string().contains("/nonexistent/"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn max_requests_alone_is_the_fastcgi_in_flight_limit() {
    let s = raw(&["--max-requests", "5"]).resolve().unwrap();
    assert_eq!((s.server.max_requests, s.max_requests), (5, 0));
    let s = raw(&["--max-requests", "5", "-w", "2"]).resolve().unwrap();
    assert_eq!((s.server.max_requests, s.max_requests), (1024, 5));
    let s = raw(&[
        "--max-requests",
        "5",
        "-w",
        "2",
        "--max-requests-in-flight",
        "7",
    ])
    .resolve()
    .unwrap();
    assert_eq!((s.server.max_requests, s.max_requests), (7, 5));
}

#[test]
fn the_settings_table_in_settings_md_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/SETTINGS.md");
    let wanted = settings_md();
    if std::env::var_os("RGI_BLESS").is_some() {
        std::fs::write(path, &wanted).unwrap();
    }
    let found = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        found == wanted,
        "servers/SETTINGS.md is out of date; regenerate it with \
         RGI_BLESS=1 cargo test -p rgi-servers --lib settings"
    );
}

fn settings_md() -> String {
    format!(
        "# Settings\n\n<!-- Generated from servers/src/settings/table.rs by the test \
         the_settings_table_in_settings_md_is_current; do not edit. -->\n\n{}",
        markdown_table()
    )
}

#[test]
fn http2_is_on_for_async_workers_and_off_for_sync_ones() {
    let on = |args: &[&str]| raw(args).resolve().unwrap().server.http2.enabled;
    assert!(on(&["-w", "1"]));
    assert!(on(&[]), "the single-process server too");
    assert!(!on(&["-w", "1", "--no-http2"]));
    assert!(
        on(&["-w", "1", "--no-http2", "--http2"]),
        "the last flag wins"
    );
    assert!(!on(&["-w", "1", "--http2", "--no-http2"]));
    assert!(!on(&["-k", "sync"]), "sync workers: off unless asked for");
    let s = raw(&["-w", "1", "--http2-max-streams", "7"])
        .resolve()
        .unwrap();
    assert_eq!(s.server.http2.max_concurrent_streams, 7);
    assert!(s.render().contains("http2 = true\nhttp2_max_streams = 7\n"));
    let err = raw(&["-k", "sync", "--http2"]).resolve().unwrap_err();
    assert!(err.to_string().starts_with("http2: sync workers"), "{err}");
}
