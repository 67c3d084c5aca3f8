//! Flash messages: set on one request (typically before a redirect), shown once on the next.

use rgi::Environ;
use serde::{Deserialize, Serialize};

use super::handle::Session;

/// The session key that holds pending flash messages.
const KEY: &str = "_flash";

/// One flash message with its category (`info`, `success`, `error`… any string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashMessage {
    /// The category, for styling (`"error"`, `"success"`…).
    pub category: String,
    /// The text.
    pub message: String,
}

/// Flash messages of the current session (needs the session layer).
///
/// ```
/// # use rgi_middleware::session::{Flash, Session};
/// # let session = Session::default();
/// let flash = Flash::new(session.clone());
/// flash.push("success", "Saved.");
/// // … next request:
/// let shown = flash.take();
/// assert_eq!(shown[0].message, "Saved.");
/// assert!(flash.take().is_empty(), "shown once");
/// ```
#[derive(Debug, Clone)]
pub struct Flash {
    session: Session,
}

impl Flash {
    /// The flash messages of this request's session; `None` without the session layer.
    pub fn from_environ(environ: &Environ) -> Option<Flash> {
        Session::from_environ(environ).map(Flash::new)
    }

    /// Flash messages kept in `session`.
    pub fn new(session: Session) -> Flash {
        Flash { session }
    }

    /// Add a message for the next request to show.
    pub fn push(&self, category: impl Into<String>, message: impl Into<String>) {
        let mut messages = self.peek();
        messages.push(FlashMessage {
            category: category.into(),
            message: message.into(),
        });
        // A Vec of two strings always serializes.
        let _ = self.session.insert(KEY, &messages);
    }

    /// The pending messages, removed from the session: each is shown once.
    pub fn take(&self) -> Vec<FlashMessage> {
        let messages = self.peek();
        if self.session.contains(KEY) {
            self.session.remove(KEY);
        }
        messages
    }

    /// The pending messages, left in place.
    pub fn peek(&self) -> Vec<FlashMessage> {
        // A value that is not a message list (written by something else) counts as none.
        self.session.get(KEY).ok().flatten().unwrap_or_default()
    }
}
