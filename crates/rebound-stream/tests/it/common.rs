//! What the stream tests share: configs on a bed, reading counts back.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rebound_stream::{Guarantee, StreamApp, StreamBuilder, StreamConfig, StreamHandle};
use rebound_testkit::{eventually_or, read_all, unique_name, ReadRecord};

/// A fresh state directory under the system temp dir.
pub fn state_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique_name(&format!("rebound-stream-{name}")));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A config for tests: short commit interval and session timeout.
pub fn config(bootstrap: &str, dir: &Path, g: Guarantee) -> StreamConfig {
    StreamConfig::builder()
        .with_brokers(bootstrap)
        .with_state_dir(dir)
        .with_guarantee(g)
        .with_commit_interval(Duration::from_millis(50))
        .with_session_timeout(Duration::from_secs(6))
        .build()
        .unwrap()
}

/// Starts the count-by-key topology (`input` → count → `output`).
pub async fn start_count(app: &str, input: &str, output: &str, cfg: StreamConfig) -> StreamHandle {
    let b = StreamBuilder::new(app);
    b.stream::<String, String>(input)
        .group_by_key()
        .count("counts")
        .to_stream()
        .to(output);
    StreamApp::start(cfg, b.build().unwrap()).await.unwrap()
}

/// The last value of each key, in partition/offset order (keys stay in
/// one partition, so this is the latest update).
pub fn last_values(recs: &[ReadRecord]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in recs {
        let k = String::from_utf8(r.key.clone().unwrap_or_default()).unwrap();
        let v = String::from_utf8(r.value.clone().unwrap_or_default()).unwrap();
        out.insert(k, v);
    }
    out
}

/// Expected counts when record `i` of `n` has key `key_of(i)`.
pub fn expected_counts(n: usize, key_of: impl Fn(usize) -> String) -> BTreeMap<String, String> {
    let mut m: HashMap<String, u64> = HashMap::new();
    for i in 0..n {
        *m.entry(key_of(i)).or_default() += 1;
    }
    m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
}

/// Waits (up to `timeout`) until the last value of every key of `topic`
/// equals `want`; returns what it saw last.
pub async fn wait_last_values(
    bootstrap: &str,
    topic: &str,
    want: &BTreeMap<String, String>,
    timeout: Duration,
) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    let ok = eventually_or(timeout, || {
        let (b, t) = (b.clone(), t.clone());
        let got = last_values(&read_all(&b, &t).unwrap());
        let done = &got == want;
        seen = got;
        async move { done }
    })
    .await;
    if !ok {
        let diff: Vec<_> = want
            .iter()
            .filter(|(k, v)| seen.get(*k) != Some(*v))
            .take(10)
            .map(|(k, v)| format!("{k}: want {v}, got {:?}", seen.get(k)))
            .collect();
        panic!("{topic}: counts not exact after {timeout:?}: {diff:?}");
    }
    seen
}
