//! The command line beside the server: `copra plugins ...` (the operator's commands,
//! spoken to a running server's admin API), and a user's `submit`, `jobs`, `webhooks`
//! and `probe`.

pub mod conformance;
mod engine_check;
mod jobs;
mod probe;
mod submit_media;
mod table;
mod tus;
mod webhooks;

pub use jobs::{Api, Client, JobCommand, jobs};
pub use engine_check::engine_check;
pub use webhooks::{WebhookCommand, webhooks};
pub use probe::probe;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::Value;

use crate::config::Config;

/// `copra submit FILE`: a job file (`.json`, or `-` for standard input) as it is, or a
/// media file uploaded and transcoded to the `-o` formats.
pub async fn submit(api: &Api, file: PathBuf, outputs: Vec<String>, download: Option<PathBuf>, dry_run: bool, detach: bool) -> anyhow::Result<()> {
    let is_job = file.as_os_str() == "-" || file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_job {
        let ask = submit_media::MediaSubmit { file, outputs, download, dry_run, detach };
        // Ctrl-C says how to go on (whatever the signal's inherited disposition was).
        return tokio::select! {
            done = submit_media::submit_media(api, ask) => done,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ninterrupted: run the same command again to resume the upload (or follow a submitted job with `copra jobs watch ID`)");
                std::process::exit(130);
            }
        };
    }
    if !outputs.is_empty() || download.is_some() {
        bail!("-o and --download go with a media file (copra submit video.mp4 -o mp4:720p); a job file names its own outputs");
    }
    jobs::submit_job(api, file, dry_run, detach).await
}

