//! Just enough of a browser for the provider's pages: cookies, redirects followed by hand
//! up to the callback, and the login form.

use std::collections::BTreeMap;

use url::Url;

use crate::CALLBACK;

/// A cookie-keeping client that never follows a redirect by itself.
pub struct Browser {
    http: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

struct Page {
    location: Option<Url>,
    body: String,
}

enum Step {
    Get(Url),
    Post(Url, Vec<(&'static str, String)>),
}

impl Default for Browser {
    fn default() -> Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("client");
        Browser { http, cookies: BTreeMap::new() }
    }
}

impl Browser {
    /// Follows `authorize` to the login form, posts `email` and `password`, and follows on to
    /// the redirect to the callback, which it returns. A page instead (e.g. the form again,
    /// after a wrong password) is returned as the error.
    pub async fn sign_in(&mut self, authorize: &str, email: &str, password: &str) -> Result<Url, String> {
        let form = vec![("email", email.to_owned()), ("password", password.to_owned())];
        self.walk(authorize, "/login", form).await
    }

    /// Follows `authorize` to the login form and presses its Cancel button.
    pub async fn cancel(&mut self, authorize: &str) -> Result<Url, String> {
        self.walk(authorize, "/abort", Vec::new()).await
    }

    async fn walk(
        &mut self,
        authorize: &str,
        action_suffix: &str,
        form: Vec<(&'static str, String)>,
    ) -> Result<Url, String> {
        let mut step = Step::Get(Url::parse(authorize).expect("authorization URL"));
        let mut submitted = false;
        for _ in 0..12 {
            let (page, here) = match step {
                Step::Get(url) => (self.send(self.http.get(url.clone())).await, url),
                Step::Post(url, fields) => (self.send(self.http.post(url.clone()).form(&fields)).await, url),
            };
            if let Some(location) = page.location {
                if location.as_str().starts_with(&format!("{CALLBACK}?")) {
                    return Ok(location);
                }
                step = Step::Get(location);
                continue;
            }
            if submitted {
                return Err(page.body);
            }
            let action = form_action(&page.body, action_suffix).ok_or_else(|| page.body.clone())?;
            step = Step::Post(here.join(&action).expect("form action"), form.clone());
            submitted = true;
        }
        Err("too many redirects".into())
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = if cookie.is_empty() { request } else { request.header("cookie", cookie.join("; ")) };
        let response = request.send().await.expect("the provider answers");
        let url = response.url().clone();
        for set in response.headers().get_all("set-cookie") {
            self.remember(set.to_str().expect("ascii cookie"));
        }
        let location = response
            .headers()
            .get("location")
            .map(|l| url.join(l.to_str().expect("ascii location")).expect("location URL"));
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(location.is_some() || status.is_success(), "the provider answered {status} at {url}: {body}");
        Page { location, body }
    }

    fn remember(&mut self, set_cookie: &str) {
        let mut attributes = set_cookie.split(';').map(str::trim);
        let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('=')) else {
            return;
        };
        let expired = attributes.any(|a| {
            let lower = a.to_ascii_lowercase();
            lower == "max-age=0" || lower.starts_with("expires=thu, 01 jan 1970")
        });
        if expired || value.is_empty() {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// The `action` of the page's form whose action ends with `suffix`.
fn form_action(html: &str, suffix: &str) -> Option<String> {
    html.split("action=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|action| action.ends_with(suffix))
        .map(str::to_owned)
}
