"""The rows of the benchmark and the targets it reports. Adding a row is one `Stack(...)` here.

Placeholders in commands and config files (filled by bench.py for each row and round):

    @PORT@      the port wrk hits (the front server's, or the app's when it is served directly)
    @BACKEND@   the port the app listens on behind a front server
    @DIR@       the row's run folder (logs, rendered configs, pid files, staged CGI programs)
    @BENCH@     the bench/ folder
    @HELLO@     RGI's hello example (target/release/hello)
    @HELLO_STATIC@  the same hello built static, with LTO, stripped (bench/.build/static-target; run.sh)
    @RELEASE@   RGI's release binaries (target/release), for other examples
    @REFS@      the Rust reference servers (bench/refs/target/release)
    @BUILD@     the C programs (bench/.build)
    @VENV@      the Python virtualenv (bench/.venv)
    @PHP_FPM@   the php-fpm binary
    @SPAWN_USER@  "-u nobody -g nogroup" when running as root, else nothing (spawn-fcgi)

A row's fields:

    key      short name, used by BENCH_ONLY and the targets
    name     what the table shows
    app      the command that starts the app server (None: the front server answers by itself)
    front    a front server config: "nginx/<site>.conf" or "lighttpd/<file>.conf" (None: wrk hits
             the app directly on @PORT@)
    needs    features that must be present (bench.py's `features()`); a missing one makes the row
             "not available" with the reason, instead of a fake number
    ref      a reference row (others are compared with it)
    group    the reference the table compares this row with ("ratio" column)
    pidfile  the app command exits after forking (spawn-fcgi): the PIDs to track and stop are read
             from this file
    stage    files to copy into the run folder before starting, {"www/hello": "@BUILD@/hello-cgi"}
    path     the path wrk requests (default /hello); the row is ready when it answers 200 with
    expect   this text in the body (default "Hello World")
"""

from dataclasses import dataclass, field


@dataclass
class Stack:
    key: str
    name: str
    app: str | None = None
    front: str | None = None
    needs: tuple[str, ...] = ()
    ref: bool = False
    group: str | None = None
    pidfile: str | None = None
    stage: dict[str, str] = field(default_factory=dict)
    path: str = "/hello"  # what wrk requests; the row is ready when it answers 200 with `expect`
    expect: str = "Hello World"


RGI = "@HELLO@ --threads 2"
GUNICORN = "@VENV@/bin/gunicorn --chdir @BENCH@/python -w 2 --graceful-timeout 5 -b 127.0.0.1:@BACKEND@"

