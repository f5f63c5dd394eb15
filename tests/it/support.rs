//! The harness: the example helpdesk as the real upstream, a real gateway in front of it on
//! loopback, a small browser with a cookie jar, and a raw HTTP/1.1 client for requests that
//! an ordinary client would tidy up before sending.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use deskgate::Gateway;
use deskgate::clock::Clock;
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The usergroups and rules of the helpdesk documentation, as every test starts from.
pub const HELPDESK: &str = r#"
[everyone]
enabled = true
permissions = ["portal.view", "kb.read", "news.read"]

[registered]
permissions = ["tickets.read"]

[usergroups.power_users]
name = "Power Users"
permissions = ["kb.category.advanced", "comments.unmoderated"]

[usergroups.trial_users]
name = "Trial Users"
permissions = ["chat.sales"]

[usergroups.vips]
name = "VIPs"
permissions = ["chat.support"]

[organizations.acme]
domains = ["acme.example"]
usergroups = ["trial_users"]

[[rules]]
path = "/"
permission = "portal.view"

[[rules]]
path = "/kb"
permission = "kb.read"

[[rules]]
path = "/kb/advanced"
permission = "kb.category.advanced"

[[rules]]
path = "/news"
permission = "news.read"

[[rules]]
path = "/chat/sales"
permission = "chat.sales"

[[rules]]
path = "/chat/support"
permission = "chat.support"

[[rules]]
path = "/api/tickets"
permission = "tickets.read"
"#;

/// A fresh temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("deskgate-it-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Redis key prefix of one test; every key under it is deleted when it is dropped, so a
/// test leaves nothing in the shared Redis (epochs, for one, have no expiry).
pub struct RedisPrefix {
    url: String,
    prefix: String,
}

impl RedisPrefix {
    pub fn new(url: &str) -> RedisPrefix {
        RedisPrefix { url: url.to_owned(), prefix: format!("deskgate-it-{:x}:", rand::random::<u64>()) }
    }
}

impl std::fmt::Display for RedisPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.prefix)
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let Ok(mut conn) = redis::Client::open(self.url.as_str()).and_then(|c| c.get_connection()) else {
            return;
        };
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut conn).unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// A running gateway in front of a running helpdesk.
pub struct Stack {
    pub addr: SocketAddr,
    pub base: String,
    pub clock: Clock,
    /// Holds the config and account database until the stack is dropped.
    pub _dir: TempDir,
    pub config_path: PathBuf,
    pub gateway: deskgate::state::AppState,
    /// Reloads the running gateway's config.
    pub reloader: deskgate::app::Reloader,
}

/// Options for [`start`].
pub struct Options {
    /// Extra keys of the `[server]` table.
    pub server: String,
    /// Extra TOML tables placed before the helpdesk model (registration, session, ...).
    pub head: String,
    /// The model and rules; [`HELPDESK`] by default.
    pub model: String,
    /// Upstream URL; the example helpdesk when `None`.
    pub upstream: Option<String>,
    /// A fixed port, for tests whose callback URL a peer must know in advance.
    pub port: Option<u16>,
    /// Files written beside the config (name, contents), e.g. secrets its keys name by a
    /// relative path; removed with the stack.
    pub files: Vec<(&'static str, &'static str)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server: String::new(),
            head: String::new(),
            model: HELPDESK.to_owned(),
            upstream: None,
            port: None,
            files: Vec::new(),
        }
    }
}

