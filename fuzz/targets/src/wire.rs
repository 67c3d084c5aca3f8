//! The gateways' wire formats: FastCGI records and name-value pairs, a whole FastCGI connection, SCGI
//! and uwsgi connections, and the CGI meta-variables → environ conversion every gateway shares.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use rgi::Environ;
use rgi_servers::config::{Config, Limits};
use rgi_servers::fastcgi::record::{self, Header, FCGI_HEADER_LEN};
use rgi_servers::fastcgi::FilterData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Split `data` into records as a connection would; every record and every pair stream that decodes
/// must encode back to what decodes the same.
pub(crate) fn fastcgi_records(mut data: &[u8]) {
    while let Some((head, rest)) = data.split_first_chunk::<FCGI_HEADER_LEN>() {
        let Ok(header) = Header::decode(head) else {
            return;
        };
        let Some(body) = rest.get(..header.body_len()) else {
            return;
        };
        let content = &body[..usize::from(header.content_length)];
        let mut encoded = Vec::new();
        record::encode_record(&mut encoded, header.kind, header.request_id, content);
        let again = Header::decode(encoded.first_chunk().expect("a header")).expect("version 1");
        assert_eq!(
            (again.kind, again.request_id, again.content_length),
            (header.kind, header.request_id, header.content_length)
        );
        assert_eq!(encoded.len() % 8, 0, "records are padded to 8 bytes");
        assert_eq!(&encoded[FCGI_HEADER_LEN..][..content.len()], content);
        if let Ok(pairs) = record::decode_pairs(content) {
            let mut reencoded = Vec::new();
            for (name, value) in &pairs {
                record::encode_pair(&mut reencoded, name, value);
            }
            assert_eq!(record::decode_pairs(&reencoded).as_ref(), Ok(&pairs));
        }
        let _ = record::BeginRequest::decode(content);
        data = &rest[header.body_len()..];
    }
}

/// The whole FastCGI connection state machine, fed `data` as the web server's side of a socket.
/// It must end once the peer is gone, and write only well-formed records.
pub(crate) fn fastcgi_connection(data: &[u8]) {
    let out = exchange(data, |server| async move {
        let result =
            rgi_servers::fuzzing::fastcgi_connection(server, Arc::new(Echo), small_config()).await;
        drop(result); // a protocol error closes the connection: expected for most inputs
    });
    let mut rest = &out[..];
    while let Some((head, tail)) = rest.split_first_chunk::<FCGI_HEADER_LEN>() {
        let header = Header::decode(head).expect("the server writes version 1 records");
        assert!(
            matches!(header.kind, 3 | 6 | 7 | 10 | 11),
            "record type {} from the server",
            header.kind
        );
        rest = tail.get(header.body_len()..).expect("a whole record");
    }
    assert!(rest.is_empty(), "a truncated record from the server");
}

/// One SCGI connection fed `data`.
pub(crate) fn scgi(data: &[u8]) {
    let _ = rgi_servers::scgi::parse_header(data, 4096);
    let out = exchange(data, |server| {
        rgi_servers::fuzzing::oneshot_connection(server, Arc::new(Echo), small_config(), false)
    });
    assert_answer(&out, b"Status: ");
}

/// One uwsgi connection fed `data`.
pub(crate) fn uwsgi(data: &[u8]) {
    let _ = rgi_servers::uwsgi::parse_header(data, 4096);
    let out = exchange(data, |server| {
        rgi_servers::fuzzing::oneshot_connection(server, Arc::new(Echo), small_config(), true)
    });
    assert_answer(&out, b"HTTP/1.1 ");
}

/// A one-request gateway answers nothing (a header never completed) or one response head.
fn assert_answer(out: &[u8], start: &[u8]) {
    if !out.is_empty() {
        assert!(
            out.starts_with(start),
            "answer starts {:?}",
            String::from_utf8_lossy(&out[..out.len().min(40)])
        );
        assert!(out.windows(4).any(|w| w == b"\r\n\r\n"), "no end of head");
    }
}

