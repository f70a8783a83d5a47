//! The reading loop (on a blocking thread): poll, print, and in a group
//! acknowledge and commit what has been printed and flushed.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rebound_core::Record;
use rebound_worker::reader::{GroupReader, PartitionReader, Polled, ReaderError};
use tokio_util::sync::CancellationToken;

use super::output::{render, OutputFormat};

/// Where records come from.
pub enum Source {
    /// Manual assignment: nothing is committed.
    Manual(PartitionReader),
    /// A group member: printed records are committed.
    Group(GroupReader),
}

impl Source {
    fn poll(&mut self, timeout: Duration) -> Result<Polled, ReaderError> {
        match self {
            Source::Manual(r) => r.poll(timeout),
            Source::Group(r) => r.poll(timeout),
        }
    }

    fn ack(&mut self, partition: i32, offset: i64) {
        if let Source::Group(r) = self {
            r.ack_offset(partition, offset);
        }
    }

    fn commit(&mut self) -> Result<(), ReaderError> {
        match self {
            Source::Manual(_) => Ok(()),
            Source::Group(r) => r.commit(),
        }
    }

    fn close(self) -> Result<(), ReaderError> {
        match self {
            Source::Manual(_) => Ok(()),
            Source::Group(r) => r.close(),
        }
    }
}

/// How the loop runs.
pub struct Options {
    pub format: OutputFormat,
    /// Stop after this many records.
    pub count: Option<u64>,
    /// Commit at least this often while records keep coming.
    pub commit_every: Duration,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every partition reached its end.
    End,
    /// `--count` records were printed.
    Count,
    /// SIGINT / SIGTERM.
    Signal,
    /// The output was closed (e.g. `| head`).
    OutputClosed,
}

/// Prints records until the end, the count, a signal or a closed output;
/// returns how many were printed and why it stopped. In a group, a record
/// is acknowledged (and so committed) only once the output took it: after
/// a successful flush, never while it may still sit in the buffer.
pub fn pump(
    mut source: Source,
    out: &mut impl Write,
    opts: &Options,
    cancel: &CancellationToken,
    bar: &ProgressBar,
) -> anyhow::Result<(u64, Ended)> {
    let mut printed = 0u64;
    let mut unflushed = Unflushed::default();
    let mut last_flush = Instant::now();
    let ended = loop {
        if cancel.is_cancelled() {
            break Ended::Signal;
        }
        if opts.count.is_some_and(|c| printed >= c) {
            break Ended::Count;
        }
        match source.poll(Duration::from_millis(200))? {
            Polled::Record(rec) => {
                if closed(out.write_all(render(opts.format, &rec).as_bytes()))? {
                    break Ended::OutputClosed;
                }
                printed += 1;
                bar.inc(1);
                unflushed.push(&rec);
                if last_flush.elapsed() >= opts.commit_every {
                    if unflushed.flush(out, &mut source)? {
                        break Ended::OutputClosed;
                    }
                    source.commit()?;
                    last_flush = Instant::now();
                }
            }
            Polled::Idle => {
                if unflushed.flush(out, &mut source)? {
                    break Ended::OutputClosed;
                }
                source.commit()?;
                last_flush = Instant::now();
            }
            Polled::End => break Ended::End,
        }
    };
    let ended = if ended != Ended::OutputClosed && unflushed.flush(out, &mut source)? {
        Ended::OutputClosed
    } else {
        ended
    };
    source.close()?;
    Ok((printed, ended))
}

/// Records written to the output buffer since the last flush: partition →
/// offset of the last one (offsets rise within a partition).
#[derive(Default)]
struct Unflushed(BTreeMap<i32, i64>);

impl Unflushed {
    fn push(&mut self, rec: &Record) {
        self.0.insert(rec.partition, rec.offset);
    }

    /// Flushes the output and, once it took everything, acknowledges what
    /// was written. `Ok(true)`: the output is closed, nothing acknowledged.
    fn flush(&mut self, out: &mut impl Write, source: &mut Source) -> anyhow::Result<bool> {
        if closed(out.flush())? {
            return Ok(true);
        }
        for (p, o) in std::mem::take(&mut self.0) {
            source.ack(p, o);
        }
        Ok(false)
    }
}

/// Whether a write failed because the reader of the output went away.
fn closed(r: std::io::Result<()>) -> anyhow::Result<bool> {
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(anyhow::Error::new(e).context("writing the output failed")),
    }
}
