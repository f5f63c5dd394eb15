//! Notes `deskgate check` prints about a valid config that invites a mistake: not errors
//! (the config is sound), but settings whose effect an administrator may not expect.

use super::{Config, Registration};

/// Notes on `config`, each naming the keys it is about.
pub fn notes(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let mode = match config.registration {
        Registration::Open => "open",
        Registration::Approval => "approval",
        Registration::EmailValidation(_) | Registration::Disabled => return out,
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
    out
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
}
