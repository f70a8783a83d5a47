//! Helpers for the exactly-once tests: the copying transform and checks on
//! what a `read_committed` reader of the output sees.

use std::collections::HashMap;

use rebound_core::headers as h;
use rebound_producer::OutRecord;
use rebound_testkit::ReadRecord;
use rebound_worker::exactly_once::{transform_fn, FnTransform, TransformResult};
use rebound_worker::Record;

/// Header naming the pipeline run that wrote an output record.
pub const RUN: &str = "test.run";

/// Copies each input to `out` with its key and value, its input coordinates
/// (`rebound.original.partition` / `.offset`) and `run`. Values listed in
/// `poison` fail for good.
pub fn copy_to(
    out: String,
    run: String,
    poison: Vec<String>,
) -> FnTransform<impl Fn(&Record) -> std::future::Ready<TransformResult> + Send + Sync + 'static> {
    transform_fn(move |rec: &Record| {
        let value = rec.value_str().unwrap_or_default().to_string();
        if poison.contains(&value) {
            return std::future::ready(Err(rebound_core::HandlerError::permanent(format!(
                "poison {value}"
            ))));
        }
        let mut o = OutRecord::new(out.clone(), value);
        o.key = rec.key.clone();
        o.set_header(h::ORIGINAL_PARTITION, rec.partition.to_string());
        o.set_header(h::ORIGINAL_OFFSET, rec.offset.to_string());
        o.set_header(RUN, run.clone());
        std::future::ready(Ok(vec![o]))
    })
}

/// The input coordinates an output record carries.
pub fn input_of(r: &ReadRecord) -> (i32, i64) {
    (
        r.header(h::ORIGINAL_PARTITION).unwrap().parse().unwrap(),
        r.header(h::ORIGINAL_OFFSET).unwrap().parse().unwrap(),
    )
}

/// Asserts that every value in `expected` appears exactly once in `out`.
pub fn assert_exactly_once(out: &[&ReadRecord], expected: impl Iterator<Item = String>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in out {
        let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
        *seen.entry(v).or_default() += 1;
    }
    let mut missing = Vec::new();
    let mut n = 0;
    for v in expected {
        n += 1;
        match seen.remove(&v) {
            Some(1) => {}
            Some(c) => panic!("value {v} appears {c} times in the output"),
            None => missing.push(v),
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {n} values lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        seen.is_empty(),
        "unexpected output values: {:?}",
        seen.keys().take(5).collect::<Vec<_>>()
    );
}

/// Asserts that, per key, output records appear in input offset order.
pub fn assert_order_per_key(out: &[&ReadRecord]) {
    let mut sorted: Vec<&&ReadRecord> = out.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut last: HashMap<(Vec<u8>, i32), i64> = HashMap::new();
    for r in sorted {
        let (p, o) = input_of(r);
        let key = r.key.clone().unwrap_or_default();
        if let Some(prev) = last.insert((key.clone(), p), o) {
            assert!(
                prev < o,
                "key {:?}: input offset {o} written after {prev}",
                String::from_utf8_lossy(&key)
            );
        }
    }
}