STACKS = [
    # The ceiling.
    Stack("nginx-return", "nginx `return 200` (ceiling)", front="nginx/return200.conf",
          needs=("nginx",), ref=True),
    # RGI over HTTP, directly.
    Stack("rgi-http", "RGI HTTP direct (hello, --threads 2)", app=f"{RGI} --bind 127.0.0.1:@PORT@",
          needs=("rgi",), group="axum"),
    # The process manager: a master and worker processes; two threads in all, as in the other rows.
    Stack("rgi-async-1", "RGI HTTP, async worker ×1 (-w 1 -k async --threads 2)",
          app="@HELLO@ -w 1 -k async --threads 2 --bind 127.0.0.1:@PORT@", needs=("rgi-workers",), group="axum"),
    Stack("rgi-async-2", "RGI HTTP, async workers ×2 (-w 2 -k async --threads 1)",
          app="@HELLO@ -w 2 -k async --threads 1 --bind 127.0.0.1:@PORT@", needs=("rgi-workers",), group="axum"),
    # The sync worker serves one connection per thread and closes it after each response (no keep-alive).
    Stack("rgi-sync-1", "RGI HTTP, sync worker ×1 (-w 1 -k sync --threads 2)",
          app="@HELLO@ -w 1 -k sync --threads 2 --bind 127.0.0.1:@PORT@", needs=("rgi-workers",), group="axum"),
    Stack("rgi-sync-2", "RGI HTTP, sync workers ×2 (-w 2 -k sync --threads 1)",
          app="@HELLO@ -w 2 -k sync --threads 1 --bind 127.0.0.1:@PORT@", needs=("rgi-workers",), group="axum"),
    # The Rust servers RGI competes with.
    Stack("hyper", "raw hyper 1.x (2 threads)", app="@REFS@/ref-hyper --bind 127.0.0.1:@PORT@ --threads 2",
          needs=("ref-hyper",), ref=True, group="axum"),
    Stack("axum", "axum 0.8 (2 threads)", app="@REFS@/ref-axum --bind 127.0.0.1:@PORT@ --threads 2",
          needs=("ref-axum",), ref=True, group="axum"),
    Stack("actix", "actix-web 4 (2 workers)", app="@REFS@/ref-actix --bind 127.0.0.1:@PORT@ --threads 2",
          needs=("ref-actix",), ref=True, group="axum"),
    # RGI behind nginx.
    Stack("rgi-proxy", "nginx → RGI HTTP (proxy_pass)", app=f"{RGI} --bind 127.0.0.1:@BACKEND@",
          front="nginx/proxy.conf", needs=("rgi", "nginx"), group="libfcgi"),
    Stack("rgi-fcgi", "nginx → RGI FastCGI (keep_conn off)",
          app=f"{RGI} --protocol fastcgi --bind 127.0.0.1:@BACKEND@", front="nginx/fastcgi.conf",
          needs=("rgi-fastcgi", "nginx"), group="libfcgi"),
    Stack("rgi-fcgi-keep", "nginx → RGI FastCGI (keep_conn on)",
          app=f"{RGI} --protocol fastcgi --bind 127.0.0.1:@BACKEND@", front="nginx/fastcgi-keepconn.conf",
          needs=("rgi-fastcgi", "nginx"), group="libfcgi"),
    Stack("rgi-scgi", "nginx → RGI SCGI", app=f"{RGI} --protocol scgi --bind 127.0.0.1:@BACKEND@",
          front="nginx/scgi.conf", needs=("rgi-scgi", "nginx"), group="libfcgi"),
    Stack("rgi-uwsgi", "nginx → RGI uwsgi", app=f"{RGI} --protocol uwsgi --bind 127.0.0.1:@BACKEND@",
          front="nginx/uwsgi.conf", needs=("rgi-uwsgi", "nginx"), group="libfcgi"),
    # The FastCGI limit and the stacks RGI replaces.
    Stack("libfcgi", "nginx → C libfcgi ×2 (spawn-fcgi)",
          app="spawn-fcgi -a 127.0.0.1 -p @BACKEND@ -F 2 -P @DIR@/spawn-fcgi.pid @SPAWN_USER@ -- @BUILD@/hello-fcgi",
          pidfile="@DIR@/spawn-fcgi.pid", front="nginx/fastcgi.conf",
          needs=("libfcgi", "spawn-fcgi", "nginx"), ref=True, group="libfcgi"),
    Stack("php-fpm", "nginx → php-fpm ×2 (static)", app="@PHP_FPM@ -F -y @DIR@/php-fpm.conf",
          front="nginx/php.conf", needs=("php-fpm", "nginx"), ref=True, group="libfcgi"),
    Stack("webpy-gevent", 'nginx → gunicorn gevent ×2 → web.py ("3.0")',
          app=f"{GUNICORN} -k gevent webapp:application", front="nginx/proxy.conf",
          needs=("venv", "nginx"), ref=True, group="libfcgi"),
    Stack("webpy-sync", "nginx → gunicorn sync ×2 → web.py",
          app=f"{GUNICORN} -k sync webapp:application", front="nginx/proxy.conf",
          needs=("venv", "nginx"), group="libfcgi"),
    Stack("webpy-flup", 'nginx → flup (FastCGI, threaded) → web.py ("2.9")',
          app="@VENV@/bin/python @BENCH@/python/webapp.py 127.0.0.1 @BACKEND@", front="nginx/fastcgi.conf",
          needs=("venv", "nginx"), ref=True, group="libfcgi"),
    # CGI: a process per request.
    Stack("rgi-cgi", "lighttpd mod_cgi → RGI hello (CGI)", front="lighttpd/cgi.conf",
          stage={"www/hello": "@HELLO@"}, needs=("rgi-cgi", "lighttpd"), group="c-cgi"),
    Stack("rgi-cgi-static", "lighttpd mod_cgi → RGI hello (CGI; static, LTO, stripped build)",
          front="lighttpd/cgi.conf", stage={"www/hello": "@HELLO_STATIC@"}, needs=("rgi-cgi", "hello-static", "lighttpd"),
          group="c-cgi"),
    Stack("c-cgi", "lighttpd mod_cgi → C CGI program", front="lighttpd/cgi.conf",
          stage={"www/hello": "@BUILD@/hello-cgi"}, needs=("c-cgi", "lighttpd"), ref=True, group="c-cgi"),
    Stack("c-cgi-fcgiwrap", "nginx → fcgiwrap ×2 → C CGI program",
          app="fcgiwrap -c 2 -s tcp:127.0.0.1:@BACKEND@", front="nginx/fcgiwrap.conf",
          stage={"www/hello": "@BUILD@/hello-cgi"}, needs=("c-cgi", "fcgiwrap", "nginx"), group="c-cgi"),
]

# The issue's targets: (what, row, reference row, the ratio the row should reach). Reported, not asserted.
TARGETS = [
    ("RGI HTTP ≥ 1.0× axum", "rgi-http", "axum", 1.0),
    ("RGI HTTP ≥ 0.95× raw hyper", "rgi-http", "hyper", 0.95),
    ("nginx→RGI FastCGI ≥ 1.0× nginx→C libfcgi", "rgi-fcgi", "libfcgi", 1.0),
    ("nginx→RGI FastCGI ≥ 1.2× nginx→php-fpm", "rgi-fcgi", "php-fpm", 1.2),
    ('nginx→RGI FastCGI ≥ 5× "3.0"', "rgi-fcgi", "webpy-gevent", 5.0),
    ("nginx→RGI FastCGI keep_conn on ≥ 1.0× nginx→C libfcgi", "rgi-fcgi-keep", "libfcgi", 1.0),
    ('RGI HTTP direct ≥ 20× "3.0"', "rgi-http", "webpy-gevent", 20.0),
    ("lighttpd→RGI CGI ≥ 0.9× C CGI", "rgi-cgi", "c-cgi", 0.9),
    ("lighttpd→RGI CGI (static LTO build) ≥ 0.9× C CGI", "rgi-cgi-static", "c-cgi", 0.9),
]

# Rows measured for memory with many idle keep-alive connections (BENCH_IDLE connections each).
IDLE_ROWS = ["rgi-http", "rgi-async-1", "hyper", "axum", "actix"]
IDLE_TARGET_MIB = 64

# The blocking-application checks use the end-to-end tests' app (tests/src/bin/testapp.rs):
# /sleep?ms=100 blocks its thread for 100 ms (rgi::blocking), /fast answers at once.
TESTAPP = "@RELEASE@/testapp"
BLOCKING_SYNC_THREADS = (2, 8)  # the sync worker's throughput on /sleep should grow with its threads
