//! The `maintenant` binary: parses the command line and wires the pieces.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use maintenant::checks::targets::TargetPolicy;
use maintenant::engine::{self, Role};
use maintenant::settings::Settings;
use maintenant::store::watchdog;
use maintenant::{config, http, mcp, serve};

#[derive(Parser)]
#[command(
    name = "maintenant",
    version,
    about = "Monitoring sidecar with an embedded MCP server"
)]
struct Cli {
    /// Serve MCP over stdin/stdout (for Claude Code, Cursor, ...). Attaches to a
    /// running daemon on the same MAINTENANT_DB, or runs on its own.
    #[arg(long)]
    mcp_stdio: bool,

    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a monitors file or directory (default: MAINTENANT_CONFIG).
    /// Prints `file:line:col: message` per problem and exits 1 if there is any.
    CheckConfig { file: Option<PathBuf> },
    /// Print the JSON Schema of the monitors file.
    Schema,
    /// Print the CustomResourceDefinition of the `Monitor` resource (YAML),
    /// for `kubectl apply -f -`.
    Crd,
}

fn main() -> ExitCode {
    maintenant::memory::tune_allocator();
    let cli = Cli::parse();
    if let Err(e) = maintenant::logging::init() {
        eprintln!("maintenant: {e}");
        return ExitCode::from(2);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A policy that does not parse would leave declared monitors unguarded
    // or wrongly refused: refuse to start, naming the setting.
    let policy = match TargetPolicy::from_settings(&cli.settings) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("maintenant: {e}");
            return ExitCode::from(2);
        }
    };

    match cli.command {
        Some(Command::CheckConfig { file }) => {
            check_config(file.or_else(|| cli.settings.config_path()), &policy)
        }
        Some(Command::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&config::json_schema()).expect("schema serializes")
            );
            ExitCode::SUCCESS
        }
        Some(Command::Crd) => {
            print!("{}", maintenant::crd::crd_yaml());
            ExitCode::SUCCESS
        }
        None => {
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            let result = if cli.mcp_stdio {
                runtime
                    .block_on(mcp::stdio::run(cli.settings))
                    .map(|()| Exit::Stopped)
            } else {
                runtime.block_on(daemon(cli.settings))
            };
            if matches!(result, Ok(Exit::StoreFailing | Exit::StoreGaveUp)) {
                // Not dropped: every sled tree the tasks hold would flush as
                // it goes and log "failed to flush data to disk", once per
                // tree, after the one line that says what happened.
                // Everything acknowledged is on disk already.
                std::mem::forget(runtime);
            } else {
                // Check tasks may be mid-probe; don't wait for them.
                runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            }
            match result {
                Ok(Exit::Stopped | Exit::StoreFailing) => ExitCode::SUCCESS,
                Ok(Exit::StoreGaveUp) => ExitCode::from(watchdog::EXIT_CODE),
                Err(e) => {
                    eprintln!("maintenant: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check_config(path: Option<PathBuf>, policy: &TargetPolicy) -> ExitCode {
    let Some(path) = path else {
        eprintln!("maintenant check-config: no file given and MAINTENANT_CONFIG is not set");
        return ExitCode::from(2);
    };
    match config::load(&path) {
        Ok(loaded) => {
            // Only what the file says: an address, or maintenant's own
            // address. A host name is decided when the check resolves it.
            let refused: Vec<String> = loaded
                .monitors
                .iter()
                .filter(|m| policy.applies_to(&m.origin))
                .filter_map(|m| {
                    policy
                        .refuse_literal(&m.spec)
                        .map(|r| format!("{}: {}: {r}", m.origin, m.spec.key().id()))
                })
                .collect();
            if !refused.is_empty() {
                for r in &refused {
                    println!("{r}");
                }
                return ExitCode::from(1);
            }
            println!(
                "{}: ok, {} monitors in {} file(s)",
                path.display(),
                loaded.monitors.len(),
                loaded.files.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("{e}");
            }
            ExitCode::from(1)
        }
    }
}

/// How the daemon ended, when it ended well.
#[derive(Debug, PartialEq, Eq)]
enum Exit {
    /// A signal asked it to stop.
    Stopped,
    /// A signal asked it to stop while the database could not write (said
    /// in the log, see `Store::flush_at_exit`).
    StoreFailing,
    /// The database cannot write again in this process (see
    /// `store::watchdog`): exit with its code for the supervisor to restart
    /// the daemon, which reopens the database.
    StoreGaveUp,
}

async fn daemon(settings: Settings) -> anyhow::Result<Exit> {
    let addr = settings.addr;
    let socket = settings.socket_path();
    // Refuse to start with settings that cannot work, before anything runs.
    let auth = mcp::auth::Auth::from_settings(&settings)?;
    settings.ping_key()?;
    let nofile = serve::raise_nofile_limit();
    let limits = serve::Limits::from_settings(&settings, nofile)?;
    let app = engine::start(settings, Role::Daemon).await?;
    let cancel = CancellationToken::new();
    // One budget of connections for the TCP and the unix-socket servers.
    let connections = serve::Connections::new(limits);
    if let Err(e) =
        http::serve_unix(app.clone(), &socket, cancel.clone(), connections.clone()).await
    {
        tracing::warn!(socket = %socket.display(), error = %e, "cannot serve MCP for --mcp-stdio on the unix socket");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(
        %addr,
        mcp = app.settings.mcp,
        max_connections = limits.max_connections,
        open_file_limit = nofile,
        "maintenant listening"
    );
    if app.settings.mcp && auth.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "/mcp is open to the network: set MAINTENANT_MCP_ALLOWED_EMAIL and MAINTENANT_MCP_ISSUER, or put an authenticating proxy in front");
    }
    let router = http::router(app.clone(), cancel.clone(), auth);
    tokio::spawn({
        let cancel = cancel.clone();
        let health = app.store.health().clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => tracing::info!("shutting down"),
                reason = health.given_up() => tracing::error!(
                    %reason,
                    exit_code = watchdog::EXIT_CODE,
                    "the database cannot write again in this process: exiting for the supervisor to restart maintenant"
                ),
            }
            cancel.cancel();
        }
    });
    // The accept loop puts the peer address in each request (ConnectInfo),
    // for the per-IP rate limit.
    connections.serve(listener, router, cancel).await;
    let health = app.store.health().clone();
    let exit = if health.gave_up_reason().is_some() {
        // Nothing to flush: everything acknowledged was flushed before it
        // was acknowledged, and sled refuses every write now.
        Exit::StoreGaveUp
    } else {
        app.store
            .flush_at_exit()
            .context("the database could not be flushed at shutdown: check results since the last flush are lost (pings and changes were acknowledged only once on disk)")?;
        if health.is_failing() {
            Exit::StoreFailing
        } else {
            Exit::Stopped
        }
    };
    if exit != Exit::Stopped {
        // Its trees would flush as they drop (see main).
        std::mem::forget(app);
    }
    Ok(exit)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
