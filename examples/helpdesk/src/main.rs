//! Runs the example helpdesk portal behind deskgate.

use anyhow::{Context as _, bail};
use deskgate_helpdesk::{Settings, router};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: helpdesk [--listen ADDR] [--jwks URL] [--issuer URL] [--audience AUD | --no-audience]
                [--header-prefix PREFIX]

  --listen ADDR            address to serve on (default 127.0.0.1:8081)
  --jwks URL               deskgate's JWKS (default http://127.0.0.1:8080/.deskgate/jwks.json)
  --issuer URL             require this `iss` (deskgate's public URL); not checked by default
  --audience AUD           require this `aud` (default deskgate)
  --no-audience            do not check `aud`
  --header-prefix PREFIX   prefix of deskgate's identity headers (default X-Deskgate-)";

struct Options {
    listen: String,
    settings: Settings,
}

fn parse(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Options>> {
    let mut listen = "127.0.0.1:8081".to_owned();
    let mut settings = Settings::new("http://127.0.0.1:8080/.deskgate/jwks.json");
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value\n\n{USAGE}"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--jwks" => settings.jwks_url = value()?,
            "--issuer" => settings.issuer = Some(value()?),
            "--audience" => settings.audience = Some(value()?),
            "--no-audience" => settings.audience = None,
            "--header-prefix" => settings.header_prefix = value()?,
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other}\n\n{USAGE}"),
        }
    }
    Ok(Some(Options { listen, settings }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();

    let Some(options) = parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let listener = TcpListener::bind(&options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        jwks = %options.settings.jwks_url,
        "Helpdesk listening"
    );
    axum::serve(listener, router(options.settings))
        .with_graceful_shutdown(async {
            // If the signal handler cannot be installed the server simply runs until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
        .context("the server failed")
}
