#!/usr/bin/env python3
"""Run every benchmark row (bench/stacks.py) with wrk, print the table, append it to bench/RESULTS.md.

bench/run.sh installs and builds what this needs, then runs it; see bench/README.md. Standard library
only. Every process it starts listens on 127.0.0.1 only and is stopped by its PID (SIGTERM, then
SIGKILL after a bounded wait), also when the run is interrupted.

Settings (environment variables):
    BENCH_ROUNDS=4        interleaved rounds (each row once per round; the table shows medians)
    BENCH_DURATION=8      seconds wrk measures each row in each round
    BENCH_WARMUP=2        seconds of wrk before each measurement (not counted)
    BENCH_CONNECTIONS=50  wrk -c
    BENCH_WRK_THREADS=2   wrk -t
    BENCH_ONLY=a,b        only these rows (keys from stacks.py); the targets' references are added
    BENCH_IDLE=10000      idle keep-alive connections for the memory check (0: skip it)
    BENCH_BLOCKING=1      the blocking-application checks (0: skip them)
    BENCH_RESULTS=path    where to append the results (default bench/RESULTS.md; "-" for nowhere)
    BENCH_NOTE=text       a note for RESULTS.md (e.g. "other builds were running")
    BENCH_PORT_BASE=21000 first port; row i uses BASE+10*i (wrk) and BASE+10*i+1 (the app)
    BENCH_SUITE=all       "gateway" (hello over every gateway), "framework" (TechEmpower's tests, the
                          middleware stack, todo), "http2" (the HTTP/2 rows) or "all"
    BENCH_H2_CONNECTIONS=10  h2load -c (the HTTP/2 rows)
    BENCH_H2_STREAMS=10   h2load -m: streams in flight per connection
    BENCH_PG_PORT=20980   the port of the PostgreSQL the framework rows share
    TE_POOL=16            database connections per app in the TechEmpower rows
"""

import datetime
import grp
import json
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import http.cookiejar
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from stacks import BLOCKING_SYNC_THREADS, IDLE_ROWS, IDLE_TARGET_MIB, STACKS, TARGETS, TESTAPP, Stack

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
HELLO = Path(os.environ.get("RGI_HELLO", TARGET_DIR / "release" / "hello"))
# hello built static, with LTO and stripped (bench/run.sh): what a CGI program's start-up costs then.
HELLO_STATIC = BENCH / ".build" / "static-target" / "hello"
REFS = BENCH / "refs" / "target" / "release"
BUILD = BENCH / ".build"
VENV = BENCH / ".venv"
RUNS = BENCH / ".run"

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
ONLY = [k for k in os.environ.get("BENCH_ONLY", "").split(",") if k]
IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
BLOCKING = os.environ.get("BENCH_BLOCKING", "1") != "0"
RESULTS = os.environ.get("BENCH_RESULTS", str(BENCH / "RESULTS.md"))
NOTE = os.environ.get("BENCH_NOTE", "")
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "21000"))
SUITE = os.environ.get("BENCH_SUITE", "all")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "20980"))
H2_CONNECTIONS = int(os.environ.get("BENCH_H2_CONNECTIONS", "10"))
H2_STREAMS = int(os.environ.get("BENCH_H2_STREAMS", "10"))
POOL = int(os.environ.get("TE_POOL", "16"))
TE_SCHEMA = ROOT / "examples" / "techempower" / "schema.sql"

START_TIMEOUT = 20.0  # seconds a row may take to answer its first request
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
CLK_TCK = os.sysconf("SC_CLK_TCK")
IS_ROOT = os.geteuid() == 0


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: tracked by (pid, start time) so a reused PID is never signalled.


