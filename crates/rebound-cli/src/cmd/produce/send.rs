//! Sending: many records in flight at once (handed to the producer in input
//! order, so per-partition order holds), an optional rate limit, a progress
//! bar, and a count of what was sent, failed and skipped.

use std::time::Duration;

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use indicatif::ProgressBar;
use rebound_producer::Producer;
use tokio::time::Instant;

use super::input::Line;

/// Sends awaiting acknowledgement at once.
const IN_FLIGHT: usize = 1000;

/// What happened to the input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// Sends every good line of `lines`; bad lines are reported and counted as
/// skipped (the caller decided they may be). Failures are reported with
/// their line number.
pub async fn send_all(
    producer: &Producer,
    lines: impl Stream<Item = Line>,
    rate: Option<f64>,
    bar: &ProgressBar,
) -> Summary {
    let mut lines = std::pin::pin!(lines);
    let mut in_flight = FuturesUnordered::new();
    let mut summary = Summary::default();
    let started = Instant::now();
    let mut queued: u64 = 0;
    let settle = |summary: &mut Summary, (number, result): (usize, Result<_, _>)| {
        match result {
            Ok(_) => summary.sent += 1,
            Err(e) => {
                summary.failed += 1;
                bar.suspend(|| {
                    eprintln!(
                        "line {number}: failed to send: {}",
                        rebound_core::DisplayChain(&e)
                    )
                });
            }
        }
        bar.inc(1);
    };
    loop {
        if in_flight.len() >= IN_FLIGHT {
            if let Some(done) = in_flight.next().await {
                settle(&mut summary, done);
            }
            continue;
        }
        tokio::select! {
            biased;
            Some(done) = in_flight.next(), if !in_flight.is_empty() => settle(&mut summary, done),
            line = lines.next() => {
                let Some(line) = line else { break };
                let rec = match line.record {
                    Ok(rec) => rec,
                    Err(why) => {
                        summary.skipped += 1;
                        bar.suspend(|| eprintln!("line {}: {why} (skipped)", line.number));
                        continue;
                    }
                };
                if let Some(rate) = rate {
                    let due = started + Duration::from_secs_f64(queued as f64 / rate);
                    tokio::time::sleep_until(due).await;
                }
                queued += 1;
                let number = line.number;
                in_flight.push(async move { (number, producer.send(&rec).await) });
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        settle(&mut summary, done);
    }
    summary
}
