//! Hostile clients against every network gateway, spoken to directly (HTTP, and FastCGI, SCGI and
//! uwsgi on the RGI socket: nginx would filter most of this): slow heads and bodies, oversized
//! heads, parameter blocks and declared lengths, bodies that disagree with their declared length,
//! garbage pipelined after a valid request, thousands of abandoned connections, and an application
//! reflecting CR/LF into a header. Each must end in a 4xx, a clean close or a logged server error;
//! never a panic, a hang, unbounded memory, or a server that stops serving (every test ends by
//! checking that a normal request is still answered). HTTP framing attacks (CL+TE, two
//! Content-Lengths, obs-fold…) are in `http_conformance.rs`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use rgi_servers::fastcgi::record::{
    encode_pair, encode_record, FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_KEEP_CONN, FCGI_PARAMS,
    FCGI_RESPONDER, FCGI_STDIN, FCGI_STDOUT,
};
use rgi_tests::{read_until_close, Server};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gateway {
    Http,
    FastCgi,
    Scgi,
    Uwsgi,
}

const ALL: [Gateway; 4] = [
    Gateway::Http,
    Gateway::FastCgi,
    Gateway::Scgi,
    Gateway::Uwsgi,
];

impl Gateway {
    fn protocol(self) -> &'static str {
        match self {
            Gateway::Http => "http",
            Gateway::FastCgi => "fastcgi",
            Gateway::Scgi => "scgi",
            Gateway::Uwsgi => "uwsgi",
        }
    }

    /// testapp speaking this protocol: 1 s header timeout, 1 MiB body limit, 8 KiB heads.
    fn start(self) -> Server {
        Server::start(
            "testapp",
            &[
                "--protocol",
                self.protocol(),
                "--header-timeout",
                "1",
                "--limit-request-body",
                "1048576",
                "--limit-request-head",
                "8192",
            ],
        )
    }

    /// The whole request as this protocol sends it: head (CGI variables for the gateways) and body.
    /// `vars` are extra CGI variables (HTTP: header lines), `length` the declared body length.
    fn request(
        self,
        path: &str,
        vars: &[(&str, &str)],
        length: Option<usize>,
        body: &[u8],
    ) -> Vec<u8> {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let length = length.map(|l| l.to_string());
        let method = if length.is_some() { "POST" } else { "GET" };
        if self == Gateway::Http {
            let mut out =
                format!("{method} {path}?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
            if let Some(len) = &length {
                out.push_str(&format!("Content-Length: {len}\r\n"));
            }
            for (k, v) in vars {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let mut out = out.into_bytes();
            out.extend_from_slice(body);
            return out;
        }
        let mut cgi: Vec<(&str, &str)> = Vec::new();
        if self == Gateway::Scgi {
            cgi.push(("CONTENT_LENGTH", length.as_deref().unwrap_or("0")));
            cgi.push(("SCGI", "1"));
        } else if let Some(len) = &length {
            cgi.push(("CONTENT_LENGTH", len));
        }
        cgi.extend([
            ("REQUEST_METHOD", method),
            ("PATH_INFO", path),
            ("QUERY_STRING", query),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("SERVER_NAME", "x"),
            ("SERVER_PORT", "80"),
        ]);
        cgi.extend_from_slice(vars);
        match self {
            Gateway::FastCgi => fastcgi_request(1, false, &cgi, body),
            Gateway::Scgi => {
                let mut block = Vec::new();
                for (k, v) in &cgi {
                    block.extend_from_slice(k.as_bytes());
                    block.push(0);
                    block.extend_from_slice(v.as_bytes());
                    block.push(0);
                }
                let mut out = format!("{}:", block.len()).into_bytes();
                out.extend_from_slice(&block);
                out.push(b',');
                out.extend_from_slice(body);
                out
            }
            Gateway::Uwsgi => {
                let mut block = Vec::new();
                for (k, v) in &cgi {
                    for s in [k.as_bytes(), v.as_bytes()] {
                        block.extend_from_slice(&(s.len() as u16).to_le_bytes());
                        block.extend_from_slice(s);
                    }
                }
                let mut out = vec![0];
                out.extend_from_slice(&(block.len() as u16).to_le_bytes());
                out.push(0);
                out.extend_from_slice(&block);
                out.extend_from_slice(body);
                out
            }
            Gateway::Http => unreachable!(),
        }
    }

    /// The status and body of the reply (FastCGI: its STDOUT, then whether END_REQUEST came).
    fn parse(self, reply: &[u8]) -> Option<(u16, Vec<u8>)> {
        let cgi = match self {
            Gateway::FastCgi => stdout_of(reply).0,
            _ => reply.to_vec(),
        };
        let end = cgi.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&cgi[..end]).into_owned();
        let first = head.lines().next()?;
        let status = if let Some(rest) = first.strip_prefix("HTTP/1.1 ") {
            rest.get(..3)?.parse().ok()?
        } else {
            head.lines()
                .find_map(|l| l.strip_prefix("Status: "))
                .map_or(Some(200), |s| s.get(..3)?.parse().ok())?
        };
        Some((status, cgi[end + 4..].to_vec()))
    }
}

