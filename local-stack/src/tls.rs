//! TLS for the WebSocket API's own port, so code that builds the @connections endpoint from
//! the event (`https://{domainName}/{stage}`, as AWS's examples do) and clients that dial
//! `wss://` work unchanged. A local certificate authority is created once in the cache
//! folder (`local-ca/`, like mkcert's), each stack gets a fresh leaf for 127.0.0.1 and
//! localhost signed by it, and functions are given the CA through the variables their SDKs
//! read (`AWS_CA_BUNDLE` for botocore, `NODE_EXTRA_CA_CERTS` for Node).
//!
//! The port speaks both: a connection whose first byte is a TLS handshake record (0x16)
//! gets TLS, anything else plain HTTP, so `ws://` and `wss://` share one URL host.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types};

use crate::error::{LocalError, Result};

/// The stack's certificate authority and the acceptor for its leaf.
#[derive(Clone)]
pub struct LocalTls {
    /// The CA certificate (PEM), for clients and functions to trust.
    pub ca_file: PathBuf,
    acceptor: TlsAcceptor,
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "DynamoWave local stack CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn tls_error(e: impl std::fmt::Display) -> LocalError {
    LocalError::io("local TLS", std::io::Error::other(e.to_string()))
}

impl LocalTls {
    /// Loads the CA from `dir` (creating it the first time) and issues this stack's leaf.
    pub fn new(dir: &Path) -> Result<LocalTls> {
        let (ca_file, key_file) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        let io = |what: &str, e| LocalError::io(format!("{what} {}", dir.display()), e);
        let ca_key = match std::fs::read_to_string(&key_file) {
            Ok(pem) if ca_file.is_file() => KeyPair::from_pem(&pem).map_err(tls_error)?,
            _ => {
                std::fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
                let key = KeyPair::generate().map_err(tls_error)?;
                let cert = ca_params()?.self_signed(&key).map_err(tls_error)?;
                write_private(&key_file, &key.serialize_pem()).map_err(|e| io("writing", e))?;
                let tmp = ca_file.with_extension(format!("tmp{}", std::process::id()));
                std::fs::write(&tmp, cert.pem()).map_err(|e| io("writing", e))?;
                std::fs::rename(&tmp, &ca_file).map_err(|e| io("writing", e))?;
                key
            }
        };
        // Same subject and key as the stored CA certificate, so leaves chain to it.
        let issuer = Issuer::new(ca_params()?, ca_key);
        let leaf_key = KeyPair::generate().map_err(tls_error)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).map_err(tls_error)?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        leaf.distinguished_name
            .push(DnType::CommonName, "DynamoWave local stack");
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(tls_error)?;
        let key =
            pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(tls_error)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(vec![leaf_cert.der().clone()], key)
        .map_err(tls_error)?;
        Ok(LocalTls {
            ca_file,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// Serves `router` on `listener`, each connection as TLS or plain HTTP by its first byte,
/// with upgrades (WebSocket), until `stop` turns true.
pub fn serve_mixed(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<LocalTls>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (stream, addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: wait, do not spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
            };
            let (router, tls) = (router.clone(), tls.clone());
            tokio::spawn(async move {
                // A client that opens a connection and sends nothing, or its handshake a byte
                // at a time, is dropped at the deadline instead of holding a task for ever.
                let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
                let mut first = [0u8; 1];
                let peeked = tokio::time::timeout_at(deadline, stream.peek(&mut first)).await;
                let is_tls = matches!(peeked, Ok(Ok(1)) if first[0] == 0x16);
                if peeked.is_err() {
                    tracing::debug!(%addr, "nothing sent before the handshake deadline");
                    return;
                }
                match (is_tls, tls) {
                    (true, Some(tls)) => {
                        match tokio::time::timeout_at(deadline, tls.acceptor.accept(stream)).await {
                            Ok(Ok(s)) => serve_one(TokioIo::new(s), router, addr, deadline).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%addr, "TLS handshake past its deadline"),
                        }
                    }
                    _ => serve_one(TokioIo::new(stream), router, addr, deadline).await,
                }
            });
        }
    })
}

/// How long a client has from connecting to the end of its first request's headers (TLS
/// included). AWS documents none for WebSocket APIs; 10 s is ours (nginx's
/// client_header_timeout is 60 s, hyper's header_read_timeout 30 s).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

async fn serve_one<I>(io: I, router: axum::Router, addr: SocketAddr, deadline: tokio::time::Instant)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // Told when the first request's head has been read: later requests on a kept-alive
    // connection have no deadline (hyper's header_read_timeout would close idle ones too).
    let headed = Arc::new(tokio::sync::Notify::new());
    let tell = headed.clone();
    let service =
        router
            .layer(axum::Extension(ConnectInfo(addr)))
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    tell.notify_one();
                    next.run(request)
                },
            ));
    let service = hyper_util::service::TowerToHyperService::new(service);
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = &mut conn => return,
        _ = headed.notified() => {}
        _ = tokio::time::sleep_until(deadline) => {
            tracing::debug!(%addr, "handshake headers past their deadline");
            return;
        }
    }
    let _ = conn.await;
}
