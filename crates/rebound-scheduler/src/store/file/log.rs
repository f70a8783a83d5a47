//! The redo log's thread: appends each group's record, `fdatasync`s once
//! for everything waiting (group commit), and only then answers the
//! callers of those groups.
//!
//! Files are `PATH/redo-N.log`, each made of zeros (synced) before it is
//! written: records overwrite those zeros, so a sync changes no file size
//! and needs no filesystem journal commit — half the latency of a sync
//! after an append here (0.15 ms against 0.3, BENCHMARKS.md). The first
//! file of an open is [`FIRST_FILE_BYTES`] long, each next one twice the
//! one before, up to [`FILE_BYTES`]; the next file is made in the
//! background while one is written, a slice and a sync at a time, so the
//! log's own syncs never queue behind megabytes of zeros. A file that is
//! full before the next one is made grows (appended, slower syncs) until
//! it is: the log never waits for zeros.
//! A file is removed once a checkpoint (a durable redb commit) holds every
//! group in it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::ops::Out;
use super::record;
use super::recover::sync_dir;
use super::shared::Shared;
use crate::error::{Error, Result};

/// A caller's answer, sent once what came before it is durable.
pub(crate) type Reply = (oneshot::Sender<Result<Out>>, Result<Out>);

pub(crate) enum Msg {
    /// Group `seq`'s changes ([`super::redo`]) and the answers they make
    /// durable; framed here ([`super::record`]).
    Append(u64, Vec<u8>, Vec<Reply>),
    /// Answers that need only what was appended before them to be durable.
    Reply(Vec<Reply>),
    /// Every group up to this one is in a durable checkpoint: the files
    /// holding only such groups go.
    Retire(u64),
}

/// Largest size of a log file, made with zeros before use. A batch larger
/// than what is left in a file starts the next one if it is made already;
/// otherwise, and for a batch larger than a whole file, the file grows.
pub(crate) const FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Size of the first log file of an open (made before the open returns).
pub(crate) const FIRST_FILE_BYTES: u64 = 1024 * 1024;

/// Zeros written (and synced) at a time when a file is made.
const FILL_SLICE: usize = 256 * 1024;

/// Name of log file `n` in `dir`.
pub(crate) fn file_name(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("redo-{n:016}.log"))
}

/// The log files in `dir`, oldest first.
pub(crate) fn files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let name = e.map_err(Error::io(dir))?.file_name();
        let name = name.to_string_lossy();
        let n = name
            .strip_prefix("redo-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            out.push((n, file_name(dir, n)));
        }
    }
    out.sort();
    Ok(out)
}

/// Creates log file `n`, `size` bytes of synced zeros, and makes its
/// directory entry durable. The file is positioned at its start.
pub(crate) fn create(dir: &Path, n: u64, size: u64) -> Result<File> {
    create_unless(dir, n, size, &AtomicBool::new(false))
}

/// [`create`], given up between two slices once `stop` is set (a file of
/// zeros left half made reads as empty).
fn create_unless(dir: &Path, n: u64, size: u64, stop: &AtomicBool) -> Result<File> {
    let path = file_name(dir, n);
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    let zeros = vec![0u8; FILL_SLICE];
    for _ in 0..size.div_ceil(FILL_SLICE as u64) {
        if stop.load(Ordering::Relaxed) {
            return Err(Error::WriterStopped("the store closed".into()));
        }
        f.write_all(&zeros)
            .and_then(|()| f.sync_data())
            .map_err(Error::io(&path))?;
    }
    f.sync_all().map_err(Error::io(&path))?;
    f.seek(SeekFrom::Start(0)).map_err(Error::io(&path))?;
    sync_dir(dir)?;
    Ok(f)
}

