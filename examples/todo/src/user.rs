//! Who is signed in: the session holds the [`User`], put there by [`User::log_in`].

use http::{Method, StatusCode};
use rgi_framework::{Error, FromRequestParts, Request};
use rgi_middleware::session::{Session, SessionValueError};
use serde::{Deserialize, Serialize};

/// The session key holding the signed-in user.
const KEY: &str = "user";

/// The signed-in user.
///
/// As a handler's argument it is a guard (Flask-Login's `login_required`): a visitor who is not
/// signed in never reaches the handler. A page (`GET`) sends them to the app's `login` route with a
/// `303`; any other request, and every request to an app without a `login` route (the JSON API),
/// is refused with `401`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// The name shown in the navigation.
    pub name: String,
}

impl User {
    /// The user signed in to `session`, if any.
    pub fn of(session: &Session) -> Option<User> {
        session.get(KEY).ok().flatten()
    }

    /// Sign `session` in as this user, under a new session id (so an id planted before the login
    /// is worth nothing after it).
    pub fn log_in(&self, session: &Session) -> Result<(), SessionValueError> {
        session.regenerate();
        session.insert(KEY, self)
    }

    /// Forget the user and everything else in `session`, under a new id.
    pub fn log_out(session: &Session) {
        session.clear();
        session.regenerate();
    }
}

impl From<crate::db::User> for User {
    fn from(user: crate::db::User) -> User {
        User {
            id: user.id,
            name: user.username,
        }
    }
}

impl FromRequestParts for User {
    async fn from_request_parts(request: &mut Request) -> Result<Self, Error> {
        let session = Session::from_request_parts(request).await?;
        if let Some(user) = User::of(&session) {
            return Ok(user);
        }
        let page = matches!(*request.environ().method(), Method::GET | Method::HEAD);
        match request.urls().url("login") {
            Ok(login) if page => Err(Error::see_other(&login)),
            _ => Err(Error::new(StatusCode::UNAUTHORIZED, "not logged in")),
        }
    }
}
