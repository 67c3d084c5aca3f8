//! A real browser: headless Chromium, driven over WebDriver (chromedriver), against todo behind
//! nginx (`deploy/nginx/todo-fastcgi.conf`) over FastCGI with two worker processes (`-w 2`) on
//! SQLite. Signs up, logs in, adds three items, edits one, completes one, deletes one, checks each
//! flash message, reloads to see the session persist, logs out and sees the list refused, and posts
//! a form whose CSRF token was removed (403). Saves a screenshot to `target/todo-browser.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (test.sh installs them).

mod todo_support;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use rgi_tests::webservers::{self, free_port, require, TempDir};
use todo_support::{nginx_site, sqlite_url, todo_backend};

/// chromedriver, stopped by its PID (SIGTERM, then SIGKILL) when dropped; Chromium is its child
/// and goes with the session (and, as a fallback, with the process group).
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let driver = require("chromedriver");
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&driver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn chromedriver");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Driver { child, port };
                }
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not listen within 20 s");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium processes left by a failed session are chromedriver's descendants.
        let pid = self.child.id();
        let mut tree = webservers::descendants(pid);
        webservers::send_signal(pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        tree.retain(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        for p in tree {
            webservers::send_signal(p, "KILL");
        }
    }
}

async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The flash messages on the current page (empty while a page is being replaced).
async fn flashes(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(elements) = client.find_all(Locator::Css(".flash")).await else {
        return out;
    };
    for element in elements {
        match element.text().await {
            Ok(text) => out.push(text),
            Err(_) => return Vec::new(), // the page went away under us
        }
    }
    out
}

