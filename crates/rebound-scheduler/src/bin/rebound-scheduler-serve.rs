//! A minimal `serve` binary used by the crash tests (the real entry point is
//! `rebound serve` in rebound-cli). Reads the environment like
//! [`rebound_scheduler::ServeConfig::from_env`]; prints `listening on ADDR`
//! once the API accepts connections; stops gracefully on SIGINT/SIGTERM.

use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = rebound_scheduler::ServeConfig::from_env()?;
    let filter = config.log_level.clone().unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    });
    rebound_scheduler::serve::serve_on(config, listener, shutdown).await?;
    Ok(())
}
