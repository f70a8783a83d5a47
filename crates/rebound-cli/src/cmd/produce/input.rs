//! Reading the input: lines from a file or stdin, each parsed into a record
//! or the reason it is bad, with its line number.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use rebound_core::Header;
use rebound_producer::OutRecord;
use tokio::sync::mpsc;

use super::parse::{parse, InputFormat};

/// One input line: the record it makes, or why it makes none.
#[derive(Debug)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    pub record: Result<OutRecord, String>,
}

/// How lines become records.
#[derive(Debug, Clone)]
pub struct Shape {
    pub topic: String,
    pub format: InputFormat,
    /// `--header`s, added to every record after its own.
    pub headers: Vec<Header>,
    /// Partitions of the topic (a JSON `partition` must be below it).
    pub partitions: usize,
}

impl Shape {
    fn record(&self, line: &[u8]) -> Result<OutRecord, String> {
        let p = parse(self.format, line)?;
        if let Some(n) = p.partition {
            if usize::try_from(n).map_or(true, |n| n >= self.partitions) {
                return Err(format!(
                    "field partition: {} has no partition {n} (it has {})",
                    self.topic, self.partitions
                ));
            }
        }
        let mut headers = p.headers;
        headers.extend(self.headers.iter().cloned());
        Ok(OutRecord {
            topic: self.topic.clone(),
            partition: p.partition,
            key: p.key,
            value: p.value,
            headers,
            timestamp: p.timestamp,
        })
    }
}

/// Where lines come from: a file, or stdin for `-` / no file.
pub fn open(file: Option<&PathBuf>) -> anyhow::Result<Box<dyn BufRead + Send>> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            Ok(Box::new(std::io::BufReader::new(f)))
        }
        _ => Ok(Box::new(std::io::BufReader::new(std::io::stdin()))),
    }
}

/// Reads every line (blocking) and sends it on. `\n` and `\r\n` end lines;
/// a last line without an ending counts. Stops early when the receiver is
/// gone.
pub fn read_lines(
    mut input: Box<dyn BufRead + Send>,
    shape: &Shape,
    tx: &mpsc::Sender<Line>,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading line {} of the input failed", number + 1))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = Line {
            number,
            record: shape.record(&buf),
        };
        if tx.blocking_send(line).is_err() {
            return Ok(());
        }
    }
}

/// `--header NAME=VALUE`.
pub fn header_arg(s: &str) -> Result<Header, String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok(Header {
            name: name.to_string(),
            value: Some(value.as_bytes().to_vec()),
        }),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_args() {
        let h = header_arg("source=cli=1").unwrap();
        assert_eq!(h.name, "source");
        assert_eq!(h.value.as_deref(), Some(&b"cli=1"[..]));
        assert!(header_arg("novalue").is_err());
        assert!(header_arg("=v").is_err());
    }

    #[test]
    fn lines_keep_numbers_and_add_headers() {
        let shape = Shape {
            topic: "t".into(),
            format: InputFormat::Json,
            headers: vec![header_arg("src=cli").unwrap()],
            partitions: 2,
        };
        let input =
            b"{\"value\":\"a\",\"headers\":{\"x\":\"1\"}}\r\nnope\n{\"value\":1,\"partition\":2}"
                .to_vec();
        let (tx, mut rx) = mpsc::channel(10);
        read_lines(Box::new(std::io::Cursor::new(input)), &shape, &tx).unwrap();
        drop(tx);
        let first = rx.blocking_recv().unwrap();
        assert_eq!(first.number, 1);
        let rec = first.record.unwrap();
        assert_eq!(rec.header_str("x"), Some("1"));
        assert_eq!(rec.header_str("src"), Some("cli"));
        assert_eq!(rec.headers.len(), 2);
        let second = rx.blocking_recv().unwrap();
        assert_eq!(second.number, 2);
        assert!(second.record.unwrap_err().starts_with("invalid JSON"));
        let third = rx.blocking_recv().unwrap();
        assert_eq!(
            third.record.unwrap_err(),
            "field partition: t has no partition 2 (it has 2)"
        );
        assert!(rx.blocking_recv().is_none());
    }
}
