//! The contract, run on both databases: rows written in transactions reach
//! Kafka exactly as written, with a unique outbox id, per key in commit
//! order; rolled-back rows never do; published rows are deleted, or kept
//! for the retention and stamped. PostgreSQL also over TLS, the server's
//! certificate verified.

use std::time::Duration;

use rebound_outbox::{enqueue_pg, enqueue_sqlite, DatabaseUrl, Message, Store, TableName};
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::common::{by_outbox_id, spawn, table_name, wait_until_zero, Bed};

/// A writer on either database.
enum Writer {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

impl Writer {
    async fn connect(url: &str) -> Writer {
        match DatabaseUrl::parse(url).unwrap() {
            DatabaseUrl::Postgres(u) => Writer::Pg(PgConnection::connect(&u).await.unwrap()),
            DatabaseUrl::Sqlite(u) => Writer::Sqlite(SqliteConnection::connect(&u).await.unwrap()),
        }
    }

    /// Writes `msgs` in one transaction, committed or rolled back.
    async fn txn(&mut self, t: &TableName, msgs: &[Message], commit: bool) {
        match self {
            Writer::Pg(c) => {
                let mut tx = c.begin().await.unwrap();
                for m in msgs {
                    enqueue_pg(&mut tx, t, m).await.unwrap();
                }
                if commit {
                    tx.commit().await
                } else {
                    tx.rollback().await
                }
                .unwrap();
            }
            Writer::Sqlite(c) => {
                let mut tx = c.begin().await.unwrap();
                for m in msgs {
                    enqueue_sqlite(&mut tx, t, m).await.unwrap();
                }
                if commit {
                    tx.commit().await
                } else {
                    tx.rollback().await
                }
                .unwrap();
            }
        }
    }
}

fn message(topic: &str, i: usize) -> Message {
    let mut m = Message::new(topic, format!("payload-{i}")).with_header("n", i.to_string());
    if !i.is_multiple_of(3) {
        m = m.with_key(format!("key-{}", i % 7));
    }
    if i.is_multiple_of(10) {
        m.payload = None;
    }
    m
}

/// Rows 0..n in transactions of 10: even rows committed, odd rolled back.
async fn write(bed: &Bed, n: usize) {
    let mut w = Writer::connect(&bed.url).await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        for keep in [true, false] {
            let msgs: Vec<_> = chunk
                .iter()
                .filter(|i| i.is_multiple_of(2) == keep)
                .map(|&i| message(&bed.topic, i))
                .collect();
            w.txn(&bed.table, &msgs, keep).await;
        }
    }
}

async fn stats(bed: &Bed) -> rebound_outbox::Stats {
    let url = DatabaseUrl::parse(&bed.url).unwrap();
    Store::connect(&url, &bed.table)
        .await
        .unwrap()
        .stats()
        .await
        .unwrap()
}

fn check_published(bed: &Bed, n: usize) {
    let recs = bed.read();
    let ids = by_outbox_id(&recs);
    assert_eq!(recs.len(), n, "every row once");
    assert_eq!(ids.len(), n, "unique outbox ids");
    for r in &recs {
        let i: usize = r.header("n").unwrap().parse().unwrap();
        let want = message(&bed.topic, i);
        assert_eq!(r.key, want.key.map(String::into_bytes), "key of {i}");
        assert_eq!(r.value, want.payload, "payload of {i}");
        assert!(i.is_multiple_of(2), "row {i} was rolled back but published");
    }
    // Per key, commit order (one writer) in one partition.
    let mut last: std::collections::HashMap<Vec<u8>, (i32, usize)> = Default::default();
    let mut sorted: Vec<_> = recs.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for r in sorted {
        let i: usize = r.header("n").unwrap().parse().unwrap();
        if let Some(k) = &r.key {
            if let Some((p, prev)) = last.insert(k.clone(), (r.partition, i)) {
                assert_eq!(p, r.partition, "one key, one partition");
                assert!(prev < i, "key order: {prev} then {i}");
            }
        }
    }
}

