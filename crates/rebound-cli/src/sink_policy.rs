//! What a route's HTTP sink does around each request: the per-route status
//! policy (retried, dropped, dead-lettered at once), the Standard Webhooks
//! signature and the rate limit. Kept apart from `sink`, which sends.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::SystemTime;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rebound_core::headers;
use rebound_core::retry::retry_after;
use rebound_core::webhook::{unix_seconds, WebhookSecret};
use rebound_worker::{HandlerError, HandlerResult, Record};
use reqwest::StatusCode;

use crate::route::RouteSettings;

/// Which record a response answers: topic, partition, offset.
pub type At = (rebound_worker::Topic, i32, i64);

/// How a route answers each response status.
#[derive(Debug, Clone, Default)]
pub struct StatusPolicy {
    /// Retried statuses; empty: every failing status not listed below.
    pub retry: Vec<u16>,
    /// Done without delivery: logged and dropped.
    pub drop: Vec<u16>,
    /// Dead-lettered at once (permanent failures).
    pub dlq: Vec<u16>,
}

impl StatusPolicy {
    /// The outcome of a response with `status` and its `Retry-After` value.
    /// 2xx succeeds; listed statuses as configured; 429 and 503 (when
    /// retried) are throttling that honours `Retry-After`; other statuses are
    /// retried unless a retry list is set, then they are dead-lettered.
    pub fn classify(
        &self,
        at: &At,
        status: StatusCode,
        retry_after_value: Option<&str>,
    ) -> HandlerResult {
        let code = status.as_u16();
        if status.is_success() {
            return Ok(());
        }
        let msg = format!("HTTP sink answered {status}");
        if self.drop.contains(&code) {
            tracing::warn!(
                topic = %at.0, partition = at.1, offset = at.2, %status, "dropped: the route drops this status"
            );
            return Ok(());
        }
        let retried = if self.retry.is_empty() {
            !self.dlq.contains(&code)
        } else {
            self.retry.contains(&code)
        };
        if !retried {
            return Err(HandlerError::permanent(msg));
        }
        if code == 429 || code == 503 {
            let after = retry_after_value.and_then(|v| retry_after(v, SystemTime::now()));
            return Err(HandlerError::throttled(msg, after));
        }
        Err(HandlerError::transient(msg))
    }
}

/// Signing, rate limit and status policy of one route's sink.
#[derive(Clone, Default)]
pub struct SinkExtras {
    /// Response handling.
    pub statuses: StatusPolicy,
    secret: Option<WebhookSecret>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl SinkExtras {
    /// From a route's settings.
    pub fn of(route: &RouteSettings) -> Self {
        SinkExtras {
            statuses: StatusPolicy {
                retry: route.retry_statuses.clone(),
                drop: route.drop_statuses.clone(),
                dlq: route.dlq_statuses.clone(),
            },
            secret: route.webhook_secret.clone(),
            limiter: route
                .rate_limit
                .and_then(NonZeroU32::new)
                .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n)))),
        }
    }

    /// Waits for the rate limit (if any): one permit per delivery attempt.
    pub async fn permit(&self) {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
    }

    /// What signing `record` needs, when a secret is set: its webhook id and
    /// body. The id is `topic-partition-offset` of the record as first
    /// consumed (a retry tier's copy carries those in its
    /// `rebound.original.*` headers): the same for every retry of the
    /// record and for a redelivery after a restart, so receivers can
    /// deduplicate.
    pub fn to_sign(&self, record: &Record) -> Option<(String, Vec<u8>)> {
        self.secret.as_ref()?;
        let original = (
            record.header_str(headers::ORIGINAL_TOPIC),
            record.header_str(headers::ORIGINAL_PARTITION),
            record.header_str(headers::ORIGINAL_OFFSET),
        );
        let id = match original {
            (Some(t), Some(p), Some(o)) => format!("{t}-{p}-{o}"),
            _ => format!("{}-{}-{}", record.topic, record.partition, record.offset),
        };
        Some((id, record.value.clone().unwrap_or_default()))
    }

    /// Adds the Standard Webhooks headers for `to_sign`'s id and body,
    /// timestamped now: call it right before sending (after the rate
    /// limit's wait), so the timestamp is fresh.
    pub fn sign(
        &self,
        req: reqwest::RequestBuilder,
        to_sign: Option<(String, Vec<u8>)>,
    ) -> reqwest::RequestBuilder {
        let (Some(secret), Some((id, body))) = (&self.secret, to_sign) else {
            return req;
        };
        secret
            .headers(&id, unix_seconds(), &body)
            .into_iter()
            .fold(req, |r, (k, v)| r.header(k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_worker::ErrorKind;

    fn kind(p: &StatusPolicy, code: u16) -> Option<ErrorKind> {
        p.classify(
            &("t".into(), 0, 1),
            StatusCode::from_u16(code).unwrap(),
            Some("2"),
        )
        .err()
        .map(|e| e.kind)
    }

    #[test]
    fn statuses_are_retried_dropped_or_dead_lettered_as_configured() {
        let default = StatusPolicy::default();
        assert_eq!(kind(&default, 204), None);
        assert_eq!(kind(&default, 500), Some(ErrorKind::Transient));
        assert_eq!(kind(&default, 400), Some(ErrorKind::Transient));
        assert_eq!(kind(&default, 429), Some(ErrorKind::Throttled));
        let p = StatusPolicy {
            retry: vec![500, 503],
            drop: vec![410],
            dlq: vec![],
        };
        assert_eq!(kind(&p, 410), None);
        assert_eq!(kind(&p, 503), Some(ErrorKind::Throttled));
        assert_eq!(kind(&p, 500), Some(ErrorKind::Transient));
        assert_eq!(kind(&p, 400), Some(ErrorKind::Permanent));
        let p = StatusPolicy {
            dlq: vec![422],
            ..StatusPolicy::default()
        };
        assert_eq!(kind(&p, 422), Some(ErrorKind::Permanent));
        assert_eq!(kind(&p, 502), Some(ErrorKind::Transient));
    }
}