/// Waits (10 s at most) until the flash messages are `want`: a form post stays on the same path,
/// so the new page is recognised by its content.
async fn expect_flashes<S: AsRef<str>>(client: &Client, want: &[S]) {
    let want: Vec<&str> = want.iter().map(AsRef::as_ref).collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let have = flashes(client).await;
        if have == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "flashes {have:?}, expected {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits (10 s at most) until the element `css` shows `want`.
async fn expect_text(client: &Client, css: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let have = text_of(client, css).await;
        if have == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{css} shows {have:?}, expected {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn fill(client: &Client, css: &str, value: &str) {
    let input = client.find(Locator::Css(css)).await.expect(css);
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("find {css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn path_of(client: &Client) -> String {
    client.current_url().await.expect("url").path().to_owned()
}

/// Waits (10 s at most) until the page's path satisfies `want`: a click starts a navigation that
/// completes a moment later, so the path is polled rather than read once.
async fn wait_path(client: &Client, what: &str, want: impl Fn(&str) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let path = path_of(client).await;
        if want(&path) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page stayed at {path:?}, expected {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[test]
fn chromium_drives_todo_behind_nginx_fastcgi() {
    if webservers::skip_webservers() {
        return;
    }
    require("chromium");
    let dir = TempDir::new("todo-browser");
    let backend_port = free_port();
    let bind = format!("127.0.0.1:{backend_port}");
    let _backend = todo_backend(
        &sqlite_url(&dir),
        &["--protocol", "fastcgi", "-b", &bind, "-w", "2"],
    );
    let (nginx, front) = nginx_site(
        "nginx/todo-fastcgi.conf",
        "todo-browser-nginx",
        &[("127.0.0.1:9000", &bind)],
    );
    let base = format!("http://{front}");
    let profile = dir.subdir("chromium-profile", 0o700);
    let driver = Driver::start();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": require("chromium"),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1000,750",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            // Chromium's first start on a cold, busy machine is slow.
            Duration::from_secs(150),
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{}", driver.port)),
        )
        .await
        .expect("a WebDriver session within 150 s")
        .expect("WebDriver session");
        let outcome = tokio::time::timeout(Duration::from_secs(120), drive(&client, &base)).await;
        let _ = client.close().await;
        outcome.expect("the browser run took over 120 s");
    });
    let log = std::fs::read_to_string(nginx.dir().join("access.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("\"POST /todos HTTP/1.1\" 403 ")),
        "nginx logged the 403 of the form without its token:\n{log}"
    );
    assert!(
        log.contains("GET /static/todo.css"),
        "the stylesheet came through nginx"
    );
}

async fn drive(client: &Client, base: &str) {
    // Not logged in: the list sends us to the log-in page.
    client.goto(&format!("{base}/")).await.expect("goto /");
    wait_path(client, "/login", |p| p == "/login").await;

    // Sign up.
    click(client, "a[href='/signup']").await;
    wait_path(client, "/signup", |p| p == "/signup").await;
    fill(client, "input[name=username]", "browser").await;
    fill(client, "input[name=password]", "password123").await;
    click(client, "form.credentials button").await;
    wait_path(client, "/", |p| p == "/").await;
    expect_flashes(client, &["Welcome, browser!"]).await;

    // Log out and in again.
    click(client, "header form button").await;
    wait_path(client, "/login", |p| p == "/login").await;
    expect_flashes(client, &["You have been logged out."]).await;
    fill(client, "input[name=username]", "browser").await;
    fill(client, "input[name=password]", "wrong password").await;
    click(client, "form.credentials button").await;
    expect_text(client, ".error", "Wrong user name or password.").await;
    fill(client, "input[name=password]", "password123").await;
    click(client, "form.credentials button").await;
    wait_path(client, "/", |p| p == "/").await;
    expect_flashes(client, &["Logged in as browser."]).await;

    // Three items.
    for title in ["Buy milk", "Write report", "Call Bob"] {
        fill(client, "form.add input[name=title]", title).await;
        click(client, "form.add button").await;
        expect_flashes(client, &[format!("Added “{title}”.")]).await;
    }
    let titles = client
        .find_all(Locator::Css(".todo .title"))
        .await
        .expect("items");
    assert_eq!(titles.len(), 3);

    // Edit the second.
    click(client, ".todo:nth-child(2) a.edit").await;
    wait_path(client, "…/edit", |p| p.ends_with("/edit")).await;
    fill(client, "form.edit input[name=title]", "Write the report").await;
    click(client, "form.edit button").await;
    expect_flashes(client, &["Renamed to “Write the report”."]).await;

    // Complete the first, delete the third.
    click(client, ".todo:nth-child(1) button.toggle").await;
    expect_flashes(client, &["Marked “Buy milk” done."]).await;
    expect_text(client, ".todo.done .title", "Buy milk").await;
    click(client, ".todo:nth-child(3) button.delete").await;
    expect_flashes(client, &["Deleted “Call Bob”."]).await;

    // A reload keeps the session (and shows no flash twice).
    client.refresh().await.expect("reload");
    wait_path(client, "/", |p| p == "/").await;
    assert!(flashes(client).await.is_empty());
    let mut shown = Vec::new();
    for element in client
        .find_all(Locator::Css(".todo .title"))
        .await
        .expect("items")
    {
        shown.push(element.text().await.expect("title"));
    }
    assert_eq!(shown, ["Buy milk", "Write the report"]);
    let shot = client.screenshot().await.expect("screenshot");
    let path = rgi_tests::target_dir().join("todo-browser.png");
    std::fs::write(&path, &shot).expect("write the screenshot");
    println!("screenshot: {}", path.display());

    // A form whose CSRF token was removed is refused.
    client
        .execute(
            "document.querySelector('form.add input[name=csrf_token]').remove();",
            vec![],
        )
        .await
        .expect("remove the token");
    fill(client, "form.add input[name=title]", "Forged").await;
    click(client, "form.add button").await;
    // The refusal arrives as a new page: poll for it (the old page stays readable until it loads).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = client.source().await.expect("source");
        if page.contains("security token") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client.goto(&format!("{base}/")).await.expect("back");
    assert_eq!(
        client
            .find_all(Locator::Css(".todo"))
            .await
            .expect("items")
            .len(),
        2
    );

    // Log out: the list is refused.
    click(client, "header form button").await;
    wait_path(client, "/login", |p| p == "/login").await;
    client.goto(&format!("{base}/")).await.expect("goto /");
    wait_path(client, "/login", |p| p == "/login").await;
    client
        .goto(&format!("{base}/api/todos"))
        .await
        .expect("api");
    assert!(client
        .source()
        .await
        .expect("source")
        .contains("not logged in"));
}