/// A FastCGI request: BEGIN_REQUEST, PARAMS, then STDIN with `body` (and its end).
fn fastcgi_request(id: u16, keep_conn: bool, vars: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let [r0, r1] = FCGI_RESPONDER.to_be_bytes();
    let flags = if keep_conn { FCGI_KEEP_CONN } else { 0 };
    encode_record(
        &mut out,
        FCGI_BEGIN_REQUEST,
        id,
        &[r0, r1, flags, 0, 0, 0, 0, 0],
    );
    let mut params = Vec::new();
    for (k, v) in vars {
        encode_pair(&mut params, k.as_bytes(), v.as_bytes());
    }
    encode_record(&mut out, FCGI_PARAMS, id, &params);
    encode_record(&mut out, FCGI_PARAMS, id, b"");
    if !body.is_empty() {
        encode_record(&mut out, FCGI_STDIN, id, body);
    }
    encode_record(&mut out, FCGI_STDIN, id, b"");
    out
}

/// The STDOUT bytes of a FastCGI reply, and how many END_REQUEST records it holds.
fn stdout_of(mut reply: &[u8]) -> (Vec<u8>, usize) {
    let (mut out, mut ends) = (Vec::new(), 0);
    while reply.len() >= 8 {
        let kind = reply[1];
        let len = usize::from(u16::from_be_bytes([reply[4], reply[5]]));
        let padding = usize::from(reply[6]);
        let Some(content) = reply.get(8..8 + len) else {
            break;
        };
        match kind {
            FCGI_STDOUT => out.extend_from_slice(content),
            FCGI_END_REQUEST => ends += 1,
            _ => {}
        }
        reply = reply.get(8 + len + padding..).unwrap_or_default();
    }
    (out, ends)
}

/// Send `request` and read until the server closes (at most `timeout`).
fn exchange(server: &Server, request: &[u8], timeout: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let _ = stream.write_all(request);
    read_until_close(&mut stream, timeout)
}

/// A normal request is answered: the server did not stop serving.
fn assert_serves(gw: Gateway, server: &Server) {
    let reply = exchange(
        server,
        &gw.request("/fast", &[], None, b""),
        Duration::from_secs(10),
    );
    assert_eq!(
        gw.parse(&reply),
        Some((200, b"fast\n".to_vec())),
        "{gw:?}: the server stopped serving: {:?}",
        String::from_utf8_lossy(&reply)
    );
}

fn status(gw: Gateway, server: &Server, request: &[u8]) -> Option<u16> {
    let reply = exchange(server, request, Duration::from_secs(10));
    gw.parse(&reply).map(|(s, _)| s)
}

