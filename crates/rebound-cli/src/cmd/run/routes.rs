//! The running routes of `rebound run` and how a config changes them:
//! routes whose settings (or the `[kafka]` section) changed stop — draining
//! their in-flight records and committing under the old settings — then
//! start with the new ones; removed routes stop; new ones start; unchanged
//! routes are not touched.

use std::collections::BTreeMap;

use rebound_worker::WorkerHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::ops::{route_labels, Live, PipelineOps, RouteState};
use crate::pipeline::Pipeline;
use crate::route::{self, Kafka, RouteMetrics, RouteSettings};

struct Running {
    settings: RouteSettings,
    handle: WorkerHandle,
    metrics: RouteMetrics,
}

/// The routes of one process.
pub struct Routes {
    kafka: Option<Kafka>,
    running: BTreeMap<String, Running>,
    ops: PipelineOps,
}

impl Routes {
    /// No route yet; `ops` shows what runs.
    pub fn new(ops: PipelineOps) -> Self {
        Routes {
            kafka: None,
            running: BTreeMap::new(),
            ops,
        }
    }

    /// Makes the running routes those of `p`, touching only what changed.
    /// The first error of a route that could not start is returned; the
    /// others still run.
    pub async fn apply(&mut self, p: &Pipeline) -> anyhow::Result<()> {
        let kafka_changed = self.kafka.as_ref() != Some(&p.kafka);
        let wanted: BTreeMap<&str, &RouteSettings> =
            p.routes.iter().map(|r| (r.name.as_str(), r)).collect();
        let to_stop: Vec<String> = self
            .running
            .iter()
            .filter(|(name, r)| kafka_changed || wanted.get(name.as_str()) != Some(&&r.settings))
            .map(|(name, _)| name.clone())
            .collect();
        let stopping = to_stop.iter().map(|name| {
            let r = self.running.remove(name).expect("a running route");
            let gone = !wanted.contains_key(name.as_str());
            async move {
                info!(route = %name, reason = if gone { "removed" } else { "changed" }, "stopping route (draining)");
                match r.handle.stop().await {
                    Ok(s) => info!(route = %name, processed = s.stats.processed, "route stopped"),
                    Err(e) => error!(route = %name, error = %e, "route stopped with an error"),
                }
                r.metrics.unregister();
            }
        });
        futures::future::join_all(stopping).await;
        self.ops.retain(|name| wanted.contains_key(name));
        self.kafka = Some(p.kafka.clone());
        let mut first_error = None;
        for r in &p.routes {
            if self.running.contains_key(&r.name) {
                continue;
            }
            let registry = self.ops.registry().clone();
            match route::start(&p.kafka, r, registry, route_labels(&r.name)).await {
                Ok((handle, metrics)) => {
                    let live = Live {
                        health: handle.health().clone(),
                        metrics: handle.metrics().clone(),
                        topic: r.topic.clone(),
                    };
                    self.ops.set(&r.name, RouteState::Running(live));
                    self.running.insert(
                        r.name.clone(),
                        Running {
                            settings: r.clone(),
                            handle,
                            metrics,
                        },
                    );
                }
                Err(e) => {
                    let why = rebound_core::DisplayChain(e.as_ref()).to_string();
                    error!(route = %r.name, error = %why, "route could not start");
                    self.ops.set(&r.name, RouteState::Failed(why));
                    first_error.get_or_insert(e.context(format!("route {}", r.name)));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The name of a route whose worker ended without being asked to.
    pub fn ended(&self) -> Option<String> {
        self.running
            .iter()
            .find(|(_, r)| r.handle.is_finished())
            .map(|(n, _)| n.clone())
    }

    /// Stops every route (draining each), all at once.
    pub async fn stop_all(&mut self) {
        let all = std::mem::take(&mut self.running);
        futures::future::join_all(all.into_iter().map(|(name, r)| async move {
            match r.handle.stop().await {
                Ok(s) => {
                    info!(route = %name, processed = s.stats.processed, failed = s.stats.failed,
                               abandoned_in_flight = s.abandoned_in_flight, "route stopped")
                }
                Err(e) => error!(route = %name, error = %e, "route stopped with an error"),
            }
        }))
        .await;
    }

    /// One `progress` line per route every 5 s.
    pub fn progress(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let ops = self.ops.clone();
        crate::ops::progress(stop, move |uptime| {
            for (name, line) in ops.progress_lines() {
                info!(route = %name, processed = line.0, in_flight = line.1,
                      frozen_partitions = line.2, uptime_s = uptime.as_secs(), "progress");
            }
        })
    }
}
