//! URL mapping: [`MethodRouter`]s on matchit patterns, the route table, and reverse routing.

use std::collections::HashMap;
use std::fmt;

use http::{HeaderValue, Method};

use crate::handler::{erase, BoxHandler, Handler};
use crate::pattern::{self, encode_path, Pattern};

/// The handlers of one route, by method. Made with [`get`], [`post`]… and chained:
/// `get(show).post(update)`.
///
/// `HEAD` is answered by the `GET` handler (the server drops the body) unless a `HEAD` handler is
/// given; `OPTIONS` is answered with `204` and `Allow` unless an `OPTIONS` handler is given; any other
/// method gets `405 Method Not Allowed` with `Allow`.
#[derive(Clone, Default)]
pub struct MethodRouter {
    pub(crate) handlers: Vec<(Method, BoxHandler)>,
    pub(crate) problems: Vec<String>,
}

impl fmt::Debug for MethodRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.handlers.iter().map(|(m, h)| (m, h.type_name())))
            .finish()
    }
}

impl MethodRouter {
    /// No handlers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handle `method` with `handler`. A method given twice is a build error.
    pub fn on<H: Handler<T>, T: 'static>(mut self, method: Method, handler: H) -> Self {
        let handler = erase(handler);
        if let Some((_, previous)) = self.handlers.iter().find(|(m, _)| *m == method) {
            self.problems.push(format!(
                "{method} is handled twice, by `{}` and `{}`",
                previous.type_name(),
                handler.type_name()
            ));
        } else {
            self.handlers.push((method, handler));
        }
        self
    }

    pub(crate) fn merge(&mut self, other: MethodRouter) {
        self.problems.extend(other.problems);
        for (method, handler) in other.handlers {
            if let Some((_, previous)) = self.handlers.iter().find(|(m, _)| *m == method) {
                self.problems.push(format!(
                    "{method} is handled twice, by `{}` and `{}`",
                    previous.type_name(),
                    handler.type_name()
                ));
            } else {
                self.handlers.push((method, handler));
            }
        }
    }

    /// The `Allow` header: the methods handled, plus `HEAD` (with `GET`) and `OPTIONS`.
    pub(crate) fn allow(&self) -> HeaderValue {
        let mut methods: Vec<&str> = self.handlers.iter().map(|(m, _)| m.as_str()).collect();
        if methods.contains(&"GET") {
            methods.push("HEAD");
        }
        methods.push("OPTIONS");
        methods.sort_unstable();
        methods.dedup();
        HeaderValue::try_from(methods.join(", ")).unwrap_or(HeaderValue::from_static("OPTIONS"))
    }

    /// The handler for `method` (`HEAD` falls back to `GET`).
    pub(crate) fn handler(&self, method: &Method) -> Option<&BoxHandler> {
        let find = |m: &Method| self.handlers.iter().find(|(h, _)| h == m).map(|(_, h)| h);
        find(method).or_else(|| {
            (*method == Method::HEAD)
                .then(|| find(&Method::GET))
                .flatten()
        })
    }
}

macro_rules! method_fns {
    ($($name:ident $method:ident;)*) => {
        $(
            #[doc = concat!("A [`MethodRouter`] that handles `", stringify!($method), "` with `handler`.")]
            pub fn $name<H: Handler<T>, T: 'static>(handler: H) -> MethodRouter {
                MethodRouter::new().on(Method::$method, handler)
            }
        )*
        impl MethodRouter {
            $(
                #[doc = concat!("Also handle `", stringify!($method), "` with `handler`.")]
                pub fn $name<H: Handler<T>, T: 'static>(self, handler: H) -> Self {
                    self.on(Method::$method, handler)
                }
            )*
        }
    };
}

method_fns! {
    get GET;
    post POST;
    put PUT;
    patch PATCH;
    delete DELETE;
    head HEAD;
    options OPTIONS;
}

/// One route as registered: its full path (mount prefix included), its handlers and its name.
pub(crate) struct RouteDef {
    pub(crate) path: String,
    pub(crate) methods: MethodRouter,
    pub(crate) name: Option<String>,
}

/// A matched pattern's handlers.
pub(crate) struct Endpoint {
    pub(crate) pattern: String,
    pub(crate) methods: MethodRouter,
    pub(crate) allow: HeaderValue,
    pub(crate) name: Option<String>,
}

/// Every route of an application, checked: matchit's tree, the endpoints, and the names.
pub(crate) struct RouteTable {
    router: matchit::Router<usize>,
    pub(crate) endpoints: Vec<Endpoint>,
    names: HashMap<String, Vec<Pattern>>,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.endpoints.iter().map(|e| &e.pattern))
            .finish()
    }
}

/// A route's parameters, by name, in route order.
pub(crate) type Params = Vec<(String, String)>;