/// Whether the server closed the connection within `limit` (reads EOF or a reset).
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn heads_trickled_byte_by_byte_are_cut_off_at_the_header_timeout() {
    // FastCGI's PARAMS deadline has a test of its own (below): an idle kept FastCGI connection is
    // legitimate (fastcgi_keep_conn), so its trickled *records* are bounded by --max-connections.
    for gw in [Gateway::Http, Gateway::Scgi, Gateway::Uwsgi] {
        let server = gw.start();
        let head = gw.request("/fast", &[("X-Slow", "1")], None, b"");
        let mut streams: Vec<TcpStream> = (0..20)
            .map(|_| TcpStream::connect(server.addr()).expect("connect"))
            .collect();
        let started = Instant::now();
        // One byte per connection every 100 ms: far slower than the head needs.
        for byte in head.iter().take(8) {
            for s in &mut streams {
                let _ = s.write_all(&[*byte]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_serves(gw, &server);
        for s in &mut streams {
            assert!(
                closed_within(s, Duration::from_secs(5)),
                "{gw:?}: a trickled head kept its connection for {:?}",
                started.elapsed()
            );
        }
        assert_serves(gw, &server);
    }
}

#[test]
fn fastcgi_params_trickled_after_begin_request_are_cut_off_at_the_header_timeout() {
    let gw = Gateway::FastCgi;
    let dir = rgi_tests::webservers::TempDir::new("hostile-fcgi-params");
    let errors = dir.join("error.log");
    let server = Server::start(
        "testapp",
        &[
            "--protocol",
            "fastcgi",
            "--header-timeout",
            "1",
            "-w",
            "1",
            "--error-logfile",
            errors.to_str().unwrap(),
        ],
    );
    // 20 requests, each BEGIN_REQUEST then one byte of PARAMS every 100 ms, never the empty
    // PARAMS record that ends them.
    let begin = {
        let mut out = Vec::new();
        let [r0, r1] = FCGI_RESPONDER.to_be_bytes();
        encode_record(
            &mut out,
            FCGI_BEGIN_REQUEST,
            1,
            &[r0, r1, FCGI_KEEP_CONN, 0, 0, 0, 0, 0],
        );
        out
    };
    let mut streams: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).expect("connect");
            s.write_all(&begin).unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    let mut trickle = Vec::new();
    encode_record(&mut trickle, FCGI_PARAMS, 1, b"\x01");
    let mut open = streams.len();
    // Trickle for up to 10 s (ten times the timeout), stopping early once every connection closed.
    while open > 0 && started.elapsed() < Duration::from_secs(10) {
        open = 0;
        for s in &mut streams {
            if s.write_all(&trickle).is_ok() {
                open += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for s in &mut streams {
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "trickled PARAMS kept their connection for {:?}",
            started.elapsed()
        );
    }
    println!(
        "trickled PARAMS: all 20 connections closed after {:?}",
        started.elapsed()
    );
    assert_serves(gw, &server);
    let logged = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(&errors)
            .unwrap_or_default()
            .contains("did not send all its PARAMS within 1s (--header-timeout)")
    });
    assert!(logged, "{:?}", std::fs::read_to_string(&errors));

    // A kept connection idle between requests (nginx's fastcgi_keep_conn) is not timed out: three
    // requests on one connection, 2.5 s (more than twice the timeout) apart.
    let mut kept = TcpStream::connect(server.addr()).expect("connect");
    kept.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for round in 0..3 {
        if round > 0 {
            std::thread::sleep(Duration::from_millis(2500));
        }
        let vars = [
            ("REQUEST_METHOD", "GET"),
            ("PATH_INFO", "/fast"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
        ];
        kept.write_all(&fastcgi_request(1, true, &vars, b""))
            .unwrap_or_else(|e| panic!("round {round}: the idle kept connection was closed: {e}"));
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while stdout_of(&reply).1 == 0 {
            match kept.read(&mut buf) {
                Ok(0) | Err(_) => panic!("round {round}: closed before END_REQUEST: {reply:?}"),
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(
            gw.parse(&reply),
            Some((200, b"fast\n".to_vec())),
            "round {round}"
        );
    }
}

#[test]
fn trickled_fastcgi_records_hold_no_more_than_their_connections() {
    let gw = Gateway::FastCgi;
    let server = Server::start(
        "testapp",
        &["--protocol", "fastcgi", "--max-connections", "64"],
    );
    let request = gw.request("/fast", &[], None, b"");
    // 40 connections each stalled inside a record: the server still answers others.
    let mut stalled: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).expect("connect");
            s.write_all(&request[..13]).unwrap();
            s
        })
        .collect();
    assert_serves(gw, &server);
    // Their peers go away: the server closes its side and keeps serving.
    for s in &mut stalled {
        s.shutdown(Shutdown::Write).unwrap();
        assert!(
            closed_within(s, Duration::from_secs(5)),
            "a stalled FastCGI connection outlived its peer"
        );
    }
    assert_serves(gw, &server);
}

#[test]
fn a_trickled_body_is_read_whole_without_delaying_other_requests() {
    for gw in ALL {
        let server = gw.start();
        let body = b"0123456789".repeat(3);
        let full = gw.request(
            "/echo",
            &[("CONTENT_TYPE", "text/plain")],
            Some(body.len()),
            &body,
        );
        // What is trickled: the body (FastCGI: its STDIN record, padding and end-of-stream record).
        let tail = match gw {
            Gateway::FastCgi => 8 + body.len() + (8 - body.len() % 8) % 8 + 8,
            _ => body.len(),
        };
        let (head, rest) = full.split_at(full.len() - tail);
        let started = Instant::now();
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream.write_all(head).unwrap();
        // 3 bytes every 150 ms (1.5 s or more in all: longer than the header timeout).
        for (i, chunk) in rest.chunks(3).enumerate() {
            if let Err(e) = stream.write_all(chunk) {
                panic!(
                    "{gw:?}: the connection broke after {:?}: {e}",
                    started.elapsed()
                );
            }
            std::thread::sleep(Duration::from_millis(150));
            if i == 1 {
                assert_serves(gw, &server);
            }
        }
        // SCGI and uwsgi answer after a half-close as well. A FastCGI web server never half-closes:
        // closing its side aborts the requests still running (§5.4), so it is left open there
        // (END_REQUEST closes the connection, FCGI_KEEP_CONN being off).
        if matches!(gw, Gateway::Scgi | Gateway::Uwsgi) {
            let _ = stream.shutdown(Shutdown::Write);
        }
        let reply = read_until_close(&mut stream, Duration::from_secs(30));
        let (status, echoed) = gw.parse(&reply).unwrap_or_else(|| {
            panic!(
                "{gw:?}: no answer to a trickled body after {:?}: {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&reply)
            )
        });
        assert_eq!((status, echoed), (200, body.clone()), "{gw:?}");
        assert_serves(gw, &server);
    }
}

#[test]
fn oversized_heads_params_and_declared_lengths_are_refused() {
    let big = "v".repeat(9000);
    for gw in ALL {
        let server = gw.start();
        // A head over --limit-request-head (8 KiB): 431, or for FastCGI the connection is closed.
        let reply = exchange(
            &server,
            &gw.request("/fast", &[("X-Big", &big)], None, b""),
            Duration::from_secs(10),
        );
        match gw {
            Gateway::FastCgi => assert!(
                stdout_of(&reply).0.is_empty(),
                "answered an oversized PARAMS"
            ),
            _ => assert_eq!(gw.parse(&reply).map(|r| r.0), Some(431), "{gw:?}"),
        }
        // A declared body of 2 GB: 413 before a byte of it is read.
        let request = gw.request("/echo", &[], Some(2_000_000_000), b"");
        assert_eq!(status(gw, &server, &request), Some(413), "{gw:?}");
        assert_serves(gw, &server);
    }
    // Length fields of the gateway protocols themselves claiming 2 GB.
    let server = Gateway::FastCgi.start();
    let mut request = Vec::new();
    encode_record(
        &mut request,
        FCGI_BEGIN_REQUEST,
        1,
        &[0, 1, 0, 0, 0, 0, 0, 0],
    );
    // A name-value pair whose value length says 2^31 - 1 bytes, in a 12-byte record.
    encode_record(
        &mut request,
        FCGI_PARAMS,
        1,
        &[
            4, 0xff, 0xff, 0xff, 0xff, b'N', b'A', b'M', b'E', b'v', b'v', b'v',
        ],
    );
    encode_record(&mut request, FCGI_PARAMS, 1, b"");
    let reply = exchange(&server, &request, Duration::from_secs(10));
    assert!(stdout_of(&reply).0.is_empty(), "a 2 GB pair was answered");
    assert_serves(Gateway::FastCgi, &server);

    let server = Gateway::Scgi.start();
    assert_eq!(
        status(
            Gateway::Scgi,
            &server,
            b"2000000000:CONTENT_LENGTH\x000\x00"
        ),
        Some(431)
    );
    assert_eq!(
        status(Gateway::Scgi, &server, b"99999999999999999999:"),
        Some(400)
    );
    assert_serves(Gateway::Scgi, &server);

    let server = Gateway::Uwsgi.start();
    // datasize 65535 (the most 16 bits say) over the 8 KiB head limit.
    assert_eq!(
        status(Gateway::Uwsgi, &server, &[0, 0xff, 0xff, 0]),
        Some(431)
    );
    assert_serves(Gateway::Uwsgi, &server);
}

#[test]
fn a_body_that_disagrees_with_its_declared_length_is_never_read_past_it() {
    for gw in [Gateway::FastCgi, Gateway::Scgi, Gateway::Uwsgi] {
        let server = gw.start();
        // Shorter than declared, then the stream ends (FastCGI) or the peer stops sending: 400.
        let request = gw.request("/echo", &[], Some(10), b"12345");
        let mut stream = TcpStream::connect(server.addr()).expect("connect");
        stream.write_all(&request).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let reply = read_until_close(&mut stream, Duration::from_secs(10));
        let parsed = gw.parse(&reply);
        assert!(
            parsed.is_none() || parsed.as_ref().map(|r| r.0) == Some(400),
            "{gw:?}: a short body answered {:?}",
            String::from_utf8_lossy(&reply)
        );
        // Longer than declared: the application sees exactly the declared bytes; the rest is
        // never taken for another request.
        let request = gw.request("/echo", &[], Some(5), b"12345GET /fast HTTP/1.1\r\n\r\n");
        let reply = exchange(&server, &request, Duration::from_secs(10));
        assert_eq!(gw.parse(&reply), Some((200, b"12345".to_vec())), "{gw:?}");
        assert_serves(gw, &server);
    }
    // FastCGI params that contradict each other: two CONTENT_LENGTHs. The body is framed by the
    // STDIN records, never by the variable, so at most the declared bytes reach the application
    // and the connection stays in step.
    let gw = Gateway::FastCgi;
    let server = gw.start();
    let request = gw.request("/echo", &[("CONTENT_LENGTH", "3")], Some(8), b"12345678");
    let reply = exchange(&server, &request, Duration::from_secs(10));
    let (status, body) = gw.parse(&reply).expect("an answer");
    assert!(
        (status == 200 && (body == b"123" || body == b"12345678")) || status == 400,
        "{status} {body:?}"
    );
    assert_serves(gw, &server);
}

#[test]
fn garbage_pipelined_after_a_valid_request_ends_the_connection_after_its_answer() {
    let garbage = b"\x09\x09\x09\x09\x09\x09\x09\x09 GET / HTTP/1.1\r\n\r\n";
    // FastCGI with keep-conn: the valid request is answered whole (with END_REQUEST), then the bad
    // record closes the connection.
    let server = Gateway::FastCgi.start();
    let vars = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/fast")];
    let mut request = fastcgi_request(1, true, &vars, b"");
    request.extend_from_slice(garbage);
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.write_all(&request).unwrap();
    let reply = read_until_close(&mut stream, Duration::from_secs(10));
    let (stdout, ends) = stdout_of(&reply);
    assert_eq!(ends, 1, "{:?}", String::from_utf8_lossy(&reply));
    assert!(stdout.ends_with(b"fast\n"));
    assert_serves(Gateway::FastCgi, &server);
    // SCGI and uwsgi: one request per connection; what follows its body is drained, never parsed.
    for gw in [Gateway::Scgi, Gateway::Uwsgi] {
        let server = gw.start();
        let mut request = gw.request("/fast", &[], None, b"");
        request.extend_from_slice(garbage);
        let reply = exchange(&server, &request, Duration::from_secs(10));
        assert_eq!(gw.parse(&reply), Some((200, b"fast\n".to_vec())), "{gw:?}");
        assert_serves(gw, &server);
    }
}

#[test]
fn thousands_of_abandoned_connections_leave_memory_bounded_and_the_server_serving() {
    for gw in ALL {
        let server = gw.start();
        assert_serves(gw, &server);
        let partial = gw.request("/fast", &[], None, b"");
        let partial = &partial[..partial.len() / 2];
        // Warm-up round, so that the allocator's steady state is the baseline.
        let round = |n: usize| {
            let streams: Vec<TcpStream> = (0..n)
                .filter_map(|_| {
                    let mut s = TcpStream::connect(server.addr()).ok()?;
                    let _ = s.write_all(partial);
                    Some(s)
                })
                .collect();
            assert!(streams.len() > n * 9 / 10, "{gw:?}: connections refused");
            drop(streams); // abandoned mid-head: the client just goes away
        };
        round(250);
        std::thread::sleep(Duration::from_millis(300));
        let before = server.memory_kib("VmRSS");
        for _ in 0..8 {
            round(250); // 2000 in all, 250 open at a time
        }
        std::thread::sleep(Duration::from_millis(500));
        assert_serves(gw, &server);
        let after = server.memory_kib("VmRSS");
        eprintln!(
            "{gw:?}: VmRSS {before} KiB before 2000 abandoned connections, {after} KiB after"
        );
        assert!(
            after < before + 32 * 1024,
            "{gw:?}: RSS grew from {before} to {after} KiB"
        );
    }
}

#[test]
fn an_application_reflecting_cr_lf_into_a_header_gets_a_500_and_nothing_is_injected() {
    for gw in ALL {
        let server = gw.start();
        let request = gw.request(
            "/reflect-header?a%0d%0aX-Injected:%201%0d%0a%0d%0a%3chtml%3e",
            &[],
            None,
            b"",
        );
        let reply = exchange(&server, &request, Duration::from_secs(10));
        let text = String::from_utf8_lossy(&reply).to_lowercase();
        assert_eq!(gw.parse(&reply).map(|r| r.0), Some(500), "{gw:?}: {text}");
        assert!(
            !text.contains("x-injected"),
            "{gw:?}: header injected: {text}"
        );
        // A harmless value is reflected as is.
        let request = gw.request("/reflect-header?plain%20value", &[], None, b"");
        let reply = exchange(&server, &request, Duration::from_secs(10));
        assert!(
            String::from_utf8_lossy(&reply)
                .to_lowercase()
                .contains("x-reflected: plain value"),
            "{gw:?}"
        );
        assert_serves(gw, &server);
    }
}
