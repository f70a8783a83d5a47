//! `rebound dlq show`: one DLQ record with every header, its key and value.

use anyhow::anyhow;
use clap::Args;
use comfy_table::{presets::UTF8_FULL, Table};
use rebound_core::Record;

use super::entry::{marked_or_dash, DlqEntry};
use super::select::{self, OffsetRef};
use super::Source;
use crate::time;

/// Flags of `rebound dlq show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    source: Source,
    /// The record: PARTITION:OFFSET, or OFFSET when the topic has one partition.
    #[arg(long, env = "REBOUND_DLQ_OFFSET", value_parser = select::offset_ref)]
    offset: OffsetRef,
}

/// Reads the one record and prints it.
pub async fn run(a: ShowArgs) -> anyhow::Result<()> {
    let want = a.offset;
    let topic = a.source.topic.clone();
    let rec = a
        .source
        .with_reader(move |reader| {
            let (p, o) =
                select::resolve(reader, &topic, want, "--offset").map_err(|e| anyhow!(e))?;
            let mut found = None;
            reader.read(&[(p, o, Some(o + 1))], |rec| {
                if rec.offset == o {
                    found = Some(rec);
                }
            })?;
            found.ok_or_else(|| anyhow!("--offset {want}: {topic} has no record at {p}:{o}"))
        })
        .await?;
    print!("{}", render(&rec));
    Ok(())
}

/// The text `show` prints.
fn render(rec: &Record) -> String {
    let e = DlqEntry::new(rec);
    let ts = rec.timestamp.map_or_else(
        || "-".to_string(),
        |t| format!("{} ({t})", time::rfc3339(t)),
    );
    let mut out = String::new();
    out.push_str(&format!("topic:     {}\n", rec.topic));
    out.push_str(&format!("offset:    {}\n", e.coords()));
    out.push_str(&format!("timestamp: {ts}\n"));
    out.push_str(&format!(
        "key:       {}\n",
        marked_or_dash(rec.key.as_deref())
    ));
    out.push_str(&format!(
        "value:     {}\n",
        marked_or_dash(rec.value.as_deref())
    ));
    out.push_str(&format!("headers:   {}\n", rec.headers.len()));
    if !rec.headers.is_empty() {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL).set_header(vec!["name", "value"]);
        for h in &rec.headers {
            let v = h
                .value
                .as_deref()
                .map_or_else(|| "(null)".to_string(), |v| marked_or_dash(Some(v)));
            t.add_row(vec![h.name.clone(), v]);
        }
        out.push_str(&format!("{t}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_core::Header;

    #[test]
    fn renders_every_header_and_marks_binary() {
        let mut r = Record::new("orders.dlq", 0, 3);
        r.timestamp = Some(0);
        r.key = Some(vec![0xff]);
        r.value = Some(b"body".to_vec());
        r.headers = vec![
            Header {
                name: "a".into(),
                value: Some(b"1".to_vec()),
            },
            Header {
                name: "n".into(),
                value: None,
            },
        ];
        let out = render(&r);
        assert!(out.contains("offset:    0:3\n"), "{out}");
        assert!(
            out.contains("timestamp: 1970-01-01T00:00:00.000Z (0)\n"),
            "{out}"
        );
        assert!(out.contains("key:       base64:/w==\n"), "{out}");
        assert!(out.contains("value:     body\n"), "{out}");
        assert!(out.contains("headers:   2\n"), "{out}");
        assert!(out.contains("(null)"), "{out}");
    }
}
