"""The hello app on web.py: text/plain "Hello World!", this process's access count, its pid.

WSGI callable: ``webapp:application`` (for gunicorn). ``python webapp.py HOST PORT`` serves it over
FastCGI with flup instead (the "2.9" stack).
"""

import itertools
import os
import sys

import web

# ".*", not "/.*": behind nginx's stock fastcgi_params PATH_INFO is empty (the path is in SCRIPT_NAME).
URLS = (".*", "Hello")
_count = itertools.count(1)


class Hello:
    """Every path answers the same hello."""

    def GET(self):  # noqa: N802 (web.py's method names)
        web.header("Content-Type", "text/plain")
        return "Hello World!\nAccess count: %d\nPID: %d\n" % (next(_count), os.getpid())


app = web.application(URLS, {"Hello": Hello}, autoreload=False)
application = app.wsgifunc()


def serve_fastcgi(host, port):
    """Serve over FastCGI with flup's threaded server.

    Not multiplexed (web.py's own ``runfcgi`` turns multiplexing on, and flup in that mode hangs for
    good once nginx aborts an in-flight request).
    """
    from flup.server.fcgi import WSGIServer

    WSGIServer(application, bindAddress=(host, int(port)), multiplexed=False).run()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python webapp.py HOST PORT   (serves FastCGI with flup)")
    serve_fastcgi(sys.argv[1], sys.argv[2])