pub async fn start(options: Options) -> Stack {
    let dir = TempDir::new();
    let gate_listener =
        TcpListener::bind(("127.0.0.1", options.port.unwrap_or(0))).await.expect("bind gateway");
    let addr = gate_listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let upstream = match options.upstream {
        Some(u) => u,
        None => {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind helpdesk");
            let up = listener.local_addr().expect("addr");
            let mut settings = deskgate_helpdesk::Settings::new(format!("{base}/.deskgate/jwks.json"));
            settings.issuer = Some(base.clone());
            tokio::spawn(deskgate_helpdesk::serve(listener, settings));
            format!("http://{up}")
        }
    };
    let public_url = if options.server.contains("public_url") {
        String::new()
    } else {
        format!("public_url = \"{base}\"")
    };
    let text = format!(
        "[server]\n{public_url}\n{server}\n{head}\n[upstream]\nurl = \"{upstream}\"\ntimeout = \"2s\"\n\n[storage]\naccounts = \"sqlite://accounts.db\"\n{model}",
        server = options.server,
        head = options.head,
        model = options.model,
    );
    for (name, contents) in &options.files {
        std::fs::write(dir.0.join(name), contents).expect("write a file beside the config");
    }
    let config_path = dir.0.join("deskgate.toml");
    std::fs::write(&config_path, text.replace("PUBLIC_URL", &base)).expect("write config");
    let config = deskgate::config::load_file(&config_path).unwrap_or_else(|d| panic!("config: {d:?}"));
    // Starts at the real time: the helpdesk checks token times against its own clock.
    let clock = Clock::manual(Clock::system().now());
    let gateway = Gateway::with_clock(config, clock.clone()).await.expect("gateway starts");
    let state = gateway.state().clone();
    let reloader = gateway.reloader();
    tokio::spawn(gateway.serve_until(gate_listener, std::future::pending()));
    Stack { addr, base, clock, _dir: dir, config_path, gateway: state, reloader }
}

/// A browser: follows no redirects by itself, keeps cookies by hand so tests can see them.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The value of a hidden form field.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&#39;", "'"))
    }
}

