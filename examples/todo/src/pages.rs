//! The HTML pages: routes, handlers, and the templates they render (templates/, embedded in the
//! binary so it runs from any directory and as a CGI program).

use std::sync::Arc;

use http::StatusCode;
use rgi_framework::{
    context, get, post, App, Error, Form, Html, IntoResponse, Path, Redirect, Render, Response,
    Site, State, Templates, Urls,
};
use rgi_middleware::session::{Flash, Session};
use serde::Deserialize;

use crate::db::{check_credentials, check_title, Db, Signup, MAX_TITLE};
use crate::user::User;

/// Every template, by name.
const TEMPLATES: [(&str, &str); 4] = [
    ("base.html", include_str!("../templates/base.html")),
    ("list.html", include_str!("../templates/list.html")),
    ("edit.html", include_str!("../templates/edit.html")),
    (
        "credentials.html",
        include_str!("../templates/credentials.html"),
    ),
];

/// The pages app. `static_dir` is where `static_url` finds the files it links to (with a content
/// hash, so browsers may cache them for good).
pub fn site(db: Arc<Db>, static_dir: &std::path::Path) -> Result<Site, Box<dyn std::error::Error>> {
    let templates = Templates::from_sources(TEMPLATES)?
        .static_files("/static", static_dir)
        .global("max_title", MAX_TITLE)
        // The layout's navigation shows who is signed in.
        .context_processor(|environ, context| {
            let user = Session::from_environ(environ).and_then(|s| User::of(&s));
            context.insert("user", &user);
        });
    #[rustfmt::skip] // one route per line, as a table
    let app = App::new()
        .route("/", get(list)).name("list")
        .route("/signup", get(signup_form).post(sign_up)).name("signup")
        .route("/login", get(login_form).post(log_in)).name("login")
        .route("/logout", post(log_out)).name("logout")
        .route("/todos", post(add)).name("add")
        .route("/todos/{id}", post(rename)).name("todo")
        .route("/todos/{id}/edit", get(edit)).name("edit")
        .route("/todos/{id}/done", post(toggle)).name("toggle")
        .route("/todos/{id}/delete", post(delete)).name("delete")
        .state(db)
        .templates(templates);
    Ok(app.build()?)
}

/// The fields of the sign-up and log-in forms (missing ones are empty: refused with a message).
#[derive(Default, Deserialize)]
#[serde(default)]
struct Credentials {
    username: String,
    password: String,
}

/// The field of the add and rename forms.
#[derive(Default, Deserialize)]
#[serde(default)]
struct TitleField {
    title: String,
}

// The list.

async fn list(
    user: User,
    State(db): State<Arc<Db>>,
    render: Render,
) -> Result<Html<String>, Error> {
    let todos = db.todos(user.id).await?;
    render.page("list.html", &context! { todos, typed => "" })
}

