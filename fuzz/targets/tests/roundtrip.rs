//! Property tests of the round trips: FastCGI records and name-value pairs encode ↔ decode, environ ↔
//! CGI meta-variables, and `url_for` ↔ route match.

use proptest::prelude::*;
use rgi_framework::{get, App, Path};
use rgi_servers::fastcgi::record::{self, Header, FCGI_HEADER_LEN};

/// Split a byte stream of records into (header, content) pairs.
fn records(mut wire: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((head, rest)) = wire.split_first_chunk::<FCGI_HEADER_LEN>() {
        let header = Header::decode(head).expect("version 1");
        out.push((header, rest[..usize::from(header.content_length)].to_vec()));
        wire = &rest[header.body_len()..];
    }
    out
}

proptest! {
    #[test]
    fn a_record_decodes_to_what_was_encoded(kind: u8, id: u16, content in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut wire = Vec::new();
        record::encode_record(&mut wire, kind, id, &content);
        let decoded = records(&wire);
        prop_assert_eq!(decoded.len(), 1);
        let (header, body) = &decoded[0];
        prop_assert_eq!((header.kind, header.request_id), (kind, id));
        prop_assert_eq!(body, &content);
        prop_assert_eq!(wire.len() % 8, 0);
    }

    #[test]
    fn a_stream_reassembles_from_its_records(len in 0usize..200_000, byte: u8) {
        let data = vec![byte; len];
        let mut wire = Vec::new();
        record::encode_stream(&mut wire, record::FCGI_STDOUT, 7, &data);
        let joined: Vec<u8> = records(&wire).into_iter().flat_map(|(h, c)| {
            assert!(usize::from(h.content_length) <= record::FCGI_MAX_CONTENT && !c.is_empty());
            c
        }).collect();
        prop_assert_eq!(joined, data);
    }

    #[test]
    fn name_value_pairs_decode_to_what_was_encoded(
        pairs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..300), proptest::collection::vec(any::<u8>(), 0..300)),
            0..20,
        )
    ) {
        let mut wire = Vec::new();
        for (name, value) in &pairs {
            record::encode_pair(&mut wire, name, value);
        }
        let decoded = record::decode_pairs(&wire).expect("well-formed pairs");
        let decoded: Vec<(Vec<u8>, Vec<u8>)> =
            decoded.into_iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        prop_assert_eq!(decoded, pairs);
    }

    #[test]
    fn cgi_variables_survive_environ_and_back(
        method in "(GET|POST|PUT|DELETE|PATCH|OPTIONS|[A-Z]{1,8})",
        script in "(/[a-z0-9._~-]{1,8}){0,2}",
        path in "(/[^/\u{0}]{0,8}){0,3}",
        query in "[a-zA-Z0-9=&%+;._~-]{0,24}",
        headers in proptest::collection::btree_map("[A-Z][A-Z0-9]{0,6}(_[A-Z0-9]{1,6})?", "[ -~]{0,24}", 0..6),
        port in 1u16..,
        length in proptest::option::of(0u64..100_000),
        https: bool,
    ) {
        let port = port.to_string();
        let length = length.map(|l| l.to_string()).unwrap_or_default();
        let mut vars: Vec<(String, String)> = vec![
            ("REQUEST_METHOD".into(), method.clone()),
            ("SCRIPT_NAME".into(), script.clone()),
            ("PATH_INFO".into(), path.clone()),
            ("QUERY_STRING".into(), query.clone()),
            ("SERVER_NAME".into(), "example.org".into()),
            ("SERVER_PORT".into(), port.clone()),
            ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
            ("REMOTE_ADDR".into(), "192.0.2.7".into()),
            ("CONTENT_LENGTH".into(), length.clone()),
        ];
        if https {
            vars.push(("HTTPS".into(), "on".into()));
        }
        for (name, value) in &headers {
            if name != "CONTENT_TYPE" && name != "CONTENT_LENGTH" {
                vars.push((format!("HTTP_{name}"), value.trim().to_owned()));
            }
        }
        let environ = rgi::environ_from_cgi(vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())))
            .expect("valid variables");
        prop_assert_eq!(environ.method().as_str(), method.as_str());
        prop_assert_eq!(environ.script_name(), script.as_bytes());
        prop_assert_eq!(environ.path_info(), path.as_bytes());
        prop_assert_eq!(environ.query_string(), query.as_bytes());
        prop_assert_eq!(environ.server_port().to_string(), port);
        for (name, value) in &vars {
            if name.starts_with("HTTP_") {
                let got = environ.get(name).expect("a header variable");
                prop_assert_eq!(got.as_bytes(), value.as_bytes(), "{}", name);
            }
        }
        // And back: the environ's own variables make the same environ again.
        rgi_fuzz_targets::assert_cgi_round_trip(&environ);
    }

    #[test]
    fn url_for_gives_a_url_its_own_route_answers(
        id in "[^/\u{0}]{1,12}",
        rest in "[^\u{0}]{1,16}",
        mount in "(/[a-z]{1,6}){0,2}",
    ) {
        async fn one(Path(id): Path<String>) -> String {
            format!("one {id}")
        }
        async fn two(Path((id, rest)): Path<(String, String)>) -> String {
            format!("two {id} {rest}")
        }
        let site = App::new()
            .route("/items/{id}", get(one)).name("one")
            .route("/files/{id}/{*rest}", get(two)).name("two")
            .build()
            .expect("valid routes");
        let client = rgi::testing::TestClient::new(rgi_middleware::Mount::new().at(&mount, site.clone()));
        let url = site.url_for(&mount, "one", [("id", &id)]).expect("a url");
        let response = client.get(&url).send_blocking();
        prop_assert_eq!(response.text(), format!("one {id}"), "{}", url);
        let url = site.url_for(&mount, "two", [("id", &id), ("rest", &rest)]).expect("a url");
        let response = client.get(&url).send_blocking();
        prop_assert_eq!(response.text(), format!("two {id} {rest}"), "{}", url);
    }
}