impl Browser {
    pub fn new(stack: &Stack) -> Browser {
        let client = reqwest::Client::builder().redirect(Policy::none()).build().expect("client");
        Browser { base: stack.base.clone(), client, cookies: BTreeMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().expect("ascii cookie");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Page { status, headers, body: resp.text().await.expect("body") }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("request");
        self.finish(resp).await
    }

    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base)).header("cookie", self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        self.finish(resp).await
    }

    /// Sends `method` to `path` with the session's cookies, `headers` and, if given, `body`.
    pub async fn send_with(
        &mut self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&'static str>,
    ) -> Page {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", self.cookie_header());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let resp = req.send().await.expect("request");
        self.finish(resp).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("request");
        self.finish(resp).await
    }

    /// Posts a form with extra request headers (e.g. `X-Forwarded-For` behind a trusted proxy).
    pub async fn post_with(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("cookie", self.cookie_header())
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        self.finish(resp).await
    }

    /// What the backend saw, as its `/whoami` reports.
    pub async fn whoami(&mut self) -> Value {
        let page = self.get_with("/whoami", &[("accept", "application/json")]).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.json()
    }

    /// Whether deskgate told the backend this browser is signed in.
    pub async fn is_signed_in(&mut self) -> bool {
        self.whoami().await["headers"].get("x-deskgate-user").is_some()
    }

    pub fn session_cookie(&self) -> Option<String> {
        self.cookies.get("deskgate_session").cloned()
    }

    /// Loads the login page (for its CSRF token) and signs in.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.sign_in_next(email, password, "/").await
    }

    /// A CSRF token for this browser, from whichever form page it is shown.
    pub async fn csrf(&mut self) -> String {
        let login = self.get("/.deskgate/login").await;
        let page = if login.status == 200 { login } else { self.get("/.deskgate/logout").await };
        page.field("csrf").expect("csrf field")
    }

    pub async fn sign_in_next(&mut self, email: &str, password: &str, next: &str) -> Page {
        let csrf = self.csrf().await;
        self.post(
            "/.deskgate/login",
            &[("email", email), ("password", password), ("csrf", &csrf), ("next", next)],
        )
        .await
    }

    pub async fn sign_up(&mut self, name: &str, email: &str, password: &str) -> Page {
        let form = self.get("/.deskgate/register").await;
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = form.field("csrf").expect("csrf field");
        self.post(
            "/.deskgate/register",
            &[
                ("name", name),
                ("email", email),
                ("password", password),
                ("confirm", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    pub async fn sign_out(&mut self) -> Page {
        let page = self.get("/.deskgate/logout").await;
        let csrf = page.field("csrf").expect("csrf field");
        self.post("/.deskgate/logout", &[("csrf", &csrf)]).await
    }
}

/// Creates a built-in account directly in the stack's store, with assigned usergroups.
pub async fn account(stack: &Stack, email: &str, name: &str, password: &str, usergroups: &[&str]) -> String {
    use deskgate::accounts::{AccountStore, NewAccount};
    let hash = deskgate_builtin::hash_password(password).expect("hash");
    let a = stack
        .gateway
        .accounts
        .create(NewAccount {
            email: Some(email.into()),
            // As an administrator makes it: the address is verified and grants by email apply.
            email_verified: true,
            name: name.into(),
            password_hash: Some(hash),
            usergroups: usergroups.iter().map(|g| g.to_string()).collect(),
            created_at: stack.clock.now(),
            ..Default::default()
        })
        .await
        .expect("create account");
    a.id
}

/// A browser already signed in as a new account in `usergroups`.
pub async fn signed_in(stack: &Stack, email: &str, usergroups: &[&str]) -> Browser {
    account(stack, email, "Test Person", "correct horse battery", usergroups).await;
    let mut b = Browser::new(stack);
    let page = b.sign_in(email, "correct horse battery").await;
    assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
    b
}

/// A raw HTTP/1.1 exchange, for request targets and header spellings that a client library
/// would normalize. Returns the status and the body.
pub async fn raw(addr: SocketAddr, request_line_target: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {request_line_target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    let body =
        if text.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(&body) } else { body };
    (status, body)
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A peer's address from the environment. Missing: under `CI=true` the test fails; elsewhere
/// it says SKIP loudly and the test returns.
pub fn peer(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{var} is not set: under CI the test suite must start its peers (bash tests/run)")
        }
        _ => {
            eprintln!("\n*** SKIP: {var} is not set; run `bash tests/run` to start the real peers ***\n");
            None
        }
    }
}

impl Browser {
    /// Signs in through the login form with a chosen provider.
    pub async fn sign_in_with(&mut self, provider: &str, username: &str, password: &str) -> Page {
        let csrf = self.csrf().await;
        self.post(
            "/.deskgate/login",
            &[("provider", provider), ("username", username), ("password", password), ("csrf", &csrf)],
        )
        .await
    }
}

/// `deskgate serve --config CONFIG` run in `dir` with `RUST_LOG=info`, its standard output
/// written to `stdout` when given; returns once `addr` takes connections.
pub async fn serve_cli(
    dir: &std::path::Path,
    config: &std::path::Path,
    stdout: Option<&std::path::Path>,
    addr: SocketAddr,
) -> tokio::process::Child {
    let out = match stdout {
        Some(p) => std::process::Stdio::from(std::fs::File::create(p).expect("log file")),
        None => std::process::Stdio::null(),
    };
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .current_dir(dir)
        .stdout(out)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("deskgate serve starts");
    let began = std::time::Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        assert!(began.elapsed() < std::time::Duration::from_secs(20), "deskgate serve did not come up");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child
}

/// `deskgate accounts add` for `email`, with `password` on its standard input.
pub fn add_account_cli(
    dir: &std::path::Path,
    config: &std::path::Path,
    email: &str,
    name: &str,
    password: &str,
) {
    use std::io::Write as _;
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_deskgate"))
        .args(["accounts", "add", "--config"])
        .arg(config)
        .args(["--email", email, "--name", name])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("deskgate accounts add starts");
    add.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("password");
    assert!(add.wait().expect("deskgate accounts add ends").success());
}
