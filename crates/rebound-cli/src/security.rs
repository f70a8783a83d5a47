//! TLS and SASL for every command that talks to Kafka: one set of flags
//! (each with its environment variable) turned into librdkafka properties.
//! Passwords are kept in [`Secret`], which never prints its value.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use rebound_producer::ProducerConfig;
use rebound_worker::reader::ReaderConfig;

use crate::args;

/// A value that must not reach logs, errors or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it (the client config).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(Secret(s.to_string()))
        }
    }
}

/// A `--kafka-config` property; `Debug` hides sensitive values.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaProperty(String, String);

impl std::fmt::Debug for KafkaProperty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if rebound_core::properties::is_sensitive(&self.0) {
            "***"
        } else {
            &self.1
        };
        write!(f, "{}={shown}", self.0)
    }
}

/// The environment variable of more `--kafka-config` properties.
const KAFKA_CONFIG_ENV: &str = "REBOUND_KAFKA_CONFIG";

fn kafka_property(s: &str) -> Result<KafkaProperty, String> {
    args::key_value(s).map(|(k, v)| KafkaProperty(k, v))
}

/// `--security-protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// `--sasl-mechanism` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    /// User name and password, in the clear (use with TLS).
    #[value(name = "PLAIN")]
    Plain,
    /// Salted challenge-response, SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// Salted challenge-response, SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl Mechanism {
    fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// How to reach a secured cluster. Without any of these flags the
/// connection is plaintext.
#[derive(Debug, Clone, Default, Args)]
pub struct Security {
    /// plaintext, ssl, sasl-plaintext or sasl-ssl (default: what the other
    /// flags imply: SASL flags give SASL, a CA or client certificate TLS).
    #[arg(long, env = "REBOUND_SECURITY_PROTOCOL", value_enum)]
    security_protocol: Option<Protocol>,
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default PLAIN with a user name).
    #[arg(long, env = "REBOUND_SASL_MECHANISM", value_enum)]
    sasl_mechanism: Option<Mechanism>,
    /// SASL user name.
    #[arg(long, env = "REBOUND_SASL_USERNAME", value_parser = args::non_empty)]
    sasl_username: Option<String>,
    /// SASL password (better through its environment variable).
    #[arg(long, env = "REBOUND_SASL_PASSWORD", hide_env_values = true)]
    sasl_password: Option<Secret>,
    /// CA certificate(s) (PEM) the brokers' certificates are checked against.
    #[arg(long, env = "REBOUND_SSL_CA_LOCATION")]
    ssl_ca_location: Option<PathBuf>,
    /// Client certificate (PEM), for brokers that require one.
    #[arg(long, env = "REBOUND_SSL_CERTIFICATE_LOCATION")]
    ssl_certificate_location: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "REBOUND_SSL_KEY_LOCATION")]
    ssl_key_location: Option<PathBuf>,
    /// The private key's password.
    #[arg(long, env = "REBOUND_SSL_KEY_PASSWORD", hide_env_values = true)]
    ssl_key_password: Option<Secret>,
    /// Any other librdkafka property, key=value (repeatable); applied last.
    /// The command's own client gets all of them; clients it uses on the
    /// side (a worker's DLQ producer, admin calls) get the connection ones
    /// only (`security.*`, `ssl.*`, `sasl.*`, `socket.*`, `client.id`, …).
    /// Also from REBOUND_KAFKA_CONFIG, several separated by `;` (a value
    /// holding a `;` goes by this flag), before the flag's.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE", value_parser = kafka_property)]
    kafka_config: Vec<KafkaProperty>,
}