def proc_stat(pid):
    """(ppid, start time, cpu ticks incl. reaped children) of a live process, else None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    # fields[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17, starttime 22.
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return int(fields[1]), int(fields[19]), ticks


def proc_rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Tracked:
    """The processes of one running row: the ones started, those named in pid files, and all their
    descendants."""

    def __init__(self):
        self.popens = []
        self.known = {}  # pid -> start time
        self.headers = []  # what wrk sends with every request (a row's setup may add a cookie)

    def add(self, pid):
        st = proc_stat(pid)
        if st is not None:
            self.known.setdefault(pid, st[1])

    def refresh(self):
        """Add every live descendant of the known processes; return the live known set."""
        children = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                st = proc_stat(int(entry))
                if st is not None:
                    children.setdefault(st[0], []).append((int(entry), st[1]))
        todo = [pid for pid in self.known if self.alive(pid)]
        while todo:
            pid = todo.pop()
            for child, start in children.get(pid, []):
                if child not in self.known:
                    self.known[child] = start
                    todo.append(child)
        return [pid for pid in self.known if self.alive(pid)]

    def alive(self, pid):
        st = proc_stat(pid)
        return st is not None and st[1] == self.known.get(pid)

    def cpu_ticks(self):
        ticks = {}
        for pid in self.refresh():
            st = proc_stat(pid)  # once: a CGI child may exit between two reads
            if st is not None:
                ticks[pid] = st[2]
        return ticks

    def rss_kib(self):
        return sum(proc_rss_kib(pid) for pid in self.refresh())

    def signal_all(self, sig, pids):
        for pid in pids:
            if self.alive(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def stop(self):
        """SIGTERM the started processes (front server first), then everything else still alive;
        SIGKILL what is left after STOP_TIMEOUT."""
        everyone = self.refresh()
        roots = [p.pid for p in reversed(self.popens)]
        others = [pid for pid in everyone if pid not in roots]
        self.signal_all(signal.SIGTERM, [pid for pid in roots if pid in everyone])
        deadline = time.monotonic() + STOP_TIMEOUT / 2
        while time.monotonic() < deadline and any(self.alive(pid) for pid in roots):
            self.reap()
            time.sleep(0.05)
        self.signal_all(signal.SIGTERM, others)
        deadline = time.monotonic() + STOP_TIMEOUT / 2
        while time.monotonic() < deadline and any(self.alive(pid) for pid in everyone):
            self.reap()
            time.sleep(0.05)
        left = [pid for pid in everyone if self.alive(pid)]
        if left:
            log(f"  bench: SIGKILL to {left} (still running {STOP_TIMEOUT:.0f} s after SIGTERM)")
            self.signal_all(signal.SIGKILL, left)
        for p in self.popens:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log(f"  bench: pid {p.pid} did not exit after SIGKILL")

    def reap(self):
        for p in self.popens:
            p.poll()


RUNNING = []  # Tracked rows, stopped on any exit


def stop_everything():
    while RUNNING:
        RUNNING.pop().stop()


# ---------------------------------------------------------------------------------------------
# Features: what this machine has, and why a row cannot run.


def nogroup():
    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
            return name
        except KeyError:
            pass
    return "nobody"


def php_fpm():
    found = sorted(Path("/usr/sbin").glob("php-fpm*")) + sorted(Path("/usr/local/sbin").glob("php-fpm*"))
    return str(found[-1]) if found else shutil.which("php-fpm")


def which(cmd):
    return shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def hello_help():
    if not os.access(HELLO, os.X_OK):
        return None
    try:
        out = subprocess.run([str(HELLO), "--help"], capture_output=True, text=True, timeout=10)
        return out.stdout + out.stderr
    except (OSError, subprocess.TimeoutExpired):
        return None


def probe_rgi_cgi():
    """Run hello as a CGI program would be run; True when it answers as one. (A hello without a CGI
    mode serves HTTP on its default address instead, until the time-out stops it.)"""
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/hello",
        "PATH_INFO": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    try:
        out = subprocess.run(
            [str(HELLO)], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"Hello World!" in out.stdout


def features():
    """{feature: None when present, else the reason it is missing}."""
    have = {}
    help_text = hello_help()
    have["rgi"] = None if help_text else f"{HELLO} not built (cargo build --release --bins)"
    for proto in ("fastcgi", "scgi", "uwsgi"):
        ok = help_text and re.search(rf"\b{proto}\b", help_text, re.I)
        have[f"rgi-{proto}"] = None if ok else f"not available yet: hello has no --protocol {proto}"
    ok = help_text and re.search(r"--http2\b", help_text)
    have["rgi-http2"] = None if ok else "not available yet: hello has no --http2"
    have["h2load"] = None if which("h2load") else "h2load not installed (apt-get install nghttp2-client)"
    have["openssl"] = None if which("openssl") else "openssl not installed"
    ok = help_text and re.search(r"--workers\b", help_text)
    have["rgi-workers"] = None if ok else "not available yet: no process manager (-w/-k) in hello"
    have["rgi-cgi"] = (
        None if help_text and probe_rgi_cgi() else "not available yet: hello does not run as a CGI program"
    )
    for name in ("techempower", "stackhello", "todo"):
        have[name] = None if os.access(TARGET_DIR / "release" / name, os.X_OK) else f"{TARGET_DIR / 'release' / name} not built"
    have["postgres"] = None if pg_bin() and which("psql") else "PostgreSQL not installed (apt-get install postgresql)"
    for name in ("ref-hyper", "ref-hyper-h2", "ref-axum", "ref-actix", "te-axum", "te-actix"):
        have[name] = None if os.access(REFS / name, os.X_OK) else f"{REFS / name} not built"
    have["hello-static"] = None if os.access(HELLO_STATIC, os.X_OK) else f"{HELLO_STATIC} not built"
    have["libfcgi"] = None if os.access(BUILD / "hello-fcgi", os.X_OK) else "bench/.build/hello-fcgi not built"
    have["c-cgi"] = None if os.access(BUILD / "hello-cgi", os.X_OK) else "bench/.build/hello-cgi not built"
    have["venv"] = None if os.access(VENV / "bin" / "gunicorn", os.X_OK) else "bench/.venv missing"
    have["php-fpm"] = None if php_fpm() else "php-fpm not installed"
    for cmd in ("nginx", "lighttpd", "spawn-fcgi", "fcgiwrap"):
        have[cmd] = None if which(cmd) else f"{cmd} not installed"
    return have


def missing(stack, have):
    reasons = [have.get(n, f"unknown feature {n}") for n in stack.needs]
    reasons = [r for r in reasons if r]
    return "; ".join(dict.fromkeys(reasons)) or None


# ---------------------------------------------------------------------------------------------
# PostgreSQL: one server for every row that needs it (TechEmpower's tables; todo's database),
# started from the Debian package into bench/.run/postgres and stopped by its PID at the end.


def pg_bin():
    """The folder of initdb/postgres (/usr/lib/postgresql/VERSION/bin), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def as_postgres(cmd):
    """initdb and postgres refuse to run as root: run them as the package's `postgres` user."""
    if IS_ROOT:
        return [which("setpriv") or "setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + cmd
    return cmd


def psql(database, *args):
    out = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "bench",
         "-d", database, *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"psql {' '.join(args)}: {out.stderr.strip()[:300]}")
    return out.stdout


