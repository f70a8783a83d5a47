//! Each window kind on the broker, with out-of-order records inside the
//! grace period (counted) and late ones beyond it (dropped and counted in
//! the metric). Record timestamps are set explicitly; one partition per
//! topic, so the output order is the processing order.

use std::time::Duration;

use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_stream::{Guarantee, StreamApp, StreamBuilder, StreamHandle, Windowed, Windows};
use rebound_testkit::{read_all, read_at_least, unique_name, TopicBed};

use crate::common::{config, state_dir};

async fn produce_at(bootstrap: &str, topic: &str, recs: &[(&str, i64)]) {
    let p = Producer::new(&ProducerConfig::new(bootstrap)).unwrap();
    for (key, ts) in recs {
        let mut r = OutRecord::new(topic, "x").with_key(*key);
        r.timestamp = Some(*ts);
        p.send(&r).await.unwrap();
    }
}

fn label(w: Windowed<String>, n: u64) -> (String, u64) {
    (format!("{}@{}..{}", w.key, w.start, w.end), n)
}

async fn outputs(bootstrap: &str, topic: &str, want: usize) -> Vec<(String, String)> {
    read_at_least(bootstrap, topic, want)
        .await
        .into_iter()
        .map(|r| {
            (
                String::from_utf8(r.key.unwrap()).unwrap(),
                String::from_utf8(r.value.unwrap()).unwrap(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, u64)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tumbling_hopping_and_session_windows_with_grace_and_late_records() {
    let bed = TopicBed::new("win-tumbling", 1).await;
    let hopping = bed.another_topic(&unique_name("win-hopping"), 1).await;
    let session = bed.another_topic(&unique_name("win-session"), 1).await;
    let out = |t: &str| format!("{t}-out");
    for t in [&bed.topic, &hopping, &session] {
        bed.another_topic(&out(t), 1).await; // one partition: one order
    }
    let s = Duration::from_secs;

    let app_id = unique_name("win-app");
    let b = StreamBuilder::new(&app_id);
    b.stream::<String, String>(&bed.topic)
        .group_by_key()
        .windowed_by(Windows::tumbling(s(10)).with_grace(s(5)))
        .count("tumbling")
        .map(label)
        .to(&out(&bed.topic));
    b.stream::<String, String>(&hopping)
        .group_by_key()
        .windowed_by(Windows::hopping(s(10), s(5)))
        .count("hopping")
        .map(label)
        .to(&out(&hopping));
    b.stream::<String, String>(&session)
        .group_by_key()
        .windowed_by(Windows::session(s(5)).with_grace(s(10)))
        .count("session")
        .map(label)
        .to(&out(&session));
    let dir = state_dir("windows");
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();

    // Tumbling 10 s, grace 5 s: 3 s arrives after 12 s (in grace), 4 s
    // after 21 s (window [0, 10) closed at 15 s: late), 15 s after 21 s
    // (window [10, 20) open until 25 s).
    produce_at(
        bed.bootstrap(),
        &bed.topic,
        &[
            ("a", 1_000),
            ("a", 12_000),
            ("a", 3_000),
            ("a", 21_000),
            ("a", 4_000),
            ("a", 15_000),
        ],
    )
    .await;
    // Hopping 10 s every 5 s, no grace: 3 s after 7 s only reaches [0, 10)
    // ([-5, 5) closed at 5 s); 8 s after 30 s is late for both its windows.
    produce_at(
        bed.bootstrap(),
        &hopping,
        &[
            ("a", 1_000),
            ("a", 7_000),
            ("a", 3_000),
            ("a", 30_000),
            ("a", 8_000),
        ],
    )
    .await;
    // Sessions, gap 5 s, grace 10 s: 12 s arrives after 20 s as its own
    // session; 8 s then bridges [1, 4] and [12, 12] into [1, 12]; 2 s
    // after 40 s would join [1, 12], closed at 22 s: late.
    produce_at(
        bed.bootstrap(),
        &session,
        &[
            ("a", 1_000),
            ("a", 4_000),
            ("a", 20_000),
            ("a", 12_000),
            ("a", 8_000),
            ("a", 40_000),
            ("a", 2_000),
        ],
    )
    .await;

    let tumbling_want = pairs(&[
        ("a@0..10000", 1),
        ("a@10000..20000", 1),
        ("a@0..10000", 2),
        ("a@20000..30000", 1),
        ("a@10000..20000", 2),
    ]);
    let hopping_want = pairs(&[
        ("a@-5000..5000", 1),
        ("a@0..10000", 1),
        ("a@0..10000", 2),
        ("a@5000..15000", 1),
        ("a@0..10000", 3),
        ("a@25000..35000", 1),
        ("a@30000..40000", 1),
    ]);
    let session_want = pairs(&[
        ("a@1000..1000", 1),
        ("a@1000..4000", 2),
        ("a@20000..20000", 1),
        ("a@12000..12000", 1),
        ("a@1000..12000", 4),
        ("a@40000..40000", 1),
    ]);
    assert_eq!(
        outputs(bed.bootstrap(), &out(&bed.topic), tumbling_want.len()).await,
        tumbling_want
    );
    assert_eq!(
        outputs(bed.bootstrap(), &out(&hopping), hopping_want.len()).await,
        hopping_want
    );
    assert_eq!(
        outputs(bed.bootstrap(), &out(&session), session_want.len()).await,
        session_want
    );
    let m = app.metrics();
    rebound_testkit::eventually(Duration::from_secs(10), "late records counted", || async {
        m.late_total("tumbling") == 1
            && m.late_total("hopping") == 1
            && m.late_total("session") == 1
    })
    .await;
    app.stop().await.unwrap();

    // Closed windows leave the store: the tumbling window [0, 10 s) closed
    // at 15 s and was deleted when stream time reached 21 s, a tombstone
    // in the changelog.
    let changelog = read_all(bed.bootstrap(), &format!("{app_id}-tumbling-changelog")).unwrap();
    let mut window_0 = vec![0u8];
    window_0.extend_from_slice(&(1u64 << 63).to_be_bytes());
    window_0.extend_from_slice(b"a");
    let last = changelog
        .iter()
        .rfind(|r| r.key.as_deref() == Some(&window_0[..]));
    assert_eq!(
        last.map(|r| r.value.is_none()),
        Some(true),
        "window [0, 10 s) deleted once closed"
    );
}

/// The last changelog value of store key `key` (`Some(None)`: a tombstone).
fn last_in_changelog(recs: &[rebound_testkit::ReadRecord], key: &[u8]) -> Option<Option<Vec<u8>>> {
    recs.iter()
        .rfind(|r| r.key.as_deref() == Some(key))
        .map(|r| r.value.clone())
}

/// A session count (`store`) over a new one-partition topic, each update
/// labelled to `<topic>-out`: the bed, output topic, application id, state
/// directory and application.
async fn start_sessions(
    name: &str,
    windows: Windows,
    store: &str,
) -> (TopicBed, String, String, std::path::PathBuf, StreamHandle) {
    let bed = TopicBed::new(name, 1).await;
    let out = bed.another_topic(&format!("{}-out", bed.topic), 1).await;
    let app_id = unique_name(&format!("{name}-app"));
    let b = StreamBuilder::new(&app_id);
    b.stream::<String, String>(&bed.topic)
        .group_by_key()
        .windowed_by(windows)
        .count(store)
        .map(label)
        .to(&out);
    let dir = state_dir(name);
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();
    (bed, out, app_id, dir, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_leave_the_store_with_tombstones_in_the_changelog() {
    let (bed, out, app_id, dir, app) = start_sessions(
        "win-session-expiry",
        Windows::session(Duration::from_secs(1)),
        "sessions",
    )
    .await;
    // Gap 1 s, no grace: "a"'s session [1 s, 1.5 s] is unreachable once
    // stream time passes 2.5 s; "b" at 10 s moves stream time there.
    produce_at(
        bed.bootstrap(),
        &bed.topic,
        &[("a", 1_000), ("a", 1_500), ("b", 10_000)],
    )
    .await;
    let want = pairs(&[
        ("a@1000..1000", 1),
        ("a@1000..1500", 2),
        ("b@10000..10000", 1),
    ]);
    assert_eq!(outputs(bed.bootstrap(), &out, want.len()).await, want);
    app.stop().await.unwrap();

    let changelog = read_all(bed.bootstrap(), &format!("{app_id}-sessions-changelog")).unwrap();
    let store_key = |k: &[u8]| [&[2u8][..], k].concat();
    let index_key =
        |end: i64, k: &[u8]| [&[3u8][..], &((end as u64) ^ (1 << 63)).to_be_bytes(), k].concat();
    assert_eq!(
        last_in_changelog(&changelog, &store_key(b"a")),
        Some(None),
        "a's expired session deleted (tombstone)"
    );
    for end in [1_000, 1_500] {
        assert_eq!(
            last_in_changelog(&changelog, &index_key(end, b"a")),
            Some(None),
            "a's index entry for the session ending at {end} deleted"
        );
    }
    assert!(
        matches!(
            last_in_changelog(&changelog, &store_key(b"b")),
            Some(Some(_))
        ),
        "b's open session kept"
    );
    assert_eq!(
        last_in_changelog(&changelog, &index_key(10_000, b"b")),
        Some(Some(Vec::new())),
        "b's session indexed by its end"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The other direction of expiry: a session past its end plus gap plus
/// grace is kept while a record could still bridge it to a later one.
/// Gap 1 s, grace 2 s: sessions [1 s] and [2.8 s]; stream time moves to
/// 4.5 s (a purge runs at 4 s); then 1.9 s joins both (the merged session
/// ends at 2.8 s, 2.8 + 2 ≥ 4.5: not late) and the count is 3. Once stream
/// time is at 9 s, 1.5 s is late: dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_a_late_record_can_still_bridge_is_kept() {
    let (bed, out, _, dir, app) = start_sessions(
        "win-session-bridge",
        Windows::session(Duration::from_secs(1)).with_grace(Duration::from_secs(2)),
        "bridge",
    )
    .await;
    produce_at(
        bed.bootstrap(),
        &bed.topic,
        &[
            ("a", 1_000),
            ("a", 2_800),
            ("b", 4_500),
            ("a", 1_900),
            ("b", 9_000),
            ("a", 1_500),
        ],
    )
    .await;
    let want = pairs(&[
        ("a@1000..1000", 1),
        ("a@2800..2800", 1),
        ("b@4500..4500", 1),
        ("a@1000..2800", 3),
        ("b@9000..9000", 1),
    ]);
    assert_eq!(outputs(bed.bootstrap(), &out, want.len()).await, want);
    let m = app.metrics();
    rebound_testkit::eventually(
        Duration::from_secs(10),
        "the late record counted",
        || async { m.late_total("bridge") == 1 },
    )
    .await;
    app.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
