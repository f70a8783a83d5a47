//! librdkafka properties a config passes through (TLS, SASL, tuning). They
//! may hold passwords, so their `Debug` shows sensitive values as `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// Whether a property's value must not be shown (`sasl.password`,
/// `ssl.key.password`, `sasl.oauthbearer.client.secret`, JAAS configs, ...).
pub fn is_sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("jaas") || k.contains("token")
}

/// Whether a property is about reaching and authenticating to the cluster
/// (`security.protocol`, `ssl.*`, `sasl.*`, `socket.*`, `client.id`, …):
/// what every client of a command needs. Other properties (fetch or batch
/// tuning) belong to one kind of client; librdkafka warns when another kind
/// is given them.
pub fn is_connection(key: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "security.",
        "ssl.",
        "ssl_",
        "sasl.",
        "socket.",
        "broker.",
        "metadata.",
        "reconnect.",
        "api.version",
        "client.",
        "connections.",
        "enable.ssl",
        "resolve.",
    ];
    const KEYS: &[&str] = &["debug", "log_level", "topic.metadata.refresh.interval.ms"];
    PREFIXES.iter().any(|p| key.starts_with(p)) || KEYS.contains(&key)
}

/// librdkafka properties by name, last set wins.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties(BTreeMap<String, String>);

impl Deref for ClientProperties {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for ClientProperties {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a ClientProperties {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| {
                let shown = if is_sensitive(k) { "***" } else { v.as_str() };
                (k, shown)
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_properties_are_told_from_client_tuning() {
        for k in [
            "security.protocol",
            "ssl.ca.location",
            "sasl.mechanism",
            "sasl.password",
            "client.id",
            "socket.timeout.ms",
            "debug",
        ] {
            assert!(is_connection(k), "{k}");
        }
        for k in ["fetch.min.bytes", "linger.ms", "auto.offset.reset", "acks"] {
            assert!(!is_connection(k), "{k}");
        }
    }

    #[test]
    fn debug_hides_sensitive_values() {
        let mut p = ClientProperties::default();
        p.insert("sasl.password".into(), "hunter2".into());
        p.insert("ssl.key.password".into(), "k3y".into());
        p.insert("security.protocol".into(), "SASL_SSL".into());
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("k3y"),
            "{shown}"
        );
        assert!(shown.contains("SASL_SSL"), "{shown}");
    }
}
