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
    @PGURL@     the benchmark's PostgreSQL database (TechEmpower's tables), postgres://bench@127.0.0.1:PORT/hello_world
    @PGPORT@    its port
    @POOL@      database connections per app (TE_POOL, default 16); @POOL_HALF@ per process of a two-process app
    @CERT@ @KEY@  a self-signed certificate for 127.0.0.1 and its key (made with openssl for rows whose
                client speaks TLS)

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
    setup    a function of bench.py run once the row answers (e.g. "todo_login": sign up, add todos,
             log in); it returns the headers wrk sends (a session cookie)
    suites   the suites the row belongs to (BENCH_SUITE): "gateway" (hello over every gateway) and/or
             "framework" (TechEmpower's tests, the middleware stack, todo) and/or "http2"
    client   the load generator: "wrk" (HTTP/1.1, the default), "h2c" (h2load, HTTP/2 by prior
             knowledge) or "h2" (h2load, HTTP/2 over TLS by ALPN; the row gets @CERT@ and @KEY@)
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
    setup: str | None = None
    suites: tuple[str, ...] = ("gateway",)
    client: str = "wrk"


RGI = "@HELLO@ --threads 2"
GUNICORN = "@VENV@/bin/gunicorn --chdir @BENCH@/python -w 2 --graceful-timeout 5 -b 127.0.0.1:@BACKEND@"

STACKS = [
    # The ceiling.
    Stack("nginx-return", "nginx `return 200` (ceiling)", front="nginx/return200.conf",
          needs=("nginx",), ref=True),
    # RGI over HTTP, directly.
    Stack("rgi-http", "RGI HTTP direct (hello, --threads 2)", app=f"{RGI} --bind 127.0.0.1:@PORT@",
          needs=("rgi",), group="axum", suites=("gateway", "framework")),
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
          needs=("ref-hyper",), ref=True, group="axum", suites=("gateway", "framework")),
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

# HTTP/2: h2load (BENCH_H2_CONNECTIONS connections × BENCH_H2_STREAMS streams each) at RGI's hello and at
# raw hyper's http2 server (refs/src/bin/ref-hyper-h2.rs), cleartext by prior knowledge and over TLS.
H2 = ("gateway", "http2")
STACKS += [
    Stack("rgi-h2c", "RGI HTTP/2 cleartext (h2c prior knowledge; hello, --threads 2)",
          app=f"{RGI} --bind 127.0.0.1:@PORT@", needs=("rgi-http2", "h2load"), group="hyper-h2c", suites=H2,
          client="h2c"),
    Stack("hyper-h2c", "raw hyper 1.x http2 (h2c, 2 threads)",
          app="@REFS@/ref-hyper-h2 --bind 127.0.0.1:@PORT@ --threads 2", needs=("ref-hyper-h2", "h2load"),
          ref=True, group="hyper-h2c", suites=H2, client="h2c"),
    Stack("rgi-h2-tls", "RGI HTTP/2 over TLS (ALPN h2; hello, --threads 2)",
          app=f"{RGI} --certfile @CERT@ --keyfile @KEY@ --bind 127.0.0.1:@PORT@",
          needs=("rgi-http2", "h2load", "openssl"), group="hyper-h2-tls", suites=H2, client="h2"),
    Stack("hyper-h2-tls", "raw hyper 1.x http2 over rustls (ALPN h2, 2 threads)",
          app="@REFS@/ref-hyper-h2 --certfile @CERT@ --keyfile @KEY@ --bind 127.0.0.1:@PORT@ --threads 2",
          needs=("ref-hyper-h2", "h2load", "openssl"), ref=True, group="hyper-h2-tls", suites=H2, client="h2"),
]

FRAMEWORK = ("framework",)

# The middleware stack's cost: the same hello (examples/hello's body) bare, and under the standard
# stack (request id, proxy fix, access log to a file, sessions, CSRF, compression negotiating
# identity): tests/src/bin/stackhello.rs. wrk sends no cookie, as a first visit does.
STACKS += [
    Stack("hello-bare", "hello bare (stackhello, --threads 2)",
          app="@RELEASE@/stackhello --threads 2 --bind 127.0.0.1:@PORT@", needs=("stackhello",), ref=True,
          suites=FRAMEWORK),
    Stack("hello-stack", "hello under the standard middleware stack",
          app="@RELEASE@/stackhello --standard-stack @DIR@ --threads 2 --bind 127.0.0.1:@PORT@",
          needs=("stackhello",), group="hello-bare", suites=FRAMEWORK),
]

# TechEmpower's tests (examples/techempower; bench/refs te-axum, te-actix; python/techempower.py),
# all on one PostgreSQL started by bench.py, each app with a pool of @POOL@ connections.
TE_TESTS = [
    # (key, path, text the answer must hold)
    ("json", "/json", "Hello, World!"),
    ("db", "/db", "randomNumber"),
    ("queries", "/queries?queries=20", "randomNumber"),
    ("fortunes", "/fortunes", "&lt;script&gt;"),
    ("updates", "/updates?queries=20", "randomNumber"),
]
TE_APP = "@RELEASE@/techempower --database @PGURL@ --pool @POOL@ --threads 2"
TE_SERVERS = [
    # (key, name, app, front, needs, tests)
    ("rgi", "RGI framework HTTP", f"{TE_APP} --bind 127.0.0.1:@PORT@", None, ("techempower",), None),
    ("rgi-fcgi", "nginx → RGI framework FastCGI (keep_conn off)",
     f"{TE_APP} --protocol fastcgi --bind 127.0.0.1:@BACKEND@", "nginx/fastcgi.conf", ("techempower", "nginx"),
     ("json", "db", "fortunes")),
    ("rgi-fcgi-keep", "nginx → RGI framework FastCGI (keep_conn on)",
     f"{TE_APP} --protocol fastcgi --bind 127.0.0.1:@BACKEND@", "nginx/fastcgi-keepconn.conf",
     ("techempower", "nginx"), ("json", "db", "fortunes")),
    ("axum", "axum 0.8", "@REFS@/te-axum --database @PGURL@ --pool @POOL@ --threads 2 --bind 127.0.0.1:@PORT@",
     None, ("te-axum",), None),
    ("actix", "actix-web 4", "@REFS@/te-actix --database @PGURL@ --pool @POOL@ --threads 2 --bind 127.0.0.1:@PORT@",
     None, ("te-actix",), None),
    ("webpy", 'nginx → gunicorn gevent ×2 → web.py ("3.0")',
     f"env TE_DATABASE=@PGURL@ TE_POOL=@POOL_HALF@ {GUNICORN} -k gevent techempower:application",
     "nginx/proxy.conf", ("venv", "nginx"), None),
]
for test, path, expect in TE_TESTS:
    for server, name, app, front, needs, tests in TE_SERVERS:
        if tests is not None and test not in tests:
            continue
        STACKS.append(Stack(f"te-{server}-{test}", f"{path}: {name}", app=app, front=front,
                            needs=needs + ("postgres",), ref=server in ("axum", "webpy"),
                            group=f"te-axum-{test}", path=path, expect=expect, suites=FRAMEWORK))

# todo's list page (GET / signed in, 20 todos) behind nginx over FastCGI (keep_conn on, as
# deploy/nginx/todo-upstream.conf), on SQLite and on PostgreSQL.
TODO_APP = "@RELEASE@/todo --protocol fastcgi --bind 127.0.0.1:@BACKEND@ --threads 2"
STACKS += [
    Stack("todo-sqlite", "todo list page: nginx → RGI FastCGI (keep_conn on), SQLite",
          app=f"{TODO_APP} --database sqlite:@DIR@/todo.db", front="nginx/fastcgi-keepconn.conf",
          needs=("todo", "nginx"), path="/", expect="Log in", setup="todo_login", suites=FRAMEWORK),
    Stack("todo-pg", "todo list page: nginx → RGI FastCGI (keep_conn on), PostgreSQL",
          app=f"{TODO_APP} --database @PGURL_TODO@", front="nginx/fastcgi-keepconn.conf",
          needs=("todo", "nginx", "postgres"), path="/", expect="Log in", setup="todo_login",
          group="todo-sqlite", suites=FRAMEWORK),
]

# The issue's targets: (what, row, reference row, the ratio the row should reach[, metric]); the
# metric is "rps" (requests per second, the default) or "per_cpu" (requests per CPU-second of the
# row's own processes: the app, and nginx in front). Reported, not asserted.
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
    ("standard middleware stack costs ≤ 15% of bare hello (req/s)", "hello-stack", "hello-bare", 0.85),
    ("standard middleware stack costs ≤ 15% of bare hello (req per CPU-second)", "hello-stack", "hello-bare", 0.85,
     "per_cpu"),
    ("RGI HTTP ≥ 0.95× raw hyper (req per CPU-second)", "rgi-http", "hyper", 0.95, "per_cpu"),
    ("RGI HTTP/2 cleartext ≥ 0.9× raw hyper http2", "rgi-h2c", "hyper-h2c", 0.9),
    ("RGI HTTP/2 over TLS ≥ 0.9× raw hyper http2 over rustls", "rgi-h2-tls", "hyper-h2-tls", 0.9),
]
for _test, _path, _ in TE_TESTS:
    TARGETS.append((f"RGI framework ≥ 1.0× axum on {_path} (req/s)", f"te-rgi-{_test}", f"te-axum-{_test}", 1.0))
    TARGETS.append((f"RGI framework ≥ 1.0× axum on {_path} (req per CPU-second)", f"te-rgi-{_test}",
                    f"te-axum-{_test}", 1.0, "per_cpu"))
TARGETS.append(('RGI framework ≥ 10× "3.0" (web.py, gunicorn gevent) on /fortunes', "te-rgi-fortunes",
                "te-webpy-fortunes", 10.0))

# Rows measured for memory with many idle keep-alive connections (BENCH_IDLE connections each).
IDLE_ROWS = ["rgi-http", "rgi-async-1", "hyper", "axum", "actix"]
IDLE_TARGET_MIB = 64

# The blocking-application checks use the end-to-end tests' app (tests/src/bin/testapp.rs):
# /sleep?ms=100 blocks its thread for 100 ms (rgi::blocking), /fast answers at once.
TESTAPP = "@RELEASE@/testapp"
BLOCKING_SYNC_THREADS = (2, 8)  # the sync worker's throughput on /sleep should grow with its threads
