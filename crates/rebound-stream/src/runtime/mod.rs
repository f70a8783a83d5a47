//! Running a topology: [`StreamApp::start`] checks the topics, creates the
//! internal ones, locks the state directory, joins the group and starts
//! the loop: collect records → apply assignment changes (restore) →
//! process them → commit (at-least-once: every commit interval;
//! exactly-once: each batch, in one transaction).
//!
//! - `consumer`: the consumer context (assignment events) and `collect`.
//! - `tasks`: opening, restoring and closing partitions' state.
//! - `alo`: the at-least-once loop and what it has not committed yet.
//! - `commit`: processing records and committing them (both guarantees).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer as _;
use rebound_core::Backoff;
use rebound_producer::admin::{self, TopicSpec};
use rebound_producer::{Producer, ProducerConfig, TransactionalProducer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::config::{Guarantee, StreamConfig};
use crate::error::{Result, StreamError};
use crate::health::StreamHealth;
use crate::metrics::StreamMetrics;
use crate::state::db::StateDir;
use crate::state::{restore, Task};
use crate::table;
use crate::topology::Topology;

mod alo;
mod commit;
mod consumer;
mod tasks;

use commit::Abort;
use consumer::{collect, Consumer, StreamCtx};
use tasks::TaskKey;

/// Where output goes.
pub(crate) enum Output {
    Alo(Producer),
    Eos(TransactionalProducer),
}

/// The loop's state.
pub(crate) struct Runner {
    pub topology: Topology,
    pub cfg: StreamConfig,
    pub consumer: Consumer,
    pub out: Output,
    pub dir: StateDir,
    pub tasks: HashMap<TaskKey, Task>,
    pub metrics: Arc<StreamMetrics>,
    pub health: Arc<StreamHealth>,
    pub restore_src: restore::Source,
    /// Threads following the global tables.
    pub followers: Vec<table::Follower>,
    /// At-least-once: the work processed since the last commit.
    pub pending: alo::Uncommitted,
}

impl Runner {
    /// Collects records into `batch` (see [`collect`]) and applies the
    /// assignment changes seen meanwhile; returns whether it is stopping.
    async fn gather(
        &mut self,
        cancel: &CancellationToken,
        deadline: tokio::time::Instant,
        max: usize,
        eager: bool,
        batch: &mut Vec<rebound_core::Record>,
    ) -> Result<bool> {
        let mut events = Vec::new();
        let stopping = collect(
            &self.consumer,
            cancel,
            deadline,
            max,
            eager,
            batch,
            &mut events,
        )
        .await;
        self.health.looped();
        self.apply(events).await?;
        Ok(stopping)
    }
}

impl Drop for Runner {
    /// However the loop ends — an abort or a panic included — closing the
    /// consumer must not wait for a revoke left to the loop.
    fn drop(&mut self) {
        self.consumer.context().stop_deferring(&self.consumer);
    }
}

async fn stop_followers(followers: Vec<table::Follower>) {
    let _ =
        tokio::task::spawn_blocking(move || followers.into_iter().for_each(table::Follower::stop))
            .await;
}

/// Starts stream applications.
#[derive(Debug)]
pub struct StreamApp;

impl StreamApp {
    /// Checks that the input topics exist, creates the repartition and
    /// (compacted) changelog topics with the partition counts of the topics
    /// they follow, locks the state directory, registers the transactional
    /// id (exactly-once; it is stable per state directory, so a restart
    /// fences its crashed predecessor) and starts the loop.
    pub async fn start(cfg: StreamConfig, topology: Topology) -> Result<StreamHandle> {
        Self::start_with_metrics(cfg, topology, Arc::new(StreamMetrics::new())).await
    }

    /// [`start`](Self::start) with metrics in a registry of the caller's.
    pub async fn start_with_metrics(
        cfg: StreamConfig,
        topology: Topology,
        metrics: Arc<StreamMetrics>,
    ) -> Result<StreamHandle> {
        create_topics(&cfg, &topology).await?;
        let dir = StateDir::open(&cfg.state_dir.join(&topology.app))?;
        let mut followers = Vec::new();
        for spec in topology.tables.clone() {
            let (b, x) = (cfg.brokers.clone(), cfg.client_config.clone());
            let f = tokio::task::spawn_blocking(move || table::load_and_follow(&b, &x, &spec))
                .await
                .map_err(|e| StreamError::Stopped(e.to_string()))?;
            match f {
                Ok(f) => followers.push(f),
                Err(e) => {
                    stop_followers(followers).await;
                    return Err(e);
                }
            }
        }
        let mut cc =
            rebound_worker::group_consumer_config(&cfg.brokers, &topology.app, cfg.session_timeout);
        cc.set("isolation.level", "read_committed");
        for (k, v) in &cfg.client_config {
            cc.set(k, v);
        }
        let ctx = StreamCtx::default();
        ctx.commit_before_revoke.store(
            cfg.guarantee == Guarantee::AtLeastOnce,
            std::sync::atomic::Ordering::Release,
        );
        let consumer: Consumer = Arc::new(
            cc.create_with_context(ctx)
                .map_err(|e| StreamError::kafka("creating the consumer", e))?,
        );
        let mut pc = ProducerConfig::new(&cfg.brokers).with_linger(Duration::from_millis(5));
        for (k, v) in &cfg.client_config {
            pc = pc.with_client_config(k, v);
        }
        let out = match cfg.guarantee {
            Guarantee::AtLeastOnce => Output::Alo(Producer::new(&pc)?),
            Guarantee::ExactlyOnce => Output::Eos(
                TransactionalProducer::init(
                    &pc,
                    &format!("{}-{}", topology.app, dir.instance_id),
                    cfg.transaction_timeout,
                )
                .await?,
            ),
        };
        let topics = topology.source_topics();
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&refs)
            .map_err(|e| StreamError::kafka("subscribing", e))?;
        let health = Arc::new(StreamHealth::default());
        health.looped();
        let runner = Runner {
            restore_src: restore::Source {
                brokers: cfg.brokers.clone(),
                client_config: cfg.client_config.clone(),
            },
            topology,
            cfg,
            consumer,
            out,
            dir,
            tasks: HashMap::new(),
            metrics: metrics.clone(),
            health: health.clone(),
            followers,
            pending: alo::Uncommitted::default(),
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(runner, cancel.clone()));
        Ok(StreamHandle {
            cancel,
            task,
            metrics,
            health,
        })
    }
}

