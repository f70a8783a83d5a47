//! A throw-away certificate authority and a broker certificate for
//! 127.0.0.1, made with the `openssl` command for one broker.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, Result};

/// The files a TLS listener and its clients need.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate (PEM): clients' `ssl.ca.location`.
    pub ca_pem: PathBuf,
    /// The broker's key and certificate chain (PKCS#12).
    pub keystore: PathBuf,
    /// The keystore's password.
    pub password: String,
}

/// Makes a CA and a broker certificate (P-256, valid two days, SAN
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
        f("broker.key"),
        f("broker.csr")
    ))?;
    openssl(&format!(
        "x509 -req -days 2 -in {} -CA {} -CAkey {} -CAcreateserial -extfile {} -out {}",
        f("broker.csr"),
        f("ca.pem"),
        f("ca.key"),
        f("san.ext"),
        f("broker.pem")
    ))?;
    openssl(&format!(
        "pkcs12 -export -name broker -in {} -inkey {} -certfile {} -passout pass:{password} -out {}",
        f("broker.pem"),
        f("broker.key"),
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
        addr: "apache-kafka (TLS material)".into(),
        reason,
    }
}
