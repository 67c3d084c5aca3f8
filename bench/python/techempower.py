"""TechEmpower's tests on web.py, for gunicorn's gevent worker (the "3.0" stack with a database).

WSGI callable: ``techempower:application``. ``/plaintext``, ``/json``, ``/db``, ``/queries?queries=N``,
``/fortunes`` (templetor with web.py's HTML-escaping filter) and ``/updates?queries=N`` over
PostgreSQL with psycopg2, made cooperative under gevent by psycogreen. Each worker process keeps a
pool of ``TE_POOL`` connections (default 8) to ``TE_DATABASE``; a request waiting for a connection
blocks only its greenlet.
"""

import json
import os
import random

import gevent.queue
import psycogreen.gevent
import psycopg2
import web

psycogreen.gevent.patch_psycopg()

DATABASE = os.environ.get("TE_DATABASE", "dbname=hello_world user=benchmarkdbuser host=127.0.0.1")
POOL_SIZE = int(os.environ.get("TE_POOL", "8"))

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = %s"
SELECT_FORTUNES = "SELECT id, message FROM fortune"
UPDATE_WORLDS = (
    "UPDATE world SET randomnumber = new.r FROM (SELECT unnest(%s::int[]) AS id, unnest(%s::int[]) AS r) AS new "
    "WHERE world.id = new.id"
)

FORTUNES = web.template.Template(
    """$def with (fortunes)
<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>
$for f in fortunes:
    <tr><td>$f[0]</td><td>$f[1]</td></tr>
</table></body></html>
""",
    filter=web.websafe,  # as web.template.render does for .html files
)


class Pool:
    """At most POOL_SIZE connections, opened when first needed; a greenlet waits for a free one."""

    def __init__(self, size):
        self.free = gevent.queue.LifoQueue()
        self.size = size
        self.opened = 0

    def get(self):
        if self.free.empty() and self.opened < self.size:
            self.opened += 1
            try:
                conn = psycopg2.connect(DATABASE)
            except Exception:
                self.opened -= 1
                raise
            conn.autocommit = True
            return conn
        return self.free.get()

    def put(self, conn):
        self.free.put(conn)


POOL = Pool(POOL_SIZE)


def with_cursor(f):
    conn = POOL.get()
    try:
        with conn.cursor() as cursor:
            return f(cursor)
    finally:
        POOL.put(conn)


def queries_param():
    try:
        n = int(web.input(queries="1").queries)
    except ValueError:
        n = 1
    return min(max(n, 1), 500)


def random_id():
    return random.randint(1, 10000)


def as_json(value):
    web.header("Content-Type", "application/json")
    return json.dumps(value)


class Plaintext:
    def GET(self):  # noqa: N802 (web.py's method names)
        web.header("Content-Type", "text/plain")
        return "Hello, World!"


class Json:
    def GET(self):  # noqa: N802
        return as_json({"message": "Hello, World!"})


class Db:
    def GET(self):  # noqa: N802
        def one(cursor):
            cursor.execute(SELECT_WORLD, (random_id(),))
            row = cursor.fetchone()
            return {"id": row[0], "randomNumber": row[1]}

        return as_json(with_cursor(one))


def read_worlds(cursor, n):
    worlds = []
    for _ in range(n):
        cursor.execute(SELECT_WORLD, (random_id(),))
        row = cursor.fetchone()
        worlds.append({"id": row[0], "randomNumber": row[1]})
    return worlds


class Queries:
    def GET(self):  # noqa: N802
        n = queries_param()
        return as_json(with_cursor(lambda cursor: read_worlds(cursor, n)))


class Updates:
    def GET(self):  # noqa: N802
        n = queries_param()

        def update(cursor):
            worlds = read_worlds(cursor, n)
            for world in worlds:
                world["randomNumber"] = random_id()
            ordered = sorted(worlds, key=lambda w: w["id"])  # rows locked in id order: no deadlocks
            cursor.execute(UPDATE_WORLDS, ([w["id"] for w in ordered], [w["randomNumber"] for w in ordered]))
            return worlds

        return as_json(with_cursor(update))


class Fortunes:
    def GET(self):  # noqa: N802
        def fetch(cursor):
            cursor.execute(SELECT_FORTUNES)
            return cursor.fetchall()

        fortunes = with_cursor(fetch)
        fortunes.append((0, "Additional fortune added at request time."))
        fortunes.sort(key=lambda f: f[1])
        web.header("Content-Type", "text/html; charset=utf-8")
        return str(FORTUNES(fortunes))


URLS = (
    "/plaintext", "Plaintext",
    "/json", "Json",
    "/db", "Db",
    "/queries", "Queries",
    "/updates", "Updates",
    "/fortunes", "Fortunes",
)
app = web.application(
    URLS,
    {"Plaintext": Plaintext, "Json": Json, "Db": Db, "Queries": Queries, "Updates": Updates, "Fortunes": Fortunes},
    autoreload=False,
)
application = app.wsgifunc()
