//! CGI meta-variables (a CGI process environment, FastCGI `PARAMS`, an SCGI or uwsgi header block)
//! → [`Environ`], the same way for every gateway.
//!
//! # `SCRIPT_NAME` / `PATH_INFO`
//!
//! Web servers disagree on the split, and nginx's stock params files each get it differently wrong for
//! an application mounted at a prefix: `fastcgi_params` sends `SCRIPT_NAME=$fastcgi_script_name` (the
//! whole decoded path) and no `PATH_INFO`; `uwsgi_params` sends `PATH_INFO=$document_uri` and no
//! `SCRIPT_NAME`; `scgi_params` sends neither (only `REQUEST_URI` and `DOCUMENT_URI`). So that an
//! application sees the same split behind every gateway:
//!
//! 1. The full decoded path is `SCRIPT_NAME` + `PATH_INFO` when `PATH_INFO` is sent; else
//!    `SCRIPT_NAME`, else `DOCUMENT_URI`; else the percent-decoded path of `REQUEST_URI`.
//! 2. With a configured mount point ([`Config::script_name`], `--script-name`), the full path is
//!    split there on a segment boundary ([`Environ::mount`]); a path outside the mount point is left
//!    whole in `PATH_INFO`.
//! 3. Without one, `SCRIPT_NAME` is `""` and `PATH_INFO` the full path — unless the web server sent
//!    both `SCRIPT_NAME` and `PATH_INFO` (lighttpd, Apache's `mod_proxy_uwsgi`), or the gateway is
//!    CGI (RFC 3875: the web server names the script), in which case its split is kept; or unless
//!    Apache's `mod_proxy_fcgi`/`mod_proxy_scgi` sent the request ([`apache_proxy_split`]), whose
//!    `ProxyPass` prefix becomes `SCRIPT_NAME`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use rgi::{Environ, EnvironError, Input, ServerInfo};

use crate::config::Config;
use crate::pipeline::log::header_of;

/// Variables that do not make an environ (no `REQUEST_METHOD`, a bad port…): the web server's
/// mistake, answered 400.
#[derive(Debug)]
pub(crate) struct Refusal(EnvironError);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad request variables: {}", self.0)
    }
}

/// How much the gateway trusts the web server's `SCRIPT_NAME`; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Split {
    /// A network gateway: keep the web server's split only when it sent both variables.
    IfBoth,
    /// CGI: `SCRIPT_NAME` names the script (RFC 3875 §4.1.13); keep it.
    Keep,
}

/// Build the environ for one request from its meta-variables.
///
/// `make_input` receives `CONTENT_LENGTH` (when sent and a number) and returns the body source; the
/// declared length and [`Limits::max_body`](crate::config::Limits::max_body) are applied to it here
/// (a declared length over the limit is the pipeline's 413).
pub(crate) fn build<'a>(
    params: &[(&'a [u8], &'a [u8])],
    server: Arc<ServerInfo>,
    config: &Config,
    split: Split,
    make_input: impl FnOnce(Option<u64>) -> Input,
) -> Result<Environ, Refusal> {
    let mut environ = rgi::environ_from_cgi(params.iter().copied()).map_err(Refusal)?;
    environ.set_server_info(server);
    keep_repeated_headers(&mut environ, params);
    fix_paths(&mut environ, params, config.script_name.as_deref(), split).map_err(Refusal)?;
    let length = environ.content_length();
    let mut input = make_input(length);
    if let Some(len) = length {
        input = input.with_content_length(len);
    }
    if let Some(max) = config.limits.max_body {
        input = input.with_limit(max);
    }
    environ.set_input(input);
    Ok(environ)
}

/// nginx sends a request header that appears several times as the same `HTTP_*` variable several
/// times (FastCGI, uwsgi, SCGI); the environ keeps every value, in order, as the HTTP server does
/// (so `HTTP_X` reads `a, b`, and `HTTP_COOKIE` `a=1; b=2`).
fn keep_repeated_headers(environ: &mut Environ, params: &[(&[u8], &[u8])]) {
    // Linear: group values by name, then take each repeated name in the order first sent. (A scan
    // of the earlier names for every name made a params block of ~13 000 distinct names, 64 KiB,
    // cost ~10⁸ comparisons.)
    let mut values: HashMap<&[u8], Vec<&[u8]>> = HashMap::new();
    for (name, value) in params {
        // Content-Length and Content-Type are CONTENT_LENGTH/CONTENT_TYPE's, never joined from
        // repeated HTTP_ copies (a direct client could send two and make the length unparsable).
        let body_meta = *name == b"HTTP_CONTENT_LENGTH" || *name == b"HTTP_CONTENT_TYPE";
        if name.starts_with(b"HTTP_") && !body_meta {
            values.entry(name).or_default().push(value);
        }
    }
    for (cgi_name, _) in params {
        let Some(repeated) = values.remove(cgi_name).filter(|v| v.len() > 1) else {
            continue;
        };
        let Some(header) = header_of(cgi_name) else {
            continue;
        };
        let headers = environ.headers_mut();
        headers.remove(&header);
        for value in repeated {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                headers.append(header.clone(), value);
            }
        }
    }
}

