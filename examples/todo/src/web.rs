//! The web layer: the pages app, the JSON API app and the static files, behind sessions and CSRF
//! protection, in one [`BoxApp`].
//!
//! Routing is a `match` over the method and the path's segments (the app has ten routes).

use std::path::Path;
use std::sync::Arc;

use http::{Method, StatusCode};
use rgi::{Application, BoxApp, Environ, Reply, StartResponse};
use rgi_middleware::session::{Csrf, CsrfToken, Flash, Session, SessionLayer};
use rgi_middleware::static_files::Static;
use rgi_middleware::Builder;

use crate::db::{check_credentials, check_title, Db, Signup, Todo};
use crate::pages::{self, Context};

/// The session keys holding the signed-in user.
const USER_ID: &str = "user_id";
const USER_NAME: &str = "username";

/// The whole app: sessions (outermost), CSRF, `/static`, `/api`, then the pages.
pub fn app(db: Db, static_dir: &Path, sessions: SessionLayer) -> BoxApp {
    let db = Arc::new(db);
    Builder::new()
        .enable(sessions)
        .enable(Csrf::new())
        .mount("/static", Static::new(static_dir))
        .mount("/api", Api { db: db.clone() })
        .app(Pages { db })
}

/// The signed-in user of this request's session: (id, name).
fn signed_in(environ: &Environ) -> Option<(i64, String)> {
    let session = Session::from_environ(environ)?;
    let id = session.get::<i64>(USER_ID).ok().flatten()?;
    let name = session.get::<String>(USER_NAME).ok().flatten()?;
    Some((id, name))
}

/// The parts of a page's [`Context`] that come from the request.
fn context(environ: &Environ, with_flashes: bool) -> Context {
    Context {
        root: String::from_utf8_lossy(environ.script_name()).into_owned(),
        csrf: CsrfToken::from_environ(environ)
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        user: signed_in(environ).map(|(_, name)| name),
        flashes: if with_flashes {
            Flash::from_environ(environ)
                .map(|f| f.take())
                .unwrap_or_default()
                .into_iter()
                .map(|m| (m.category, m.message))
                .collect()
        } else {
            Vec::new()
        },
    }
}

fn flash(environ: &Environ, category: &str, message: String) {
    if let Some(flash) = Flash::from_environ(environ) {
        flash.push(category, message);
    }
}

/// The form fields of a urlencoded body.
async fn form(environ: &mut Environ) -> Result<Vec<(String, String)>, std::io::Error> {
    let body = environ.take_input().read_to_bytes().await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The HTML pages.
#[derive(Debug)]
struct Pages {
    db: Arc<Db>,
}

/// What a path names.
enum Route {
    Home,
    Signup,
    Login,
    Logout,
    Todos,
    Todo(i64),
    Edit(i64),
    Toggle(i64),
    Delete(i64),
}

impl Route {
    fn of(path: &[u8]) -> Option<Route> {
        let path = std::str::from_utf8(path).ok()?;
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let id = |s: &str| s.parse::<i64>().ok().filter(|id| *id > 0);
        Some(match segments.as_slice() {
            [""] => Route::Home,
            ["signup"] => Route::Signup,
            ["login"] => Route::Login,
            ["logout"] => Route::Logout,
            ["todos"] => Route::Todos,
            ["todos", n] => Route::Todo(id(n)?),
            ["todos", n, "edit"] => Route::Edit(id(n)?),
            ["todos", n, "done"] => Route::Toggle(id(n)?),
            ["todos", n, "delete"] => Route::Delete(id(n)?),
            _ => return None,
        })
    }

    /// The methods this route answers.
    fn allow(&self) -> &'static str {
        match self {
            Route::Home | Route::Edit(_) => "GET, HEAD",
            Route::Signup | Route::Login => "GET, HEAD, POST",
            _ => "POST",
        }
    }
}

impl Application for Pages {
    async fn call(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let Some(route) = Route::of(environ.path_info()) else {
            return start.error(StatusCode::NOT_FOUND);
        };
        let get = matches!(*environ.method(), Method::GET | Method::HEAD);
        let post = *environ.method() == Method::POST;
        let allowed = if get {
            route.allow().contains("GET")
        } else {
            post && route.allow().contains("POST")
        };
        if !allowed {
            return start
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .header("allow", route.allow())
                .text("405 Method Not Allowed\n");
        }
        let root = String::from_utf8_lossy(environ.script_name()).into_owned();
        match route {
            Route::Signup | Route::Login if get => {
                let action = if matches!(route, Route::Signup) {
                    "/signup"
                } else {
                    "/login"
                };
                start.html(pages::credentials(
                    &context(&environ, true),
                    action,
                    "",
                    None,
                ))
            }
            Route::Signup => self.sign_up(environ, start).await,
            Route::Login => self.log_in(environ, start).await,
            Route::Logout => {
                if let Some(session) = Session::from_environ(&environ) {
                    session.clear();
                    session.regenerate();
                }
                flash(&environ, "info", "You have been logged out.".into());
                start.see_other(&format!("{root}/login"))
            }
            _ => {
                let Some((user, _)) = signed_in(&environ) else {
                    if get {
                        return start.see_other(&format!("{root}/login"));
                    }
                    return start.error(StatusCode::UNAUTHORIZED);
                };
                self.todos(route, user, &mut environ, start).await
            }
        }
    }
}

