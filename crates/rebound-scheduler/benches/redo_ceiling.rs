//! The ceiling of a redo log in front of redb (BENCHMARKS.md, "Redo log in
//! front of redb: ceiling measured, not built"): redb `Durability::None`
//! commits per group plus an fsync'd redo log, overlapped, with a durable
//! checkpoint every `CP_MS` (250) ms; `BASELINE=1` commits every group
//! durably (the store's design), `NOLOG=1` only commits non-durably.
//! Knobs: `CALLERS` (50), `PER_CALL` (1), `TOTAL` (100000), `PREALLOC=1`,
//! `SERIAL=1`, `DIR` (/tmp/walprobe-data). Not the store's code: a probe.

use redb::{Durability, TableDefinition};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const DUE: TableDefinition<(u8, u64, &str), u32> = TableDefinition::new("due");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

struct Job {
    rows: Vec<(String, Vec<u8>)>,
    reply: tokio::sync::oneshot::Sender<()>,
}

#[derive(Default)]
struct Acks {
    durable: u64,
    pending: Vec<(u64, Vec<tokio::sync::oneshot::Sender<()>>)>,
}

fn main() {
    let callers: usize = std::env::var("CALLERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let per_call: usize = std::env::var("PER_CALL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let total: usize = std::env::var("TOTAL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let overlap = std::env::var("SERIAL").is_err();
    let prealloc = std::env::var("PREALLOC").is_ok();
    let baseline = std::env::var("BASELINE").is_ok();
    let nolog = std::env::var("NOLOG").is_ok();
    let dir = std::path::PathBuf::from(std::env::var("DIR").unwrap_or("/tmp/walprobe-data".into()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut b = redb::Builder::new();
    b.set_cache_size(48 << 20);
    let db = Arc::new(b.create(dir.join("db.redb")).unwrap());
    {
        let t = db.begin_write().unwrap();
        t.open_table(TASKS).unwrap();
        t.open_table(DUE).unwrap();
        t.open_table(META).unwrap();
        t.commit().unwrap();
    }

    let (jtx, mut jrx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (ltx, lrx) = mpsc::channel::<(u64, Vec<u8>)>();
    let acks = Arc::new((Mutex::new(Acks::default()), Condvar::new()));

    // log thread
    let acks_l = acks.clone();
    let logpath = dir.join("redo.log");
    if prealloc {
        let mut f = File::create(&logpath).unwrap();
        f.write_all(&vec![0u8; 128 << 20]).unwrap();
        f.sync_all().unwrap();
        File::open(&dir).unwrap().sync_all().unwrap();
    }
    let log = std::thread::spawn(move || {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&logpath)
            .unwrap();
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        let mut syncs = 0u64;
        let mut sync_t: Vec<f64> = Vec::new();
        while let Ok(first) = lrx.recv() {
            let mut last = first.0;
            let mut buf = first.1;
            while let Ok((s, r)) = lrx.try_recv() {
                last = s;
                buf.extend_from_slice(&r);
            }
            f.write_all(&buf).unwrap();
            let ts = Instant::now();
            f.sync_data().unwrap();
            sync_t.push(ts.elapsed().as_secs_f64() * 1e3);
            syncs += 1;
            let (m, _) = &*acks_l;
            let mut a = m.lock().unwrap();
            a.durable = last;
            let ready: Vec<_> = {
                let (r, keep): (Vec<_>, Vec<_>) =
                    a.pending.drain(..).partition(|(s, _)| *s <= last);
                a.pending = keep;
                r
            };
            drop(a);
            for (_, rs) in ready {
                for r in rs {
                    let _ = r.send(());
                }
            }
        }
        sync_t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let med = sync_t.get(sync_t.len() / 2).copied().unwrap_or(0.0);
        eprintln!(
            "log sync median {med:.3} ms, total {:.2} s",
            sync_t.iter().sum::<f64>() / 1e3
        );
        syncs
    });

    // writer thread
    let dbw = db.clone();
    let acks_w = acks.clone();
    let writer = std::thread::spawn(move || {
        let mut seq = 0u64;
        let mut last_cp = Instant::now();
        let mut groups = 0u64;
        let mut cps = 0u64;
        let mut rows_n = 0u64;
        let mut apply_ns = 0u128;
        let mut cp_t: Vec<f64> = Vec::new();
        let mut none_t: Vec<f64> = Vec::new();
        while let Some(first) = jrx.blocking_recv() {
            let mut jobs = vec![first];
            while let Ok(j) = jrx.try_recv() {
                jobs.push(j);
                if jobs.len() >= 16384 {
                    break;
                }
            }
            seq += 1;
            groups += 1;
            // encode log record
            let mut rec =
                Vec::with_capacity(64 + jobs.iter().map(|j| j.rows.len() * 460).sum::<usize>());
            rec.extend_from_slice(&[0u8; 16]);
            for j in &jobs {
                for (k, v) in &j.rows {
                    rec.extend_from_slice(&(k.len() as u32).to_le_bytes());
                    rec.extend_from_slice(k.as_bytes());
                    rec.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    rec.extend_from_slice(v);
                }
            }
            let crc = crc32fast::hash(&rec[16..]);
            let len = (rec.len() - 16) as u32;
            rec[0..4].copy_from_slice(&len.to_le_bytes());
            rec[4..8].copy_from_slice(&crc.to_le_bytes());
            rec[8..16].copy_from_slice(&seq.to_le_bytes());
            let mut rec = Some(rec);
            if baseline || nolog {
                rec.take();
            }
            if overlap && !baseline && !nolog {
                ltx.send((seq, rec.take().unwrap())).unwrap();
            }
            let t0 = Instant::now();
            let mut txn = dbw.begin_write().unwrap();
            let cp = baseline
                || last_cp.elapsed()
                    >= Duration::from_millis(
                        std::env::var("CP_MS")
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(250),
                    );
            if cp {
                txn.set_durability(Durability::Immediate).unwrap();
                txn.set_quick_repair(true);
                cps += 1;
                last_cp = Instant::now();
            } else {
                txn.set_durability(Durability::None).unwrap();
            }
            {
                let mut t = txn.open_table(TASKS).unwrap();
                let mut d = txn.open_table(DUE).unwrap();
                let mut m = txn.open_table(META).unwrap();
                for j in &jobs {
                    for (k, v) in &j.rows {
                        t.insert(k.as_str(), v.as_slice()).unwrap();
                        d.insert((1u8, 1_000_000u64 + rows_n, k.as_str()), 7u32)
                            .unwrap();
                        rows_n += 1;
                    }
                }
                m.insert("seq", seq).unwrap();
            }
            txn.commit().unwrap();
            apply_ns += t0.elapsed().as_nanos();
            if cp {
                cp_t.push(t0.elapsed().as_secs_f64() * 1e3)
            } else {
                none_t.push(t0.elapsed().as_secs_f64() * 1e3)
            }
            if let Some(rec) = rec {
                ltx.send((seq, rec)).unwrap();
            }
            if baseline || nolog {
                for j in jobs {
                    let _ = j.reply.send(());
                }
                continue;
            }
            let replies: Vec<_> = jobs.into_iter().map(|j| j.reply).collect();
            let (m, _) = &*acks_w;
            let mut a = m.lock().unwrap();
            if a.durable >= seq {
                drop(a);
                for r in replies {
                    let _ = r.send(());
                }
            } else {
                a.pending.push((seq, replies));
            }
        }
        drop(ltx);
        none_t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        cp_t.sort_by(|a, b| a.partial_cmp(b).unwrap());
        eprintln!(
            "none commit median {:.3} ms p99 {:.3}; checkpoint median {:.3} ms max {:.3}",
            none_t.get(none_t.len() / 2).copied().unwrap_or(0.0),
            none_t.get(none_t.len() * 99 / 100).copied().unwrap_or(0.0),
            cp_t.get(cp_t.len() / 2).copied().unwrap_or(0.0),
            cp_t.last().copied().unwrap_or(0.0)
        );
        (groups, cps, rows_n, apply_ns)
    });

    let start = Instant::now();
    let per_caller = total / callers / per_call;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut hs = Vec::new();
        for c in 0..callers {
            let jtx = jtx.clone();
            hs.push(tokio::spawn(async move {
                for i in 0..per_caller {
                    let rows = (0..per_call)
                        .map(|r| (format!("p{c}-{i}-{r}"), vec![b'x'; 400]))
                        .collect();
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    jtx.send(Job { rows, reply: tx }).ok().unwrap();
                    rx.await.unwrap();
                }
            }));
        }
        drop(jtx);
        for h in hs {
            h.await.unwrap();
        }
    });
    let el = start.elapsed().as_secs_f64();
    let (groups, cps, rows, apply_ns) = writer.join().unwrap();
    let syncs = log.join().unwrap();
    println!("baseline={baseline} nolog={nolog} callers={callers} per_call={per_call} overlap={overlap} prealloc={prealloc}: {:.0} rows/s, {groups} groups (avg {:.1} rows), {syncs} log syncs, {cps} checkpoints, apply avg {:.3} ms, {:.2}s",
        rows as f64 / el, rows as f64 / groups as f64, apply_ns as f64 / groups as f64 / 1e6, el);
}
