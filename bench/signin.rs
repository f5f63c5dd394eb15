//! Sign-in latency through deskgate against a directory: `bench/ldap-signin.sh` runs it.
//!
//! `signin-bench CONFIG PROVIDER USERNAME PASSWORD [COUNT] [CONCURRENCY...]` starts the
//! gateway in-process on CONFIG, then for each concurrency level signs in COUNT times
//! (each sign-in is a fresh browser: login page for the CSRF token, then the form post)
//! and prints the latency of the form posts: p50, p99, mean, and sign-ins per second.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

struct Run {
    base: String,
    provider: String,
    username: String,
    password: String,
}

impl Run {
    async fn once(&self, client: &reqwest::Client) -> anyhow::Result<Duration> {
        let page = client.get(format!("{}/.deskgate/login", self.base)).send().await?;
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("_csrf="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .context("no CSRF cookie")?;
        let body = page.text().await?;
        let marker = "name=\"csrf\" value=\"";
        let start = body.find(marker).context("no CSRF field")? + marker.len();
        let token = &body[start..start + body[start..].find('"').context("CSRF field")?];
        let began = Instant::now();
        let resp = client
            .post(format!("{}/.deskgate/login", self.base))
            .header("cookie", cookie)
            .form(&[
                ("provider", self.provider.as_str()),
                ("username", &self.username),
                ("password", &self.password),
                ("csrf", token),
            ])
            .send()
            .await?;
        let took = began.elapsed();
        if resp.status() != 303 {
            bail!("sign-in answered {}", resp.status());
        }
        Ok(took)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, provider, username, password, rest @ ..] = args.as_slice() else {
        bail!("usage: signin-bench CONFIG PROVIDER USERNAME PASSWORD [COUNT] [CONCURRENCY...]");
    };
    let count: usize = rest.first().map(|c| c.parse()).transpose()?.unwrap_or(200);
    let levels: Vec<usize> = if rest.len() > 1 {
        rest[1..].iter().map(|c| c.parse()).collect::<Result<_, _>>()?
    } else {
        vec![1, 50]
    };

    let config = deskgate::config::load_file(&PathBuf::from(config)).map_err(|d| {
        for x in &d {
            eprintln!("{x}");
        }
        anyhow!("the config has problems")
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let gateway = deskgate::Gateway::new(config).await?;
    tokio::spawn(gateway.serve_until(listener, std::future::pending()));

    let run = std::sync::Arc::new(Run {
        base,
        provider: provider.clone(),
        username: username.clone(),
        password: password.clone(),
    });
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    run.once(&client).await.context("a first sign-in to warm up")?;
    println!("sign-ins through deskgate ({provider}), {count} per level");
    println!("{:>11} {:>10} {:>10} {:>10} {:>12}", "concurrent", "p50 ms", "p99 ms", "mean ms", "sign-ins/s");
    for level in levels {
        let began = Instant::now();
        let mut tasks = Vec::new();
        for worker in 0..level {
            let (run, client) = (run.clone(), client.clone());
            let share = count / level + usize::from(worker < count % level);
            tasks.push(tokio::spawn(async move {
                let mut took = Vec::with_capacity(share);
                for _ in 0..share {
                    took.push(run.once(&client).await?);
                }
                anyhow::Ok(took)
            }));
        }
        let mut all = Vec::with_capacity(count);
        for t in tasks {
            all.extend(t.await??);
        }
        let wall = began.elapsed();
        all.sort();
        let mean = all.iter().sum::<Duration>() / u32::try_from(all.len().max(1))?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{level:>11} {:>10.1} {:>10.1} {:>10.1} {:>12.1}",
            ms(percentile(&all, 0.50)),
            ms(percentile(&all, 0.99)),
            ms(mean),
            all.len() as f64 / wall.as_secs_f64()
        );
    }
    Ok(())
}
