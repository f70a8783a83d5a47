//! Starting a worker and controlling it through a [`WorkerHandle`].

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rebound_core::Topic;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::cluster_check::check_cluster;
use crate::config::{Delivery, WorkerConfig};
use crate::dispatch::{Dispatcher, FrozenInfo, Limits, Tp};
use crate::error::{Error, Result};
use crate::handler::{BatchHandler, BatchRunner, Handler, RecordRunner, Runner, Traced};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::poller::{Ctx, PollLoop};
use crate::runtime::{ApiCmd, RunSummary, Runtime};

/// Entry point: `Worker::start(config, handler).await?` returns a running
/// worker's handle.
pub struct Worker;

impl Worker {
    /// Connects, subscribes and starts handling records with `handler`.
    /// Fails with [`Error::Unreachable`] when no broker answers within the
    /// connect timeout, and [`Error::UnknownTopic`] for a missing topic.
    pub async fn start<H: Handler>(config: WorkerConfig, handler: H) -> Result<WorkerHandle> {
        let runner = RecordRunner(Traced::new(handler, &config.group));
        start_with(config, Arc::new(runner)).await
    }

    /// Like [`Worker::start`] with a batch handler; use with
    /// [`crate::Ordering::Batch`] (other modes hand it one-record batches).
    pub async fn start_batch<B: BatchHandler>(
        config: WorkerConfig,
        handler: B,
    ) -> Result<WorkerHandle> {
        let runner = BatchRunner(Traced::new(handler, &config.group));
        start_with(config, Arc::new(runner)).await
    }
}

fn client_config(cfg: &WorkerConfig) -> ClientConfig {
    let mut c = group_consumer_config(&cfg.brokers, &cfg.group, cfg.session_timeout);
    c.set("statistics.interval.ms", "1000");
    // librdkafka's prefetch queue is memory on top of the worker's own
    // buffers: hold it to half the byte budget.
    c.set(
        "queued.max.messages.kbytes",
        (cfg.max_buffered_bytes / 2 / 1024).max(1024).to_string(),
    );
    for (k, v) in &cfg.client_config {
        c.set(k, v);
    }
    c
}

/// The consumer settings every group member of rebound uses: manual
/// commits, earliest reset, cooperative-sticky rebalancing.
pub fn group_consumer_config(
    brokers: &str,
    group: &str,
    session_timeout: Duration,
) -> ClientConfig {
    let mut c = ClientConfig::new();
    let session_ms = session_timeout.as_millis().max(1000);
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", session_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (session_ms / 3).max(100).to_string(),
        )
        .set("enable.partition.eof", "false")
        // librdkafka backs off fetching for up to a second once its local
        // queue passes queued.min.messages; a consumer that hands records
        // to another thread then idles. Back off briefly instead.
        .set("fetch.queue.backoff.ms", "10")
        // Its prefetch queue is memory on top of what the caller buffers;
        // the worker sets it from its byte budget, the pipeline (which holds
        // at most one batch besides) keeps this.
        .set("queued.max.messages.kbytes", "32768");
    c
}

