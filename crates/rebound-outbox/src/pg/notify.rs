//! Waking the relay on commit: the commit-order trigger sends
//! `NOTIFY <table>`, delivered when the writing transaction commits. A
//! broken or missing listener only costs latency: the relay then polls.

use std::time::Duration;

use futures::FutureExt;
use sqlx::postgres::PgListener;
use tracing::debug;

/// A lazily connected listener on the table's channel.
#[derive(Debug)]
pub(crate) struct Wakeup {
    url: String,
    channel: String,
    listener: Option<PgListener>,
}

impl Wakeup {
    pub(crate) fn new(url: &str, channel: &str) -> Self {
        Wakeup {
            url: url.to_string(),
            channel: channel.to_string(),
            listener: None,
        }
    }

    /// Starts listening if not yet (done before the first fetch too, so a
    /// commit between that fetch and the first wait is not missed).
    pub(crate) async fn listen(&mut self) {
        if self.listener.is_none() {
            match self.connect().await {
                Ok(l) => self.listener = Some(l),
                Err(e) => debug!(error = %e, "LISTEN unavailable; polling"),
            }
        }
    }

    /// Waits for a notification or `timeout`, whichever comes first, then
    /// drops the notifications already queued (one fetch serves them all).
    pub(crate) async fn wait(&mut self, timeout: Duration) {
        self.listen().await;
        let Some(listener) = self.listener.as_mut() else {
            tokio::time::sleep(timeout).await;
            return;
        };
        match tokio::time::timeout(timeout, listener.recv()).await {
            Ok(Ok(_)) => while let Some(Ok(_)) = listener.recv().now_or_never() {},
            Ok(Err(e)) => {
                debug!(error = %e, "LISTEN connection lost; polling until it is back");
                self.listener = None;
            }
            Err(_) => {}
        }
    }

    async fn connect(&self) -> Result<PgListener, sqlx::Error> {
        let mut l = PgListener::connect(&self.url).await?;
        l.listen(&self.channel).await?;
        Ok(l)
    }
}