#[derive(Subcommand)]
pub enum PluginCommand {
    /// List loaded plugins and load errors.
    List,
    /// Upload a component; it replaces a plugin of the same name.
    Add {
        file: PathBuf,
        /// Defaults to the file name without `.wasm`.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a plugin.
    Remove { name: String },
    /// Run a plugin component through its world's contract, without a server: every
    /// function with valid and invalid inputs and fixture media, under the grants of
    /// `--config` (or the defaults). Prints a table; exits 1 if a check failed.
    Test {
        file: PathBuf,
        /// A condition in the plugin's own language, tried before the built-in samples.
        #[arg(long)]
        sample: Vec<String>,
    },
    /// Scaffold a new plugin crate (built for wasm32-wasip2 with the SDK).
    New {
        #[arg(long, value_enum)]
        kind: Kind,
        /// The plugin's name; also the directory created.
        name: String,
        /// Where the copra-sdk crate is (defaults to the SDK of the checkout this binary
        /// was built from).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Storage,
    Format,
    Condition,
    Notifier,
}

/// Run a plugin command against `server` (default: this config's listen address).
pub async fn plugins(config: &Config, server: Option<String>, command: PluginCommand) -> anyhow::Result<()> {
    let base = server.unwrap_or_else(|| format!("http://{}", config.listen));
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/admin{path}", base.trim_end_matches('/'));
    let response = match command {
        PluginCommand::List => client.get(url("/plugins")),
        PluginCommand::Add { file, name } => {
            let name = match name {
                Some(name) => name,
                None => file.file_stem().map(|s| s.to_string_lossy().into_owned()).context("the file has no name")?,
            };
            let bytes = tokio::fs::read(&file).await.with_context(|| format!("reading {}", file.display()))?;
            client.post(url("/plugins")).query(&[("name", name)]).body(bytes)
        }
        PluginCommand::Remove { name } => client.delete(url(&format!("/plugins/{name}"))),
        PluginCommand::New { kind, name, sdk } => return scaffold(kind, &name, sdk),
        PluginCommand::Test { file, sample } => return conformance::run(&file, None, &sample).await,
    }
    .bearer_auth(config.admin_key.expose())
    .send()
    .await
    .with_context(|| format!("reaching the server at {base}"))?;

    let status = response.status();
    let body: Value = if status == reqwest::StatusCode::NO_CONTENT { Value::Null } else { response.json().await.unwrap_or(Value::Null) };
    if !status.is_success() {
        let message = body.get("message").and_then(Value::as_str).unwrap_or("no message");
        bail!("{status}: {message}");
    }
    if let Some(plugins) = body.get("plugins").and_then(Value::as_array) {
        println!("{:<20} {:<8} {:<10} {:<24} {:<14} {:<7} {:>6} {:>6}", "NAME", "VERSION", "KIND", "PROVIDES", "SHA256", "FROM", "CALLS", "ERRORS");
        for p in plugins {
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let provides: Vec<&str> = p.get("provides").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            let sha = text("sha256");
            // Stored plugins are the cluster's (every node); the others are this node's files.
            let from = if p.get("stored").and_then(Value::as_bool).unwrap_or(false) { "stored" } else { "file" };
            println!(
                "{:<20} {:<8} {:<10} {:<24} {:<14} {:<7} {:>6} {:>6}",
                text("name"),
                text("version"),
                text("kind"),
                provides.join(","),
                &sha[..sha.len().min(12)],
                from,
                p.get("calls").and_then(Value::as_u64).unwrap_or(0),
                p.get("errors").and_then(Value::as_u64).unwrap_or(0)
            );
        }
        for e in body.get("load_errors").and_then(Value::as_array).into_iter().flatten() {
            println!("error: {}: {}", e.get("file").and_then(Value::as_str).unwrap_or("?"), e.get("error").and_then(Value::as_str).unwrap_or("?"));
        }
    } else if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}

/// Write a buildable plugin crate named `name` into `./name`.
pub fn scaffold(kind: Kind, name: &str, sdk: Option<PathBuf>) -> anyhow::Result<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        bail!("the name must be lower-case letters, digits and '-'");
    }
    let dir = PathBuf::from(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = match sdk {
        Some(path) => path,
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk"),
    };
    let sdk = sdk.canonicalize().with_context(|| format!("the SDK is not at {}; pass --sdk", sdk.display()))?;
    let (feature, body) = match kind {
        Kind::Storage => ("storage", STORAGE_TEMPLATE),
        Kind::Format => ("format", FORMAT_TEMPLATE),
        Kind::Condition => ("condition", CONDITION_TEMPLATE),
        Kind::Notifier => ("notifier", NOTIFIER_TEMPLATE),
    };
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    let extra = if feature == "notifier" { ", \"http\"" } else { "" };
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ncopra-sdk = {{ path = \"{}\", features = [\"{feature}\"{extra}] }}\n\n# A plugin is its own workspace.\n[workspace]\n",
        sdk.display()
    );
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(dir.join("src/lib.rs"), body.replace("PLUGIN_TYPE", &type_name).replace("PLUGIN_NAME", name))?;
    println!(
        "created {name}/ — build it with:\n  cd {name} && cargo build --release --target wasm32-wasip2\ncheck it against its world's contract (no server needed):\n  copra plugins test target/wasm32-wasip2/release/{wasm}.wasm\nthen load it with:\n  copra plugins add target/wasm32-wasip2/release/{wasm}.wasm --name {name}",
        wasm = name.replace('-', "_")
    );
    // What the plugin needs granted in the server's config file to do its job.
    match kind {
        Kind::Storage => println!("and grant it its opendal scheme in the server's config file:\n  [plugins.{name}]\n  schemes = [\"s3\"]"),
        Kind::Notifier => println!("and grant it the hosts it may post to in the server's config file:\n  [plugins.{name}]\n  allowed_hosts = [\"hooks.example.com:443\"]"),
        Kind::Format | Kind::Condition => {}
    }
    Ok(())
}

const STORAGE_TEMPLATE: &str = r#"//! PLUGIN_NAME: a Copra storage plugin for an S3-compatible service. It checks a job's
//! storage block (field-level errors from the SDK) and says where files go; the host
//! streams the bytes through opendal natively. Set `SERVICE` to your provider's endpoint
//! and URL templates; a block's `endpoint` overrides them (MinIO, a test server).
//! The server's config file grants the scheme: `[plugins.PLUGIN_NAME] schemes = ["s3"]`
//! (`fs` is never granted, and the host checks every key and endpoint it is given).

use copra_sdk::s3::{S3Config, Service};
use copra_sdk::storage::{Storage, Target};
use copra_sdk::{Error, Json, config};

/// Where the service lives; `{region}` and `{bucket}` come from the storage block.
const SERVICE: Service = Service {
    endpoint: "https://s3.{region}.amazonaws.com",
    url: "https://{bucket}.s3.{region}.amazonaws.com",
    default_region: Some("us-east-1"),
    signing_region: None,
};

/// The plugin type the host calls.
pub struct PLUGIN_TYPE;

impl Storage for PLUGIN_TYPE {
    const NAME: &'static str = "PLUGIN_NAME";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn services() -> Vec<String> {
        vec!["PLUGIN_NAME".into()]
    }

    /// Called at submit time: `bucket`, `region`, `credentials`, Coconut's S3 options.
    fn resolve(spec: &Json) -> Result<Target, Error> {
        let block: S3Config = config::parse(spec)?;
        Ok(Target::Opendal(block.target(&SERVICE)?))
    }
}

copra_sdk::storage_plugin!(PLUGIN_TYPE);
"#;

const FORMAT_TEMPLATE: &str = r#"//! PLUGIN_NAME: a Copra format plugin. It plans one format, `PLUGIN_NAME`: an MP4 at
//! the input's size (h264 + aac). The host encodes natively; a plan only decides.

use copra_sdk::format::{AudioPlan, AudioSelection, Fit, Format, MediaInfo, OutputPlan, OutputType, VideoPlan};
use copra_sdk::{Error, Json};

pub struct PLUGIN_TYPE;

impl Format for PLUGIN_TYPE {
    const NAME: &'static str = "PLUGIN_NAME";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn formats() -> Vec<String> {
        vec!["PLUGIN_NAME".into()]
    }

