//! Raw hyper 1.x over HTTP/2 only: h2c by prior knowledge, or with `--certfile`/`--keyfile` h2 over
//! TLS (rustls, ALPN `h2`) — an http2 connection per accepted socket on a multi-threaded tokio
//! runtime, hyper's default HTTP/2 settings. The reference of RGI's HTTP/2 rows.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

async fn hello(_request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from(rgi_bench_refs::hello_body())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn acceptor(cert: &std::path::Path, key: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| panic!("{}: {e}", cert.display()));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| panic!("{}: {e}", key.display()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .expect("a TLS configuration");
    config.alpn_protocols = vec![b"h2".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn main() -> std::io::Result<()> {
    let args = rgi_bench_refs::args();
    let tls = args.tls.as_ref().map(|(cert, key)| acceptor(cert, key));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(args.bind).await?;
            rgi_bench_refs::announce("ref-hyper-h2", &args);
            let builder = Arc::new(http2::Builder::new(TokioExecutor::new()));
            loop {
                let Ok((stream, _peer)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (tls, builder) = (tls.clone(), Arc::clone(&builder));
                tokio::spawn(async move {
                    let service = service_fn(hello);
                    let _ = match tls {
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => builder.serve_connection(TokioIo::new(stream), service).await,
                            Err(_) => Ok(()),
                        },
                        None => builder.serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        })
}
