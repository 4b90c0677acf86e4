//! `copra submit`, `copra jobs show|watch`: a user's commands, spoken to a running
//! server's Coconut API with an API key. Following a job reads its event stream
//! (`GET /v2/jobs/{id}/events`) and draws a progress bar for the job and a line per
//! output; the command ends with the job, non-zero when it or an output failed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use futures::TryStreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

/// Where the API is and which key to use.
#[derive(clap::Args, Clone)]
pub struct Client {
    /// The server's base URL; defaults to http://$COPRA_LISTEN.
    #[arg(long, env = "COPRA_SERVER", global = true)]
    pub server: Option<String>,
    /// The API key; defaults to the first of this config's keys.
    #[arg(long, env = "COPRA_API_KEY", global = true, hide_env_values = true)]
    pub key: Option<String>,
}

#[derive(Subcommand)]
pub enum JobCommand {
    /// Your jobs, newest first, as a table.
    List {
        /// How many (1-100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only jobs in this status: job.starting, job.completed or job.failed.
        #[arg(long)]
        status: Option<String>,
        /// Print the API's answer as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The job as the API shows it, as JSON.
    Show { id: String },
    /// Follow a job with progress bars until it ends.
    Watch { id: String },
}

/// The API's base URL and key, from flags, the environment, or this node's config.
pub struct Api {
    pub(super) base: String,
    pub(super) key: String,
    pub(super) http: reqwest::Client,
}

impl Api {
    /// The API at `server` with `key`.
    pub fn at(server: String, key: String) -> Self {
        Api { base: server.trim_end_matches('/').to_string(), key, http: reqwest::Client::new() }
    }

    pub fn new(client: Client, config: &crate::config::Config) -> anyhow::Result<Self> {
        let base = client.server.unwrap_or_else(|| format!("http://{}", config.listen)).trim_end_matches('/').to_string();
        let key = match client.key {
            Some(key) => key,
            None => config.api_keys.first().map(|k| k.expose().clone()).context("no API key: pass --key or set COPRA_API_KEY")?,
        };
        Ok(Api { base, key, http: reqwest::Client::new() })
    }

    /// The URL of `path` (starting with `/`) on this server.
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request.basic_auth(&self.key, Some("")).send().await.with_context(|| format!("reaching the server at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body.get("message").and_then(Value::as_str).unwrap_or("no message");
            let code = body.get("error_code").and_then(Value::as_str).unwrap_or("");
            bail!("{status} {code}: {message}");
        }
        Ok(body)
    }
}

/// `copra submit FILE|-`: submit a job (or plan it with `dry_run`) and follow it.
pub async fn submit_job(api: &Api, file: PathBuf, dry_run: bool, detach: bool) -> anyhow::Result<()> {
    let body = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).context("reading the job from standard input")?;
        text
    } else {
        tokio::fs::read_to_string(&file).await.with_context(|| format!("reading {}", file.display()))?
    };
    let job: Value = serde_json::from_str(&body).context("the job file is not JSON")?;
    let url = format!("{}/v2/jobs", api.base);
    if dry_run {
        let plan = api.send(api.http.post(&url).query(&[("dry_run", "true")]).json(&job)).await?;
        println!("{}", serde_json::to_string_pretty(&plan)?);
        return Ok(());
    }
    let created = api.send(api.http.post(&url).json(&job)).await?;
    let id = created.get("id").and_then(Value::as_str).context("the server answered without a job id")?.to_string();
    eprintln!("job {id} submitted");
    if detach {
        println!("{id}");
        return Ok(());
    }
    watch(api, &id).await
}

pub async fn jobs(api: &Api, command: JobCommand) -> anyhow::Result<()> {
    match command {
        JobCommand::Show { id } => {
            let job = api.send(api.http.get(format!("{}/v2/jobs/{id}", api.base))).await?;
            println!("{}", serde_json::to_string_pretty(&job)?);
            Ok(())
        }
        JobCommand::Watch { id } => watch(api, &id).await,
        JobCommand::List { limit, status, json } => {
            let mut query = vec![("limit", limit.to_string())];
            query.extend(status.map(|s| ("status", s)));
            let list = api.send(api.http.get(format!("{}/v2/jobs", api.base)).query(&query)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", super::table::jobs(&list));
            }
            Ok(())
        }
    }
}

