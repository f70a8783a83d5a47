//! `rebound dlq replay`: back to the original topic or another, exactly
//! once, naming what could not be sent.

use super::*;

fn assert_replayed(got: &Record, f: &Fixture, from: i64, to: i64) {
    assert_eq!(got.key, f.key);
    assert_eq!(got.value.as_deref(), Some(f.value.as_slice()));
    let (last, rest) = got.headers.split_last().unwrap();
    assert_eq!(rest, f.headers.as_slice());
    assert_eq!(last.name, h::REPLAYED);
    let at: i64 = std::str::from_utf8(last.value.as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (from..=to).contains(&at),
        "replayed at {at}, not in {from}..={to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_puts_every_record_back_exactly_once() {
    let bed = Bed::new().await;
    assert!(read_topic(bed.b(), &bed.original).is_empty());
    let before = now_ms();
    let out = ok(&bed.args("replay", &["--all"]));
    let after = now_ms();
    assert_eq!(
        out.lines().last().unwrap(),
        format!("sent 4 ({}: 4), skipped 0, failed 0", bed.original)
    );
    let got = read_topic(bed.b(), &bed.original);
    assert_eq!(got.len(), 4, "{got:?}");
    for f in &bed.fixtures {
        let matching: Vec<&Record> = got
            .iter()
            .filter(|r| r.value.as_deref() == Some(f.value.as_slice()))
            .collect();
        assert_eq!(matching.len(), 1, "{:?}", f.value);
        assert_replayed(matching[0], f, before, after);
        // Back in its original partition.
        let original_partition: i32 = f
            .headers
            .iter()
            .find(|x| x.name == h::ORIGINAL_PARTITION)
            .map(|x| {
                std::str::from_utf8(x.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .unwrap();
        assert_eq!(matching[0].partition, original_partition);
    }
    // The DLQ itself is unchanged.
    assert_eq!(read_topic(bed.b(), &bed.dlq).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_another_topic_sends_exactly_the_selection() {
    let bed = Bed::new().await;
    let dest = unique_name("elsewhere");
    create_topic(bed.b(), &dest, 1).await.unwrap();
    let select = ["--to", dest.as_str(), "--offsets", "0:1,1:0"];

    // --dry-run prints the plan and sends nothing.
    let dry: Vec<&str> = select.iter().copied().chain(["--dry-run"]).collect();
    let out = ok(&bed.args("replay", &dry));
    assert!(
        out.starts_with(&format!(
            "dry run: would send 2 records from {} ({dest}: 2)\n",
            bed.dlq
        )),
        "{out}"
    );
    let plan = rows(&out);
    assert_eq!(first_column(&plan), ["0:1", "1:0"]);
    assert_eq!(
        plan[1][..4],
        [
            "1:0",
            "k-c",
            dest.as_str(),
            &format!("{}/1/12", bed.original)
        ]
    );
    assert_eq!(
        out.lines().last().unwrap(),
        "dry run: nothing sent (would send 2, would skip 0)"
    );
    assert!(read_topic(bed.b(), &dest).is_empty());

    let before = now_ms();
    let out = ok(&bed.args("replay", &select));
    let after = now_ms();
    assert_eq!(
        out.lines().last().unwrap(),
        format!("sent 2 ({dest}: 2), skipped 0, failed 0")
    );
    let got = read_topic(bed.b(), &dest);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_replayed(&got[0], &bed.fixtures[1], before, after);
    assert_replayed(&got[1], &bed.fixtures[2], before, after);
    assert!(read_topic(bed.b(), &bed.original).is_empty());

    // A selection that matches nothing fails, names it, and sends nothing.
    fails(
        &bed.args("replay", &["--to", &dest, "--grep", "no such error"]),
        "--grep \"no such error\" matched no record",
    );
    fails(
        &bed.args("replay", &["--to", &dest, "--offsets", "0:1,0:99"]),
        &format!("--offsets 0:1,0:99: {} has no record at 0:99", bed.dlq),
    );
    assert_eq!(read_topic(bed.b(), &dest).len(), 2);

    // Exactly one of --offsets / --grep / --all.
    fails(&bed.args("replay", &["--to", &dest]), "--offsets");
    fails(
        &bed.args("replay", &["--all", "--grep", "x"]),
        "cannot be used with",
    );
    fails(&bed.args("replay", &["--offsets", "0:x"]), "--offsets");
    fails(&bed.args("replay", &["--all", "--to", "bad topic"]), "--to");
}

/// An original topic (two partitions) and its DLQ (one partition), with the
/// first two fixtures (not yet written), both for DLQ partition 0.
async fn two_fixtures_on_one_partition() -> (TopicBed, String, Vec<Fixture>) {
    let bed = TopicBed::new("orders", 2).await;
    let dlq = bed.another_topic(&format!("{}.dlq", bed.topic), 1).await;
    let mut fixtures = fixtures(&bed.topic);
    fixtures.truncate(2);
    for f in &mut fixtures {
        f.partition = 0;
    }
    (bed, dlq, fixtures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reports_records_without_an_original_topic_and_sends_the_rest() {
    let (bed, dlq, mut fixtures) = two_fixtures_on_one_partition().await;
    let (brokers, original) = (&bed.brokers, bed.topic.clone());
    fixtures[1].headers.retain(|x| x.name != h::ORIGINAL_TOPIC);
    write(brokers.bootstrap(), &dlq, &fixtures).await;

    let before = now_ms();
    let o = run(&[
        "dlq",
        "replay",
        "--brokers",
        brokers.bootstrap(),
        "--topic",
        &dlq,
        "--all",
    ]);
    let after = now_ms();
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("skipped 0:1: no rebound.original.topic header"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o).lines().last().unwrap(),
        format!("sent 1 ({original}: 1), skipped 1, failed 0")
    );
    let got = read_topic(brokers.bootstrap(), &original);
    assert_eq!(got.len(), 1);
    assert_replayed(&got[0], &fixtures[0], before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_exits_non_zero_naming_records_that_failed_to_send() {
    let (bed, dlq, mut fixtures) = two_fixtures_on_one_partition().await;
    let (brokers, original) = (&bed.brokers, bed.topic.clone());
    // The first record names a partition its original topic does not have.
    for x in &mut fixtures[0].headers {
        if x.name == h::ORIGINAL_PARTITION {
            x.value = Some(b"7".to_vec());
        }
    }
    write(brokers.bootstrap(), &dlq, &fixtures).await;

    let args = [
        "dlq",
        "replay",
        "--brokers",
        brokers.bootstrap(),
        "--topic",
        &dlq,
        "--all",
        "--timeout",
        "5s",
    ];
    let o = fails(&args, "1 of 2 records failed to send: 0:0");
    assert!(
        stderr(&o).contains(&format!("failed 0:0 -> {original}: ")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o).lines().last().unwrap(),
        format!("sent 1 ({original}: 1), skipped 0, failed 1")
    );
    let got = read_topic(brokers.bootstrap(), &original);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value.as_deref(), Some(fixtures[1].value.as_slice()));
}
