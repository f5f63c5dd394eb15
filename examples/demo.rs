//! One command for a first look: the example helpdesk, with deskgate in front of it on its
//! embedded defaults (SQLite accounts, in-memory sessions, built-in accounts).
//!
//! `cargo run --example demo`, then open the URL it prints. Another config with the same
//! shape can be given as the first argument.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, anyhow};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn")),
        )
        .init();
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/examples/helpdesk.toml"));
    let config = deskgate::config::load_file(&path).map_err(|diagnostics| {
        for d in &diagnostics {
            eprintln!("{d}");
        }
        anyhow!("{} has problems", path.display())
    })?;

    let upstream = config.upstream.url.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
    let upstream: SocketAddr =
        upstream.parse().with_context(|| format!("upstream `{upstream}` is not IP:PORT"))?;
    let public = config.server.public_url.clone();
    let mut settings = deskgate_helpdesk::Settings::new(format!("{public}/.deskgate/jwks.json"));
    settings.issuer = Some(public.clone());
    let helpdesk = tokio::net::TcpListener::bind(upstream)
        .await
        .with_context(|| format!("cannot listen on {upstream} for the example helpdesk"))?;
    tokio::spawn(async move {
        if let Err(e) = deskgate_helpdesk::serve(helpdesk, settings).await {
            eprintln!("example helpdesk stopped: {e}");
        }
    });

    let listen = config.server.listen;
    let gateway = deskgate::Gateway::new(config).await?;
    // Bound before the address is printed: whoever reads it can connect at once.
    let listeners =
        gateway.bind_workers(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    println!();
    println!("  deskgate is serving the example helpdesk at {public}/");
    println!("  sign in or register at {public}/.deskgate/login   (Ctrl-C stops both)");
    println!();
    gateway
        .serve_workers(listeners, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .with_context(|| format!("cannot serve on {listen}"))?;
    Ok(())
}