async fn add(
    user: User,
    State(db): State<Arc<Db>>,
    urls: Urls,
    flash: Flash,
    render: Render,
    Form(form): Form<TitleField>,
) -> Result<Response, Error> {
    match check_title(&form.title) {
        Ok(title) => {
            let todo = db.add(user.id, title).await?;
            flash.push("success", format!("Added “{}”.", todo.title));
            Ok(Redirect::see_other(urls.url("list")?).into_response())
        }
        // The list again, with the message and what was typed.
        Err(message) => {
            let todos = db.todos(user.id).await?;
            let page = render.page(
                "list.html",
                &context! { todos, error => message, typed => &form.title },
            )?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

// One todo. Another user's todo is not found, as if it did not exist.

async fn edit(
    user: User,
    Path(id): Path<i64>,
    State(db): State<Arc<Db>>,
    render: Render,
) -> Result<Html<String>, Error> {
    let todo = db.todo(user.id, id).await?.ok_or_else(Error::not_found)?;
    render.page("edit.html", &context! { typed => &todo.title, todo })
}

async fn rename(
    user: User,
    Path(id): Path<i64>,
    State(db): State<Arc<Db>>,
    urls: Urls,
    flash: Flash,
    render: Render,
    Form(form): Form<TitleField>,
) -> Result<Response, Error> {
    let todo = db.todo(user.id, id).await?.ok_or_else(Error::not_found)?;
    match check_title(&form.title) {
        Ok(title) => {
            if !db.rename(user.id, id, title).await? {
                return Err(Error::not_found()); // deleted in the meantime
            }
            flash.push("success", format!("Renamed to “{title}”."));
            Ok(Redirect::see_other(urls.url("list")?).into_response())
        }
        Err(message) => {
            let page = render.page(
                "edit.html",
                &context! { todo, error => message, typed => &form.title },
            )?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

async fn toggle(
    user: User,
    Path(id): Path<i64>,
    State(db): State<Arc<Db>>,
    urls: Urls,
    flash: Flash,
) -> Result<Redirect, Error> {
    let todo = db.toggle(user.id, id).await?.ok_or_else(Error::not_found)?;
    let state = if todo.done { "done" } else { "not done" };
    flash.push("success", format!("Marked “{}” {state}.", todo.title));
    Ok(Redirect::see_other(urls.url("list")?))
}

async fn delete(
    user: User,
    Path(id): Path<i64>,
    State(db): State<Arc<Db>>,
    urls: Urls,
    flash: Flash,
) -> Result<Redirect, Error> {
    let todo = db.delete(user.id, id).await?.ok_or_else(Error::not_found)?;
    flash.push("success", format!("Deleted “{}”.", todo.title));
    Ok(Redirect::see_other(urls.url("list")?))
}

// Signing up, in and out.

/// The sign-up or log-in form, with `error` and the name typed when it is shown again.
fn credentials(
    render: &Render,
    signup: bool,
    username: &str,
    error: Option<&str>,
) -> Result<Html<String>, Error> {
    render.page("credentials.html", &context! { signup, username, error })
}

async fn signup_form(render: Render) -> Result<Html<String>, Error> {
    credentials(&render, true, "", None)
}

async fn login_form(render: Render) -> Result<Html<String>, Error> {
    credentials(&render, false, "", None)
}

async fn sign_up(
    State(db): State<Arc<Db>>,
    session: Session,
    urls: Urls,
    flash: Flash,
    render: Render,
    Form(form): Form<Credentials>,
) -> Result<Response, Error> {
    let refusal = match check_credentials(&form.username, &form.password) {
        Err(message) => (StatusCode::UNPROCESSABLE_ENTITY, message),
        Ok(name) => match db.sign_up(name, &form.password).await? {
            Signup::Taken => (StatusCode::CONFLICT, "That user name is taken."),
            Signup::Created(user) => {
                let user = User::from(user);
                user.log_in(&session)?;
                flash.push("success", format!("Welcome, {}!", user.name));
                return Ok(Redirect::see_other(urls.url("list")?).into_response());
            }
        },
    };
    let (status, message) = refusal;
    let page = credentials(&render, true, &form.username, Some(message))?;
    Ok((status, page).into_response())
}

async fn log_in(
    State(db): State<Arc<Db>>,
    session: Session,
    urls: Urls,
    flash: Flash,
    render: Render,
    Form(form): Form<Credentials>,
) -> Result<Response, Error> {
    let Some(user) = db.log_in(form.username.trim(), &form.password).await? else {
        let message = "Wrong user name or password.";
        let page = credentials(&render, false, &form.username, Some(message))?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    let user = User::from(user);
    user.log_in(&session)?;
    flash.push("success", format!("Logged in as {}.", user.name));
    Ok(Redirect::see_other(urls.url("list")?).into_response())
}

async fn log_out(session: Session, urls: Urls, flash: Flash) -> Result<Redirect, Error> {
    User::log_out(&session);
    flash.push("info", "You have been logged out.");
    Ok(Redirect::see_other(urls.url("login")?))
}
