//! The `deskgate` command: serve, check configs, manage accounts.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use deskgate::accounts::{AccountStore, NewAccount};
use deskgate::config::{Config, load_file};
use deskgate::explain::{self, Claimed};

#[derive(Parser)]
#[command(name = "deskgate", version, about = "Authentication and SSO gateway with usergroups")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check config files without starting; prints one line per problem. A secret that is
    /// absent here (a `*_file` that does not exist, a `*_env` that is not set) is a warning,
    /// so that a config can be checked away from the machine that holds its secrets.
    Check {
        /// Absent secrets are errors too.
        #[arg(long)]
        strict: bool,
        /// Config files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Manage accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Print a new Ed25519 JWT signing key (PKCS#8 PEM) for `jwt.key_file`.
    Keygen,
    /// Explain an account's access: its usergroups and where each comes from, its
    /// permissions, and for a path the rule that governs it and the decision.
    Explain {
        /// The config file (for the account store, usergroups and rules).
        #[arg(long, short)]
        config: PathBuf,
        /// The account: its email, its id, a provider's subject for it (alone or as
        /// "PROVIDER SUBJECT"), or the username a provider gave at its last sign-in.
        #[arg(long)]
        account: String,
        /// A path to decide for the account, e.g. /chat/sales.
        #[arg(long)]
        path: Option<String>,
        /// The host the path is asked on, where rules name hosts, e.g. help.example.com.
        #[arg(long, requires = "path")]
        host: Option<String>,
        /// The method the path is asked with (GET unless given), e.g. POST.
        #[arg(long, requires = "path")]
        method: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Create a built-in account; the password is read from standard input.
    Add {
        /// The config file (for the account store and usergroups).
        #[arg(long, short)]
        config: PathBuf,
        /// Email, the login name.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A usergroup to assign; repeat for several.
        #[arg(long = "usergroup")]
        usergroups: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { files, strict } => return check(&files, strict),
        Command::Keygen => deskgate::jwt::generate_pem().map(|pem| print!("{pem}")).map_err(Into::into),
        Command::Serve { config } => runtime().and_then(|rt| rt.block_on(serve(&config))),
        Command::Accounts { command: AccountsCommand::Add { config, email, name, usergroups } } => {
            runtime().and_then(|rt| rt.block_on(add_account(&config, email, name, usergroups)))
        }
        Command::Explain { config, account, path, host, method } => runtime().and_then(|rt| {
            rt.block_on(explain_account(
                &config,
                &account,
                path.as_deref(),
                host.as_deref(),
                method.as_deref(),
            ))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deskgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")
}

fn check(files: &[PathBuf], strict: bool) -> ExitCode {
    let mut failed = false;
    for file in files {
        match deskgate::config::check_file(file, strict) {
            Ok((config, absent)) => {
                for d in &absent {
                    println!(
                        "{}:{}:{}: warning: {}: {} (an absent secret)",
                        d.file, d.line, d.col, d.path, d.message
                    );
                }
                println!("{}: ok", file.display());
                // Said every time, so that nobody opens a route to everyone by accident.
                let public = config.policy.public_routes();
                if !public.is_empty() {
                    println!("{}: note: public routes: {}", file.display(), public.join(", "));
                }
                for note in deskgate::config::notes(&config) {
                    println!("{}: note: {note}", file.display());
                }
            }
            Err(diagnostics) => {
                failed = true;
                for d in diagnostics {
                    println!("{d}");
                }
            }
        }
    }
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    load_file(path).map_err(|diagnostics| {
        for d in &diagnostics {
            eprintln!("{d}");
        }
        anyhow::anyhow!("{} has {} problem(s)", path.display(), diagnostics.len())
    })
}

async fn serve(path: &Path) -> anyhow::Result<()> {
    // The config says how to log: problems with it go to standard error before that.
    let config = load(path)?;
    deskgate::logging::init(&config.log)?;
    raise_open_files_limit(config.server.connections.max_connections);
    for note in deskgate::config::notes(&config) {
        tracing::info!(file = %path.display(), "Config note: {note}");
    }
    let listen = config.server.listen;
    let public = config.server.public_url.clone();
    let workers = config.server.workers;
    let gateway = deskgate::Gateway::new(config).await.context("cannot start")?;
    #[cfg(unix)]
    tokio::spawn(reload_on_hangup(path.to_owned(), gateway.reloader()));
    let listeners =
        gateway.bind_workers(listen).await.with_context(|| format!("cannot serve on {listen}"))?;
    tracing::info!(%listen, public_url = %public, workers, "deskgate is listening");
    gateway
        .serve_workers(listeners, shutdown_signal())
        .await
        .with_context(|| format!("cannot serve on {listen}"))
}

/// Every client connection holds a file descriptor, and a proxied one a second for the
/// upstream: the soft limit (often 1024) is raised to the hard one, and a limit still below
/// twice `server.max_connections` is reported, since past it new clients cannot be accepted.
fn raise_open_files_limit(max_connections: usize) {
    let wanted = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_mul(2).saturating_add(64);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            max_connections,
            "The open-files limit is below twice server.max_connections: raise the hard limit (ulimit -Hn) or lower the cap"
        ),
        Ok(limit) => tracing::debug!(limit, "Open-files limit"),
        Err(error) => tracing::warn!(%error, "Cannot raise the open-files limit"),
    }
}

/// Reads the config file again at each SIGHUP: a valid file is served from the next request
/// on (sessions kept, each resolved again); an invalid one is refused with every problem
/// logged, and the running config stays.
#[cfg(unix)]
async fn reload_on_hangup(path: PathBuf, reloader: deskgate::app::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("Cannot listen for SIGHUP: the config cannot be reloaded without a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        match load_file(&path) {
            Err(diagnostics) => {
                for d in &diagnostics {
                    tracing::error!("{d}");
                }
                tracing::error!(
                    file = %path.display(),
                    problems = diagnostics.len(),
                    "Config not reloaded: the running config stays"
                );
                reloader.refused();
            }
            Ok(config) => match reloader.reload(config).await {
                Ok(generation) => {
                    tracing::info!(file = %path.display(), generation, "Config reloaded; sessions kept")
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "Config not reloaded: the running config stays")
                }
            },
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("Shutting down");
}

async fn add_account(
    path: &Path,
    email: String,
    name: String,
    usergroups: Vec<String>,
) -> anyhow::Result<()> {
    let config = load(path)?;
    for g in &usergroups {
        if !config.model.usergroups.contains_key(g) {
            bail!("usergroup `{g}` is not defined in {}", path.display());
        }
    }
    if !email.contains('@') {
        bail!("`{email}` is not an email address");
    }
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 10 {
        bail!("the password must have at least 10 characters");
    }
    let hash = deskgate_builtin::hash_password(password)?;
    let accounts = deskgate::app::open_accounts(&config).await?;
    let now = deskgate::clock::Clock::system().now();
    let account = accounts
        .create(NewAccount {
            email: Some(email),
            // An administrator's word: the address counts for organizations and assignments.
            email_verified: true,
            name,
            password_hash: Some(hash),
            usergroups,
            created_at: now,
            ..Default::default()
        })
        .await?;
    println!("created account {}", account.id);
    Ok(())
}

async fn explain_account(
    config_path: &Path,
    reference: &str,
    path: Option<&str>,
    host: Option<&str>,
    method: Option<&str>,
) -> anyhow::Result<()> {
    let config = load(config_path)?;
    let accounts = deskgate::app::open_accounts(&config).await?;
    let account = match accounts.by_email(reference).await? {
        Some(a) => a,
        None => {
            let ids = accounts.by_reference(reference).await?;
            match ids.as_slice() {
                [] => anyhow::bail!("no account has the email, id, provider subject or username {reference}"),
                [id] => accounts.by_id(id).await?.with_context(|| format!("account {id} is gone"))?,
                _ => anyhow::bail!(
                    "{reference} names {} accounts ({}): give the email or the id",
                    ids.len(),
                    ids.join(", ")
                ),
            }
        }
    };
    let providers = accounts.providers(&account.id).await?;
    let claimed = Claimed::new(&config, &accounts.provider_claims(&account.id).await?);
    let model = config.model.with_organizations(accounts.organizations().await?);
    let explanation = explain::explain(
        &model,
        &config.policy,
        account,
        providers,
        &claimed,
        path.map(|path| explain::Ask { path, host, method }),
    );
    print!("{}", explain::text(&explanation));
    Ok(())
}