/// Creates the internal topics; the inputs must exist.
async fn create_topics(cfg: &StreamConfig, topology: &Topology) -> Result<()> {
    let mut counts: HashMap<String, i32> = HashMap::new();
    for t in topology.input_topics() {
        let n = partition_count(cfg, &t)
            .await?
            .ok_or_else(|| StreamError::config(format!("input topic {t:?}"), "does not exist"))?;
        counts.insert(t, n);
    }
    for internal in topology.internal_topics() {
        let n = counts[&internal.partitions_like];
        let spec = TopicSpec {
            name: internal.topic.clone(),
            partitions: n,
            // As durable as the cluster's other topics: a changelog is
            // the state's only copy off this machine.
            replication: admin::DEFAULT_REPLICATION,
            configs: if internal.compacted {
                vec![("cleanup.policy".into(), "compact".into())]
            } else {
                Vec::new()
            },
        };
        match admin::create_topic_with(
            &cfg.brokers,
            &cfg.client_config,
            &spec,
            Duration::from_secs(10),
        )
        .await
        {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.source,
                    rdkafka::error::KafkaError::AdminOp(
                        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
                    )
                ) =>
            {
                let have = partition_count(cfg, &internal.topic).await?;
                if have != Some(n) {
                    return Err(StreamError::config(
                        format!("internal topic {:?}", internal.topic),
                        format!(
                            "has {have:?} partitions, its input {:?} has {n}: \
                                 state would not follow its partitions",
                            internal.partitions_like
                        ),
                    ));
                }
            }
            Err(e) => return Err(e.into()),
        }
        counts.insert(internal.topic, n);
    }
    Ok(())
}

