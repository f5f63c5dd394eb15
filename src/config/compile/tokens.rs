//! `[api_tokens]`: how long a new API token may live and how many one account may hold.

use std::time::Duration;

use super::Ctx;
use crate::config::ApiTokens;
use crate::config::file::ApiTokensFile;

/// Ten years: past that an expiry is no expiry.
const LONGEST: Duration = Duration::from_secs(3650 * 86_400);

pub(super) fn api_tokens(cx: &mut Ctx<'_>, f: ApiTokensFile) -> ApiTokens {
    let default = ApiTokens { max_ttl: Duration::from_secs(90 * 86_400), max_per_account: 20 };
    let mut max_ttl = cx.duration("api_tokens.max_ttl", f.max_ttl.as_ref(), default.max_ttl);
    if max_ttl < Duration::from_secs(3600) {
        cx.problem("api_tokens.max_ttl", "must be at least 1h");
        max_ttl = default.max_ttl;
    } else if max_ttl > LONGEST {
        cx.problem("api_tokens.max_ttl", "must be at most 3650d");
        max_ttl = default.max_ttl;
    }
    let max_per_account = match f.max_per_account {
        Some(0) => {
            cx.problem("api_tokens.max_per_account", "must be at least 1");
            default.max_per_account
        }
        Some(n) if n > 1000 => {
            cx.problem("api_tokens.max_per_account", "must be at most 1000");
            default.max_per_account
        }
        Some(n) => n,
        None => default.max_per_account,
    };
    ApiTokens { max_ttl, max_per_account }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn load(text: &str) -> Result<crate::config::ApiTokens, String> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n{text}\n");
        load_str("t.toml", &text, std::path::Path::new("/srv")).map(|c| c.api_tokens).map_err(|ds| {
            ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect::<Vec<_>>().join("\n")
        })
    }

    #[test]
    fn token_limits_have_defaults_and_refuse_nonsense_naming_the_key() {
        let d = load("").expect("defaults");
        assert_eq!((d.max_ttl.as_secs(), d.max_per_account), (90 * 86_400, 20));
        let set = load("[api_tokens]\nmax_ttl = \"30d\"\nmax_per_account = 5").expect("set");
        assert_eq!((set.max_ttl.as_secs(), set.max_per_account), (30 * 86_400, 5));
        for (text, expected) in [
            ("[api_tokens]\nmax_ttl = \"10m\"", "api_tokens.max_ttl: must be at least 1h"),
            ("[api_tokens]\nmax_ttl = \"9999d\"", "api_tokens.max_ttl: must be at most 3650d"),
            ("[api_tokens]\nmax_ttl = \"soon\"", "api_tokens.max_ttl"),
            ("[api_tokens]\nmax_per_account = 0", "api_tokens.max_per_account: must be at least 1"),
            ("[api_tokens]\nmax_age = \"1d\"", "api_tokens.max_age"),
        ] {
            let e = load(text).expect_err(text);
            assert!(e.contains(expected), "{text}: {e}");
        }
    }
}
