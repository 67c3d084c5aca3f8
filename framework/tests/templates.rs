//! Templates: autoescape, inheritance, url_for/static_url under a mount point, globals and context
//! processors, development reload, broken templates at startup and at render time.

use std::fs;
use std::path::{Path, PathBuf};

use rgi::testing::TestClient;
use rgi::{Application, Environ, StartResponse};
use rgi_framework::{get, App, Context, Error, Html, Render, Site, Templates};

/// A fresh directory under the target dir, removed at the end of the test.
struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("rgi-fw-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    fn write(&self, name: &str, text: &str) -> &Self {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        self
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

async fn page(render: Render) -> Result<Html<String>, Error> {
    let mut context = Context::new();
    context.insert("title", "<script>alert('x')</script> & co");
    context.insert("id", "a b");
    render.page("child.html", &context)
}

fn mounted(site: Site, prefix: &'static str) -> impl Application {
    rgi::app_fn(move |mut environ: Environ, start: StartResponse| {
        let site = site.clone();
        async move {
            environ.mount(prefix);
            site.call(environ, start).await
        }
    })
}

fn site(templates: Templates) -> Site {
    App::new()
        .route("/", get(page))
        .route("/posts/{id}", get(page))
        .name("post")
        .templates(templates)
        .build()
        .unwrap()
}

#[test]
fn autoescape_inheritance_url_for_static_url_and_globals() {
    let dir = Dir::new("tpl");
    dir.write(
        "templates/base.html",
        "<title>{% block title %}{% endblock %}</title>{% block body %}{% endblock %} [{{ site }}] [{{ user }}]",
    )
    .write(
        "templates/child.html",
        "{% extends \"base.html\" %}{% block title %}{{ title }}{% endblock %}\
         {% block body %}<a href=\"{{ url_for(name='post', id=id, q='x y') }}\">p</a>\
         <link href=\"{{ static_url(path='app.css') }}\">{% endblock %}",
    )
    .write("static/app.css", "body { color: red }");
    let templates = Templates::load(dir.path().join("templates"))
        .unwrap()
        .static_files("/static", dir.path().join("static"))
        .global("site", "My <Site>")
        .context_processor(|environ, context| {
            let user = environ
                .headers()
                .get("x-user")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("anon");
            context.insert("user", user);
        });
    let client = TestClient::new(mounted(site(templates), "/app"));
    let r = client
        .get("/app/")
        .header("x-user", "<b>bob</b>")
        .send_blocking();
    assert_eq!(r.status(), 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let text = r.text();
    // tera 2 escapes `<>&'"` but not `/`: URLs stay readable.
    assert!(
        text.starts_with("<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co</title>"),
        "{text}"
    );
    assert!(
        text.contains("<a href=\"/app/posts/a%20b?q=x+y\">"),
        "{text}"
    );
    let hash = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(b"body { color: red }");
        d[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        text.contains(&format!("<link href=\"/app/static/app.css?v={hash}\">")),
        "{text}"
    );
    assert!(
        text.ends_with("[My &lt;Site&gt;] [&lt;b&gt;bob&lt;/b&gt;]"),
        "{text}"
    );
}

#[test]
fn broken_template_is_a_startup_error_naming_file_and_line() {
    let dir = Dir::new("broken");
    dir.write("ok.html", "fine")
        .write("bad.html", "line one\nline two\n{% if %}\n");
    let err = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{}:3:", dir.path().join("bad.html").display())),
        "{err}"
    );

    let dir = Dir::new("orphan");
    dir.write("child.html", "{% extends \"missing.html\" %}");
    let err = Templates::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("missing.html"), "{err}");
}

#[test]
fn development_reload_and_error_page() {
    let dir = Dir::new("reload");
    dir.write("child.html", "v1 {{ title }}");
    let client = TestClient::new(site(Templates::development(dir.path()).unwrap()));
    assert!(client
        .get("/")
        .send_blocking()
        .text()
        .starts_with("v1 &lt;script"));

    // Same length and (possibly) the same mtime second: bump the mtime explicitly.
    dir.write("child.html", "v2 {{ title }}");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    fs::File::options()
        .write(true)
        .open(dir.path().join("child.html"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert!(client.get("/").send_blocking().text().starts_with("v2 "));

    // A template error in development: the page shows file and line.
    dir.write("child.html", "ok\n{{ url_for(name='nope') }}");
    let later = later + std::time::Duration::from_secs(2);
    fs::File::options()
        .write(true)
        .open(dir.path().join("child.html"))
        .unwrap()
        .set_modified(later)
        .unwrap();
    let r = client.get("/").send_blocking();
    assert_eq!(r.status(), 500);
    assert!(r.text().contains("child.html:2"), "{}", r.text());
    assert!(
        r.text().contains("no route is named `nope`"),
        "{}",
        r.text()
    );
}

#[test]
fn production_render_error_is_logged_not_shown() {
    let dir = Dir::new("prod");
    dir.write("child.html", "{{ url_for(name='post') }}");
    let client = TestClient::new(site(Templates::load(dir.path()).unwrap()));
    let r = client.get("/").send_blocking();
    assert_eq!(
        (r.status().as_u16(), r.text().as_str()),
        (500, "500 Internal Server Error\n")
    );
    assert!(
        client
            .errors()
            .iter()
            .any(|l| l.contains("missing parameter `id`")),
        "{:?}",
        client.errors()
    );
}

/// Flash messages are taken when a page renders, not when a handler extracts `Render`: a handler
/// that could render (a form shown again on error) but redirects leaves them for the next page.
#[test]
fn flashes_wait_for_a_page_that_renders() {
    use rgi::ApplicationExt;
    use rgi_framework::Redirect;
    use rgi_middleware::session::{Flash, Keys, SessionLayer};

    async fn show(render: Render) -> Result<Html<String>, Error> {
        render.page("flashes.html", &Context::new())
    }
    async fn push(_render: Render, flash: Flash) -> Redirect {
        flash.push("info", "one more");
        Redirect::see_other("/")
    }
    let templates = Templates::from_sources([(
        "flashes.html",
        "{% for f in flashes %}[{{ f.message }}]{% endfor %}",
    )])
    .unwrap();
    let site = App::new()
        .route("/", get(show))
        .route("/push", get(push))
        .templates(templates)
        .build()
        .unwrap();
    let sessions = SessionLayer::builder()
        .keys(Keys::ephemeral().unwrap())
        .build()
        .unwrap();
    let client = TestClient::new(site.layer(sessions));
    let mut cookie = String::new();
    let mut send = |path: &str| {
        let response = client
            .get(path)
            .header("cookie", cookie.as_str())
            .send_blocking();
        if let Some(set) = response.header("set-cookie") {
            cookie = set.split(';').next().unwrap().to_owned();
        }
        response.text()
    };
    send("/push");
    send("/push");
    assert_eq!(
        send("/"),
        "[one more][one more]",
        "both flashes wait for the page"
    );
    assert_eq!(send("/"), "", "and are shown once");
}
