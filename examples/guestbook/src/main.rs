//! `examples/guestbook-raw` on `rgi-framework`, in Flask's shape, plus sessions, a flash and CSRF
//! (checked after routing: a wrong path or method is `404`/`405` first). Entries live in process
//! memory (lost on restart; under CGI, after each request); set `RGI_SECRET_KEYS` so that every
//! process opens the session cookie.

use std::sync::Arc;

use http::StatusCode;
use rgi::ApplicationExt;
use rgi_framework::{context, get, post, App, Checks, Error, Form, Html, IntoResponse, Json};
use rgi_framework::{Redirect, Render, Response, State, Templates, Urls};
use rgi_middleware::session::{Csrf, Flash, SessionLayer};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(default)]
struct Entry {
    name: String,
    message: String,
}

/// The entries, newest first.
type Book = Arc<Mutex<Vec<Entry>>>;

/// Trim the fields and check them; the errors, one sentence each.
fn validate(form: &mut Entry) -> Result<(), Vec<String>> {
    let mut checks = Checks::new();
    checks.text("Name", &mut form.name).required().max_chars(80);
    let message = checks.text("Message", &mut form.message);
    message.required().max_chars(2000);
    checks.finish()
}

async fn index(render: Render, State(book): State<Book>) -> Result<Html<String>, Error> {
    let (entries, form) = (book.lock().await.clone(), Entry::default());
    render.page("index.html", &context! { entries, form })
}

async fn sign(
    render: Render,
    urls: Urls,
    flash: Flash,
    State(book): State<Book>,
    Form(mut form): Form<Entry>,
) -> Result<Response, Error> {
    if let Err(errors) = validate(&mut form) {
        let entries = book.lock().await.clone();
        let page = render.page("index.html", &context! { entries, form, errors })?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    flash.push("success", format!("Thank you for signing, {}!", form.name));
    book.lock().await.insert(0, form);
    Ok(Redirect::see_other(urls.url("index")?).into_response())
}

async fn entries(State(book): State<Book>) -> Json<Vec<Entry>> {
    Json(book.lock().await.clone())
}

fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let page = include_str!("../templates/index.html");
    let site = App::new()
        .route("/", get(index))
        .name("index")
        .route("/sign", post(sign))
        .name("sign")
        .route("/entries.json", get(entries))
        .name("entries")
        .state(Book::default())
        .csrf(Csrf::new())
        .templates(Templates::from_sources([("index.html", page)])?)
        .build()?;
    let sessions = SessionLayer::builder().build()?;
    Ok(rgi_servers::run(site.layer(sessions)))
}
