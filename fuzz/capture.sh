#!/usr/bin/env bash
# Re-make the captured seeds in fuzz/corpus: what nginx really sends to a FastCGI, SCGI and uwsgi
# backend (stock *_params files) and what curl really sends over HTTP, for a handful of requests
# (GET with a query and cookies, an urlencoded form, JSON, a multipart upload with a file, a
# chunked upload). A listener records each connection's bytes and closes it (nginx then answers
# 502, which does not matter here). Needs nginx, curl and python3; loopback only.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/sbin:/sbin"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work" <<'PY' &
import os, socket, sys, threading, time
work = sys.argv[1]
def serve(sock, kind):
    n = 0
    while True:
        conn, _ = sock.accept()
        n += 1
        data = b""
        conn.settimeout(0.5)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        conn.close()
        with open(os.path.join(work, f"{kind}-{n:02d}"), "wb") as f:
            f.write(data)
for kind in ["fastcgi", "scgi", "uwsgi"]:
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(work, kind + ".sock"))
    os.chmod(os.path.join(work, kind + ".sock"), 0o777)
    s.listen(16)
    threading.Thread(target=serve, args=(s, kind), daemon=True).start()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
open(os.path.join(work, "http.port"), "w").write(str(s.getsockname()[1]))
threading.Thread(target=serve, args=(s, "http"), daemon=True).start()
time.sleep(120)
PY
pids+=($!)
for _ in $(seq 50); do [ -f "$work/http.port" ] && break; sleep 0.1; done
http_port="$(cat "$work/http.port")"
nginx_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
conf_dir="$(dirname "$(command -v nginx)")/../../etc/nginx"
[ -f "$conf_dir/fastcgi_params" ] || conf_dir=/etc/nginx
cat >"$work/nginx.conf" <<CONF
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $work;
  fastcgi_temp_path $work; scgi_temp_path $work; uwsgi_temp_path $work; proxy_temp_path $work;
  server {
    listen 127.0.0.1:$nginx_port;
    location /fcgi/ { include $conf_dir/fastcgi_params; fastcgi_pass unix:$work/fastcgi.sock; fastcgi_keep_conn on; }
    location /scgi/ { include $conf_dir/scgi_params; scgi_pass unix:$work/scgi.sock; }
    location /uwsgi/ { include $conf_dir/uwsgi_params; uwsgi_pass unix:$work/uwsgi.sock; }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work" &
pids+=($!)
sleep 0.5
head -c 3000 /dev/urandom | base64 >"$work/upload.txt"
requests() {
  local base="$1"
  curl -s -o /dev/null --max-time 2 "$base/items/42?q=a%20b&x=1&x=2" -H 'Cookie: rgi_session=AbC_dEf-123; a=1' -H 'Accept: */*' || true
  curl -s -o /dev/null --max-time 2 "$base/form" -d 'name=Ann+Lee&age=31&tags=a&tags=b%26c' || true
  curl -s -o /dev/null --max-time 2 "$base/json" -H 'Content-Type: application/json' -d '{"name":"Ann","age":31,"tags":["a",{"b":null}]}' || true
  curl -s -o /dev/null --max-time 2 "$base/upload" -F 'title=Ma photo' -F "file=@$work/upload.txt;type=text/plain" || true
  curl -s -o /dev/null --max-time 2 "$base/upload" -H 'Transfer-Encoding: chunked' --data-binary @"$work/upload.txt" || true
  curl -s -o /dev/null --max-time 2 -I "$base/static/dir/../a%2e%2etxt" || true
}
requests "http://127.0.0.1:$nginx_port/fcgi"
requests "http://127.0.0.1:$nginx_port/scgi"
requests "http://127.0.0.1:$nginx_port/uwsgi"
requests "http://127.0.0.1:$http_port"
sleep 1
for f in "$work"/fastcgi-* "$work"/scgi-* "$work"/uwsgi-* "$work"/http-*; do
  [ -s "$f" ] || continue
  kind="$(basename "$f" | cut -d- -f1)"
  n="$(basename "$f" | cut -d- -f2)"
  case "$kind" in
    fastcgi) dirs=(fastcgi_connection fastcgi_records) ;;
    scgi) dirs=(scgi) ;;
    uwsgi) dirs=(uwsgi) ;;
    http) dirs=(http_environ extractors session_cookie static_path) ;;
  esac
  for d in "${dirs[@]}"; do
    mkdir -p "corpus/$d"
    cp "$f" "corpus/$d/capture-$kind-$n"
  done
done
ls corpus/*/capture-* | wc -l