async fn rows_are_published_as_written_and_deleted(url: &str) -> Bed {
    let bed = Bed::new(url, 3).await;
    write(&bed, 400).await;
    let relay = spawn(bed.relay_config().with_batch_size(64));
    wait_until_zero("pending rows", Duration::from_secs(30), || async {
        stats(&bed).await.pending
    })
    .await;
    relay.stop().await;
    check_published(&bed, 200);
    let s = stats(&bed).await;
    assert_eq!(
        (s.pending, s.failed, s.published_kept),
        (0, 0, 0),
        "deleted once published"
    );
    bed
}

async fn retention_keeps_published_rows_stamped(url: &str) -> Bed {
    let bed = Bed::new(url, 1).await;
    write(&bed, 20).await;
    let relay = spawn(bed.relay_config().with_retention(Duration::from_secs(3600)));
    wait_until_zero("pending rows", Duration::from_secs(30), || async {
        stats(&bed).await.pending
    })
    .await;
    relay.stop().await;
    assert_eq!(
        stats(&bed).await.published_kept,
        10,
        "kept for the retention period"
    );
    check_published(&bed, 10);
    let url = DatabaseUrl::parse(&bed.url).unwrap();
    let mut store = Store::connect(&url, &bed.table).await.unwrap();
    assert_eq!(
        store.purge(Duration::from_secs(3600)).await.unwrap(),
        0,
        "not yet"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        store.purge(Duration::from_secs(1)).await.unwrap(),
        10,
        "then deleted"
    );
    drop(store);
    bed
}

fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join(rebound_testkit::unique_name("outbox-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("outbox.db").display())
}

#[tokio::test]
async fn postgres_rows_are_published_as_written_and_deleted() {
    let bed = rows_are_published_as_written_and_deleted(&rebound_testkit::database_url()).await;
    bed.drop_pg().await;
}

#[tokio::test]
async fn sqlite_rows_are_published_as_written_and_deleted() {
    rows_are_published_as_written_and_deleted(&sqlite_url()).await;
}

#[tokio::test]
async fn postgres_retention_keeps_published_rows_stamped() {
    let bed = retention_keeps_published_rows_stamped(&rebound_testkit::database_url()).await;
    bed.drop_pg().await;
}

#[tokio::test]
async fn sqlite_retention_keeps_published_rows_stamped() {
    retention_keeps_published_rows_stamped(&sqlite_url()).await;
}

/// The PostgreSQL server's certificate (or its authority's):
/// `REBOUND_TEST_PG_CA`, by default Debian's self-signed one (`ssl = on`,
/// which `.ci/run` makes sure of). It must name the host by a DNS name,
/// not by the address 127.0.0.1.
fn server_cert() -> String {
    std::env::var("REBOUND_TEST_PG_CA")
        .unwrap_or_else(|_| "/etc/ssl/certs/ssl-cert-snakeoil.pem".into())
}

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[tokio::test]
async fn postgres_over_verified_tls_publishes_and_refuses_a_wrong_host() {
    let cert = server_cert();
    let base = rebound_testkit::database_url();
    assert!(
        base.contains("@127.0.0.1"),
        "the test needs {base} on 127.0.0.1"
    );
    // The certificate is checked: it does not name 127.0.0.1.
    let full = with_params(&base, &format!("sslmode=verify-full&sslrootcert={cert}"));
    let err = rebound_outbox::init(&full, &table_name("tls"))
        .await
        .unwrap_err();
    let why = rebound_core::DisplayChain(&err).to_string();
    assert!(why.contains("certificate verify failed"), "{why}");

    // Its authority trusted, the host name not checked: TLS, and the relay
    // works over it.
    let trusted = with_params(&base, &format!("sslmode=verify-ca&sslrootcert={cert}"));
    let mut c = PgConnection::connect(&trusted).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert!(ssl, "the session is not encrypted");
    let bed = rows_are_published_as_written_and_deleted(&trusted).await;
    bed.drop_pg().await;
}
