//! Notes `deskgate check` prints about a valid config that invites a mistake: not errors
//! (the config is sound), but settings whose effect an administrator may not expect.

use super::{Config, Registration};

/// Notes on `config`, each naming the keys it is about.
pub fn notes(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    unverified_grants(config, &mut out);
    // Said every time, so that where traffic goes and who may skip the cookie is never a surprise.
    if !config.routes.all().is_empty() {
        let routes: Vec<String> = config.routes.all().iter().map(crate::routes::Route::describe).collect();
        out.push(format!("routes (most specific first): {}", routes.join(", ")));
    }
    for id in config.upstreams.keys() {
        if !config.routes.all().iter().any(|r| &r.upstream == id) {
            out.push(format!("upstreams.{id}: no route sends requests to it"));
        }
    }
    #[cfg(feature = "oidc")]
    for p in config.oidc.iter().filter(|p| p.oidc.accepts_bearer()) {
        out.push(format!(
            "providers.oidc.{}.bearer_audiences: its tokens are accepted as `Authorization: Bearer` on every proxied request",
            p.key
        ));
    }
    out
}

fn unverified_grants(config: &Config, out: &mut Vec<String>) {
    let mode = match config.registration {
        Registration::Open => "open",
        Registration::Approval => "approval",
        Registration::EmailValidation(_) | Registration::Disabled => return,
    };
    let mut keys: Vec<String> = config
        .model
        .organizations
        .iter()
        .filter(|o| !o.domains.is_empty())
        .map(|o| format!("organizations.{}.domains", o.id))
        .collect();
    if !config.model.assignments.is_empty() {
        keys.push("assignments[].email".into());
    }
    if !keys.is_empty() {
        out.push(format!(
            "registration.mode = \"{mode}\" with {}: a self-registered address is not verified, so these \
             grants by email do not apply to it until the address is verified (mode = \"email-validation\", \
             an administrator setting it, or a provider vouching for it)",
            keys.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        super::super::load_str("t.toml", text, std::path::Path::new(".")).expect("valid")
    }

    const MODEL: &str = "[upstream]\nurl = \"http://127.0.0.1:1\"\n[[rules]]\npath = \"/\"\npermission = \"p\"\n\
        [registered]\npermissions = [\"p\"]\n[usergroups.vips]\npermissions = [\"p\"]\n";

    #[test]
    fn open_registration_with_grants_by_email_gets_a_note_naming_the_keys() {
        let text = format!(
            "{MODEL}[organizations.acme]\ndomains = [\"acme.example\"]\nusergroups = [\"vips\"]\n\
             [[assignments]]\nemail = \"a@b.example\"\nusergroups = [\"vips\"]\n"
        );
        let got = notes(&config(&text));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with(
            "registration.mode = \"open\" with organizations.acme.domains, assignments[].email:"
        ));
        let disabled = format!("[registration]\nmode = \"disabled\"\n{text}");
        assert!(notes(&config(&disabled)).is_empty());
        assert!(notes(&config(MODEL)).is_empty(), "nothing granted by email, nothing to say");
    }

    #[test]
    fn routes_and_unused_upstreams_are_named() {
        let text = format!(
            "[registration]\nmode = \"disabled\"\n{MODEL}[upstreams.api]\nurl = \"http://127.0.0.1:2\"\n\
             [upstreams.spare]\nurl = \"http://127.0.0.1:3\"\n[[routes]]\nprefix = \"/api\"\nupstream = \"api\"\n\
             [[routes]]\nhost = \"chat.example.com\"\nprefix = \"/ws\"\nupstream = \"api\"\n"
        );
        assert_eq!(
            notes(&config(&text)),
            [
                "routes (most specific first): chat.example.com/ws → api, /api → api",
                "upstreams.spare: no route sends requests to it",
            ]
        );
    }
}