    /// Called at submit time, before the input is known: refuse what cannot work, so
    /// that a bad job is a 400 rather than a failed job.
    fn check(format: &str, params: &Json) -> Result<OutputType, Error> {
        if format != "PLUGIN_NAME" {
            return Err(Error::format(format!("Unknown format '{format}'; this plugin plans 'PLUGIN_NAME'.")));
        }
        // `params` are the output's keys besides the host's own (key, path, url, if).
        if let Some(name) = params.as_object().and_then(|p| p.keys().next()) {
            return Err(Error::param(format!("The output parameter '{name}' is not valid for 'PLUGIN_NAME'.")));
        }
        Ok(OutputType::Video)
    }

    fn plan(format: &str, params: &Json, input: &MediaInfo) -> Result<OutputPlan, Error> {
        Self::check(format, params)?;
        // Sizes are upright: a quarter turn of rotation metadata swaps them.
        let (width, height) = if input.rotation.rem_euclid(180) == 90 { (input.height, input.width) } else { (input.width, input.height) };
        Ok(OutputPlan {
            output_type: OutputType::Video,
            container: "mp4".into(),
            extension: "mp4".into(),
            mime_type: "video/mp4".into(),
            video: input.has_video.then(|| VideoPlan {
                codec: "h264".into(),
                width: width / 2 * 2,
                height: height / 2 * 2,
                fps: None,
                bitrate_kbps: None,
                crf: Some(23.0),
                pix_fmt: "yuv420p".into(),
                gop: None,
                keyframe_interval: None,
                encoder_options: vec![("preset".into(), "medium".into())],
                scaler: "bicubic".into(),
                fit: Fit::Stretch,
                rotate: 0,
                tone_map: false,
                overlays: Vec::new(),
                burn_in: None,
            }),
            audio: input.has_audio.then(|| AudioPlan { codec: "aac".into(), bitrate_kbps: 128, sample_rate: 44100, channels: 2, loudness: None }),
            range: None,
            image: None,
            packaging: None,
            target_vmaf: None,
            audio_tracks: AudioSelection::Main,
        })
    }
}

copra_sdk::format_plugin!(PLUGIN_TYPE);
"#;

const CONDITION_TEMPLATE: &str = r#"//! PLUGIN_NAME: a Copra condition plugin.

use copra_sdk::condition::{Condition, MediaInfo};
use copra_sdk::Error;

pub struct PLUGIN_TYPE;

impl Condition for PLUGIN_TYPE {
    const NAME: &'static str = "PLUGIN_NAME";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// Called at submit time: reject what cannot be evaluated.
    fn check(expression: &str) -> Result<(), Error> {
        match expression {
            "hd" | "sd" => Ok(()),
            other => Err(Error::condition(format!("Unknown condition '{other}': use 'hd' or 'sd'."))),
        }
    }

    fn evaluate(expression: &str, input: &MediaInfo) -> Result<bool, Error> {
        Self::check(expression)?;
        Ok((input.height >= 720) == (expression == "hd"))
    }
}

copra_sdk::condition_plugin!(PLUGIN_TYPE);
"#;

const NOTIFIER_TEMPLATE: &str = r#"//! PLUGIN_NAME: a Copra notifier plugin.

use copra_sdk::notifier::{Notifier, host_port};
use copra_sdk::{Error, Json, json};

pub struct PLUGIN_TYPE;

impl Notifier for PLUGIN_TYPE {
    const NAME: &'static str = "PLUGIN_NAME";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn types() -> Vec<String> {
        vec!["PLUGIN_NAME".into()]
    }

    fn check(config: &Json) -> Result<(), Error> {
        host_port(json::require(config, "url", copra_sdk::codes::NOTIFICATION_NOT_VALID)?).map(drop)
    }

    fn hosts(config: &Json) -> Result<Vec<String>, Error> {
        Ok(vec![host_port(json::require(config, "url", copra_sdk::codes::NOTIFICATION_NOT_VALID)?)?])
    }

    /// Sends through wasi:http (in a native build, e.g. unit tests, it answers an error).
    fn notify(config: &Json, event: &Json) -> Result<(), Error> {
        let url = json::require(config, "url", copra_sdk::codes::NOTIFICATION_NOT_VALID)?;
        let url: copra_sdk::url::Url = url.parse().map_err(|_| Error::notification("bad url"))?;
        let body = copra_sdk::serde_json::to_vec(event).unwrap_or_default();
        let length = body.len().to_string();
        // Standard Webhooks headers, signed by the host with the tenant's secret.
        let signed = copra_sdk::host::sign_webhook(&body).map_err(Error::delivery)?;
        let mut headers = vec![("content-type", "application/json"), ("content-length", length.as_str())];
        headers.extend(signed.pairs());
        let status = copra_sdk::http::post(&url, &headers, &body).map_err(Error::delivery)?;
        if !(200..300).contains(&status) {
            return Err(Error::delivery(format!("HTTP {status}")));
        }
        Ok(())
    }
}

copra_sdk::notifier_plugin!(PLUGIN_TYPE);
"#;
