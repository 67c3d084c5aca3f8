//! The JSON API, a second application mounted at `/api` in the same process: the signed-in
//! user's todos, authenticated by the same session as the pages.

use std::sync::Arc;

use http::StatusCode;
use rgi_framework::{get, App, BuildError, Error, Json, Site, State};
use serde_json::{json, Value};

use crate::db::{Db, Todo};
use crate::user::User;

/// The API app: `GET /todos`.
pub fn site(db: Arc<Db>) -> Result<Site, BuildError> {
    let mut app = App::new().route("/todos", get(todos)).state(db);
    // Errors in JSON too: `{"error": "not logged in"}`.
    for status in [
        StatusCode::UNAUTHORIZED,
        StatusCode::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED,
    ] {
        app = app.error_handler(status, json_error);
    }
    app.build()
}

/// `[{"id": 1, "title": "milk", "done": false}, …]`; `401` when not logged in (the API has no
/// log-in page to send anyone to).
async fn todos(user: User, State(db): State<Arc<Db>>) -> Result<Json<Vec<Todo>>, Error> {
    Ok(Json(db.todos(user.id).await?))
}

fn json_error(error: &Error) -> Json<Value> {
    let message = match error.message() {
        "" => error.status().canonical_reason().unwrap_or("error"),
        message => message,
    };
    Json(json!({ "error": message }))
}