/// Limits small enough for a fuzzer to reach them.
fn small_config() -> Config {
    Config {
        limits: Limits {
            max_body: Some(4096),
            ..Limits::default()
        },
        graceful_timeout: Duration::from_secs(1),
        max_requests: 4,
        ..Config::default()
    }
}

/// Run `serve` on one end of a socket pair and write `data` into the other, on a runtime whose clock
/// is paused (every wait for bytes that never come ends at once); return what the server wrote.
/// The server must end within a minute (of paused time) of the peer closing.
fn exchange<F, Fut>(data: &[u8], serve: F) -> Vec<u8>
where
    F: FnOnce(UnixStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let data = Bytes::copy_from_slice(data);
    runtime.block_on(async move {
        let (client, server) = UnixStream::pair().expect("a socket pair");
        let server = tokio::spawn(serve(server));
        let (mut rd, mut wr) = client.into_split();
        let writer = tokio::spawn(async move {
            let _ = wr.write_all(&data).await;
            wr // kept open: the peer has not closed, it just sends nothing more
        });
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut out)).await;
        writer.abort();
        drop(writer.await);
        drop(rd);
        match tokio::time::timeout(Duration::from_secs(60), server).await {
            Err(_) => panic!("the connection did not end after its peer closed"),
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(_) => {}
        }
        out
    })
}

/// Reads the whole body (and a Filter's data), answers with their lengths, logs a line.
struct Echo;

impl rgi::Application for Echo {
    async fn call(&self, mut environ: Environ, start: rgi::StartResponse) -> rgi::Reply {
        let declared = environ.content_length();
        let body = environ.input_mut().read_to_bytes().await?;
        if let Some(len) = declared {
            assert!(
                body.len() as u64 <= len,
                "a body longer than CONTENT_LENGTH"
            );
        }
        let data = environ
            .extensions()
            .get::<FilterData>()
            .and_then(FilterData::take);
        let data_len = match data {
            Some(mut data) => data.read_to_bytes().await?.len(),
            None => 0,
        };
        environ.errors().log(format_args!("echo: {}", body.len()));
        start.text(format!("{} {data_len}\n", body.len()))
    }
}

/// CGI meta-variables (`NAME\0VALUE\0`…, the first byte choosing the mount point) through the
/// conversion every gateway uses, CGI's and the network gateways'; what converts must survive a
/// round trip through [`Environ::vars`].
pub(crate) fn cgi_environ(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.split(|&b| b == 0);
    let mut params = Vec::new();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        params.push((name, value));
    }
    let config = Config {
        script_name: (mode & 1 == 1).then(|| "/app".to_owned()),
        limits: Limits {
            max_body: Some(1 << 20),
            ..Limits::default()
        },
        ..Config::default()
    };
    for cgi in [false, true] {
        match rgi_servers::fuzzing::gateway_environ(&params, &config, cgi) {
            Ok(environ) => {
                if config.script_name.is_some() {
                    assert!(matches!(environ.script_name(), b"" | b"/app"));
                }
                assert_cgi_round_trip(&environ);
            }
            Err(status) => assert!(
                matches!(
                    status,
                    StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
                ),
                "refused with {status}"
            ),
        }
    }
    if let Ok(environ) = rgi::environ_from_cgi(params.iter().copied()) {
        assert_cgi_round_trip(&environ);
    }
}

/// `vars()` of an environ converts back to an environ with the same `vars()`.
///
/// # Panics
///
/// When it does not: the conversion lost or changed something.
pub fn assert_cgi_round_trip(environ: &Environ) {
    let vars = own_vars(environ);
    let again = rgi::environ_from_cgi(vars.iter().map(|(k, v)| (k.as_bytes(), &v[..])))
        .expect("an environ's own variables convert back");
    assert_eq!(
        own_vars(&again),
        vars,
        "environ → CGI variables → environ changed it"
    );
}

/// The CGI variables of `environ`, without the server's own `rgi.*` keys.
fn own_vars(environ: &Environ) -> Vec<(String, Vec<u8>)> {
    environ
        .vars()
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v.as_bytes().to_vec()))
        .filter(|(k, _)| !k.starts_with("rgi."))
        .collect()
}
