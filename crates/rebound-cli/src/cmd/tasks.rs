//! `rebound tasks list|get|cancel|create`: the delayed-retry scheduler's
//! tasks, through the HTTP API of a running `rebound serve`.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::args::{self, OutputFormat};
use crate::cmd::dlq::entry::one_line;

/// Longest error shown in a table cell.
const ERROR_WIDTH: usize = 50;

/// Flags of `rebound tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    api: Api,
    #[command(subcommand)]
    command: TasksCommand,
}

/// Where the scheduler is.
#[derive(Debug, Clone, Args)]
struct Api {
    /// Base URL of `rebound serve`.
    #[arg(long, env = "REBOUND_SCHEDULER_URL", default_value = "http://127.0.0.1:8080",
          value_parser = args::http_url, global = true)]
    url: url::Url,
    /// Bearer token, when `rebound serve` requires one.
    #[arg(
        long,
        env = "REBOUND_AUTH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    auth_token: Option<crate::security::Secret>,
    /// How long to wait for each answer.
    #[arg(long, default_value = "30s", value_parser = args::duration, global = true)]
    timeout: Duration,
    /// `table` or `json`.
    #[arg(long, value_enum, default_value_t, global = true)]
    format: OutputFormat,
}

#[derive(Debug, Subcommand)]
enum TasksCommand {
    /// List tasks, newest pages first as the store gives them.
    List(ListArgs),
    /// Show one task.
    Get {
        /// The task id.
        id: String,
    },
    /// Cancel a task that has not been delivered yet.
    Cancel {
        /// The task id.
        id: String,
    },
    /// Create tasks from JSON (Rebound's body; an array creates a batch).
    Create {
        /// A file with the JSON; `-` or nothing reads stdin.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
struct ListArgs {
    /// Only tasks in this state: scheduled, delivering, delivered, dead, cancelled.
    #[arg(long)]
    state: Option<String>,
    /// Only this tenant's tasks.
    #[arg(long)]
    client_id: Option<String>,
    /// At most this many tasks.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    limit: u64,
}

/// Runs one `tasks` subcommand.
pub async fn run(a: TasksArgs) -> anyhow::Result<()> {
    let api = Client::new(&a.api)?;
    match a.command {
        TasksCommand::List(l) => {
            let mut tasks = Vec::new();
            let mut cursor: Option<String> = None;
            while (tasks.len() as u64) < l.limit {
                let want = (l.limit - tasks.len() as u64).min(1000).to_string();
                let mut query = vec![("limit", want)];
                query.extend(l.state.clone().map(|s| ("state", s)));
                query.extend(l.client_id.clone().map(|c| ("client_id", c)));
                query.extend(cursor.clone().map(|c| ("cursor", c)));
                let page = api
                    .call(reqwest::Method::GET, &["tasks"], &query, None)
                    .await?;
                tasks.extend(page["tasks"].as_array().cloned().unwrap_or_default());
                cursor = page["next_cursor"].as_str().map(str::to_string);
                if cursor.is_none() {
                    break;
                }
            }
            tasks.truncate(usize::try_from(l.limit).unwrap_or(usize::MAX));
            print_tasks(&tasks, a.api.format);
        }
        TasksCommand::Get { id } => {
            let task = api
                .call(reqwest::Method::GET, &["tasks", &id], &[], None)
                .await?;
            print_tasks(&[task], a.api.format);
        }
        TasksCommand::Cancel { id } => {
            let r = api
                .call(reqwest::Method::DELETE, &["tasks", &id], &[], None)
                .await?;
            print_message(&r, a.api.format);
        }
        TasksCommand::Create { file } => {
            let body = read_input(file.as_ref())?;
            let parsed: Value = serde_json::from_slice(&body)
                .map_err(|e| anyhow::anyhow!("the input is not JSON: {e}"))?;
            let path: &[&str] = if parsed.is_array() {
                &["tasks", "batch"]
            } else {
                &["tasks"]
            };
            let r = api
                .call(reqwest::Method::POST, path, &[], Some(body))
                .await?;
            print_message(&r, a.api.format);
            // A batch answers 200 with each task's own status: a refused
            // one fails the command, naming it.
            let results = r["results"].as_array().map_or(&[][..], Vec::as_slice);
            let refused: Vec<String> = results
                .iter()
                .filter(|t| t["status"].as_u64().is_some_and(|s| s >= 400))
                .map(|t| {
                    let field = |f: &str| t[f].as_str().unwrap_or("?").to_string();
                    format!("{} ({} {})", field("id"), field("code"), field("error"))
                })
                .collect();
            anyhow::ensure!(
                refused.is_empty(),
                "{} of {} tasks refused: {}",
                refused.len(),
                results.len(),
                refused.join("; ")
            );
        }
    }
    Ok(())
}

fn read_input(file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match file.filter(|f| f.as_os_str() != "-") {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display())),
        None => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .context("cannot read stdin")?;
            Ok(b)
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
}

impl Client {
    fn new(api: &Api) -> anyhow::Result<Client> {
        let mut base = api.url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Client {
            http: reqwest::Client::builder().timeout(api.timeout).build()?,
            base,
            token: api.auth_token.as_ref().map(|t| t.expose().to_string()),
        })
    }

    /// One API call; a non-2xx answer is an error with its status and the
    /// API's own message (never the token).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Value> {
        // Segments, so an id with '/' or '?' stays one segment.
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--url {} cannot take a path", self.base))?
            .pop_if_empty()
            .extend(path);
        let mut req = self.http.request(method.clone(), url.clone()).query(query);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {url}: {}", rebound_core::DisplayChain(&e)))?;
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let code = value["code"].as_str().unwrap_or("");
        let message = value["error"].as_str().unwrap_or("");
        anyhow::bail!("{method} {url}: {} {code}: {message}", status.as_u16())
    }
}

fn print_message(v: &Value, format: OutputFormat) {
    match format {
        OutputFormat::Json => println!("{v}"),
        OutputFormat::Table => match v["message"].as_str() {
            Some(m) => println!("{m}"),
            None => println!("{v}"),
        },
    }
}

fn print_tasks(tasks: &[Value], format: OutputFormat) {
    if format == OutputFormat::Json {
        for t in tasks {
            println!("{t}");
        }
        return;
    }
    let mut table = crate::cmd::table(&[
        "id",
        "state",
        "attempts",
        "next due",
        "destination",
        "client",
        "last error",
    ]);
    for t in tasks {
        let s = |k: &str| t[k].as_str().unwrap_or("-").to_string();
        let dest = &t["destination"];
        let target = match (dest["topic"].as_str(), dest["url"].as_str()) {
            (Some(topic), _) if !topic.is_empty() => format!("kafka {topic}"),
            (_, Some(url)) if !url.is_empty() => url.to_string(),
            _ => "-".into(),
        };
        table.add_row(vec![
            s("id"),
            s("state"),
            format!("{}/{}", t["attempts"], t["max_retries"]),
            t["next_due_ms"]
                .as_i64()
                .map_or_else(|| "-".into(), crate::time::rfc3339),
            target,
            s("client_id"),
            one_line(t["last_error"].as_str().unwrap_or("-"), ERROR_WIDTH),
        ]);
    }
    if tasks.is_empty() {
        println!("no tasks");
    } else {
        println!("{table}");
    }
}
