//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), the one
//! signer of every HTTP delivery: `rebound run`/`rebound worker` routes and
//! the scheduler's HTTP destination.
//!
//! A signed request carries three headers:
//!
//! - `webhook-id`: stable across retries of the same message, so a receiver
//!   can deduplicate (the caller chooses it: a route uses
//!   `topic-partition-offset`, the scheduler the task id);
//! - `webhook-timestamp`: unix seconds of this attempt;
//! - `webhook-signature`: `v1,` then the base64 of
//!   HMAC-SHA256(key, `"{id}.{timestamp}.{body}"`).
//!
//! The secret is written `whsec_<base64 key>`; the key is the decoded part
//! after the prefix.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header with the message id.
pub const WEBHOOK_ID: &str = "webhook-id";
/// Header with the attempt's unix time in seconds.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Header with the `v1,<base64>` signature.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The prefix of a written secret.
const PREFIX: &str = "whsec_";

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    /// The `whsec_` prefix is missing.
    #[error("a webhook secret must start with whsec_ (then the base64 key)")]
    MissingPrefix,
    /// The key is not base64.
    #[error("the webhook secret's key (after whsec_) is not base64: {0}")]
    NotBase64(String),
    /// The key decodes to nothing.
    #[error("the webhook secret's key is empty")]
    Empty,
}

/// A signing key. Its `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(\"whsec_***\")")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = WebhookSecretError;

    /// Reads `whsec_<base64>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b64 = s
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(WebhookSecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(b64)
            .map_err(|e| WebhookSecretError::NotBase64(e.to_string()))?;
        if key.is_empty() {
            return Err(WebhookSecretError::Empty);
        }
        Ok(WebhookSecret { key })
    }
}

impl WebhookSecret {
    /// The `webhook-signature` value of `body` sent as message `id` at
    /// `timestamp` (unix seconds): `v1,<base64 HMAC-SHA256>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// The three headers of a signed request, in send order.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            (WEBHOOK_ID, id.to_string()),
            (WEBHOOK_TIMESTAMP, timestamp.to_string()),
            (WEBHOOK_SIGNATURE, self.sign(id, timestamp, body)),
        ]
    }
}

/// The current unix time in seconds, for `webhook-timestamp`.
pub fn unix_seconds() -> i64 {
    crate::epoch_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks reference libraries.
        let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn bad_secrets_are_named_and_never_printed() {
        assert_eq!(
            "MfKQ".parse::<WebhookSecret>(),
            Err(WebhookSecretError::MissingPrefix)
        );
        assert!(matches!(
            "whsec_***".parse::<WebhookSecret>(),
            Err(WebhookSecretError::NotBase64(_))
        ));
        assert_eq!(
            "whsec_".parse::<WebhookSecret>(),
            Err(WebhookSecretError::Empty)
        );
        let s: WebhookSecret = "whsec_c2VjcmV0".parse().unwrap();
        assert!(!format!("{s:?}").contains("c2VjcmV0"));
    }
}