impl Security {
    /// The librdkafka properties, or an error naming the flag that is
    /// missing or contradicts another.
    pub fn properties(&self) -> anyhow::Result<Vec<(String, String)>> {
        let sasl = self.sasl_mechanism.is_some()
            || self.sasl_username.is_some()
            || self.sasl_password.is_some();
        let tls = self.ssl_ca_location.is_some()
            || self.ssl_certificate_location.is_some()
            || self.ssl_key_location.is_some();
        let protocol = self.security_protocol.unwrap_or(match (sasl, tls) {
            (true, true) => Protocol::SaslSsl,
            (true, false) => Protocol::SaslPlaintext,
            (false, true) => Protocol::Ssl,
            (false, false) => Protocol::Plaintext,
        });
        let sasl_protocol = matches!(protocol, Protocol::SaslPlaintext | Protocol::SaslSsl);
        let tls_protocol = matches!(protocol, Protocol::Ssl | Protocol::SaslSsl);
        anyhow::ensure!(
            !sasl || sasl_protocol,
            "--security-protocol {protocol:?} does not use SASL, but SASL flags were given"
        );
        anyhow::ensure!(
            !tls || tls_protocol,
            "--security-protocol {protocol:?} does not use TLS, but TLS flags were given"
        );
        let mut out: Vec<(String, String)> = Vec::new();
        let mut set = |k: &str, v: String| out.push((k.to_string(), v));
        let name = match protocol {
            Protocol::Plaintext => "PLAINTEXT",
            Protocol::Ssl => "SSL",
            Protocol::SaslPlaintext => "SASL_PLAINTEXT",
            Protocol::SaslSsl => "SASL_SSL",
        };
        set("security.protocol", name.into());
        // SASL by flags needs a user and a password (PLAIN, SCRAM); other
        // mechanisms (OAUTHBEARER, GSSAPI) come through --kafka-config.
        if sasl {
            let (Some(user), Some(password)) = (&self.sasl_username, &self.sasl_password) else {
                anyhow::bail!(
                    "SASL needs both --sasl-username and --sasl-password (or REBOUND_SASL_PASSWORD)"
                );
            };
            let mechanism = self.sasl_mechanism.unwrap_or(Mechanism::Plain);
            set("sasl.mechanism", mechanism.as_str().into());
            set("sasl.username", user.clone());
            set("sasl.password", password.expose().into());
        }
        let path = |p: &PathBuf, flag: &str| -> anyhow::Result<String> {
            anyhow::ensure!(p.is_file(), "{flag} {}: no such file", p.display());
            Ok(p.display().to_string())
        };
        if let Some(ca) = &self.ssl_ca_location {
            set("ssl.ca.location", path(ca, "--ssl-ca-location")?);
        }
        match (&self.ssl_certificate_location, &self.ssl_key_location) {
            (Some(cert), Some(key)) => {
                set(
                    "ssl.certificate.location",
                    path(cert, "--ssl-certificate-location")?,
                );
                set("ssl.key.location", path(key, "--ssl-key-location")?);
            }
            (None, None) => {}
            _ => anyhow::bail!(
                "a client certificate needs both --ssl-certificate-location and --ssl-key-location"
            ),
        }
        if let Some(p) = &self.ssl_key_password {
            set("ssl.key.password", p.expose().into());
        }
        if let Ok(list) = std::env::var(KAFKA_CONFIG_ENV) {
            for (i, item) in list.split(';').enumerate() {
                if item.trim().is_empty() {
                    continue;
                }
                // The error names the entry, not its text: it may hold a
                // password.
                let p = kafka_property(item).map_err(|_| {
                    anyhow::anyhow!("{KAFKA_CONFIG_ENV}: entry {} is not key=value", i + 1)
                })?;
                out.push((p.0, p.1));
            }
        }
        out.extend(self.kafka_config.iter().map(|p| (p.0.clone(), p.1.clone())));
        Ok(out)
    }
}

/// A producer config on `brokers` with `props` (from [`Security::properties`]).
pub fn producer_config(brokers: &str, props: &[(String, String)]) -> ProducerConfig {
    props
        .iter()
        .fold(ProducerConfig::new(brokers), |c, (k, v)| {
            c.with_client_config(k, v)
        })
}

/// A reader config of `topic` on `brokers` with `props`.
pub fn reader_config(brokers: &str, topic: &str, props: &[(String, String)]) -> ReaderConfig {
    props
        .iter()
        .fold(ReaderConfig::new(brokers, topic), |c, (k, v)| {
            c.with_client_config(k, v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        security: Security,
    }

    fn props(args: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))?;
        cli.security.properties()
    }

    fn get(p: &[(String, String)], k: &str) -> Option<String> {
        p.iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn flags_imply_the_protocol_and_passwords_never_print() {
        let none = props(&[]).unwrap();
        assert_eq!(
            get(&none, "security.protocol").as_deref(),
            Some("PLAINTEXT")
        );
        let sasl = props(&[
            "--sasl-username",
            "bob",
            "--sasl-password",
            "pw",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
        ])
        .unwrap();
        assert_eq!(
            get(&sasl, "security.protocol").as_deref(),
            Some("SASL_PLAINTEXT")
        );
        assert_eq!(
            get(&sasl, "sasl.mechanism").as_deref(),
            Some("SCRAM-SHA-512")
        );
        let cli =
            Cli::try_parse_from(["t", "--sasl-username", "bob", "--sasl-password", "hunter2"])
                .unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"), "{cli:?}");
    }

    #[test]
    fn missing_or_contradicting_flags_are_named() {
        let e = props(&["--sasl-username", "bob"]).unwrap_err().to_string();
        assert!(e.contains("--sasl-password"), "{e}");
        let e = props(&[
            "--security-protocol",
            "ssl",
            "--sasl-username",
            "b",
            "--sasl-password",
            "p",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not use SASL"), "{e}");
        let e = props(&[
            "--security-protocol",
            "plaintext",
            "--ssl-ca-location",
            "/etc/hostname",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not use TLS"), "{e}");
        let cli = Cli::try_parse_from(["t", "--kafka-config", "sasl.password=hunter2"]).unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"), "{cli:?}");
        let e = props(&["--ssl-ca-location", "/no/such/ca.pem"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--ssl-ca-location /no/such/ca.pem: no such file"),
            "{e}"
        );
    }
}