/// The last value of `name` in `params`.
fn param<'a>(params: &[(&'a [u8], &'a [u8])], name: &str) -> Option<&'a [u8]> {
    params
        .iter()
        .rev()
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| *v)
}

fn fix_paths(
    environ: &mut Environ,
    params: &[(&[u8], &[u8])],
    mount: Option<&str>,
    split: Split,
) -> Result<(), EnvironError> {
    let script_name = param(params, "SCRIPT_NAME");
    let path_info = param(params, "PATH_INFO");
    let keep = match split {
        Split::Keep => true,
        Split::IfBoth => script_name.is_some() && path_info.is_some(),
    };
    if keep && mount.is_none() {
        return Ok(()); // environ_from_cgi applied the web server's split as sent.
    }
    if let (Split::IfBoth, None, None, Some(sn), Some(filename)) = (
        split,
        mount,
        path_info,
        script_name,
        param(params, "SCRIPT_FILENAME"),
    ) {
        if let Some((script_name, path_info)) = apache_proxy_split(sn, filename) {
            return environ.set_path(script_name, path_info);
        }
    }
    let full: Bytes = match (script_name, path_info) {
        (sn, Some(pi)) => [sn.unwrap_or_default(), pi].concat().into(),
        (Some(sn), None) => Bytes::copy_from_slice(sn),
        (None, None) => match (param(params, "DOCUMENT_URI"), param(params, "REQUEST_URI")) {
            (Some(doc), _) => Bytes::copy_from_slice(doc),
            (None, Some(uri)) => decoded_path(uri),
            (None, None) => Bytes::new(),
        },
    };
    environ.set_path(Bytes::new(), full)?;
    if let Some(mount) = mount {
        environ.mount(mount);
    }
    Ok(())
}

/// The `SCRIPT_NAME`/`PATH_INFO` split of a request that Apache's `mod_proxy_fcgi` or
/// `mod_proxy_scgi` forwarded (`ProxyPass /app fcgi://host:port/`), or `None` when it was not one.
///
/// Apache sends `SCRIPT_NAME` = the whole decoded (and normalised) path, no `PATH_INFO`, and
/// `SCRIPT_FILENAME` = `proxy:fcgi://host:port` + the path `ProxyPass` mapped the request to,
/// percent-encoded: for `/app/a%20b`, `proxy:fcgi://host:port/a%20b`. That mapped path, decoded, is
/// `PATH_INFO` when `SCRIPT_NAME` ends with it, and what comes before it is the mount point. A request
/// for the bare prefix (`/app`) maps to `/`, which `/app` does not end with: the whole path is then
/// `SCRIPT_NAME` and `PATH_INFO` is empty, as for any application's root.
fn apache_proxy_split(script_name: &[u8], script_filename: &[u8]) -> Option<(Bytes, Bytes)> {
    let url = script_filename.strip_prefix(b"proxy:")?;
    let authority = url.windows(3).position(|w| w == b"://")? + 3;
    let url = &url[authority..];
    let path = &url[url.iter().position(|&b| b == b'/')?..];
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let mapped: Vec<u8> = percent_encoding::percent_decode(path).collect();
    if let Some(mount) = script_name.strip_suffix(mapped.as_slice()) {
        // A mount point ending in `/` would come from an unmerged `//`: not a split to trust.
        return (!mount.ends_with(b"/")).then(|| (Bytes::copy_from_slice(mount), mapped.into()));
    }
    (mapped == b"/").then(|| (Bytes::copy_from_slice(script_name), Bytes::new()))
}