def start_postgres():
    """initdb, start, create `hello_world` (TechEmpower's tables, from examples/techempower/schema.sql)
    and `todo`. Returns the Tracked server. Durability is off (fsync, synchronous_commit): a
    benchmark database, rebuilt every run."""
    data_root = RUNS / "postgres"
    if data_root.exists():
        shutil.rmtree(data_root)
    data_root.mkdir(parents=True)
    data = data_root / "data"
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    if IS_ROOT:
        shutil.chown(data_root, "postgres", "postgres")
    out = subprocess.run(as_postgres([str(pg_bin() / "initdb"), "-U", "bench", "--auth=trust", "-E", "UTF8",
                                      "-D", str(data)]), capture_output=True, text=True, env=env, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"initdb: {out.stderr.strip()[:300]}")
    tracked = Tracked()
    RUNNING.append(tracked)
    with open(data_root / "postgres.log", "ab") as log_file:
        p = subprocess.Popen(
            as_postgres([str(pg_bin() / "postgres"), "-D", str(data), "-p", str(PG_PORT), "-k", str(data_root),
                         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off", "-c", "max_connections=200"]),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    tracked.popens.append(p)
    tracked.add(p.pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"postgres exited; see {data_root}/postgres.log")
        ready = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "bench", "-d", "postgres",
                                "-c", "SELECT 1"], capture_output=True, timeout=10)
        if ready.returncode == 0:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"postgres did not answer within 30 s; see {data_root}/postgres.log")
    psql("postgres", "-c", "CREATE DATABASE hello_world", "-c", "CREATE DATABASE todo")
    psql("hello_world", "-f", str(TE_SCHEMA))
    count = psql("hello_world", "-At", "-c", "SELECT count(*) FROM world").strip()
    fortunes = psql("hello_world", "-At", "-c", "SELECT count(*) FROM fortune").strip()
    if (count, fortunes) != ("10000", "12"):
        raise RuntimeError(f"the TechEmpower tables hold {count} worlds and {fortunes} fortunes, not 10000 and 12")
    tracked.refresh()
    log(f"bench: PostgreSQL {pg_bin().parent.name} on 127.0.0.1:{PG_PORT} (pid {p.pid}), 10000 worlds, 12 fortunes")
    return tracked


PG = None  # the Tracked PostgreSQL, when a row needs it


# ---------------------------------------------------------------------------------------------
# Starting a row.


