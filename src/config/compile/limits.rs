//! `[rate_limit]` and `[limits]`: sign-in attempt limits and the bounds on what requests
//! from nobody signed in may make the gateway keep or do.

use std::time::Duration;

use super::Ctx;
use crate::config::file::{LimitsFile, RateLimitFile};
use crate::config::{Limits, RateLimit};

pub(super) fn rate_limit(cx: &mut Ctx<'_>, rl: RateLimitFile) -> RateLimit {
    let out = RateLimit {
        window: cx.duration("rate_limit.window", rl.window.as_ref(), Duration::from_secs(900)),
        per_account: rl.per_account.unwrap_or(5),
        per_address: rl.per_address.unwrap_or(20),
        per_account_and_address: rl.per_account_and_address.unwrap_or(5),
        max_delay: cx.duration("rate_limit.max_delay", rl.max_delay.as_ref(), Duration::from_secs(10)),
    };
    for (key, value) in [
        ("per_account", out.per_account),
        ("per_address", out.per_address),
        ("per_account_and_address", out.per_account_and_address),
    ] {
        if value == 0 {
            cx.problem(format!("rate_limit.{key}"), "must be at least 1");
        }
    }
    if out.max_delay > Duration::from_secs(60) {
        cx.problem("rate_limit.max_delay", "must be at most 1m: a longer wait only holds connections open");
    }
    out
}

pub(super) fn limits(cx: &mut Ctx<'_>, f: LimitsFile) -> Limits {
    let at_least_one = |cx: &mut Ctx<'_>, key: &str, value: Option<u64>, default: u64| match value {
        Some(0) => {
            cx.problem(format!("limits.{key}"), "must be at least 1");
            default
        }
        Some(v) => v,
        None => default,
    };
    let memory_counters = at_least_one(cx, "memory_counters", f.memory_counters, 100_000);
    let memory_one_time_values =
        at_least_one(cx, "memory_one_time_values", f.memory_one_time_values, 100_000);
    let hashing_memory_mib = at_least_one(cx, "hashing_memory_mib", f.hashing_memory_mib.map(u64::from), 256);
    if hashing_memory_mib < 19 {
        cx.problem("limits.hashing_memory_mib", "must be at least 19: one password check takes 19 MiB");
    }
    let sign_ups_per_address =
        at_least_one(cx, "sign_ups_per_address", f.sign_ups_per_address.map(u64::from), 5);
    let sign_ups_total = at_least_one(cx, "sign_ups_total", f.sign_ups_total.map(u64::from), 100);
    let pending_sign_ups = at_least_one(cx, "pending_sign_ups", f.pending_sign_ups, 1_000);
    let validation_mails_per_address =
        at_least_one(cx, "validation_mails_per_address", f.validation_mails_per_address.map(u64::from), 5);
    let validation_mails_total =
        at_least_one(cx, "validation_mails_total", f.validation_mails_total.map(u64::from), 100);
    let hashing_wait = cx.duration("limits.hashing_wait", f.hashing_wait.as_ref(), Duration::from_secs(2));
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let wide = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Limits {
        memory_counters: wide(memory_counters),
        memory_one_time_values: wide(memory_one_time_values),
        hashing: deskgate_builtin::HashingLimits::sized(
            wide(u64::from(f.hashing_concurrency.unwrap_or(0))),
            narrow(hashing_memory_mib),
            hashing_wait,
        ),
        sign_up_window: cx.duration(
            "limits.sign_up_window",
            f.sign_up_window.as_ref(),
            Duration::from_secs(3600),
        ),
        sign_ups_per_address: narrow(sign_ups_per_address),
        sign_ups_total: narrow(sign_ups_total),
        pending_sign_ups,
        validation_mails_per_address: narrow(validation_mails_per_address),
        validation_mails_total: narrow(validation_mails_total),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, load_str};

    fn load(tables: &str) -> Result<Config, Vec<String>> {
        let text = format!("[upstream]\nurl = \"http://127.0.0.1:8081\"\n{tables}\n");
        load_str("t.toml", &text, std::path::Path::new("/srv"))
            .map_err(|ds| ds.into_iter().map(|d| format!("{}: {}", d.path, d.message)).collect())
    }

    #[test]
    fn the_defaults_are_the_ones_the_reference_states() {
        let c = load("").expect("defaults");
        let rl = c.rate_limit;
        assert_eq!((rl.window, rl.per_account, rl.per_address), (Duration::from_secs(900), 5, 20));
        assert_eq!((rl.per_account_and_address, rl.max_delay), (5, Duration::from_secs(10)));
        let l = c.limits;
        assert_eq!((l.memory_counters, l.memory_one_time_values), (100_000, 100_000));
        assert_eq!(l.hashing.wait, Duration::from_secs(2));
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(l.hashing.concurrency, cpus.min(256 / 19));
        assert_eq!(
            (l.sign_up_window, l.sign_ups_per_address, l.sign_ups_total),
            (Duration::from_secs(3600), 5, 100)
        );
        assert_eq!(l.pending_sign_ups, 1_000);
        assert_eq!((l.validation_mails_per_address, l.validation_mails_total), (5, 100));
    }

    #[test]
    fn the_memory_budget_caps_the_hashing_turns() {
        let c = load("[limits]\nhashing_concurrency = 64\nhashing_memory_mib = 40").expect("ok");
        assert_eq!(c.limits.hashing.concurrency, 2, "two 19 MiB checks fit in 40 MiB");
    }

    #[test]
    fn zero_bounds_and_a_long_delay_are_problems_at_their_keys() {
        for (tables, expected) in [
            (
                "[rate_limit]\nper_account_and_address = 0",
                "rate_limit.per_account_and_address: must be at least 1",
            ),
            ("[rate_limit]\nper_address = 0", "rate_limit.per_address: must be at least 1"),
            ("[rate_limit]\nmax_delay = \"5m\"", "rate_limit.max_delay: must be at most 1m"),
            ("[limits]\nmemory_counters = 0", "limits.memory_counters: must be at least 1"),
            ("[limits]\nsign_ups_total = 0", "limits.sign_ups_total: must be at least 1"),
            ("[limits]\nhashing_memory_mib = 10", "limits.hashing_memory_mib: must be at least 19"),
            ("[limits]\nhashing_wait = \"0s\"", "limits.hashing_wait: must be longer than zero"),
            ("[limits]\nsign_ups = 3", "limits.sign_ups"),
        ] {
            let problems = load(tables).expect_err(tables);
            assert!(problems.iter().any(|p| p.starts_with(expected)), "{tables}: {problems:?}");
        }
    }
}