/// Follow a job's event stream to its end; prints each output's URL, fails if the job
/// or an output failed. A dropped stream is resumed with `Last-Event-ID`.
pub async fn watch(api: &Api, id: &str) -> anyhow::Result<()> {
    let bars = Bars::new();
    let mut last_event_id: Option<String> = None;
    let mut last_status: Option<Value> = None;
    for _attempt in 0..20 {
        let mut request = api.http.get(format!("{}/v2/jobs/{id}/events", api.base)).basic_auth(&api.key, Some(""));
        if let Some(last) = &last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.with_context(|| format!("reaching the server at {}", api.base))?;
        if !response.status().is_success() {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            bail!("{status}: {}", body.get("message").and_then(Value::as_str).unwrap_or("no message"));
        }
        let mut stream = response.bytes_stream();
        let mut buffer = String::new();
        let mut message = SseMessage::default();
        while let Ok(Some(chunk)) = stream.try_next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end_matches(['\n', '\r']);
                if !line.is_empty() {
                    message.read(line);
                    continue;
                }
                let done = std::mem::take(&mut message);
                if let Some(id) = &done.id {
                    last_event_id = Some(id.clone());
                }
                if done.event.as_deref() == Some("job.status") {
                    if let Ok(status) = serde_json::from_str::<Value>(&done.data) {
                        bars.show(&status);
                        last_status = Some(status);
                    }
                }
            }
        }
        if let Some(status) = &last_status
            && matches!(status.get("status").and_then(Value::as_str), Some("job.completed" | "job.failed"))
        {
            return bars.finish(status);
        }
        // The stream ended before the job did (a server restarting): resume.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("the job's event stream kept ending before the job did")
}

#[derive(Default)]
struct SseMessage {
    event: Option<String>,
    id: Option<String>,
    data: String,
}

impl SseMessage {
    fn read(&mut self, line: &str) {
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_string()),
            "id" => self.id = Some(value.to_string()),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
    }
}

/// One bar for the job's progress and a line per output (its status, then its URL).
struct Bars {
    multi: MultiProgress,
    job: ProgressBar,
    outputs: std::sync::Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Self {
        let multi = MultiProgress::new();
        let job = multi.add(ProgressBar::new(100));
        job.set_style(ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos:>3}% {msg}").expect("valid template").progress_chars("=> "));
        job.set_prefix("job");
        Bars { multi, job, outputs: Default::default() }
    }

    fn show(&self, status: &Value) {
        let percent = status.get("progress").and_then(Value::as_str).and_then(|p| p.trim_end_matches('%').parse::<u64>().ok()).unwrap_or(0);
        self.job.set_position(percent);
        self.job.set_message(status.get("status").and_then(Value::as_str).unwrap_or("").to_string());
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        for output in status.get("outputs").and_then(Value::as_array).into_iter().flatten() {
            let key = output.get("key").and_then(Value::as_str).unwrap_or("?").to_string();
            let line = outputs.entry(key.clone()).or_insert_with(|| {
                let line = self.multi.add(ProgressBar::new_spinner());
                line.set_style(ProgressStyle::with_template("{prefix:>12} {msg}").expect("valid template"));
                line.set_prefix(key.clone());
                line
            });
            line.set_message(output.get("status").and_then(Value::as_str).unwrap_or("").to_string());
        }
    }

    /// Clears the bars and prints the outcome: each output's URL or error.
    fn finish(&self, status: &Value) -> anyhow::Result<()> {
        self.job.finish_and_clear();
        for line in self.outputs.lock().unwrap_or_else(|e| e.into_inner()).values() {
            line.finish_and_clear();
        }
        let job_status = status.get("status").and_then(Value::as_str).unwrap_or("?");
        let mut failed = job_status == "job.failed";
        eprintln!("{} {job_status}", status.get("id").and_then(Value::as_str).unwrap_or("?"));
        for output in status.get("outputs").and_then(Value::as_array).into_iter().flatten() {
            let key = output.get("key").and_then(Value::as_str).unwrap_or("?");
            let state = output.get("status").and_then(Value::as_str).unwrap_or("?");
            match (output.get("url").and_then(Value::as_str), output.get("urls").and_then(Value::as_array)) {
                (Some(url), _) => println!("{key}\t{state}\t{url}"),
                (None, Some(urls)) => {
                    for url in urls.iter().filter_map(Value::as_str) {
                        println!("{key}\t{state}\t{url}");
                    }
                }
                (None, None) => {
                    let error = output.get("error").and_then(Value::as_str).unwrap_or("");
                    failed |= state.ends_with(".failed");
                    println!("{key}\t{state}\t{error}");
                }
            }
        }
        if failed {
            bail!("the job ended with {job_status}; see the outputs above")
        }
        Ok(())
    }
}
