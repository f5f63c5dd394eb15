//! `[registration]`, `[password_reset]` and `[smtp]`: who may sign up, and the mail that
//! validates addresses and resets passwords.

use std::time::Duration;

use super::Ctx;
use crate::config::file::*;
use crate::config::*;

/// `[registration]`; without a mode, sign-up is open, or off when there are no built-in
/// accounts to sign up for. With it `[password_reset]`, which shares `[smtp]`.
pub(super) fn registration(
    cx: &mut Ctx<'_>,
    f: Option<RegistrationFile>,
    smtp: Option<SmtpFile>,
    reset: Option<PasswordResetFile>,
    builtin_enabled: bool,
) -> (Registration, Option<PasswordReset>) {
    let mode = f.and_then(|r| r.mode);
    let registration = match mode.as_deref() {
        None if !builtin_enabled => Registration::Disabled,
        None | Some("open") => Registration::Open,
        Some("approval") => Registration::Approval,
        Some("disabled") => Registration::Disabled,
        Some("email-validation") => match &smtp {
            Some(s) => Registration::EmailValidation(self::smtp(cx, s)),
            None => {
                cx.problem("registration.mode", "`email-validation` needs an [smtp] table to send the links");
                Registration::Open
            }
        },
        Some(other) => {
            cx.problem(
                "registration.mode",
                format!("`{other}` is not one of `open`, `email-validation`, `approval`, `disabled`"),
            );
            Registration::Open
        }
    };
    let reset_enabled = reset.as_ref().and_then(|r| r.enabled).unwrap_or(false);
    let password_reset = match (&reset, &smtp) {
        (Some(r), Some(s)) if reset_enabled => {
            if !builtin_enabled {
                cx.problem(
                    "password_reset.enabled",
                    "password reset needs built-in accounts, which are disabled",
                );
            }
            let ttl = cx.duration("password_reset.ttl", r.ttl.as_ref(), Duration::from_secs(3600));
            if ttl > Duration::from_secs(24 * 3600) {
                cx.problem(
                    "password_reset.ttl",
                    "must be at most 24h: a reset link is as good as the password",
                );
            }
            // Problems of [smtp] are reported once, by registration when it uses it too.
            let smtp = match &registration {
                Registration::EmailValidation(s) => s.clone(),
                _ => self::smtp(cx, s),
            };
            Some(PasswordReset { smtp, ttl })
        }
        (Some(_), None) if reset_enabled => {
            cx.problem("password_reset.enabled", "password reset needs an [smtp] table to send the links");
            None
        }
        _ => None,
    };
    if smtp.is_some() && mode.as_deref() != Some("email-validation") && password_reset.is_none() {
        cx.problem(
            "smtp",
            "[smtp] is only used when registration.mode is `email-validation` or [password_reset] is enabled",
        );
    }
    (registration, password_reset)
}

