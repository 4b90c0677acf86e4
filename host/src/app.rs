//! The `copra` process: its command line, and the server and worker it runs. The
//! binary (`main.rs`) only calls [`main`]: what it starts is compiled here, once, with
//! the rest of the library, not again in the binary.

use crate::{api, cli, config, db, media, notify, plugins, queue, worker};

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use sea_orm::ConnectionTrait;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "copra", version, about = "Self-hosted video transcoding with the Coconut v2 API")]
struct Cli {
    /// A TOML config file; environment variables (COPRA_*) override it.
    #[arg(long, global = true, env = "COPRA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server, and a worker unless --no-worker.
    Serve {
        /// Serve the API only; run `copra worker` processes elsewhere.
        #[arg(long)]
        no_worker: bool,
    },
    /// Run a worker only (no API), sharing the database with API nodes.
    Worker,
    /// Submit a job (a JSON file, or - for standard input) and follow it to its end with
    /// progress bars; prints each output's URL; exits non-zero if the job failed. Given a
    /// media file instead, upload it (resumably: run the same command again after an
    /// interruption) and transcode it to the `-o` formats.
    Submit {
        file: PathBuf,
        /// With a media file: an output's format string (`mp4:720p`, `httpstream`,
        /// `jpg:320x`), once per output; default `mp4`.
        #[arg(short = 'o', long = "output")]
        outputs: Vec<String>,
        /// With a media file: fetch the outputs into this directory when the job ends.
        #[arg(long)]
        download: Option<PathBuf>,
        /// Print the plan the server would follow (POST /v2/jobs?dry_run=true), run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the job's id and return at once.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        client: cli::Client,
    },
    /// Look at jobs: `list` (a table, newest first), `show ID` (JSON), `watch ID` (progress bars until it ends).
    Jobs {
        #[command(flatten)]
        client: cli::Client,
        #[command(subcommand)]
        command: cli::JobCommand,
    },
    /// Your webhook signing secret: `secret` prints it, `secret --rotate` replaces it first.
    Webhooks {
        #[command(flatten)]
        client: cli::Client,
        #[command(subcommand)]
        command: cli::WebhookCommand,
    },
    /// Print the metadata Copra would store for a media file or URL.
    Probe { source: String },
    /// Start a media engine as a job would and check that its confinement holds on this
    /// machine (no reading outside its directory, no network, no processes).
    EngineCheck {
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Manage the plugins of a running server (through its admin API).
    Plugins {
        /// The server's base URL; defaults to http://$COPRA_LISTEN.
        #[arg(long, env = "COPRA_SERVER")]
        server: Option<String>,
        #[command(subcommand)]
        command: cli::PluginCommand,
    },
}

/// Run the command line's command (the media engine's child process first of all).
pub fn main() -> anyhow::Result<()> {
    // The media engine's process (started by the worker): before anything else runs, so
    // that nothing of the server is set up in it.
    if std::env::args_os().nth(1).is_some_and(|arg| arg == crate::confined::SUBCOMMAND) {
        crate::confined::child_main();
    }
    // SVT-AV1 prints a banner and its configuration on every encode unless told to keep
    // to errors. Set before any thread exists: the environment is not thread-safe.
    if std::env::var_os("SVT_LOG").is_none() {
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var("SVT_LOG", "1") };
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn,sea_orm=warn,tower_http=info".into())
    };
    // COPRA_LOG_FORMAT=json: one JSON object per line, with the spans (job, plugin call)
    // each line happened in, for log collectors.
    if std::env::var("COPRA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        tracing_subscriber::fmt().json().with_current_span(true).with_span_list(true).with_writer(std::io::stderr).with_env_filter(filter()).init();
    } else {
        tracing_subscriber::fmt()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .with_env_filter(filter())
            .init();
    }
    let cli = Cli::parse();
    // The metrics recorder, before anything is counted.
    crate::metrics::handle();
    // Scaffolding needs no configuration (and must not create a data directory).
    if let Command::Plugins { command: cli::PluginCommand::New { kind, name, sdk }, .. } = &cli.command {
        let (kind, name, sdk) = (*kind, name.clone(), sdk.clone());
        return cli::scaffold(kind, &name, sdk);
    }
    // Nor does testing a plugin file (its grants come from --config's [plugins.*] tables).
    if let Command::Plugins { command: cli::PluginCommand::Test { file, sample }, .. } = &cli.command {
        return cli::conformance::run(file, cli.config.as_deref(), sample).await;
    }
    // Neither do completions, probing a file, nor a client given its server and key.
    let command = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "copra", &mut std::io::stdout());
            return Ok(());
        }
        Command::Probe { source } => return cli::probe(&source).await,
        Command::EngineCheck { json } => return cli::engine_check(&config::Limits::default(), json).await,
        Command::Submit { file, outputs, download, dry_run, detach, client: cli::Client { server: Some(server), key: Some(key) } } => {
            return cli::submit(&cli::Api::at(server, key), file, outputs, download, dry_run, detach).await;
        }
        Command::Jobs { client: cli::Client { server: Some(server), key: Some(key) }, command } => {
            return cli::jobs(&cli::Api::at(server, key), command).await;
        }
        Command::Webhooks { client: cli::Client { server: Some(server), key: Some(key) }, command } => {
            return cli::webhooks(&cli::Api::at(server, key), command).await;
        }
        command => command,
    };
    let mut config = Arc::new(config::Config::load(cli.config.as_deref())?);
    media::init();

    let command = match command {
        Command::Plugins { server, command } => return cli::plugins(&config, server, command).await,
        Command::Submit { file, outputs, download, dry_run, detach, client } => {
            return cli::submit(&cli::Api::new(client, &config)?, file, outputs, download, dry_run, detach).await;
        }
        Command::Jobs { client, command } => return cli::jobs(&cli::Api::new(client, &config)?, command).await,
        Command::Webhooks { client, command } => return cli::webhooks(&cli::Api::new(client, &config)?, command).await,
        command => command,
    };
    // A server or worker holds keys and every job's credentials: no core file, no
    // reading of its memory by another process of its user.
    crate::confined::keep_server_private();
    if config.webhooks.generated {
        // The root itself is not shown: it signs nothing, and no tenant needs it.
        println!(
            "Webhook root secret generated into {} (each API key's signing secret is derived from it: `copra webhooks secret`, GET /v2/webhooks/secret)",
            config.data_dir.join("webhook-secret").display()
        );
    }
    let plugins = plugins::Plugins::start(&config.plugin_dir, &config.plugin_cache_dir(), config.plugin_grants.clone(), config.outbound.clone())
        .await
        .context("starting the plugin host")?;
    let _watcher = plugins.watch().context("watching the plugin directory")?;
    let db = db::connect(config.database_url.expose()).await.with_context(|| format!("opening the database {}", redact(config.database_url.expose())))?;
    // A node that does not agree with the cluster (another secret key) stops here.
    crate::cluster::check(&db, Arc::make_mut(&mut config)).await?;
    // Plugins added through any node's admin API, loaded here too (and kept in step).
    plugins.start_sync(db.clone(), config.plugin_sync.interval).await;
    let job_arrived = Arc::new(tokio::sync::Notify::new());
    let run_worker = !matches!(command, Command::Serve { no_worker: true });
    let run_api = !matches!(command, Command::Worker);

    // Cancelled on SIGTERM or Ctrl-C: the API stops accepting, the worker stops claiming.
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            stop.cancel();
            // A second signal does not wait for the grace: running jobs' leases then
            // free when they expire.
            shutdown_signal().await;
            tracing::warn!("second shutdown signal: exiting now");
            std::process::exit(130);
        }
    });

    // Local files past their retention, deleted by every process (a sweep is idempotent).
    if let Some(retention) = config.limits.local_retention {
        tokio::spawn(crate::storage::local_sweep::run(config.files_dir(), retention, config.limits.local_sweep_interval));
    }

    // Direct uploads past their expiry, deleted by every process (a sweep is idempotent).
    tokio::spawn(crate::upload::sweep::run(crate::upload::Uploads::of(&config), db.clone()));

    let mut worker_task = None;
    if run_worker {
        let event_recorded = Arc::new(tokio::sync::Notify::new());
        let worker = worker::Worker::new(db.clone(), plugins.clone(), config.clone(), job_arrived.clone(), event_recorded.clone())?;
        if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            // Other processes' new jobs arrive by NOTIFY.
            tokio::spawn(queue::listen(config.database_url.expose().to_string(), job_arrived.clone(), stop.clone()));
        }
        let stop = stop.clone();
        worker_task = Some(tokio::spawn(async move {
            if let Err(err) = worker.run(stop).await {
                tracing::error!(err = format!("{err:#}"), "worker stopped");
            }
        }));
        tokio::spawn(notify::run(notify::Notifier::new(db.clone(), plugins.clone(), &config), event_recorded));
    }
    if run_api {
        let state = api::AppState::new(db, plugins, config.clone(), job_arrived).stopping_on(stop.clone());
        let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
        tracing::info!(listen = %config.listen, data_dir = %config.data_dir.display(), plugin_dir = %config.plugin_dir.display(), worker = run_worker, "copra is serving");
        if std::env::var_os("COPRA_API_KEYS").is_none() {
            println!("API key: {}", config.api_keys.iter().map(|k| k.expose().as_str()).collect::<Vec<_>>().join(", "));
        }
        let stop = stop.clone();
        axum::serve(listener, api::router(state)).with_graceful_shutdown(async move { stop.cancelled().await }).await?;
    } else {
        stop.cancelled().await;
    }
    // The worker drains within its grace (it started when the signal came).
    if let Some(task) = worker_task {
        task.await?;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return ctrl_c.await.unwrap_or_default(),
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

/// A database URL without its password, for error messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
