//! Shared test bed: a broker, a topic, a fresh outbox table, a relay.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rebound_outbox::{init, Relay, RelayConfig, TableName};
use rebound_producer::ProducerConfig;
use rebound_testkit::{database_url, read_all, unique_name, ReadRecord, TopicBed};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The test kit's topic bed (broker, topic, reads) plus an outbox table.
pub struct Bed {
    pub io: TopicBed,
    pub table: TableName,
    pub url: String,
}

impl std::ops::Deref for Bed {
    type Target = TopicBed;
    fn deref(&self) -> &TopicBed {
        &self.io
    }
}

/// A name usable as a table: `prefix_<pid>_<nanos>_<n>`.
pub fn table_name(prefix: &str) -> TableName {
    TableName::new(unique_name(prefix).replace('-', "_")).unwrap()
}

impl Bed {
    /// A broker, a topic with `partitions`, and a new table at `url`.
    pub async fn new(url: &str, partitions: i32) -> Bed {
        let io = TopicBed::new("outbox", partitions).await;
        let table = table_name("obx");
        init(url, &table).await.expect("init");
        Bed {
            io,
            table,
            url: url.to_string(),
        }
    }

    pub async fn pg(partitions: i32) -> Bed {
        Bed::new(&database_url(), partitions).await
    }

    pub fn relay_config(&self) -> RelayConfig {
        RelayConfig::new(&self.url, ProducerConfig::new(self.bootstrap()))
            .unwrap()
            .with_table(self.table.clone())
            .with_poll_interval(Duration::from_millis(200))
            .with_standby_interval(Duration::from_millis(200))
    }

    pub fn read_topic(&self, topic: &str) -> Vec<ReadRecord> {
        read_all(self.bootstrap(), topic).expect("read topic")
    }

    /// Drops a PostgreSQL bed's table, the relay's objects and the tests'
    /// bookkeeping tables (called when a test passed; a failed one leaves
    /// them to look at).
    pub async fn drop_pg(&self) {
        let t = &self.table;
        let pool = pg_pool(1).await;
        for sql in [
            format!("DROP TABLE IF EXISTS \"{t}\", \"{t}_commits\", \"{t}_counters\", \"{t}_log\" CASCADE"),
            format!("DROP SEQUENCE IF EXISTS \"{t}_commit_seq\""),
            format!("DROP FUNCTION IF EXISTS \"{t}_on_commit\"()"),
        ] {
            sqlx::query(&sql).execute(&pool).await.expect("drop test tables");
        }
    }
}

pub async fn pg_pool(max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .connect(&database_url())
        .await
        .expect("connect to PostgreSQL")
}

pub struct Running {
    pub stop: CancellationToken,
    pub task: JoinHandle<rebound_outbox::Result<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("relay task").expect("relay");
    }
}

pub fn spawn(config: RelayConfig) -> Running {
    let stop = CancellationToken::new();
    let relay = Relay::new(config).expect("relay");
    let task = tokio::spawn(relay.run(stop.clone()));
    Running { stop, task }
}

/// Waits until `count` returns 0.
pub async fn wait_until_zero<F, Fut>(what: &str, timeout: Duration, mut count: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let n = count().await;
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {n} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows left in a PostgreSQL outbox table.
pub async fn pg_rows_left(pool: &PgPool, table: &TableName) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM \"{table}\" WHERE failed_at IS NULL"
    ))
    .fetch_one(pool)
    .await
    .expect("count rows")
}

/// Records per outbox id.
pub fn by_outbox_id(recs: &[ReadRecord]) -> HashMap<String, Vec<&ReadRecord>> {
    let mut m: HashMap<String, Vec<&ReadRecord>> = HashMap::new();
    for r in recs {
        let id = r.header("rebound.outbox.id").expect("outbox id header");
        m.entry(id.to_string()).or_default().push(r);
    }
    m
}
