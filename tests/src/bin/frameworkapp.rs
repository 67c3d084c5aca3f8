//! A small rgi-framework application for the end-to-end tests (tests/tests/framework.rs): the same
//! binary runs over HTTP, FastCGI (behind nginx) and as a CGI program (under lighttpd).
//!
//! | route | name | behaviour |
//! |---|---|---|
//! | `GET /` | `index` | the URLs of other routes, built with `url_for` (so they include the mount point) |
//! | `GET /hello/{name}` | `hello` | `Hello, {name}!` |
//! | `GET, POST /notes` | `notes` | a template listing notes (autoescaped); POST a form → `303` to `notes` |
//! | `POST /api/sum` | | `{"numbers": [..]}` → `{"sum": n}` |
//! | `GET /admin/` | `admin.index` | a blueprint route: its own URL |

use std::sync::{Arc, Mutex};

use rgi_framework::{
    get, post, App, Blueprint, Context, Error, Form, Html, Json, Path, Redirect, Render, State,
    Templates, Urls,
};
use serde::Deserialize;

type Notes = Arc<Mutex<Vec<String>>>;

async fn index(urls: Urls) -> Result<String, Error> {
    Ok(format!(
        "hello={}\nnotes={}\nadmin={}\n",
        urls.url_for("hello", [("name", "a b/c")])?,
        urls.url_for("notes", [("page", "1")])?,
        urls.url("admin.index")?,
    ))
}

async fn hello(Path(name): Path<String>) -> String {
    format!("Hello, {name}!\n")
}

async fn list(render: Render, State(notes): State<Notes>) -> Result<Html<String>, Error> {
    let mut context = Context::new();
    let notes = notes
        .lock()
        .map_err(|_| Error::internal("notes lock poisoned"))?
        .clone();
    context.insert("notes", &notes);
    render.page("notes.html", &context)
}

#[derive(Deserialize)]
struct NewNote {
    text: String,
}

async fn add(
    urls: Urls,
    State(notes): State<Notes>,
    Form(note): Form<NewNote>,
) -> Result<Redirect, Error> {
    notes
        .lock()
        .map_err(|_| Error::internal("notes lock poisoned"))?
        .push(note.text);
    Ok(Redirect::see_other(urls.url("notes")?))
}

#[derive(Deserialize)]
struct Numbers {
    numbers: Vec<i64>,
}

async fn sum(Json(n): Json<Numbers>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "sum": n.numbers.iter().sum::<i64>() }))
}

async fn admin(urls: Urls) -> Result<String, Error> {
    Ok(format!(
        "admin at {} (mounted at {:?})\n",
        urls.url("admin.index")?,
        urls.script_name()
    ))
}

fn app() -> Result<rgi_framework::Site, Box<dyn std::error::Error>> {
    let templates = Templates::from_sources([
        (
            "base.html",
            "<!doctype html><title>{% block title %}{% endblock %}</title>{% block body %}{% endblock %}\n",
        ),
        (
            "notes.html",
            "{% extends \"base.html\" %}{% block title %}Notes{% endblock %}{% block body %}\
             <ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>\
             <form method=\"post\" action=\"{{ url_for(name='notes') }}\"><input name=\"text\"></form>\
             {% endblock %}",
        ),
    ])?;
    let notes: Notes = Arc::new(Mutex::new(vec!["<b>first</b>".to_owned()]));
    let site = App::new()
        .route("/", get(index))
        .name("index")
        .route("/hello/{name}", get(hello))
        .name("hello")
        .route("/notes", get(list).post(add))
        .name("notes")
        .route("/api/sum", post(sum))
        .blueprint(
            "/admin",
            Blueprint::new("admin").route("/", get(admin)).name("index"),
        )
        .state(notes)
        .templates(templates)
        .build()?;
    Ok(site)
}

fn main() -> std::process::ExitCode {
    match app() {
        Ok(site) => rgi_servers::run(site),
        Err(error) => {
            eprintln!("frameworkapp: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
