//! HTTPS on the listener: HTTP/2 and HTTP/1.1 by ALPN to a real client (curl), a renewed
//! certificate served after SIGHUP with sessions kept, the plain-HTTP redirect listener, HSTS.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Browser, HELPDESK, TempDir};

/// A test CA and a way to issue server certificates for 127.0.0.1 under it.
pub(crate) struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pub(crate) pem: String,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "deskgate test CA");
        let cert = params.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: rcgen::Issuer::new(params, key) }
    }

    /// Writes a certificate for 127.0.0.1 named `name` and its key to `cert` and `key`.
    fn issue(&self, name: &str, cert: &Path, key: &Path) {
        self.issue_for(name, &["127.0.0.1", "localhost"], cert, key);
    }

    /// Writes a certificate named `name` (its common name) for the host names and addresses
    /// `hosts`, and its key, to `cert` and `key`.
    pub(crate) fn issue_for(&self, name: &str, hosts: &[&str], cert: &Path, key: &Path) {
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let leaf = params.signed_by(&leaf_key, &self.issuer).unwrap();
        std::fs::write(cert, format!("{}{}", leaf.pem(), self.pem)).unwrap();
        std::fs::write(key, leaf_key.serialize_pem()).unwrap();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs curl; returns its standard output and error.
fn curl(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn https_serves_http2_and_http1_renews_its_certificate_on_sighup_and_redirects_plain_http() {
    let dir = TempDir::new();
    let ca = Ca::new();
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    ca.issue("first certificate", &cert, &key);
    let (port, plain) = (free_port(), free_port());
    let upstream = crate::scale::helpdesk().await;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"https://127.0.0.1:{port}\"\n\
         [server.tls]\ncert_file = \"cert.pem\"\nkey_file = \"key.pem\"\nredirect_listen = \"127.0.0.1:{plain}\"\n\
         hsts_max_age = \"365d\"\n\
         [upstream]\nurl = \"{upstream}\"\n[storage]\naccounts = \"sqlite://accounts.db\"\n{HELPDESK}"
    );
    let path = dir.0.join("deskgate.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.0.join("deskgate.log");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = crate::support::serve_cli(&dir.0, &path, Some(&log), addr).await;
    let base = format!("https://127.0.0.1:{port}");
    let ca_arg = ca_file.to_str().unwrap();

    // HTTP/2 and HTTP/1.1, chosen by ALPN; HSTS on the answers.
    let login = format!("{base}/.deskgate/login");
    let (h2, err) = curl(&[
        "--cacert",
        ca_arg,
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &login,
    ]);
    assert_eq!(h2, "2 200", "{err}");
    let (h1, err) = curl(&["--cacert", ca_arg, "--http1.1", "-D", "-", "-o", "/dev/null", &login]);
    assert!(h1.starts_with("HTTP/1.1 200"), "{h1}{err}");
    assert!(h1.to_ascii_lowercase().contains("strict-transport-security: max-age=31536000"), "{h1}");
    assert!(h1.to_ascii_lowercase().contains("secure"), "cookies over https are Secure: {h1}");
    // An untrusted client is refused at the handshake.
    let (_, refused) = curl(&["-o", "/dev/null", &login]);
    assert!(refused.contains("certificate"), "{refused}");

    // A guest session kept across the renewal: the CSRF cookie set before still verifies.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut browser = Browser { base: base.clone(), client, cookies: Default::default() };
    let csrf = browser.csrf().await;
    assert!(!csrf.is_empty());

    // The plain listener only redirects, to the configured host whatever Host says.
    let (redirect, err) = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Host: evil.example",
        &format!("http://127.0.0.1:{plain}/kb?x=1"),
    ]);
    assert!(redirect.starts_with("HTTP/1.1 308"), "{redirect}{err}");
    assert!(redirect.contains(&format!("location: {base}/kb?x=1")), "{redirect}");

    // Renewal: new files, SIGHUP, the new certificate is served without a restart.
    let (_, verbose) = curl(&["--cacert", ca_arg, "-v", "-o", "/dev/null", &login]);
    assert!(verbose.contains("first certificate"), "{verbose}");
    ca.issue("renewed certificate", &cert, &key);
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let began = Instant::now();
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("Config reloaded") {
        assert!(began.elapsed() < Duration::from_secs(10), "no reload in the log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, verbose) = curl(&["--cacert", ca_arg, "-v", "-o", "/dev/null", &login]);
    assert!(verbose.contains("renewed certificate"), "{verbose}");
    let form = browser
        .post(
            "/.deskgate/login",
            &[("username", "nobody@example.org"), ("password", "wrong password"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(form.status, 401, "the form from before the renewal still posts: {}", form.body);
    child.kill().await.unwrap();
}
