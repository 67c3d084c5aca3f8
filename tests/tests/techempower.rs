//! examples/techempower (TechEmpower's tests on rgi-framework) against a PostgreSQL of the test's
//! own, filled with TechEmpower's tables: every test's answer as TechEmpower's rules want it, over
//! HTTP and behind nginx with FastCGI.

use rgi_tests::services::Postgres;
use rgi_tests::webservers::{self, require, Nginx, TempDir};
use rgi_tests::{curl, workspace_root, Server};
use serde_json::Value;

/// `psql` on the test's database, stopping at the first error; its output.
fn psql(pg: &Postgres, args: &[&str]) -> String {
    let out = std::process::Command::new(require("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", &pg.url()])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Status line and headers (lowercased names), and the body, of a GET.
fn get(url: &str) -> (String, String) {
    let out = curl(&["-i", url]);
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_ascii_lowercase(), body.to_owned())
}

fn json(url: &str) -> Value {
    let (head, body) = get(url);
    assert!(head.starts_with("http/1.1 200"), "{url}: {head}");
    assert!(
        head.contains("content-type: application/json"),
        "{url}: {head}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

/// A world as `/db` shows it: `{"id": 1..=10000, "randomNumber": 1..=10000}`.
fn world(value: &Value) -> (i64, i64) {
    let id = value["id"].as_i64().expect("id");
    let number = value["randomNumber"].as_i64().expect("randomNumber");
    assert!((1..=10_000).contains(&id), "{value}");
    assert!((1..=10_000).contains(&number), "{value}");
    (id, number)
}

fn check(base: &str, pg: &Postgres) {
    let (head, body) = get(&format!("{base}/plaintext"));
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(body, "Hello, World!");
    assert_eq!(
        json(&format!("{base}/json")),
        serde_json::json!({"message": "Hello, World!"})
    );
    world(&json(&format!("{base}/db")));
    // queries: missing, malformed and too small are 1; too large is 500.
    for (query, n) in [
        ("", 1),
        ("?queries=", 1),
        ("?queries=foo", 1),
        ("?queries=0", 1),
        ("?queries=-3", 1),
        ("?queries=20", 20),
        ("?queries=501", 500),
    ] {
        let worlds = json(&format!("{base}/queries{query}"));
        let worlds = worlds.as_array().expect("an array");
        assert_eq!(worlds.len(), n, "/queries{query}");
        worlds.iter().for_each(|w| {
            world(w);
        });
    }
    // updates: what the answer says is what the table now holds.
    let updated = json(&format!("{base}/updates?queries=5"));
    let updated = updated.as_array().expect("an array");
    assert_eq!(updated.len(), 5);
    for w in updated {
        let (id, number) = world(w);
        let stored = psql(
            pg,
            &[
                "-c",
                &format!("SELECT randomnumber FROM world WHERE id = {id}"),
            ],
        );
        // The same id may be drawn twice in one request; the last write wins.
        let last = updated
            .iter()
            .rev()
            .find(|v| v["id"].as_i64() == Some(id))
            .map(|v| v["randomNumber"].as_i64().unwrap());
        assert_eq!(
            stored.trim().parse::<i64>().ok(),
            last,
            "world {id} (answered {number})"
        );
    }
    // fortunes: 12 rows + 1, sorted by message, escaped, UTF-8 kept.
    let (head, body) = get(&format!("{base}/fortunes"));
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );
    assert!(body.starts_with("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>"), "{body}");
    assert!(body.contains("<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;&#x2F;script&gt;</td></tr>")
        || body.contains("<tr><td>11</td><td>&lt;script&gt;alert(&quot;This should not be displayed in a browser alert box.&quot;);&lt;/script&gt;</td></tr>"), "{body}");
    assert!(!body.contains("<script>"), "{body}");
    assert!(
        body.contains("<tr><td>0</td><td>Additional fortune added at request time.</td></tr>"),
        "{body}"
    );
    assert!(
        body.contains("<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>"),
        "{body}"
    );
    let ids: Vec<&str> = body
        .split("<tr><td>")
        .skip(1)
        .map(|row| row.split('<').next().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["11", "4", "5", "2", "8", "0", "3", "7", "10", "6", "9", "1", "12"],
        "sorted by message"
    );
}

#[test]
fn techempower_tests_over_http_and_behind_nginx_fastcgi() {
    if webservers::skip_webservers() {
        return;
    }
    let dir = TempDir::new("techempower");
    let pg = Postgres::start(&dir);
    let schema = workspace_root().join("examples/techempower/schema.sql");
    psql(&pg, &["-f", &schema.display().to_string()]);
    assert_eq!(
        psql(&pg, &["-c", "SELECT count(*) FROM world"]).trim(),
        "10000"
    );
    let url = pg.url();

    let http = Server::start("techempower", &["--database", &url, "--pool", "4"]);
    check(&format!("http://{}", http.addr()), &pg);

    let fcgi = Server::start(
        "techempower",
        &["--database", &url, "--pool", "2", "--protocol", "fastcgi"],
    );
    let server = format!(
        "        location / {{ include {}; fastcgi_pass {}; }}\n",
        webservers::nginx_stock_params("fastcgi_params").display(),
        fcgi.addr(),
    );
    let mut nginx = Nginx::start(TempDir::new("techempower-nginx"), "", &server);
    check(&format!("http://{}", nginx.addr()), &pg);
    nginx.stop();
}

#[test]
fn a_database_that_is_down_is_a_500_not_a_hang() {
    // A port nothing listens on: every database test answers 500 at once; the others still work.
    let port = webservers::free_port();
    let url = format!("postgres://bench@127.0.0.1:{port}/hello_world");
    let app = Server::start("techempower", &["--database", &url, "--pool", "2"]);
    let base = format!("http://{}", app.addr());
    for path in [
        "/db",
        "/queries?queries=3",
        "/fortunes",
        "/updates?queries=2",
    ] {
        let (head, _) = get(&format!("{base}{path}"));
        assert!(head.starts_with("http/1.1 500"), "{path}: {head}");
    }
    assert_eq!(get(&format!("{base}/plaintext")).1, "Hello, World!");
}
