//! Real servers on loopback: the helpdesk, and a JWKS endpoint standing in for deskgate's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use deskgate_helpdesk::Settings;
use ed25519_dalek::{Signer as _, SigningKey};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const ISSUER: &str = "http://127.0.0.1:8080";

/// A signing key with the id deskgate would publish it under.
pub struct Key {
    pub kid: String,
    pub signing: SigningKey,
}

impl Key {
    pub fn generate(kid: &str) -> Self {
        Self { kid: kid.to_owned(), signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    fn jwk(&self) -> Value {
        json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.signing.verifying_key().as_bytes()),
        })
    }

    /// A compact JWS of `claims` with deskgate's header.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid}), claims)
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", encode(header), encode(claims));
        let signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

pub fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// deskgate's JWKS endpoint, serving the keys the test publishes.
pub struct JwksServer {
    pub url: String,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    pub async fn start(keys: &[&Key]) -> Self {
        let keys: Vec<Value> = keys.iter().map(|key| key.jwk()).collect();
        let document = json!({ "keys": keys });
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/.deskgate/jwks.json",
            get({
                let fetches = Arc::clone(&fetches);
                move || {
                    let document = document.clone();
                    async move {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        Json(document)
                    }
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/.deskgate/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, fetches }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The helpdesk, served by its own `serve` on a free port.
pub struct Helpdesk {
    pub base: String,
    pub address: String,
    pub client: reqwest::Client,
}

impl Helpdesk {
    pub async fn start(settings: Settings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { deskgate_helpdesk::serve(listener, settings).await.unwrap() });
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { base: format!("http://{address}"), address, client }
    }

    pub async fn get(&self, path: &str, headers: &[(String, String)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }

    pub async fn page(&self, path: &str, headers: &[(String, String)]) -> String {
        let response = self.get(path, headers).await;
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap()
    }

    pub async fn whoami(&self, headers: &[(String, String)]) -> Value {
        self.get("/whoami", headers).await.json().await.unwrap()
    }
}

/// A deskgate account as the test describes it.
#[derive(Clone)]
pub struct Account {
    pub sub: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    pub usergroups: &'static [&'static str],
    pub permissions: &'static [&'static str],
}

impl Account {
    /// The helpdesk documentation's Power Users: advanced KB and unmoderated comments.
    pub fn power_user() -> Self {
        Self {
            sub: "acc-7",
            email: "zoe@example.com",
            name: "Zoë Müller",
            usergroups: &["everyone", "registered", "power_users"],
            permissions: &["kb.read", "news.read", "kb.category.advanced", "comments.unmoderated"],
        }
    }

    /// A plain Registered account.
    pub fn registered() -> Self {
        Self {
            sub: "acc-8",
            email: "bob@example.com",
            name: "Bob",
            usergroups: &["everyone", "registered"],
            permissions: &["kb.read", "news.read"],
        }
    }

    /// A VIP: support chat.
    pub fn vip() -> Self {
        Self {
            sub: "acc-9",
            email: "vera@example.com",
            name: "Vera",
            usergroups: &["everyone", "registered", "vips"],
            permissions: &["kb.read", "news.read", "chat.support"],
        }
    }

    pub fn claims(&self) -> Value {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        json!({
            "iss": ISSUER, "aud": "deskgate", "sub": self.sub, "iat": now, "exp": now + 300,
            "email": self.email, "name": self.name, "provider": "builtin",
            "usergroups": self.usergroups, "permissions": self.permissions,
        })
    }

    /// The plain headers deskgate sends for this account, without the JWT.
    pub fn plain_headers(&self) -> Vec<(String, String)> {
        vec![
            header("X-Deskgate-User", self.sub),
            header("X-Deskgate-Email", self.email),
            header("X-Deskgate-Name", &percent_encode(self.name)),
            header("X-Deskgate-Provider", "builtin"),
            header("X-Deskgate-Usergroups", &self.usergroups.join(",")),
            header("X-Deskgate-Permissions", &self.permissions.join(",")),
        ]
    }

    /// Every header deskgate sends for this account, with a token signed by `key`.
    pub fn headers(&self, key: &Key) -> Vec<(String, String)> {
        let mut headers = self.plain_headers();
        headers.push(header("X-Deskgate-Jwt", &key.token(&self.claims())));
        headers
    }
}

/// The headers deskgate sends for a guest.
pub fn guest(permissions: &str) -> Vec<(String, String)> {
    vec![header("X-Deskgate-Usergroups", "everyone"), header("X-Deskgate-Permissions", permissions)]
}

pub fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

/// Encodes what is not plain visible ASCII, the way deskgate sends names.
fn percent_encode(text: &str) -> String {
    if text.bytes().all(|byte| byte.is_ascii_graphic() || byte == b' ') {
        return text.to_owned();
    }
    text.bytes()
        .map(
            |byte| {
                if byte.is_ascii_alphanumeric() {
                    char::from(byte).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            },
        )
        .collect()
}

/// Settings for the helpdesk in front of `jwks`, checking deskgate's issuer.
pub fn settings(jwks: &JwksServer) -> Settings {
    let mut settings = Settings::new(jwks.url.clone());
    settings.issuer = Some(ISSUER.to_owned());
    settings
}