async fn partition_count(cfg: &StreamConfig, topic: &str) -> Result<Option<i32>> {
    let (b, x, t) = (
        cfg.brokers.clone(),
        cfg.client_config.clone(),
        topic.to_string(),
    );
    let n = tokio::task::spawn_blocking(move || {
        admin::partition_count(&b, &x, &t, Duration::from_secs(10))
    })
    .await
    .map_err(|e| StreamError::Stopped(e.to_string()))??;
    Ok(n.map(|n| n as i32))
}

async fn run(mut r: Runner, cancel: CancellationToken) -> Result<()> {
    let result = match r.cfg.guarantee {
        Guarantee::AtLeastOnce => alo::run_alo(&mut r, &cancel).await,
        Guarantee::ExactlyOnce => run_eos(&mut r, &cancel).await,
    };
    if let Err(e) = &result {
        error!(error = %rebound_core::DisplayChain(e), "stream application stopped");
        r.health.set_fatal(e.to_string());
    }
    r.health.set_stopping();
    // Before the unsubscribe (Drop does it again for a loop that never
    // gets here): a revoke the loop did not get to is given up first.
    r.consumer.context().stop_deferring(&r.consumer);
    r.consumer.unsubscribe();
    stop_followers(std::mem::take(&mut r.followers)).await;
    // Dropping the clients waits for their threads: not on an async thread.
    let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    result
}

/// Exactly-once: each batch collected for `commit_interval` (or up to
/// `max_batch` records) is processed and committed in one transaction;
/// an aborted one is read again.
async fn run_eos(r: &mut Runner, cancel: &CancellationToken) -> Result<()> {
    let mut batch = Vec::with_capacity(r.cfg.max_batch);
    // Aborted transactions in a row: bounded in number and time, so an
    // output that fails for good stops the application instead of spinning
    // on the same batch, while a broker restart is waited out.
    let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(5));
    let (mut aborts, mut first_abort) = (0u32, None);
    loop {
        batch.clear();
        let due = tokio::time::Instant::now() + r.cfg.commit_interval;
        let stopping = r
            .gather(cancel, due, r.cfg.max_batch, false, &mut batch)
            .await?;
        if !batch.is_empty() {
            match r.run_batch(&mut batch).await {
                Ok(()) => (aborts, first_abort) = (0, None),
                Err(Abort::Again(why, failed)) => {
                    aborts += 1;
                    let since = *first_abort.get_or_insert_with(Instant::now);
                    if aborts >= r.cfg.max_aborts && since.elapsed() >= r.cfg.max_abort_time {
                        return Err(StreamError::Aborted {
                            aborts,
                            failed,
                            last: why,
                        });
                    }
                    warn!(records = batch.len(), aborts, reason = %why, "transaction aborted; reading the batch again");
                    tokio::time::sleep(backoff.delay(aborts)).await;
                }
                Err(Abort::Fail(e)) => return Err(e),
            }
        }
        if stopping {
            return Ok(());
        }
    }
}

/// A running stream application.
#[derive(Debug)]
pub struct StreamHandle {
    cancel: CancellationToken,
    task: JoinHandle<Result<()>>,
    metrics: Arc<StreamMetrics>,
    health: Arc<StreamHealth>,
}

impl StreamHandle {
    /// The application's metrics.
    pub fn metrics(&self) -> &Arc<StreamMetrics> {
        &self.metrics
    }

    /// Its health (serve `report()` on `/healthz` and `/readyz`).
    pub fn health(&self) -> &Arc<StreamHealth> {
        &self.health
    }

    /// Whether the loop has ended (stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Processes and commits what was collected, leaves the group, closes
    /// the state files.
    pub async fn stop(self) -> Result<()> {
        self.cancel.cancel();
        self.join().await
    }

    /// Drops everything at once, committing nothing (crash simulation, as
    /// the demo uses it): an open transaction is aborted when the
    /// transactional id is registered again (the next start on the same
    /// state directory) or when the transaction timeout passes.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Waits for the loop to end on its own (only on a fatal error).
    pub async fn join(self) -> Result<()> {
        self.task
            .await
            .map_err(|e| StreamError::Stopped(e.to_string()))?
    }
}