impl Pages {
    async fn sign_up(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let fields = form(&mut environ).await?;
        let (username, password) = (field(&fields, "username"), field(&fields, "password"));
        let refusal = match check_credentials(username, password) {
            Err(message) => Some((StatusCode::UNPROCESSABLE_ENTITY, message)),
            Ok(name) => match self.db.sign_up(name, password).await? {
                Signup::Taken => Some((StatusCode::CONFLICT, "That user name is taken.")),
                Signup::Created(user) => {
                    log_in_session(&environ, user.id, &user.username);
                    flash(&environ, "success", format!("Welcome, {}!", user.username));
                    None
                }
            },
        };
        match refusal {
            Some((status, message)) => {
                let page = pages::credentials(
                    &context(&environ, false),
                    "/signup",
                    username,
                    Some(message),
                );
                start.status(status).html(page)
            }
            None => {
                let root = String::from_utf8_lossy(environ.script_name()).into_owned();
                start.see_other(&format!("{root}/"))
            }
        }
    }

    async fn log_in(&self, mut environ: Environ, start: StartResponse) -> Reply {
        let fields = form(&mut environ).await?;
        let (username, password) = (field(&fields, "username"), field(&fields, "password"));
        match self.db.log_in(username.trim(), password).await? {
            Some(user) => {
                log_in_session(&environ, user.id, &user.username);
                flash(
                    &environ,
                    "success",
                    format!("Logged in as {}.", user.username),
                );
                let root = String::from_utf8_lossy(environ.script_name()).into_owned();
                start.see_other(&format!("{root}/"))
            }
            None => {
                let page = pages::credentials(
                    &context(&environ, false),
                    "/login",
                    username,
                    Some("Wrong user name or password."),
                );
                start.status(StatusCode::UNAUTHORIZED).html(page)
            }
        }
    }

    /// The routes that need a signed-in user.
    async fn todos(
        &self,
        route: Route,
        user: i64,
        environ: &mut Environ,
        start: StartResponse,
    ) -> Reply {
        let home = format!("{}/", String::from_utf8_lossy(environ.script_name()));
        let db = &self.db;
        match route {
            Route::Home => {
                let todos = db.todos(user).await?;
                start.html(pages::list(&context(environ, true), &todos, None, ""))
            }
            Route::Todos => {
                let fields = form(environ).await?;
                let typed = field(&fields, "title");
                match check_title(typed) {
                    Ok(title) => {
                        let todo = db.add(user, title).await?;
                        flash(environ, "success", format!("Added “{}”.", todo.title));
                        start.see_other(&home)
                    }
                    Err(message) => {
                        let todos = db.todos(user).await?;
                        let page =
                            pages::list(&context(environ, false), &todos, Some(message), typed);
                        start.status(StatusCode::UNPROCESSABLE_ENTITY).html(page)
                    }
                }
            }
            Route::Edit(id) => match db.todo(user, id).await? {
                Some(todo) => {
                    let page = pages::edit(&context(environ, true), &todo, &todo.title, None);
                    start.html(page)
                }
                None => start.error(StatusCode::NOT_FOUND),
            },
            Route::Todo(id) => {
                let Some(todo) = db.todo(user, id).await? else {
                    return start.error(StatusCode::NOT_FOUND);
                };
                let fields = form(environ).await?;
                let typed = field(&fields, "title");
                match check_title(typed) {
                    Ok(title) if db.rename(user, id, title).await? => {
                        flash(environ, "success", format!("Renamed to “{title}”."));
                        start.see_other(&home)
                    }
                    Ok(_) => start.error(StatusCode::NOT_FOUND),
                    Err(message) => {
                        let page =
                            pages::edit(&context(environ, false), &todo, typed, Some(message));
                        start.status(StatusCode::UNPROCESSABLE_ENTITY).html(page)
                    }
                }
            }
            Route::Toggle(id) => match db.toggle(user, id).await? {
                Some(Todo { title, done, .. }) => {
                    let state = if done { "done" } else { "not done" };
                    flash(environ, "success", format!("Marked “{title}” {state}."));
                    start.see_other(&home)
                }
                None => start.error(StatusCode::NOT_FOUND),
            },
            Route::Delete(id) => match db.delete(user, id).await? {
                Some(todo) => {
                    flash(environ, "success", format!("Deleted “{}”.", todo.title));
                    start.see_other(&home)
                }
                None => start.error(StatusCode::NOT_FOUND),
            },
            Route::Signup | Route::Login | Route::Logout => start.error(StatusCode::NOT_FOUND),
        }
    }
}

/// Sign the session in as this user, under a new session id (no fixation).
fn log_in_session(environ: &Environ, id: i64, name: &str) {
    if let Some(session) = Session::from_environ(environ) {
        session.regenerate();
        // Values that serialize cannot fail to insert; a failure would only mean "not signed in".
        let _ = session.insert(USER_ID, &id);
        let _ = session.insert(USER_NAME, name);
    }
}

/// The JSON API, mounted at `/api`: `GET /api/todos`, for the session's user.
#[derive(Debug)]
struct Api {
    db: Arc<Db>,
}

impl Application for Api {
    async fn call(&self, environ: Environ, start: StartResponse) -> Reply {
        if environ.path_info() != b"/todos" {
            return start.error(StatusCode::NOT_FOUND);
        }
        if !matches!(*environ.method(), Method::GET | Method::HEAD) {
            return start
                .status(StatusCode::METHOD_NOT_ALLOWED)
                .header("allow", "GET, HEAD")
                .json(&serde_json::json!({"error": "method not allowed"}));
        }
        let Some((user, _)) = signed_in(&environ) else {
            return start
                .status(StatusCode::UNAUTHORIZED)
                .json(&serde_json::json!({"error": "not logged in"}));
        };
        start.json(&self.db.todos(user).await?)
    }
}
