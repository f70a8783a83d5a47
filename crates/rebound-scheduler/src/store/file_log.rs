//! The embedded store's log: framed, checksummed records appended by one
//! writer thread that batches concurrent appends into one `fsync` (group
//! commit), replay with torn-tail truncation, and compaction by snapshot.
//!
//! Record framing: `len: u32 LE | crc32(payload): u32 LE | payload (JSON)`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// Largest group written with one `fsync`.
const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// Frames `payload` as one record appended to `out`.
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads every intact record of `path`. A torn or corrupt tail (a crash during
/// an unsynced write) is cut off so appends continue after the last good record.
pub(crate) fn replay(path: &Path) -> Result<Vec<Vec<u8>>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf).map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    }
    let mut records = Vec::new();
    let mut off = 0usize;
    while off + 8 <= buf.len() {
        let len = u32::from_le_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(buf[off + 4..off + 8].try_into().expect("4 bytes"));
        let end = off + 8 + len;
        if end > buf.len() || crc32fast::hash(&buf[off + 8..end]) != crc {
            break;
        }
        records.push(buf[off + 8..end].to_vec());
        off = end;
    }
    if off < buf.len() {
        tracing::warn!(
            path = %path.display(),
            kept = off,
            dropped = buf.len() - off,
            "store log has a torn tail; truncating it"
        );
        let f = OpenOptions::new().write(true).open(path).map_err(io)?;
        f.set_len(off as u64).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    Ok(records)
}

type Reply = oneshot::Sender<Result<(), String>>;

enum Cmd {
    /// Append framed bytes (possibly empty: a barrier) and reply once synced.
    Append(Vec<u8>, Reply),
    /// Replace the log with this framed snapshot.
    Compact(Vec<u8>, Reply),
}

/// Handle to the writer thread. Appends are durable when their future resolves.
#[derive(Debug, Clone)]
pub(crate) struct LogWriter {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Append(b, _) => write!(f, "Append({} bytes)", b.len()),
            Cmd::Compact(b, _) => write!(f, "Compact({} bytes)", b.len()),
        }
    }
}

/// A pending durable write.
pub(crate) type Pending = oneshot::Receiver<Result<(), String>>;

impl LogWriter {
    /// Starts the writer thread appending to `path`.
    pub(crate) fn start(path: PathBuf) -> Result<Self> {
        let file = open_append(&path)?;
        // Make the file's directory entry durable too (it may just have been
        // created): otherwise a crash could lose the whole log.
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|source| Error::Io {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("rebound-store-log".into())
            .spawn(move || run(path, file, rx))
            .map_err(|source| Error::Io {
                path: PathBuf::from("<writer thread>"),
                source,
            })?;
        Ok(LogWriter { tx })
    }

    /// Queues framed bytes; call while holding the state lock so the log order
    /// matches the in-memory order, then await [`wait`] without it.
    pub(crate) fn append(&self, bytes: Vec<u8>) -> Pending {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Cmd::Append(_, done) | Cmd::Compact(_, done))) =
            self.tx.send(Cmd::Append(bytes, done))
        {
            let _ = done.send(Err("writer thread gone".into()));
        }
        rx
    }

    /// Queues a compaction to `snapshot` (framed records of every live task).
    pub(crate) fn compact(&self, snapshot: Vec<u8>) -> Pending {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Cmd::Append(_, done) | Cmd::Compact(_, done))) =
            self.tx.send(Cmd::Compact(snapshot, done))
        {
            let _ = done.send(Err("writer thread gone".into()));
        }
        rx
    }
}

/// An already completed write (the in-memory store has no log).
pub(crate) fn ready() -> Pending {
    let (done, rx) = oneshot::channel();
    let _ = done.send(Ok(()));
    rx
}

/// Waits until a queued write is durable.
pub(crate) async fn wait(p: Pending) -> Result<()> {
    match p.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::WriterStopped(e)),
        Err(_) => Err(Error::WriterStopped("writer thread gone".into())),
    }
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn run(path: PathBuf, mut file: File, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let mut failed: Option<String> = None;
    let mut group = Vec::new();
    let mut replies: Vec<Reply> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(cmd) = next.take() {
            match cmd {
                Cmd::Append(bytes, reply) => {
                    group.extend_from_slice(&bytes);
                    replies.push(reply);
                    if group.len() < MAX_GROUP_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                Cmd::Compact(snapshot, reply) => {
                    flush(&mut file, &mut group, &mut replies, &mut failed);
                    let r = match &failed {
                        Some(e) => Err(e.clone()),
                        None => compact(&path, &snapshot).map(|f| file = f),
                    };
                    if let Err(e) = &r {
                        failed.get_or_insert_with(|| e.clone());
                    }
                    let _ = reply.send(r);
                    next = rx.try_recv().ok();
                }
            }
        }
        flush(&mut file, &mut group, &mut replies, &mut failed);
    }
}

fn flush(
    file: &mut File,
    group: &mut Vec<u8>,
    replies: &mut Vec<Reply>,
    failed: &mut Option<String>,
) {
    if replies.is_empty() {
        return;
    }
    let r = match failed {
        Some(e) => Err(e.clone()),
        None => {
            let r = if group.is_empty() {
                Ok(())
            } else {
                file.write_all(group).and_then(|()| file.sync_data())
            };
            r.map_err(|e| {
                let msg = format!("append failed: {e}");
                tracing::error!(error = %msg, "store log write failed; the store stops accepting writes");
                *failed = Some(msg.clone());
                msg
            })
        }
    };
    group.clear();
    for reply in replies.drain(..) {
        let _ = reply.send(r.clone());
    }
}

fn compact(path: &Path, snapshot: &[u8]) -> Result<File, String> {
    let tmp = path.with_extension("compact");
    let step = |what: &str, e: std::io::Error| format!("compaction {what}: {e}");
    let mut f = File::create(&tmp).map_err(|e| step("create", e))?;
    f.write_all(snapshot).map_err(|e| step("write", e))?;
    f.sync_all().map_err(|e| step("sync", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| step("rename", e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| step("sync dir", e))?;
    }
    open_append(path).map_err(|e| e.to_string())
}
