//! A throw-away certificate authority and a server certificate for
//! 127.0.0.1, made with the `openssl` command: for Apache Kafka's SSL
//! listener and for HTTPS endpoints ([`serve_https`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_native_tls::TlsStream;

use crate::{Error, Result};

/// The files a TLS listener and its clients need.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): clients' `ssl.ca.location`.
    pub ca_pem: PathBuf,
    /// The server's key and certificate chain (PKCS#12).
    pub keystore: PathBuf,
    /// The keystore's password.
    pub password: String,
}

impl TlsFiles {
    /// The server's certificate (PEM), beside the CA's, for servers that
    /// take the certificate and the key apart (Redis).
    pub fn cert_pem(&self) -> PathBuf {
        self.ca_pem.with_file_name(CERT)
    }

    /// The server's key (PEM).
    pub fn key_pem(&self) -> PathBuf {
        self.ca_pem.with_file_name(KEY)
    }
}

/// The server's certificate and key, beside the CA's.
const CERT: &str = "broker.pem";
const KEY: &str = "broker.key";

/// Makes a CA and a server certificate (P-256, valid two days, SAN
/// `IP:127.0.0.1, DNS:localhost`) in `dir`.
pub fn generate(dir: &Path) -> Result<TlsFiles> {
    let password = "rebound-test";
    let f = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    openssl(&format!(
        "req -x509 {new_key} -days 2 -subj /CN=rebound-test-ca -keyout {} -out {}",
        f("ca.key"),
        f("ca.pem")
    ))?;
    openssl(&format!(
        "req {new_key} -subj /CN=localhost -keyout {} -out {}",
        f(KEY),
        f("broker.csr")
    ))?;
    openssl(&format!(
        "x509 -req -days 2 -in {} -CA {} -CAkey {} -CAcreateserial -extfile {} -out {}",
        f("broker.csr"),
        f("ca.pem"),
        f("ca.key"),
        f("san.ext"),
        f(CERT)
    ))?;
    openssl(&format!(
        "pkcs12 -export -name broker -in {} -inkey {} -certfile {} -passout pass:{password} -out {}",
        f(CERT),
        f(KEY),
        f("ca.pem"),
        f("broker.p12")
    ))?;
    Ok(TlsFiles {
        ca_pem: dir.join("ca.pem"),
        keystore: dir.join("broker.p12"),
        password: password.to_string(),
    })
}

/// Runs `openssl` with whitespace-separated `args` (paths here have no spaces:
/// they live in a directory named by the test kit).
fn openssl(args: &str) -> Result<()> {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .output()
        .map_err(|e| tls_error(format!("cannot run openssl: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(tls_error(format!(
            "`openssl {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn tls_error(reason: String) -> Error {
    Error::Start {
        addr: "TLS material".into(),
        reason,
    }
}

/// Serves `app` over TLS on a free 127.0.0.1 port with the server
/// certificate of `tls` (a client must trust `tls.ca_pem`); returns the
/// address. A client that refuses the certificate never reaches `app`.
pub async fn serve_https(app: axum::Router, tls: &TlsFiles) -> Result<SocketAddr> {
    let p12 = std::fs::read(&tls.keystore)?;
    let identity = native_tls::Identity::from_pkcs12(&p12, &tls.password)
        .map_err(|e| tls_error(format!("the keystore does not load: {e}")))?;
    let acceptor = native_tls::TlsAcceptor::new(identity)
        .map_err(|e| tls_error(format!("no TLS acceptor: {e}")))?;
    let acceptor = tokio_native_tls::TlsAcceptor::from(acceptor);
    let tcp = TcpListener::bind("127.0.0.1:0").await?;
    let addr = tcp.local_addr()?;
    // Handshakes run apart, so one stuck client holds up no other.
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = tcp.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = tx.send((tls, peer)).await;
                }
            });
        }
    });
    tokio::spawn(async move { axum::serve(Handshaken { rx, addr }, app).await });
    Ok(addr)
}

/// The connections whose TLS handshake succeeded, as axum's listener.
struct Handshaken {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl axum::serve::Listener for Handshaken {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accepting task is gone: no connection will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
