//! The launcher picks the gateway: `--protocol`, or FastCGI on an inherited listening socket (fd 0).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A keep-conn-off FastCGI GET for `path`: BEGIN_REQUEST, PARAMS, empty PARAMS, empty STDIN.
fn fastcgi_get(path: &str) -> Vec<u8> {
    let mut params = Vec::new();
    for (k, v) in [("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", path)] {
        params.extend_from_slice(&[k.len() as u8, v.len() as u8]); // 1-byte lengths
        params.extend_from_slice(k.as_bytes());
        params.extend_from_slice(v.as_bytes());
    }
    let mut out = vec![1, 1, 0, 1, 0, 8, 0, 0]; // BEGIN_REQUEST, id 1, 8 bytes
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // RESPONDER, no KEEP_CONN
    let padding = (8 - params.len() % 8) % 8;
    out.extend_from_slice(&[1, 4, 0, 1, 0, params.len() as u8, padding as u8, 0]); // PARAMS
    out.extend_from_slice(&params);
    out.extend(std::iter::repeat_n(0, padding));
    out.extend_from_slice(&[1, 4, 0, 1, 0, 0, 0, 0]); // empty PARAMS
    out.extend_from_slice(&[1, 5, 0, 1, 0, 0, 0, 0]); // empty STDIN
    out
}

/// Send a FastCGI GET and return the STDOUT stream, up to the server's close.
fn fastcgi_exchange(addr: &str, path: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(&fastcgi_get(path)).unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let mut stdout = Vec::new();
    let mut rest = &raw[..];
    while rest.len() >= 8 {
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        let pad = usize::from(rest[6]);
        if rest[1] == 6 {
            stdout.extend_from_slice(&rest[8..8 + len]);
        }
        rest = &rest[8 + len + pad..];
    }
    String::from_utf8_lossy(&stdout).into_owned()
}

fn banner(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    line
}

#[test]
fn protocol_fastcgi_prints_a_fastcgi_url_and_serves_fastcgi() {
    let child = Command::new(common::binary("hello"))
        .args(["--protocol", "fastcgi", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = common::Killed(child);
    let line = banner(&mut child.0);
    let addr = line
        .strip_prefix("rgi: listening on fastcgi://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_owned();
    let text = fastcgi_exchange(&addr, "/");
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
}

#[test]
fn a_listening_socket_on_fd_0_is_served_as_fastcgi_without_flags() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let child = Command::new(common::binary("hello"))
        .env_remove("GATEWAY_INTERFACE")
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = common::Killed(child);
    let line = banner(&mut child.0);
    assert!(line.starts_with("rgi: listening on fastcgi://"), "{line:?}");
    let text = fastcgi_exchange(&addr, "/");
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
}
