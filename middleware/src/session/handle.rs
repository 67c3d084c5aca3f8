//! [`Session`]: the handle an application reads and writes its session through.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rgi::Environ;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A session's values: JSON by key.
pub type SessionData = BTreeMap<String, Value>;

/// The current request's session, put in the environ's extensions by the session layer.
///
/// A cheap clone of a shared handle: every clone sees the same values. Values go in and out through
/// serde (stored as JSON). Changes are saved when the inner application has returned its response;
/// the cookie is sent only when something changed (or the session must be re-issued).
///
/// ```
/// # use rgi_middleware::session::Session;
/// # fn handler(environ: &rgi::Environ) -> Result<(), Box<dyn std::error::Error>> {
/// let session = Session::from_environ(environ).expect("the session layer is installed");
/// let visits: u64 = session.get("visits")?.unwrap_or(0);
/// session.insert("visits", &(visits + 1))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Session {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) data: SessionData,
    /// Keys set or removed by this request (what a server-side store merges).
    pub(crate) changed: BTreeSet<String>,
    pub(crate) regenerate: bool,
    pub(crate) destroyed: bool,
}

/// A value could not be turned into JSON or back into the asked type.
#[derive(Debug)]
pub struct SessionValueError {
    key: String,
    error: serde_json::Error,
}

impl fmt::Display for SessionValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session value `{}`: {}", self.key, self.error)
    }
}

impl std::error::Error for SessionValueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl Session {
    /// The session of this request, when the session layer is installed around the application.
    pub fn from_environ(environ: &Environ) -> Option<Session> {
        environ.extensions().get::<Session>().cloned()
    }

    pub(crate) fn with_data(data: SessionData) -> Session {
        Session {
            state: Arc::new(Mutex::new(State {
                data,
                ..State::default()
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map half-written (every change is one
        // map operation), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value at `key`, deserialized; `Ok(None)` when absent.
    ///
    /// # Errors
    ///
    /// When the stored JSON does not fit `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionValueError> {
        let state = self.lock();
        state
            .data
            .get(key)
            .map(|value| T::deserialize(value))
            .transpose()
            .map_err(|error| SessionValueError {
                key: key.to_owned(),
                error,
            })
    }

    /// The raw JSON at `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.lock().data.get(key).cloned()
    }

    /// Store `value` at `key`.
    ///
    /// # Errors
    ///
    /// When `value` cannot be serialized to JSON (a map with non-string keys, a failing `Serialize`).
    pub fn insert<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), SessionValueError> {
        let value = serde_json::to_value(value).map_err(|error| SessionValueError {
            key: key.to_owned(),
            error,
        })?;
        self.insert_value(key, value);
        Ok(())
    }

    /// Store raw JSON at `key`.
    pub fn insert_value(&self, key: &str, value: Value) {
        let mut state = self.lock();
        if state.data.get(key) != Some(&value) {
            state.data.insert(key.to_owned(), value);
            state.changed.insert(key.to_owned());
        }
    }

    /// Remove `key`, returning its JSON if it was there.
    pub fn remove(&self, key: &str) -> Option<Value> {
        let mut state = self.lock();
        let old = state.data.remove(key);
        if old.is_some() {
            state.changed.insert(key.to_owned());
        }
        old
    }

    /// Is `key` set?
    pub fn contains(&self, key: &str) -> bool {
        self.lock().data.contains_key(key)
    }

    /// The keys set, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().data.keys().cloned().collect()
    }

    /// No values at all?
    pub fn is_empty(&self) -> bool {
        self.lock().data.is_empty()
    }

    /// Remove every value (the session id, if any, stays).
    pub fn clear(&self) {
        let mut state = self.lock();
        let keys: Vec<String> = state.data.keys().cloned().collect();
        state.changed.extend(keys);
        state.data.clear();
    }

    /// Give the session a new id when it is saved (call it on login, against session fixation). The
    /// values stay; the old id is deleted from a server-side store. With cookie sessions the cookie
    /// is re-sealed (a fresh nonce), so the old cookie's value is no longer the current one.
    pub fn regenerate(&self) {
        self.lock().regenerate = true;
    }

    /// End the session (logout): its values are dropped, a server-side record is deleted and the
    /// cookie is removed. Values inserted after this start a new session with a new id.
    pub fn destroy(&self) {
        let mut state = self.lock();
        state.data.clear();
        state.changed.clear();
        state.destroyed = true;
    }

    /// Has this request changed anything that must be saved?
    pub fn is_changed(&self) -> bool {
        let state = self.lock();
        !state.changed.is_empty() || state.regenerate || state.destroyed
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets; show only their keys.
        f.debug_struct("Session")
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_serde_and_changes_are_tracked() {
        let session = Session::default();
        assert!(!session.is_changed());
        session.insert("user", "ada").unwrap();
        session.insert("ids", &[1, 2, 3]).unwrap();
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("ada")
        );
        assert_eq!(session.get::<Vec<u32>>("ids").unwrap(), Some(vec![1, 2, 3]));
        assert!(session.get::<u32>("user").is_err());
        assert_eq!(session.get::<u32>("missing").unwrap(), None);
        assert!(session.is_changed());
        assert_eq!(session.remove("user"), Some(Value::from("ada")));
        assert_eq!(session.keys(), ["ids"]);
    }

    #[test]
    fn writing_the_same_value_again_is_not_a_change() {
        let session = Session::with_data(SessionData::from([("a".into(), Value::from(1))]));
        session.insert("a", &1).unwrap();
        assert!(session.remove("nope").is_none());
        assert!(!session.is_changed());
    }
}