impl RouteTable {
    /// Check and insert every route; every problem found is reported, each naming its route(s).
    pub(crate) fn build(defs: Vec<RouteDef>) -> Result<RouteTable, Vec<String>> {
        let mut problems = Vec::new();
        let mut table = RouteTable {
            router: matchit::Router::new(),
            endpoints: Vec::new(),
            names: HashMap::new(),
        };
        let mut by_source: HashMap<String, usize> = HashMap::new();
        let mut name_owner: HashMap<String, String> = HashMap::new();
        for def in defs {
            let patterns = match pattern::parse(&def.path) {
                Ok(patterns) => patterns,
                Err(why) => {
                    problems.push(format!("route `{}`: {why}", def.path));
                    continue;
                }
            };
            if let Some(name) = &def.name {
                if let Some(owner) = name_owner.get(name) {
                    problems.push(format!(
                        "route name `{name}` is used by both `{owner}` and `{}`",
                        def.path
                    ));
                    continue;
                }
                name_owner.insert(name.clone(), def.path.clone());
                table.names.insert(name.clone(), patterns.clone());
            }
            for p in patterns {
                if let Some(&at) = by_source.get(&p.source) {
                    let endpoint = &mut table.endpoints[at];
                    endpoint.methods.merge(def.methods.clone());
                    endpoint.name = endpoint.name.take().or(def.name.clone());
                    continue;
                }
                let at = table.endpoints.len();
                match table.router.insert(p.source.as_str(), at) {
                    Ok(()) => {}
                    Err(matchit::InsertError::Conflict { with }) => {
                        problems.push(format!(
                            "route `{}` conflicts with route `{with}`",
                            def.path
                        ));
                        continue;
                    }
                    Err(other) => {
                        problems.push(format!("route `{}`: {other}", def.path));
                        continue;
                    }
                }
                by_source.insert(p.source.clone(), at);
                table.endpoints.push(Endpoint {
                    pattern: p.source,
                    methods: def.methods.clone(),
                    allow: HeaderValue::from_static(""),
                    name: def.name.clone(),
                });
            }
        }
        for endpoint in &mut table.endpoints {
            for problem in endpoint.methods.problems.drain(..) {
                problems.push(format!("route `{}`: {problem}", endpoint.pattern));
            }
            endpoint.allow = endpoint.methods.allow();
        }
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems)
        }
    }

    /// The endpoint matching `path`, with its parameters.
    pub(crate) fn find(&self, path: &str) -> Option<(&Endpoint, Params)> {
        let matched = self.router.at(path).ok()?;
        let params = matched
            .params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Some((&self.endpoints[*matched.value], params))
    }

    /// Whether some route matches `path`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        self.router.at(path).is_ok()
    }

    /// Build the URL of the route `name` under `script_name`; parameters the route does not use go
    /// into the query string.
    pub(crate) fn url_for(
        &self,
        script_name: &str,
        name: &str,
        params: &[(String, String)],
    ) -> Result<String, UrlError> {
        let patterns = self
            .names
            .get(name)
            .ok_or_else(|| UrlError::UnknownRoute(name.to_owned()))?;
        let lookup = |param: &str| {
            params
                .iter()
                .find(|(k, _)| k == param)
                .map(|(_, v)| v.as_str())
        };
        // The longest form whose parameters are all given (optional segments come in two forms).
        let chosen = patterns
            .iter()
            .find(|p| p.params().all(|n| lookup(n).is_some()));
        let Some(pattern) = chosen else {
            let last = patterns.last().expect("a named route has a pattern");
            let missing = last.params().find(|n| lookup(n).is_none()).unwrap_or("");
            return Err(UrlError::MissingParam {
                route: name.to_owned(),
                param: missing.to_owned(),
            });
        };
        let path = pattern
            .render(lookup)
            .map_err(|param| UrlError::MissingParam {
                route: name.to_owned(),
                param,
            })?;
        let mut url = encode_path(script_name.trim_end_matches('/'));
        url.push_str(&path);
        let used: Vec<&str> = pattern.params().collect();
        let mut extra = params
            .iter()
            .filter(|(k, _)| !used.contains(&k.as_str()))
            .peekable();
        if extra.peek().is_some() {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (k, v) in extra {
                query.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&query.finish());
        }
        Ok(url)
    }

    /// Every (method, route, name, handler) row, for [`Site::routes`](crate::Site::routes).
    pub(crate) fn rows(&self) -> Vec<RouteInfo> {
        let mut rows = Vec::new();
        for endpoint in &self.endpoints {
            for (method, handler) in &endpoint.methods.handlers {
                rows.push(RouteInfo {
                    method: method.clone(),
                    path: endpoint.pattern.clone(),
                    name: endpoint.name.clone(),
                    handler: handler.type_name(),
                });
            }
        }
        rows.sort_by(|a, b| {
            a.path
                .cmp(&b.path)
                .then(a.method.as_str().cmp(b.method.as_str()))
        });
        rows
    }
}

/// One row of the route listing: like `flask routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The method.
    pub method: Method,
    /// The route, in matchit syntax, mount prefix included.
    pub path: String,
    /// The route's name (`"admin.index"` in a blueprint), if named.
    pub name: Option<String>,
    /// The handler's type name (e.g. `myapp::show_post`).
    pub handler: &'static str,
}

impl fmt::Display for RouteInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {:<30} {:<20} {}",
            self.method.as_str(),
            self.path,
            self.name.as_deref().unwrap_or("-"),
            self.handler
        )
    }
}

/// `url_for` could not build a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// No route has this name.
    UnknownRoute(String),
    /// The route needs this parameter and it was not given.
    MissingParam {
        /// The route's name.
        route: String,
        /// The parameter.
        param: String,
    },
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::UnknownRoute(name) => write!(f, "url_for: no route is named `{name}`"),
            UrlError::MissingParam { route, param } => {
                write!(f, "url_for(`{route}`): missing parameter `{param}`")
            }
        }
    }
}

impl std::error::Error for UrlError {}
