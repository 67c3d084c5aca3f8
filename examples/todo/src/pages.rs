//! The HTML pages: one base layout ([`layout`]) that every page fills. Every value from a user is
//! escaped with [`escape`]; every form carries the CSRF token.

use std::fmt::Write as _;

use crate::db::{Todo, MAX_TITLE};

/// What every page needs from the request: where the app is mounted, the CSRF token, the signed-in
/// user and the flash messages to show once.
#[derive(Debug, Default)]
pub struct Context {
    /// `SCRIPT_NAME`, prefixed to every link.
    pub root: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The signed-in user's name.
    pub user: Option<String>,
    /// (category, message) pairs taken from the session.
    pub flashes: Vec<(String, String)>,
}

impl Context {
    /// A link to `path` under the app's mount point.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    fn form(&self, action: &str, class: &str, inner: &str) -> String {
        format!(
            "<form method=\"post\" action=\"{}\" class=\"{class}\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">{inner}</form>",
            escape(&self.url(action)),
            escape(&self.csrf)
        )
    }
}

/// HTML-escape text for element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The base layout: head, navigation, flash messages, then `body`.
pub fn layout(ctx: &Context, title: &str, body: &str) -> String {
    let nav = match &ctx.user {
        Some(user) => format!(
            "<span class=\"who\">{}</span>{}",
            escape(user),
            ctx.form(
                "/logout",
                "inline",
                "<button type=\"submit\">Log out</button>"
            )
        ),
        None => format!(
            "<a href=\"{}\">Log in</a> <a href=\"{}\">Sign up</a>",
            escape(&ctx.url("/login")),
            escape(&ctx.url("/signup"))
        ),
    };
    let mut flashes = String::new();
    for (category, message) in &ctx.flashes {
        let _ = write!(
            flashes,
            "<li class=\"flash {}\">{}</li>",
            escape(category),
            escape(message)
        );
    }
    if !flashes.is_empty() {
        flashes = format!("<ul class=\"flashes\">{flashes}</ul>");
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · todo</title>\
         <link rel=\"stylesheet\" href=\"{css}\"><link rel=\"icon\" href=\"{icon}\" type=\"image/svg+xml\">\
         </head><body><header><a class=\"brand\" href=\"{home}\">todo</a><nav>{nav}</nav></header>\
         <main>{flashes}<h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title),
        css = escape(&ctx.url("/static/todo.css")),
        icon = escape(&ctx.url("/static/favicon.svg")),
        home = escape(&ctx.url("/")),
    )
}

/// A form's error line, if any.
fn error_line(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

/// The list of the user's todos with the form that adds one.
pub fn list(ctx: &Context, todos: &[Todo], error: Option<&str>, title: &str) -> String {
    let mut items = String::new();
    for todo in todos {
        let id = todo.id;
        let toggle = if todo.done { "Undo" } else { "Done" };
        let _ = write!(
            items,
            "<li class=\"todo{done}\" id=\"todo-{id}\"><span class=\"title\">{title}</span>\
             <a class=\"edit\" href=\"{edit}\">Edit</a>{toggle}{delete}</li>",
            done = if todo.done { " done" } else { "" },
            title = escape(&todo.title),
            edit = escape(&ctx.url(&format!("/todos/{id}/edit"))),
            toggle = ctx.form(
                &format!("/todos/{id}/done"),
                "inline",
                &format!("<button type=\"submit\" class=\"toggle\">{toggle}</button>")
            ),
            delete = ctx.form(
                &format!("/todos/{id}/delete"),
                "inline",
                "<button type=\"submit\" class=\"delete\">Delete</button>"
            ),
        );
    }
    if items.is_empty() {
        items = "<li class=\"empty\">Nothing to do.</li>".to_owned();
    }
    let add = ctx.form(
        "/todos",
        "add",
        &format!(
            "{}<input name=\"title\" value=\"{}\" maxlength=\"{MAX_TITLE}\" \
             placeholder=\"What needs doing?\" autofocus> <button type=\"submit\">Add</button>",
            error_line(error),
            escape(title)
        ),
    );
    layout(
        ctx,
        "Todos",
        &format!("{add}<ul class=\"todos\">{items}</ul>"),
    )
}

/// The form that renames a todo.
pub fn edit(ctx: &Context, todo: &Todo, title: &str, error: Option<&str>) -> String {
    let form = ctx.form(
        &format!("/todos/{}", todo.id),
        "edit",
        &format!(
            "{}<input name=\"title\" value=\"{}\" maxlength=\"{MAX_TITLE}\" autofocus> \
             <button type=\"submit\">Save</button> <a href=\"{}\">Cancel</a>",
            error_line(error),
            escape(title),
            escape(&ctx.url("/"))
        ),
    );
    layout(ctx, "Edit todo", &form)
}

/// The log-in or sign-up form (`action` is `/login` or `/signup`).
pub fn credentials(ctx: &Context, action: &str, username: &str, error: Option<&str>) -> String {
    let (title, button) = if action == "/signup" {
        ("Sign up", "Create account")
    } else {
        ("Log in", "Log in")
    };
    let form =
        ctx.form(
            action,
            "credentials",
            &format!(
            "{}<label>User name <input name=\"username\" value=\"{}\" autocomplete=\"username\" \
             required></label><label>Password <input type=\"password\" name=\"password\" \
             autocomplete=\"{}\" required></label><button type=\"submit\">{button}</button>",
            error_line(error),
            escape(username),
            if action == "/signup" { "new-password" } else { "current-password" },
        ),
        );
    layout(ctx, title, &form)
}
