//! SIGINT / SIGTERM → a cancellation token.

use tokio_util::sync::CancellationToken;
use tracing::info;

/// Cancels `token` on the first SIGINT or SIGTERM.
pub fn on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => info!("SIGINT: shutting down gracefully"),
            _ = term => info!("SIGTERM: shutting down gracefully"),
            _ = token.cancelled() => return,
        }
        token.cancel();
    });
}
