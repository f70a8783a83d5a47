//! Exactly-once mode killed with SIGKILL at random points, ten times, while
//! input keeps arriving: afterwards every key's final count is exact.
//!
//! The application is the `stream_count` example in a child process, so a
//! kill is a real crash (no destructor, a transaction left open, the state
//! file written or not). It restarts on the same state directory, hence the
//! same transactional id: registering it fences the dead process and
//! aborts what it left open; the state is brought to the committed input
//! offset from the file plus the changelog tail. On tansu, which shows
//! aborted records, the changelog's input-offset tags keep aborted state
//! out (see the crate docs); the output's last update per key is checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;
use rebound_testkit::{produce_records, read_all, unique_name, KillOnDrop, TestRecord, TopicBed};

use crate::common::{expected_counts, state_dir, wait_last_values};

const PARTITIONS: i32 = 4;
const RECORDS: usize = 20_000;
const KEYS: usize = 50;
const KILLS: usize = 10;

/// The example binary, built next to this test binary.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p rebound-stream --example {name}`",
        bin.display()
    );
    bin
}

fn spawn(
    bootstrap: &str,
    input: &str,
    output: &str,
    group: &str,
    dir: &Path,
    run: usize,
) -> KillOnDrop {
    let log = std::fs::File::create(dir.join(format!("run-{run}.log"))).unwrap();
    KillOnDrop(
        Command::new(example_bin("stream_count"))
            .args([
                "--brokers",
                bootstrap,
                "--input",
                input,
                "--output",
                output,
                "--group",
                group,
            ])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args([
                "--exactly-once",
                "--session-timeout-ms",
                "3000",
                "--commit-interval-ms",
                "20",
            ])
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    )
}

fn produce_chunk(bed: &TopicBed, range: std::ops::Range<usize>) -> std::thread::JoinHandle<()> {
    produce_slowly(bed, range, |i| TestRecord {
        partition: None,
        key: Some(format!("k{}", i % KEYS).into_bytes()),
        value: i.to_string().into_bytes(),
    })
}

/// Produces record `make(i)` for each `i` of `range` in ten slices 150 ms
/// apart, on a thread: the application processes while input arrives.
pub(crate) fn produce_slowly(
    bed: &TopicBed,
    range: std::ops::Range<usize>,
    make: fn(usize) -> TestRecord,
) -> std::thread::JoinHandle<()> {
    let (b, t) = (bed.bootstrap().to_string(), bed.topic.clone());
    std::thread::spawn(move || {
        let all: Vec<usize> = range.collect();
        for slice in all.chunks(all.len().div_ceil(10)) {
            produce_records(&b, &t, slice.iter().map(|&i| make(i))).unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    })
}

pub(crate) async fn output_len(bootstrap: &str, topic: &str) -> usize {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_all(&b, &t).unwrap().len())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_killed_ten_times_keeps_every_count_exact() {
    let bed = TopicBed::new("eos-kill", PARTITIONS).await;
    let output = bed
        .another_topic(&format!("{}-out", bed.topic), PARTITIONS)
        .await;
    let (group, dir) = (unique_name("eos-kill-app"), state_dir("eos-kill"));
    let key = |i: usize| format!("k{}", i % KEYS);

    // Each run gets a chunk of new input while it processes; it is killed
    // at a random moment after it has committed something.
    let per = RECORDS / (KILLS + 1);
    for run in 0..KILLS {
        let before = output_len(bed.bootstrap(), &output).await;
        let mut child = spawn(bed.bootstrap(), &bed.topic, &output, &group, &dir, run);
        let producer = produce_chunk(&bed, run * per..(run + 1) * per);
        let progressed = rebound_testkit::eventually_or(Duration::from_secs(40), || async {
            output_len(bed.bootstrap(), &output).await > before
        })
        .await;
        assert!(
            progressed,
            "run {run} made no progress: see {}",
            dir.display()
        );
        let wait = rand::rng().random_range(0..1_500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "run {run} ended on its own: see {}",
            dir.display()
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        producer.join().unwrap();
    }
    produce_chunk(&bed, KILLS * per..RECORDS).join().unwrap();

    let mut last = spawn(bed.bootstrap(), &bed.topic, &output, &group, &dir, KILLS);
    wait_last_values(
        bed.bootstrap(),
        &output,
        &expected_counts(RECORDS, key),
        Duration::from_secs(150),
    )
    .await;
    assert!(
        last.try_wait().unwrap().is_none(),
        "the last run is still up"
    );
    last.kill().unwrap();
    last.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