async fn start_with<R: Runner>(cfg: WorkerConfig, runner: Arc<R>) -> Result<WorkerHandle> {
    let metrics = cfg
        .metrics
        .clone()
        .unwrap_or_else(|| Arc::new(Metrics::new()));
    let health = Arc::new(Health::default());
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let (cmd_tx, cmd_rx) = std::sync::mpsc::channel();
    let ctx = Ctx {
        events: ev_tx.clone(),
        revoke_wait: cfg.drain_timeout + Duration::from_secs(5),
        closing: AtomicBool::new(false),
        health: health.clone(),
        metrics: metrics.clone(),
    };
    let consumer: BaseConsumer<Ctx> =
        client_config(&cfg)
            .create_with_context(ctx)
            .map_err(|source| Error::Kafka {
                context: "creating the consumer",
                source,
            })?;

    // The poll thread checks the cluster, subscribes and reports back.
    let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
    let thread_cfg = cfg.clone();
    let (h2, m2) = (health.clone(), metrics.clone());
    let poll_thread = std::thread::Builder::new()
        .name("rebound-poll".into())
        .spawn(move || {
            let setup = check_cluster(
                &client_config(&thread_cfg),
                &thread_cfg.brokers,
                &thread_cfg.topics,
                thread_cfg.connect_timeout,
            )
            .and_then(|()| {
                let topics: Vec<&str> = thread_cfg.topics.iter().map(String::as_str).collect();
                consumer.subscribe(&topics).map_err(|source| Error::Kafka {
                    context: "subscribing",
                    source,
                })
            });
            let ok = setup.is_ok();
            if ok {
                // The cluster check just had an answer: a broker is up, so
                // readiness need not wait for the first statistics tick.
                h2.set_brokers_up(true);
            }
            let _ = ready_tx.send(setup);
            if !ok {
                consumer
                    .context()
                    .closing
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                return;
            }
            PollLoop {
                consumer,
                commands: cmd_rx,
                events: ev_tx,
                batch_max: thread_cfg.poll_batch,
                health: h2,
                metrics: m2,
            }
            .run();
        })
        .map_err(|e| Error::Stopped(format!("cannot spawn the poll thread: {e}")))?;
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = tokio::task::spawn_blocking(move || poll_thread.join()).await;
            return Err(e);
        }
        Err(_) => {
            return Err(Error::Kafka {
                context: "starting the poll thread",
                source: KafkaError::ClientCreation("poll thread exited during setup".into()),
            })
        }
    }

    let limits = Limits {
        ordering: cfg.ordering,
        max_in_flight: cfg.max_in_flight,
        per_partition: cfg.max_in_flight_per_partition,
        max_buffered: cfg.max_buffered_per_partition,
        max_buffered_bytes: cfg.max_buffered_bytes,
        max_batch: cfg.max_batch_size,
        metadata_budget: cfg.metadata_budget,
        delayed_topics: cfg.delayed_topics.clone(),
    };
    let (api_tx, api_rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let runtime = Runtime {
        state: Dispatcher::new(limits, metrics.clone()),
        runner,
        events: ev_rx,
        commands: cmd_tx,
        api: api_rx,
        cancel: cancel.clone(),
        commit_interval: cfg.commit_interval,
        drain_timeout: cfg.drain_timeout,
        at_least_once: cfg.delivery == Delivery::AtLeastOnce,
        metrics: metrics.clone(),
        health: health.clone(),
        futs: FuturesUnordered::new(),
        awaiting_commit: None,
        gate: cfg.pause_signal.clone(),
    };
    let join = tokio::spawn(async move {
        let summary = runtime.run().await;
        // The runtime has told the poll loop to stop; wait for it to leave the group.
        let _ = tokio::task::spawn_blocking(move || poll_thread.join()).await;
        summary
    });
    Ok(WorkerHandle {
        cancel,
        api: api_tx,
        join,
        health,
        metrics,
        config: cfg,
    })
}

/// Controls a running worker.
pub struct WorkerHandle {
    cancel: CancellationToken,
    api: mpsc::UnboundedSender<ApiCmd>,
    join: tokio::task::JoinHandle<RunSummary>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
}

impl WorkerHandle {
    /// The token that starts graceful shutdown when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Starts graceful shutdown: stop fetching, drain in-flight records
    /// within the drain timeout, commit, leave the group.
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Waits until the worker has stopped.
    pub async fn join(self) -> Result<RunSummary> {
        self.join
            .await
            .map_err(|e| Error::Stopped(format!("dispatcher task failed: {e}")))
    }

    /// Graceful shutdown, then waits for it.
    pub async fn stop(self) -> Result<RunSummary> {
        self.shutdown();
        self.join().await
    }

    /// Stops at once without draining or committing anything — what a crash
    /// leaves behind (except that the group is left instead of timing out).
    pub async fn abort(self) -> Result<RunSummary> {
        let _ = self.api.send(ApiCmd::Abort);
        self.join().await
    }

    /// Resumes a frozen partition: its failed record runs again first.
    /// Returns whether the partition was frozen here.
    pub async fn resume_partition(&self, topic: &str, partition: i32) -> bool {
        let (tx, rx) = oneshot::channel();
        let tp: Tp = (Topic::intern(topic), partition);
        if self.api.send(ApiCmd::Resume(tp, tx)).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Partitions currently frozen by a failure.
    pub async fn frozen(&self) -> Vec<FrozenInfo> {
        let (tx, rx) = oneshot::channel();
        if self.api.send(ApiCmd::Frozen(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Partitions currently assigned to this worker.
    pub async fn assigned(&self) -> Vec<(Topic, i32)> {
        let (tx, rx) = oneshot::channel();
        if self.api.send(ApiCmd::Assigned(tx)).is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Liveness and readiness.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Prometheus metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Whether the worker task has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}
