//! The exactly-once pipeline killed (SIGKILL) at random points, ten times,
//! while input keeps arriving: afterwards a `read_committed` reader of the
//! output sees every input record's output exactly once, in input order per
//! key, and none of the output of the transactions the kills left open.
//!
//! The pipeline runs in a child process (this test binary, running the
//! ignored test `pipeline_child`), so a kill is a real crash: no destructor,
//! no flush, a transaction left open. The broker is Apache Kafka itself:
//! the assertion is made on what its `read_committed` reader returns (tansu
//! 0.6 shows aborted records to such readers, so it cannot judge this). The
//! children journal their commits (fsync'd) only so the test knows when to
//! kill and when all input is committed. One run holds its first commit
//! until it is killed, so the log surely holds output of a transaction that
//! never commits, and the test checks the reader hides it.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::eos::{assert_exactly_once, assert_order_per_key, copy_to, RUN};
use rand::Rng;
use rebound_testkit::{
    produce_records, read_all, read_all_uncommitted, unique_name, ReadRecord, TestRecord, TopicBed,
};
use rebound_worker::exactly_once::{CommitObserver, InputRange, Pipeline, PipelineConfig};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;
const KEYS: usize = 50;
const KILLS: u32 = 10;
const SESSION_MS: u64 = 3_000;

/// Appends one fsync'd line per transaction event.
struct Journal {
    run: String,
    file: std::sync::Mutex<std::fs::File>,
    /// Hold the first commit with output for a while (`EOS_HOLD_COMMIT`):
    /// the parent kills the child then, so the log surely holds output of a
    /// transaction that never commits.
    hold_commit: bool,
}

impl Journal {
    fn write(&self, event: &str, txn: u64, inputs: &[InputRange]) {
        let ranges: Vec<String> = inputs
            .iter()
            .map(|r| format!("{}:{}:{}", r.partition, r.first, r.next))
            .collect();
        let mut f = self.file.lock().unwrap();
        writeln!(f, "{event} {} {txn} {}", self.run, ranges.join(",")).unwrap();
        f.sync_data().unwrap();
    }
}

impl CommitObserver for Journal {
    fn committing(&self, txn: u64, inputs: &[InputRange]) {
        if self.hold_commit && !inputs.is_empty() {
            // The batch's output is sent (linger 5 ms) while this waits.
            std::thread::sleep(Duration::from_millis(500));
            self.write("holding", txn, inputs);
            std::thread::sleep(Duration::from_secs(30));
        }
        self.write("committing", txn, inputs);
    }
    fn committed(&self, txn: u64, inputs: &[InputRange]) {
        self.write("committed", txn, inputs);
    }
    fn aborted(&self, txn: u64, inputs: &[InputRange]) {
        self.write("aborted", txn, inputs);
    }
}

use rebound_testkit::child_env as env;

/// The child: runs the pipeline until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of killed_pipeline_leaves_every_input_exactly_once"]
async fn pipeline_child() {
    let run = env("EOS_RUN");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env("EOS_JOURNAL"))
        .unwrap();
    let journal = Arc::new(Journal {
        run: run.clone(),
        file: std::sync::Mutex::new(file),
        hold_commit: std::env::var_os("EOS_HOLD_COMMIT").is_some(),
    });
    let cfg = PipelineConfig::builder()
        .with_brokers(env("EOS_BROKERS"))
        .with_group(env("EOS_GROUP"))
        .with_topic(env("EOS_IN"))
        .with_transactional_id(env("EOS_TXN"))
        .with_session_timeout(Duration::from_millis(SESSION_MS))
        .with_max_batch_size(300)
        .with_linger(Duration::from_millis(50))
        .with_transaction_timeout(Duration::from_secs(30))
        .with_observer(journal)
        .build()
        .unwrap();
    let p = Pipeline::start(cfg, copy_to(env("EOS_OUT"), run, vec![]))
        .await
        .unwrap();
    let err = p.join().await;
    panic!("the pipeline ended on its own: {err:?}");
}

struct Bed {
    /// Apache Kafka and the input topic.
    io: TopicBed,
    input: String,
    output: String,
    group: String,
    txn: String,
    journal: std::path::PathBuf,
}

impl Bed {
    fn spawn(&self, run: u32) -> Child {
        self.spawn_with(run, false)
    }