/// The percent-decoded path of a request target (`/a%20b?x` → `/a b`).
fn decoded_path(uri: &[u8]) -> Bytes {
    let path = uri.split(|&b| b == b'?').next().unwrap_or_default();
    percent_encoding::percent_decode(path)
        .collect::<Vec<u8>>()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environ(params: &[(&str, &str)], mount: Option<&str>, split: Split) -> Environ {
        let params: Vec<(&[u8], &[u8])> = params
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let config = Config {
            script_name: mount.map(str::to_owned),
            ..Config::default()
        };
        build(
            &params,
            Arc::new(ServerInfo::default()),
            &config,
            split,
            |_| Input::empty(),
        )
        .unwrap()
    }

    fn split_of(e: &Environ) -> (String, String) {
        (
            String::from_utf8_lossy(e.script_name()).into_owned(),
            String::from_utf8_lossy(e.path_info()).into_owned(),
        )
    }

    const GET: (&str, &str) = ("REQUEST_METHOD", "GET");

    #[test]
    fn every_stock_nginx_params_file_gives_the_same_split_under_a_mount_point() {
        let fastcgi = [
            GET,
            ("SCRIPT_NAME", "/app/a b"),
            ("REQUEST_URI", "/app/a%20b"),
        ];
        let uwsgi = [
            GET,
            ("PATH_INFO", "/app/a b"),
            ("REQUEST_URI", "/app/a%20b"),
        ];
        let scgi = [
            GET,
            ("DOCUMENT_URI", "/app/a b"),
            ("REQUEST_URI", "/app/a%20b"),
        ];
        let bare = [GET, ("REQUEST_URI", "/app/a%20b?q=1")];
        for params in [&fastcgi[..], &uwsgi, &scgi, &bare] {
            let e = environ(params, Some("/app"), Split::IfBoth);
            assert_eq!(split_of(&e), ("/app".into(), "/a b".into()), "{params:?}");
        }
    }

    #[test]
    fn without_a_mount_point_the_whole_path_is_path_info() {
        let fastcgi = [GET, ("SCRIPT_NAME", "/x/y")];
        let e = environ(&fastcgi, None, Split::IfBoth);
        assert_eq!(split_of(&e), ("".into(), "/x/y".into()));
    }

    #[test]
    fn a_split_sent_in_full_by_the_web_server_is_kept() {
        let lighttpd = [GET, ("SCRIPT_NAME", "/app"), ("PATH_INFO", "/x")];
        let e = environ(&lighttpd, None, Split::IfBoth);
        assert_eq!(split_of(&e), ("/app".into(), "/x".into()));
    }

    #[test]
    fn cgi_keeps_the_script_name_even_without_path_info() {
        let apache = [GET, ("SCRIPT_NAME", "/cgi-bin/demo")];
        let e = environ(&apache, None, Split::Keep);
        assert_eq!(split_of(&e), ("/cgi-bin/demo".into(), "".into()));
    }

    #[test]
    fn apache_proxy_pass_prefix_becomes_script_name() {
        let cases = [
            // (SCRIPT_NAME, SCRIPT_FILENAME) as mod_proxy_fcgi/scgi send them → the split.
            (
                "/app/a b/café",
                "proxy:fcgi://127.0.0.1:9000/a%20b/caf%C3%A9",
                "/app",
                "/a b/café",
            ),
            ("/app/", "proxy:fcgi://127.0.0.1:9000/", "/app", "/"),
            ("/app", "proxy:fcgi://127.0.0.1:9000/", "/app", ""),
            ("/x", "proxy:scgi://127.0.0.1:9000/x", "", "/x"),
            ("/", "proxy:fcgi://localhost/", "", "/"),
            ("/a/b", "proxy:fcgi://h/a%2Fb", "", "/a/b"),
            ("/a/%", "proxy:fcgi://h/a/%25?q=1", "", "/a/%"),
            // ProxyPass /app fcgi://h/other/: the mapped path is not a suffix; left whole.
            ("/app/x", "proxy:fcgi://h/other/x/y", "", "/app/x"),
        ];
        for (sn, filename, want_sn, want_pi) in cases {
            let params = [GET, ("SCRIPT_NAME", sn), ("SCRIPT_FILENAME", filename)];
            let e = environ(&params, None, Split::IfBoth);
            assert_eq!(split_of(&e), (want_sn.into(), want_pi.into()), "{params:?}");
        }
        // A real file name (php-fpm style) or a configured mount point: the usual rules.
        let file = [
            GET,
            ("SCRIPT_NAME", "/app/x"),
            ("SCRIPT_FILENAME", "/srv/app/x"),
        ];
        assert_eq!(
            split_of(&environ(&file, None, Split::IfBoth)),
            ("".into(), "/app/x".into())
        );
        let proxied = [
            GET,
            ("SCRIPT_NAME", "/app/x"),
            ("SCRIPT_FILENAME", "proxy:fcgi://h/x"),
        ];
        let e = environ(&proxied, Some("/app"), Split::IfBoth);
        assert_eq!(split_of(&e), ("/app".into(), "/x".into()));
    }

    #[test]
    fn a_path_outside_the_mount_point_stays_whole() {
        let e = environ(&[GET, ("PATH_INFO", "/apple")], Some("/app"), Split::IfBoth);
        assert_eq!(split_of(&e), ("".into(), "/apple".into()));
    }

    #[test]
    fn a_header_nginx_sends_twice_keeps_both_values_like_http() {
        let e = environ(
            &[
                GET,
                ("HTTP_X_MULTI", "a"),
                ("HTTP_COOKIE", "a=1"),
                ("HTTP_X_MULTI", "b"),
                ("HTTP_COOKIE", "b=2"),
            ],
            None,
            Split::IfBoth,
        );
        assert_eq!(e.get("HTTP_X_MULTI").unwrap(), "a, b");
        assert_eq!(e.get("HTTP_COOKIE").unwrap(), "a=1; b=2");
        assert_eq!(e.headers().get_all("x-multi").iter().count(), 2);
    }
}