fn smtp(cx: &mut Ctx<'_>, f: &SmtpFile) -> Smtp {
    let host = f.host.clone().unwrap_or_default();
    if host.trim().is_empty() {
        cx.problem("smtp.host", "the mail server's host is required");
    }
    let port = f.port.unwrap_or(25);
    if port == 0 {
        cx.problem("smtp.port", "must be between 1 and 65535");
    }
    let from = f.from.clone().unwrap_or_default();
    if from.trim().is_empty() {
        cx.problem("smtp.from", "the sender address is required");
    } else if from.parse::<lettre::message::Mailbox>().is_err() {
        cx.problem("smtp.from", format!("`{from}` is not a mail address"));
    }
    if f.starttls == Some(true) {
        cx.problem(
            "smtp.starttls",
            "STARTTLS is not supported: use plain SMTP to a relay on loopback or a private network",
        );
    }
    let credentials = match (&f.username, &f.password_file) {
        (Some(user), Some(file)) => match std::fs::read_to_string(cx.base.join(file)) {
            Ok(p) => Some((user.clone(), Password(p.trim().to_owned()))),
            Err(e) => {
                cx.unreadable("smtp.password_file", &cx.base.join(file), &e);
                None
            }
        },
        (None, None) => None,
        (Some(_), None) => {
            cx.problem("smtp.password_file", "set together with smtp.username");
            None
        }
        (None, Some(_)) => {
            cx.problem("smtp.username", "set together with smtp.password_file");
            None
        }
    };
    let validation_ttl =
        cx.duration("smtp.validation_ttl", f.validation_ttl.as_ref(), Duration::from_secs(24 * 3600));
    let body = f.body.clone().unwrap_or_else(|| DEFAULT_BODY.to_owned());
    if !body.contains("{link}") {
        cx.problem("smtp.body", "the body must contain `{link}`");
    }
    Smtp {
        host,
        port,
        from,
        credentials,
        validation_ttl,
        subject: f.subject.clone().unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
        body,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Registration, load_str};

    fn registration(tables: &str) -> Result<Registration, Vec<String>> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n{tables}\n");
        load_str("t.toml", &text, std::path::Path::new("/srv"))
            .map(|c| c.registration)
            .map_err(|ds| ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect())
    }

    #[test]
    fn every_mode_compiles_with_its_defaults() {
        assert_eq!(registration("").expect("open"), Registration::Open);
        assert_eq!(registration("[registration]\nmode = \"approval\"").expect("ok"), Registration::Approval);
        let r = registration(
            "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"127.0.0.1\"\nfrom = \"noreply@example.com\"",
        )
        .expect("ok");
        let Registration::EmailValidation(smtp) = r else { panic!("{r:?}") };
        assert_eq!((smtp.port, smtp.validation_ttl), (25, Duration::from_secs(86_400)));
        assert!(smtp.body.contains("{link}") && smtp.credentials.is_none());
    }

    #[test]
    fn password_reset_needs_smtp_and_a_short_ttl() {
        let load = |tables: &str| {
            let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n{tables}\n");
            load_str("t.toml", &text, std::path::Path::new("/srv")).map(|c| c.password_reset).map_err(|ds| {
                ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect::<Vec<_>>()
            })
        };
        let smtp = "[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"";
        let r = load(&format!("[password_reset]\nenabled = true\n{smtp}")).expect("ok").expect("enabled");
        assert_eq!(r.ttl, Duration::from_secs(3600));
        assert_eq!(load("[password_reset]\nenabled = false").expect("off"), None);
        for (tables, expected) in [
            (
                "[password_reset]\nenabled = true".to_owned(),
                "password_reset.enabled: password reset needs an [smtp]",
            ),
            (
                format!("[password_reset]\nenabled = true\nttl = \"48h\"\n{smtp}"),
                "password_reset.ttl: must be at most 24h",
            ),
            (format!("[password_reset]\nenabled = false\n{smtp}"), "smtp: [smtp] is only used when"),
        ] {
            let problems = load(&tables).expect_err(&tables);
            assert!(problems.iter().any(|p| p.starts_with(expected)), "{tables}: {problems:?}");
        }
    }

    #[test]
    fn contradictions_are_problems_at_their_keys() {
        for (tables, expected) in [
            (
                "[registration]\nmode = \"email-validation\"",
                "registration.mode: `email-validation` needs an [smtp]",
            ),
            ("[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"", "smtp: [smtp] is only used when"),
            (
                "[registration]\nmode = \"approval\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"",
                "smtp: [smtp] is only used when",
            ),
            ("[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"", "smtp.from: the sender"),
            ("[registration]\nmode = \"email-validation\"\n[smtp]\nfrom = \"a@b.c\"", "smtp.host:"),
            (
                "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nstarttls = true",
                "smtp.starttls: STARTTLS is not supported",
            ),
            (
                "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nusername = \"u\"",
                "smtp.password_file:",
            ),
            (
                "[registration]\nmode = \"email-validation\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\nbody = \"no link\"",
                "smtp.body: the body must contain",
            ),
            ("[registration]\nmode = \"invite\"", "registration.mode: `invite` is not one of"),
        ] {
            let problems = registration(tables).expect_err(tables);
            assert!(problems.iter().any(|p| p.starts_with(expected)), "{tables}: {problems:?}");
        }
    }
}