/// The written part of a log file: its bytes up to the last 1 MiB that is
/// not all zeros (the rest is the part not written yet, never held in
/// memory).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(Error::io(path))?;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1024 * 1024];
    let mut zeros = 0usize;
    loop {
        let mut got = 0;
        while got < chunk.len() {
            match f.read(&mut chunk[got..]).map_err(Error::io(path))? {
                0 => break,
                n => got += n,
            }
        }
        if got == 0 {
            return Ok(out);
        }
        if chunk[..got].iter().all(|&x| x == 0) {
            zeros += got;
        } else {
            out.resize(out.len() + zeros, 0);
            zeros = 0;
            out.extend_from_slice(&chunk[..got]);
        }
    }
}

/// The next file, being made in the background.
struct Spare {
    thread: std::thread::JoinHandle<Result<File>>,
    size: u64,
    stop: Arc<AtomicBool>,
}

impl Spare {
    /// Stops making it (the store is closing) and waits for the thread:
    /// no file is being made once this returns.
    fn abandon(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

fn make_spare(dir: &Path, n: u64, size: u64) -> Option<Spare> {
    let dir = dir.to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("rebound-store-log-file".into())
        .spawn(move || create_unless(&dir, n, size, &flag))
        .ok()
        .map(|thread| Spare { thread, size, stop })
}

/// Handle to the log thread.
#[derive(Debug)]
pub(crate) struct Log {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Log {
    /// Starts the thread on the (new, empty) file `n` of `dir`; groups up
    /// to `synced` are durable already.
    pub(crate) fn start(
        dir: PathBuf,
        (n, file): (u64, File),
        synced: u64,
        shared: Arc<Shared>,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let handle = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rebound-store-log".into())
            .spawn(move || {
                let guard = shared.clone();
                let spare = make_spare(&dir, n + 1, FIRST_FILE_BYTES * 2);
                let mut w = LogWriter {
                    dir,
                    n,
                    file,
                    size: FIRST_FILE_BYTES,
                    used: 0,
                    full: Vec::new(),
                    spare,
                    retired: synced,
                    shared,
                    buf: Vec::new(),
                    waiting: Vec::new(),
                    broken: None,
                    synced,
                    written: synced,
                };
                // Whatever stops this thread, the store knows: a caller
                // waiting for a sync must not wait forever.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run(rx)));
                if let Err(p) = r {
                    guard.fail(format!(
                        "the store log thread panicked: {}",
                        super::verify::panic_reason(&*p)
                    ));
                    // A file still being made must not appear after the
                    // store closed (a reopen would make the same one).
                    if let Some(spare) = w.spare.take() {
                        spare.abandon();
                    }
                }
            })
            .map_err(Error::io("<store log thread>"))?;
        Ok(Log {
            tx,
            shared: handle,
            thread: Some(thread),
        })
    }

    pub(crate) fn send(&self, m: Msg) {
        if let Err(mpsc::SendError(m)) = self.tx.send(m) {
            // The thread is gone (it panicked: it only stops otherwise when
            // this handle does): nothing more is durable.
            let why = "store log thread gone";
            self.shared.fail(why.into());
            let replies = match m {
                Msg::Append(_, _, r) | Msg::Reply(r) => r,
                _ => return,
            };
            for (tx, _) in replies {
                let _ = tx.send(Err(Error::WriterStopped(why.into())));
            }
        }
    }

    /// Waits for everything sent to be written and answered.
    pub(crate) fn close(mut self) {
        let (tx, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.tx, tx));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct LogWriter {
    dir: PathBuf,
    /// The file written now, its size made of zeros, and how much of it
    /// is used.
    n: u64,
    file: File,
    size: u64,
    used: u64,
    /// The earlier files of this process not removed yet, and the last
    /// group in each.
    full: Vec<(u64, u64)>,
    spare: Option<Spare>,
    /// The last group in a checkpoint (at the start: all of them so far).
    retired: u64,
    shared: Arc<Shared>,
    buf: Vec<u8>,
    waiting: Vec<Reply>,
    /// Why the log stopped writing, once it has.
    broken: Option<String>,
    /// The last group synced, and the last one in `buf`.
    synced: u64,
    written: u64,
}

impl LogWriter {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            self.take(first);
            while let Ok(m) = rx.try_recv() {
                self.take(m);
            }
            self.flush();
        }
        // A file still being made must not appear after the store closed.
        if let Some(spare) = self.spare.take() {
            spare.abandon();
        }
        // A checkpoint holds every group: the next open has no log to
        // read, and starts a small file of its own.
        if self.broken.is_none() && self.retired >= self.written {
            let all = (self.full.iter().map(|(n, _)| *n)).chain(self.n..=self.n + 1);
            for n in all {
                let p = file_name(&self.dir, n);
                match std::fs::remove_file(&p) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        tracing::warn!(file = %p.display(), n, error = %e,
                            "could not remove a redo log file")
                    }
                    _ => {}
                }
            }
        }
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Append(seq, changes, replies) => {
                record::frame(seq, self.synced, &changes, &mut self.buf);
                self.written = seq;
                self.waiting.extend(replies);
            }
            Msg::Reply(replies) => self.waiting.extend(replies),
            Msg::Retire(seq) => {
                self.retired = seq;
                let (gone, kept): (Vec<_>, Vec<_>) =
                    self.full.iter().partition(|(_, last)| *last <= seq);
                self.full = kept;
                for (n, _) in gone {
                    let p = file_name(&self.dir, n);
                    if let Err(e) = std::fs::remove_file(&p) {
                        tracing::warn!(file = %p.display(), n, error = %e,
                            "could not remove a retired redo log file");
                    }
                }
            }
        }
    }

    /// Moves on to the next file (made in the background meanwhile).
    fn next_file(&mut self) -> Result<()> {
        let (file, size) = match self.spare.take() {
            Some(Spare { thread, size, .. }) => {
                let made = thread.join().unwrap_or_else(|_| {
                    Err(Error::WriterStopped(
                        "the thread making a log file panicked".into(),
                    ))
                });
                (made?, size)
            }
            None => {
                let size = self.next_size();
                (create(&self.dir, self.n + 1, size)?, size)
            }
        };
        self.full.push((self.n, self.synced));
        self.file = file;
        self.size = size;
        self.n += 1;
        self.used = 0;
        // The one after it is made while this one is written.
        self.spare = make_spare(&self.dir, self.n + 1, self.next_size());
        Ok(())
    }

    /// The size of the file after the current one.
    fn next_size(&self) -> u64 {
        (self.size * 2).min(FILE_BYTES)
    }

    fn fail(&self, e: &Error) {
        let why = rebound_core::DisplayChain(e).to_string();
        tracing::error!(error = %why, "store log write failed; the store stops accepting writes");
        self.shared.fail(why);
    }

    /// Writes and syncs what is buffered, then answers whoever waited for it.
    /// Once a write failed (or could not be made because the store had
    /// failed), every later answer is that failure: nothing after a lost
    /// record may be reported durable.
    fn flush(&mut self) {
        if !self.buf.is_empty() && self.broken.is_none() {
            if let Err(e) = self.shared.check() {
                self.broken = Some(rebound_core::DisplayChain(&e).to_string());
            } else {
                let len = self.buf.len() as u64;
                // A file that is full goes on growing (slower syncs) until
                // the next one is made: the log never waits for zeros.
                let ready = self.spare.as_ref().is_none_or(|s| s.thread.is_finished());
                let r = if self.used > 0 && self.used + len > self.size && ready {
                    self.next_file()
                } else {
                    Ok(())
                };
                let r = r.and_then(|()| {
                    self.file
                        .write_all(&self.buf)
                        .and_then(|()| self.file.sync_data())
                        .map_err(Error::io(file_name(&self.dir, self.n)))
                });
                match r {
                    Ok(()) => {
                        self.used += len;
                        self.synced = self.written;
                        self.shared.set_durable(self.synced);
                    }
                    Err(e) => {
                        self.fail(&e);
                        self.broken = Some(rebound_core::DisplayChain(&e).to_string());
                    }
                }
            }
        }
        self.buf.clear();
        for (tx, out) in self.waiting.drain(..) {
            let out = match &self.broken {
                Some(why) => Err(Error::WriterStopped(why.clone())),
                None => out,
            };
            let _ = tx.send(out);
        }
    }
}
