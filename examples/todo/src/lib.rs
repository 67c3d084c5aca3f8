//! The todo app: sign up, log in, a list of todos per user, on SQLite (the default) or PostgreSQL.

pub mod db;
