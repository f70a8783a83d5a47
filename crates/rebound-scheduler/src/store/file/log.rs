//! The redo log's thread: appends each group's record, `fdatasync`s once
//! for everything waiting (group commit), and only then answers the
//! callers of those groups. Files are `PATH/redo-N.log`; a checkpoint (a
//! durable redb commit) starts a new file and retires the older ones, so
//! the log holds at most the groups since the last checkpoint.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
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
    /// Later records go to a new file.
    Rotate,
    /// Every record before the newest file is in a durable checkpoint: the
    /// older files go.
    Retire,
}

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

/// Creates log file `n` and makes its directory entry durable.
pub(crate) fn create(dir: &Path, n: u64) -> Result<File> {
    let path = file_name(dir, n);
    let f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(Error::io(&path))?;
    sync_dir(dir)?;
    Ok(f)
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
                let mut w = LogWriter {
                    dir,
                    n,
                    file,
                    shared,
                    buf: Vec::new(),
                    waiting: Vec::new(),
                    broken: None,
                    synced,
                    written: synced,
                };
                w.run(rx)
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
    n: u64,
    file: File,
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
    }

    fn take(&mut self, m: Msg) {
        match m {
            Msg::Append(seq, changes, replies) => {
                record::frame(seq, self.synced, &changes, &mut self.buf);
                self.written = seq;
                self.waiting.extend(replies);
            }
            Msg::Reply(replies) => self.waiting.extend(replies),
            Msg::Rotate => {
                self.flush();
                if self.broken.is_none() {
                    match create(&self.dir, self.n + 1) {
                        Ok(f) => {
                            self.file = f;
                            self.n += 1;
                        }
                        Err(e) => {
                            self.fail(&e);
                            self.broken = Some(rebound_core::DisplayChain(&e).to_string());
                        }
                    }
                }
            }
            Msg::Retire => {
                self.flush();
                if self.broken.is_some() {
                    return;
                }
                match files(&self.dir) {
                    Ok(all) => {
                        for (n, p) in all.into_iter().filter(|(n, _)| *n < self.n) {
                            if let Err(e) = std::fs::remove_file(&p) {
                                tracing::warn!(file = %p.display(), n, error = %e,
                                    "could not remove a retired redo log file");
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not list the redo log files"),
                }
            }
        }
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
                let r = self
                    .file
                    .write_all(&self.buf)
                    .and_then(|()| self.file.sync_data());
                match r {
                    Ok(()) => {
                        self.synced = self.written;
                        self.shared.set_durable(self.synced);
                    }
                    Err(source) => {
                        let e = Error::io(file_name(&self.dir, self.n))(source);
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