def placeholders(index, run_dir):
    spawn_user = f"-u nobody -g {nogroup()}" if IS_ROOT else ""
    return {
        "@PORT@": str(PORT_BASE + 10 * index),
        "@BACKEND@": str(PORT_BASE + 10 * index + 1),
        "@DIR@": str(run_dir),
        "@BENCH@": str(BENCH),
        "@HELLO@": str(HELLO),
        "@HELLO_STATIC@": str(HELLO_STATIC),
        "@RELEASE@": str(TARGET_DIR / "release"),
        "@REFS@": str(REFS),
        "@BUILD@": str(BUILD),
        "@VENV@": str(VENV),
        "@PHP_FPM@": php_fpm() or "php-fpm",
        "@SPAWN_USER@": spawn_user,
        "@PGPORT@": str(PG_PORT),
        "@PGURL@": f"postgres://bench@127.0.0.1:{PG_PORT}/hello_world",
        "@PGURL_TODO@": f"postgres://bench@127.0.0.1:{PG_PORT}/todo",
        "@POOL@": str(POOL),
        "@POOL_HALF@": str(max(1, POOL // 2)),
        "@CERT@": str(run_dir / "cert.pem"),
        "@KEY@": str(run_dir / "key.pem"),
    }


USER_LINES = {
    "nginx": lambda: f"user nobody {nogroup()};",
    "lighttpd": lambda: f'server.username = "nobody"\nserver.groupname = "{nogroup()}"',
    "php-fpm": lambda: f"user = nobody\ngroup = {nogroup()}",
}


def render(text, subs, kind=None):
    subs = dict(subs)
    subs["@USER@"] = USER_LINES[kind]() if (kind and IS_ROOT) else ""
    for key, value in subs.items():
        text = text.replace(key, value)
    return text


def wait_tcp(port, deadline, tracked):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            tracked.reap()
            time.sleep(0.05)
    return False


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def wait_http(url, deadline, expect=b"Hello World"):
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = get(url)
            if status == 200 and expect in body:
                return None
            last = f"status {status}, body {body[:80]!r}"
        except Exception as e:  # noqa: BLE001 (any failure means: not ready yet)
            last = str(e)
        time.sleep(0.1)
    return last


def wait_h2(url, deadline, expect=b"Hello World"):
    """As wait_http, over HTTP/2 (curl: by prior knowledge on http://, by ALPN on https://)."""
    how = "--http2-prior-knowledge" if url.startswith("http:") else "--http2"
    last = "no answer"
    while time.monotonic() < deadline:
        out = subprocess.run(["curl", "-sk", how, "--max-time", "2", "-w", "\n%{http_code} %{http_version}", url],
                             capture_output=True, timeout=10)
        body, _, tail = out.stdout.rpartition(b"\n")
        if out.returncode == 0 and tail == b"200 2" and expect in body:
            return None
        last = f"curl exit {out.returncode}, {tail!r}, body {body[:80]!r}"
        time.sleep(0.1)
    return last


def self_signed(run_dir):
    """A self-signed P-256 certificate for 127.0.0.1 in run_dir: cert.pem, key.pem."""
    out = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-days", "2", "-subj", "/CN=rgi bench", "-addext",
                          "subjectAltName=IP:127.0.0.1", "-keyout", str(run_dir / "key.pem"),
                          "-out", str(run_dir / "cert.pem")], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError(f"openssl: {out.stderr.strip()[:300]}")


def spawn(tracked, cmd, log_path):
    with open(log_path, "ab") as out:
        p = subprocess.Popen(
            shlex.split(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only bench.py, which stops everything
        )
    tracked.popens.append(p)
    tracked.add(p.pid)
    return p


def start(stack, index, round_no):
    """Start the row; return (Tracked, url) or raise RuntimeError with what went wrong."""
    run_dir = RUNS / f"{stack.key}-{round_no}" if isinstance(round_no, str) else RUNS / f"{stack.key}-r{round_no}"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    (run_dir / "tmp").mkdir(parents=True)
    (run_dir / "www").mkdir()
    for d in (run_dir, run_dir / "tmp", run_dir / "www"):
        d.chmod(0o755)  # nginx and lighttpd workers run as nobody
    subs = placeholders(index, run_dir)
    for dest, src in stack.stage.items():
        shutil.copy2(render(src, subs), run_dir / dest)
    if stack.key == "php-fpm":
        conf = (BENCH / "conf" / "php-fpm" / "php-fpm.conf").read_text()
        (run_dir / "php-fpm.conf").write_text(render(conf, subs, "php-fpm"))
    if stack.client == "h2":
        self_signed(run_dir)
    tracked = Tracked()
    RUNNING.append(tracked)
    deadline = time.monotonic() + START_TIMEOUT
    if stack.app:
        p = spawn(tracked, render(stack.app, subs), run_dir / "app.log")
        if stack.pidfile:
            # The command forks the app processes and exits; their PIDs are in the pid file.
            try:
                p.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            pidfile = Path(render(stack.pidfile, subs))
            if pidfile.exists():
                for word in pidfile.read_text().split():
                    tracked.add(int(word))
        if stack.front:
            if not wait_tcp(int(subs["@BACKEND@"]), deadline, tracked):
                raise RuntimeError(f"the app did not listen on 127.0.0.1:{subs['@BACKEND@']}; see {run_dir}/app.log")
    if stack.front:
        kind = stack.front.split("/")[0]
        site = render((BENCH / "conf" / stack.front).read_text(), subs, kind)
        if kind == "nginx":
            main = (BENCH / "conf" / "nginx" / "main.conf").read_text().replace("@SITE@", site)
            (run_dir / "nginx.conf").write_text(render(main, subs, "nginx"))
            cmd = f"{which('nginx')} -p {run_dir} -e {run_dir}/nginx-error.log -c {run_dir}/nginx.conf"
        elif kind == "lighttpd":
            (run_dir / "lighttpd.conf").write_text(site)
            cmd = f"{which('lighttpd')} -D -f {run_dir}/lighttpd.conf"
        else:
            raise RuntimeError(f"unknown front server {stack.front}")
        spawn(tracked, cmd, run_dir / "front.log")
    scheme = "https" if stack.client == "h2" else "http"
    url = f"{scheme}://127.0.0.1:{subs['@PORT@']}{stack.path}"
    if stack.client == "wrk":
        problem = wait_http(url, deadline, stack.expect.encode())
    else:
        problem = wait_h2(url, deadline, stack.expect.encode())
    if problem:
        raise RuntimeError(f"no hello from {url} within {START_TIMEOUT:.0f} s ({problem}); logs in {run_dir}")
    if stack.setup:
        tracked.headers = SETUPS[stack.setup](f"http://127.0.0.1:{subs['@PORT@']}")
    tracked.refresh()
    return tracked, url


# ---------------------------------------------------------------------------------------------
# Row setups: run once a row answers; each returns the headers wrk sends.


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def todo_login(base, todos=20):
    """Sign a new user up on examples/todo, add `todos` todos through its forms (CSRF token
    included), check the list shows them; return the session cookie as a wrk header."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())

    def call(path, form=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with opener.open(base + path, data=data, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def csrf(page):
        m = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not m:
            raise RuntimeError(f"todo: no CSRF token in the page: {page[:200]!r}")
        return m.group(1)

    _, page = call("/signup")
    user = f"bench{time.monotonic_ns() % 10**12}"
    status, _ = call("/signup", {"username": user, "password": "benchmark-password", "csrf_token": csrf(page)})
    if status != 303:
        raise RuntimeError(f"todo: sign-up answered {status}")
    _, page = call("/")
    for i in range(todos):
        status, _ = call("/todos", {"title": f"todo number {i + 1} of the benchmark", "csrf_token": csrf(page)})
        if status != 303:
            raise RuntimeError(f"todo: adding a todo answered {status}")
    status, page = call("/")
    shown = page.count('<li class="todo')
    if status != 200 or shown != todos:
        raise RuntimeError(f"todo: the list page answered {status} with {shown} todos, not {todos}")
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    return [f"Cookie: {cookie}"]


SETUPS = {"todo_login": todo_login}


# ---------------------------------------------------------------------------------------------
# Measuring.

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def wrk_command(url, seconds, connections=None, latency=False, headers=()):
    connections = connections or CONNECTIONS
    cmd = ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "2s"]
    for header in headers:
        cmd += ["-H", header]
    return cmd + (["--latency"] if latency else []) + [url]


def run_wrk(url, seconds, latency=False, connections=None, headers=()):
    """Run wrk; return (parsed output, wrk's own CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(wrk_command(url, seconds, connections, latency, headers), capture_output=True, text=True,
                         timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {text.strip()[:300]}")
    return parse_wrk(text), wrk_cpu


def parse_wrk(text):
    result = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0, "requests": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        result["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        result["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        if m:
            result[key] = ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        result["errors"] += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        result["errors"] += int(m.group(1))
    return result


def h2load_command(url, seconds):
    return ["h2load", f"-t{min(WRK_THREADS, H2_CONNECTIONS)}", f"-c{H2_CONNECTIONS}", f"-m{H2_STREAMS}",
            f"-D{seconds}", url]


def run_h2load(url, seconds):
    """Run h2load for `seconds`; return (parsed output, h2load's own CPU seconds), as run_wrk."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(h2load_command(url, seconds), capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = out.stdout + out.stderr
    if out.returncode != 0:
        raise RuntimeError(f"h2load failed: {text.strip()[:300]}")
    return parse_h2load(text), cpu


def parse_h2load(text):
    """h2load's summary: req/s, and every request that did not succeed as an error (h2load reports
    no percentiles: p50/p99 stay empty)."""
    result = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "errors": 0, "requests": 0}
    m = re.search(r"finished in [\d.]+\w*, ([\d.]+) req/s", text)
    if m:
        result["rps"] = float(m.group(1))
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", text)
    if m:
        result["requests"] = int(m.group(4))
        result["errors"] = int(m.group(5)) + int(m.group(6)) + int(m.group(7))
    else:
        result["errors"] = 1
    m = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if m:
        result["errors"] += int(m.group(3)) + int(m.group(4))
    return result


def load(stack, url, seconds, latency=False, headers=()):
    """The row's load generator for `seconds`: wrk, or h2load for the HTTP/2 rows."""
    if stack.client == "wrk":
        return run_wrk(url, seconds, latency=latency, headers=headers)
    return run_h2load(url, seconds)


def measure(stack, index, round_no):
    tracked, url = start(stack, index, round_no)
    try:
        if WARMUP > 0:
            load(stack, url, WARMUP, headers=tracked.headers)
        db = PG if PG is not None and "postgres" in stack.needs else None
        cpu0 = tracked.cpu_ticks()
        db0 = db.cpu_ticks() if db else {}
        t0 = time.monotonic()
        result, wrk_cpu = load(stack, url, DURATION, latency=True, headers=tracked.headers)
        elapsed = time.monotonic() - t0
        cpu1 = tracked.cpu_ticks()
        db1 = db.cpu_ticks() if db else {}
        ticks = sum(v - cpu0.get(pid, 0) for pid, v in cpu1.items())
        result["cpu"] = 100.0 * ticks / CLK_TCK / elapsed
        db_ticks = sum(v - db0.get(pid, 0) for pid, v in db1.items())
        result["db_cpu"] = 100.0 * db_ticks / CLK_TCK / elapsed if db else float("nan")
        result["wrk_cpu"] = 100.0 * wrk_cpu / elapsed
        result["rss_mib"] = tracked.rss_kib() / 1024
        result["procs"] = len(tracked.refresh())
        return result
    finally:
        RUNNING.remove(tracked)
        tracked.stop()


def idle_connections(stack, index, count):
    """RSS of the row's processes with `count` idle keep-alive connections, each having made one
    request. Returns (RSS before, RSS with the connections open, connections that got an answer)."""
    tracked, url = start(stack, index, "idle")
    socks = []
    try:
        time.sleep(0.2)
        before = tracked.rss_kib() / 1024
        port = int(url.split(":")[2].split("/")[0])
        request = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sel = selectors.DefaultSelector()
        answered = 0
        deadline = time.monotonic() + 120
        for i in range(count):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.connect(("127.0.0.1", port))
            s.sendall(request)
            s.setblocking(False)
            socks.append(s)
            sel.register(s, selectors.EVENT_READ)
            if i % 500 == 499 or i == count - 1:
                # Drain answers so far, so the server is not holding unsent responses.
                while time.monotonic() < deadline:
                    events = sel.select(timeout=0.5 if i == count - 1 else 0.01)
                    if not events:
                        break
                    for key, _ in events:
                        try:
                            if b"Hello World" in key.fileobj.recv(4096):
                                answered += 1
                        except OSError:
                            pass
                        sel.unregister(key.fileobj)
        time.sleep(1.0)
        with_conns = tracked.rss_kib() / 1024
        sel.close()
        return before, with_conns, answered
    finally:
        for s in socks:
            s.close()
        RUNNING.remove(tracked)
        tracked.stop()


def blocking_checks(index, have):
    """The blocking-application targets, with the tests' app (stacks.TESTAPP): the sync worker's
    throughput on a 100 ms blocking handler grows with its threads; on the async worker a blocking
    handler never stalls other requests. Returns markdown lines."""
    testapp = render(TESTAPP, placeholders(index, RUNS))
    if not os.access(testapp, os.X_OK):
        return [f"Not run: {testapp} not built (cargo build --release --bins)."]
    if have.get("rgi-workers"):
        return [f"Not run: {have['rgi-workers']}."]
    seconds = max(3, min(DURATION, 5))
    sleep_path = "/sleep?ms=100"
    lines = [
        f"Blocking application (tests' testapp: `{sleep_path}` blocks its thread 100 ms; wrk {seconds} s each):",
        "",
        "| check | setting | result | ideal | |",
        "|---|---|---:|---:|---|",
    ]
    rates = {}
    for threads in BLOCKING_SYNC_THREADS:
        stack = Stack(f"block-sync-{threads}", "", app=f"{testapp} -w 1 -k sync --threads {threads} "
                      "--bind 127.0.0.1:@PORT@", path="/fast", expect="fast")
        tracked, url = start(stack, index, "blocking")
        try:
            r, _ = run_wrk(url.replace("/fast", sleep_path), seconds, latency=True, connections=16)
        finally:
            RUNNING.remove(tracked)
            tracked.stop()
        rates[threads] = r["rps"]
        lines.append(f"| sync worker, {sleep_path} | `-w 1 -k sync --threads {threads}`, wrk -c16 | "
                     f"{r['rps']:.1f} req/s, {r['errors']} errors | {threads * 10} req/s | |")
        log(f"bench: blocking sync threads={threads}: {r['rps']:.1f} req/s, errors {r['errors']}")
    low, high = BLOCKING_SYNC_THREADS[0], BLOCKING_SYNC_THREADS[-1]
    if rates.get(low):
        scale = rates[high] / rates[low]
        ideal = high / low
        lines.append(f"| sync worker scales with threads | {high} threads / {low} threads | {scale:.2f}× | "
                     f"{ideal:.0f}× | {'met' if scale >= 0.8 * ideal else 'missed'} (≥ 80% of ideal) |")

    stack = Stack("block-async", "", app=f"{testapp} -w 1 -k async --threads 2 --bind 127.0.0.1:@PORT@",
                  path="/fast", expect="fast")
    tracked, url = start(stack, index, "blocking")
    try:
        alone, _ = run_wrk(url, seconds, latency=True, connections=4)
        sleeper = subprocess.Popen(wrk_command(url.replace("/fast", sleep_path), seconds + 2, 16),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(1)
            loaded, _ = run_wrk(url, seconds, latency=True, connections=4)
            sleeper_out, _ = sleeper.communicate(timeout=seconds + 60)
        finally:
            if sleeper.poll() is None:
                sleeper.kill()
                sleeper.wait()
        slept = parse_wrk(sleeper_out)
    finally:
        RUNNING.remove(tracked)
        tracked.stop()
    lines.append(f"| async worker, /fast alone | `-w 1 -k async --threads 2`, wrk -c4 | {alone['rps']:,.0f} req/s, "
                 f"p99 {alone['p99']:.2f} ms | | |")
    stalled = loaded["p99"] >= 100 or loaded["errors"] > 0 or not loaded["rps"]
    lines.append(f"| async worker, /fast while 16 connections sit in {sleep_path} | same, wrk -c4 + wrk -c16 | "
                 f"{loaded['rps']:,.0f} req/s, p99 {loaded['p99']:.2f} ms, {loaded['errors']} errors "
                 f"(sleepers: {slept['rps']:.0f} req/s) | p99 < 100 ms | "
                 f"{'missed: stalled' if stalled else 'met: never stalls'} |")
    log(f"bench: blocking async: /fast alone p99 {alone['p99']:.2f} ms, with sleepers p99 {loaded['p99']:.2f} ms")
    return lines


# ---------------------------------------------------------------------------------------------
# Reporting.


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0].strip() if text else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def lock_version(lock, name):
    m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', lock)
    return m.group(1) if m else "?"


def machine():
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return f"{os.cpu_count()} CPUs ({model}), {mem_kib / 1024 / 1024:.1f} GiB, Linux {platform.release()}"


def versions():
    refs_lock = (BENCH / "refs" / "Cargo.lock").read_text() if (BENCH / "refs" / "Cargo.lock").exists() else ""
    rgi_lock = (ROOT / "Cargo.lock").read_text() if (ROOT / "Cargo.lock").exists() else ""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    pip = {}
    if (VENV / "bin" / "python").exists():
        out = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "list", "--format=json",
                              "--disable-pip-version-check"], capture_output=True, text=True)
        try:
            pip = {p["name"].lower(): p["version"] for p in json.loads(out.stdout)}
        except json.JSONDecodeError:
            pass
    return {
        "RGI": f"{commit.stdout.strip() or '?'}{' (+ uncommitted changes)' if dirty.stdout.strip() else ''}"
        f", hyper {lock_version(rgi_lock, 'hyper')}, tokio {lock_version(rgi_lock, 'tokio')}",
        "rustc": first_line(["rustc", "--version"]),
        "refs": f"hyper {lock_version(refs_lock, 'hyper')}, axum {lock_version(refs_lock, 'axum')}, "
        f"actix-web {lock_version(refs_lock, 'actix-web')}, tokio {lock_version(refs_lock, 'tokio')}",
        "database": f"{first_line([str(pg_bin() / 'postgres'), '--version']) if pg_bin() else 'PostgreSQL not installed'}"
        f", tokio-postgres {lock_version(rgi_lock, 'tokio-postgres')} / {lock_version(refs_lock, 'tokio-postgres')}"
        f", deadpool-postgres {lock_version(rgi_lock, 'deadpool-postgres')}, tera {lock_version(rgi_lock, 'tera')}"
        f", psycopg2 {pip.get('psycopg2-binary', '?')}, psycogreen {pip.get('psycogreen', '?')}",
        "wrk": first_line(["wrk", "-v"]).split(" [")[0],
        "nginx": first_line([which("nginx") or "nginx", "-v"]).replace("nginx version: ", ""),
        "lighttpd": first_line([which("lighttpd") or "lighttpd", "-v"]).split(" - ")[0],
        "php-fpm": first_line([php_fpm() or "php-fpm", "-v"]).split(" (")[0],
        "libfcgi": first_line(["dpkg-query", "-W", "-f", "${Version}", "libfcgi-dev"]),
        "spawn-fcgi": first_line([which("spawn-fcgi") or "spawn-fcgi", "-v"]).split(" (")[0],
        "Python": f"{first_line([str(VENV / 'bin' / 'python'), '--version'])}, gunicorn {pip.get('gunicorn', '?')}, "
        f"gevent {pip.get('gevent', '?')}, web.py {pip.get('web.py', pip.get('web-py', '?'))}, flup {pip.get('flup', '?')}",
    }


def fmt_num(x, digits=0):
    if x != x:  # NaN
        return "–"
    return f"{x:,.{digits}f}"


def fmt_ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def summarize(samples):
    rps = [s["rps"] for s in samples]
    return {
        "rps": statistics.median(rps),
        "min": min(rps),
        "max": max(rps),
        "p50": statistics.median(s["p50"] for s in samples),
        "p99": statistics.median(s["p99"] for s in samples),
        "errors": sum(s["errors"] for s in samples),
        "cpu": statistics.median(s["cpu"] for s in samples),
        # Requests per CPU-second of the row's own processes (the app, and a front server): the
        # median over the rounds of each round's ratio.
        "per_cpu": statistics.median(s["rps"] / (s["cpu"] / 100.0) if s["cpu"] else 0.0 for s in samples),
        "db_cpu": statistics.median(s.get("db_cpu", float("nan")) for s in samples),
        "wrk_cpu": statistics.median(s["wrk_cpu"] for s in samples),
        "rss": max(s["rss_mib"] for s in samples),
        "procs": max(s["procs"] for s in samples),
        "rounds": len(samples),
    }


def three_oh(key, summary):
    """The "3.0" row to compare `key` with: web.py on gunicorn gevent serving the same test."""
    if key.startswith("te-"):
        return summary.get(f"te-webpy-{key.rsplit('-', 1)[1]}", {}).get("rps")
    return summary.get("webpy-gevent", {}).get("rps")


def table(stacks, summary, unavailable, failures):
    by_key = {s.key: s for s in stacks}
    names = {s.key: s.name for s in stacks}
    lines = [
        "| stack | req/s (median) | min–max | p50 ms | p99 ms | errors | CPU % (stack) | req per CPU-s | CPU % (db) "
        "| CPU % (wrk) | RSS MiB | ratio | × \"3.0\" |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    blank = " | " * 12
    for s in stacks:
        name = f"{s.name} *(ref)*" if s.ref else s.name
        if s.key in unavailable:
            lines.append(f"| {name} | {unavailable[s.key]}{blank}")
            continue
        if s.key in failures:
            lines.append(f"| {name} | failed: {failures[s.key]}{blank}")
            continue
        if s.key not in summary:
            lines.append(f"| {name} | not measured (0 rounds){blank}")
            continue
        r = summary[s.key]
        ref = s.group if s.group and s.group != s.key else None
        ratio = "–"
        if ref and ref in summary:
            ratio = f"{fmt_ratio(r['rps'], summary[ref]['rps'])} {by_key[ref].key}"
        lines.append(
            f"| {name} | {fmt_num(r['rps'])} | {fmt_num(r['min'])}–{fmt_num(r['max'])} | {fmt_num(r['p50'], 2)} "
            f"| {fmt_num(r['p99'], 2)} | {r['errors']} | {fmt_num(r['cpu'])} | {fmt_num(r['per_cpu'])} "
            f"| {fmt_num(r['db_cpu'])} | {fmt_num(r['wrk_cpu'])} "
            f"| {fmt_num(r['rss'], 1)} | {ratio} | {fmt_ratio(r['rps'], three_oh(s.key, summary))} |"
        )
    lines += ["", "| target | row / reference | ratio | |", "|---|---|---:|---|"]
    for target in TARGETS:
        what, row, ref, want = target[:4]
        metric = target[4] if len(target) > 4 else "rps"
        if row not in names:
            continue
        if row in summary and ref in summary:
            mine, theirs = summary[row][metric], summary[ref][metric]
            got = mine / theirs if theirs else 0
            verdict = "met" if got >= want else "missed"
            lines.append(f"| {what} | {fmt_num(mine)} / {fmt_num(theirs)} | {got:.2f}× | {verdict} |")
        else:
            why = unavailable.get(row) or unavailable.get(ref) or failures.get(row) or failures.get(ref) or "not run"
            lines.append(f"| {what} | {names.get(row, row)} / {names.get(ref, ref)} | – | {why} |")
    return "\n".join(lines)


def main():
    os.chdir(BENCH)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, IDLE + 4096))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by the servers
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    RUNS.mkdir(parents=True, exist_ok=True)
    RUNS.chmod(0o755)

    have = features()
    indexed = list(enumerate(STACKS))
    keys = set(ONLY) if ONLY else {s.key for s in STACKS if SUITE == "all" or SUITE in s.suites}
    for target in TARGETS:
        if target[1] in keys:
            keys.add(target[2])
    indexed = [(i, s) for i, s in indexed if s.key in keys]
    stacks = [s for _, s in indexed]
    unavailable = {s.key: missing(s, have) for s in stacks if missing(s, have)}
    runnable = [(i, s) for i, s in indexed if s.key not in unavailable]

    started = datetime.datetime.now(datetime.timezone.utc)
    load = os.getloadavg()
    busy = subprocess.run(["pgrep", "-c", "rustc"], capture_output=True, text=True).stdout.strip() or "0"
    log(f"bench: {len(runnable)} rows × {ROUNDS} rounds × ({WARMUP} s warm-up + {DURATION} s); "
        f"load {load[0]:.2f}, rustc processes {busy}")
    for key, why in unavailable.items():
        log(f"bench: skipping {key}: {why}")

    global PG
    if any("postgres" in s.needs for _, s in runnable):
        try:
            PG = start_postgres()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            log(f"bench: PostgreSQL: {e}")
            for _, s in runnable:
                if "postgres" in s.needs:
                    unavailable[s.key] = f"PostgreSQL did not start: {e}"
            runnable = [(i, s) for i, s in runnable if s.key not in unavailable]

    samples = {s.key: [] for _, s in runnable}
    failures = {}
    for round_no in range(1, ROUNDS + 1):
        # Rotate the order each round so no row always runs right after the same neighbour.
        shift = (round_no - 1) % max(1, len(runnable))
        order = runnable[shift:] + runnable[:shift]
        for index, stack in order:
            if stack.key in failures:
                continue
            try:
                r = measure(stack, index, round_no)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                failures[stack.key] = str(e)
                log(f"bench: round {round_no} {stack.key}: FAILED: {e}")
                continue
            samples[stack.key].append(r)
            log(f"bench: round {round_no} {stack.key:15} {r['rps']:>10,.0f} req/s  p50 {r['p50']:.2f} ms  "
                f"p99 {r['p99']:.2f} ms  errors {r['errors']}  cpu {r['cpu']:.0f}%  db {r['db_cpu']:.0f}%  wrk {r['wrk_cpu']:.0f}%  "
                f"rss {r['rss_mib']:.1f} MiB")
    summary = {k: summarize(v) for k, v in samples.items() if v and k not in failures}

    if PG is not None:
        RUNNING.remove(PG)
        PG.stop()
    idle_lines = []
    if IDLE > 0 and SUITE in ("all", "gateway"):
        for key in IDLE_ROWS:
            match = [(i, s) for i, s in runnable if s.key == key and key not in failures]
            if not match:
                continue
            index, stack = match[0]
            try:
                before, with_conns, answered = idle_connections(stack, index, IDLE)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                idle_lines.append(f"| {stack.name} | failed: {e} | | | |")
                continue
            per_conn = (with_conns - before) * 1024 * 1024 / max(1, answered)
            verdict = f"{'met' if with_conns <= IDLE_TARGET_MIB else 'missed'}" if key.startswith("rgi") else ""
            idle_lines.append(f"| {stack.name} | {before:.1f} | {with_conns:.1f} | {answered} | "
                              f"{per_conn / 1024:.1f} KiB | {verdict} |")
            log(f"bench: idle {key}: {before:.1f} MiB → {with_conns:.1f} MiB with {answered} connections")

    blocking_lines = []
    if BLOCKING and not ONLY and SUITE in ("all", "gateway"):
        try:
            blocking_lines = blocking_checks(len(STACKS) + 1, have)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            blocking_lines = [f"Blocking application checks failed: {e}"]

    out = table(stacks, summary, unavailable, failures)
    if idle_lines:
        out += (f"\n\nMemory with {IDLE:,} idle keep-alive connections (each made one request; target for RGI's "
                f"async worker: ≤ {IDLE_TARGET_MIB} MiB):\n\n"
                "| server | RSS MiB idle | RSS MiB with the connections | answered | per connection | target |\n"
                "|---|---:|---:|---:|---:|---|\n" + "\n".join(idle_lines))
    if blocking_lines:
        out += "\n\n" + "\n".join(blocking_lines)
    print()
    print(out)

    if RESULTS != "-":
        kind = "full" if ROUNDS >= 4 and DURATION >= 5 else "short"
        vers = versions()
        header = [
            f"## {started:%Y-%m-%d %H:%M} UTC — {kind} run" + ("" if SUITE == "all" and not ONLY else
                                                                ", " + (f"rows {','.join(ONLY)}" if ONLY else
                                                                        f"suite {SUITE}")),
            "",
            f"- machine: {machine()}",
            f"- settings: wrk -t{WRK_THREADS} -c{CONNECTIONS} (HTTP/2 rows: h2load -t{min(WRK_THREADS, H2_CONNECTIONS)} "
            f"-c{H2_CONNECTIONS} -m{H2_STREAMS}; CPU % (wrk) is h2load's), {ROUNDS} interleaved rounds × {DURATION} s after a "
            f"{WARMUP} s warm-up; medians; errors summed over the rounds; CPU in % of one core (median), RSS summed "
            "over the row's processes (max); nginx 2 workers, app servers 2 threads/workers"
            + (f"; PostgreSQL on the same cores, {POOL} connections per app (web.py: {max(1, POOL // 2)} per worker "
               "process), CPU % (db) is its share" if PG is not None else ""),
            f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; rustc processes at start: {busy}",
            "- versions: " + "; ".join(f"{k} {v}" for k, v in vers.items()),
        ]
        if NOTE:
            header.append(f"- note: {NOTE}")
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write("\n" + "\n".join(header) + "\n\n" + out + "\n")
        log(f"bench: appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("bench: interrupted; stopping what is running")
        sys.exit(130)
    finally:
        stop_everything()