    fn spawn_with(&self, run: u32, hold_commit: bool) -> Child {
        let mut cmd = rebound_testkit::test_child("exactly_once_kill::pipeline_child");
        if hold_commit {
            cmd.env("EOS_HOLD_COMMIT", "1");
        }
        cmd.env("EOS_BROKERS", self.io.bootstrap())
            .env("EOS_IN", &self.input)
            .env("EOS_OUT", &self.output)
            .env("EOS_GROUP", &self.group)
            .env("EOS_TXN", &self.txn)
            .env("EOS_RUN", run.to_string())
            .env("EOS_JOURNAL", &self.journal)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn journal(&self) -> String {
        std::fs::read_to_string(&self.journal).unwrap_or_default()
    }

    /// Waits until `f(journal)` holds; fails if the child exits first.
    fn wait_for(&self, child: &mut Child, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while !f(&self.journal()) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the pipeline exited ({status}) while waiting for {what}");
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(child: &mut Child) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the pipeline exited on its own ({status})");
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// Produces the input at about 1,000 records/s, in small batches.
fn produce_slowly(bootstrap: String, topic: String) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(100) {
            let recs = chunk.iter().map(|i| TestRecord {
                partition: None,
                key: Some(format!("k{}", i % KEYS).into_bytes()),
                value: i.to_string().into_bytes(),
            });
            assert_eq!(
                produce_records(&bootstrap, &topic, recs).unwrap(),
                chunk.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

/// The next input offset per partition that the journal's committed
/// transactions cover.
fn committed_next(journal: &str) -> HashMap<i32, i64> {
    let mut next: HashMap<i32, i64> = HashMap::new();
    for line in journal.lines().filter(|l| l.starts_with("committed ")) {
        let ranges = line.split(' ').nth(3).unwrap_or("");
        for r in ranges.split(',').filter(|r| !r.is_empty()) {
            let v: Vec<i64> = r.split(':').map(|x| x.parse().unwrap()).collect();
            let e = next.entry(v[0] as i32).or_default();
            *e = (*e).max(v[2]);
        }
    }
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_pipeline_leaves_every_input_exactly_once() {
    let io = TopicBed::kafka("in", PARTITIONS).await;
    let bed = Bed {
        input: io.topic.clone(),
        output: io.another_topic(&unique_name("out"), PARTITIONS).await,
        group: unique_name("g"),
        txn: unique_name("txn"),
        journal: std::env::temp_dir().join(unique_name("eos-journal")),
        io,
    };
    let load = produce_slowly(bed.io.bootstrap().to_string(), bed.input.clone());

    let mut rng = rand::rng();
    for run in 1..=KILLS {
        if run == 2 {
            // One kill surely inside a transaction whose output is written.
            let mut child = bed.spawn_with(run, true);
            let mark = format!("holding {run} ");
            bed.wait_for(&mut child, "a held commit", Duration::from_secs(60), |j| {
                j.contains(&mark)
            });
            Bed::kill(&mut child);
            continue;
        }
        let mut child = bed.spawn(run);
        if rng.random_bool(0.2) {
            // Anywhere: while joining, registering, or processing.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..4_000)));
        } else {
            // Mid-stream: after this run committed something.
            let mark = format!("committed {run} ");
            bed.wait_for(&mut child, "a commit", Duration::from_secs(60), |j| {
                j.contains(&mark)
            });
            std::thread::sleep(Duration::from_millis(rng.random_range(0..1_500)));
        }
        Bed::kill(&mut child);
    }
    load.join().unwrap();

    // The last run finishes the input; it is killed too once all input is committed.
    let last = KILLS + 1;
    let mut child = bed.spawn(last);
    let committed_to_end = |j: &str| committed_next(j).values().sum::<i64>() as usize == RECORDS;
    bed.wait_for(
        &mut child,
        "all input committed",
        Duration::from_secs(120),
        committed_to_end,
    );
    Bed::kill(&mut child);

    let visible = read_all(bed.io.bootstrap(), &bed.output).unwrap();
    let everything = read_all_uncommitted(bed.io.bootstrap(), &bed.output).unwrap();
    let runs_seen: std::collections::BTreeSet<&str> =
        visible.iter().filter_map(|r| r.header(RUN)).collect();
    eprintln!(
        "read_committed: {} records from runs {runs_seen:?}; the log holds {} \
         (the rest is output of transactions the kills left open, aborted)",
        visible.len(),
        everything.len()
    );
    let visible: Vec<&ReadRecord> = visible.iter().collect();
    assert_exactly_once(&visible, (0..RECORDS).map(|i| i.to_string()));
    assert_order_per_key(&visible);
    assert!(
        everything.len() > visible.len(),
        "the kills left no aborted output in the log, so hiding it was not tested"
    );
    let _ = std::fs::remove_file(&bed.journal);
}
