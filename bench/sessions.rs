//! How much memory sessions take in the memory store: `bash bench/memory.sh` runs it.
//!
//! `session-memory COUNT idle|used` fills a memory store with COUNT sessions shaped like
//! real ones (an account id, an email, a name, three usergroups and seven permissions) and
//! prints the resident memory they took. `used`: each has also served a request, so it keeps
//! the signature of its JWT (the token's text and the identity headers are built at each
//! request). `idle`: none has served a request yet.

use std::sync::Arc;

use deskgate::clock::Clock;
use deskgate::identity::HeaderNames;
use deskgate::session::{MemoryStore, Session, SessionKey, SessionStore, new_cookie_value};
use deskgate::usergroups::{Interner, Resolved};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|c| c.parse()).transpose()?.unwrap_or(1_000_000);
    let used = match args.next().as_deref() {
        None | Some("idle") => false,
        Some("used") => true,
        Some(other) => anyhow::bail!("`{other}`: say idle or used"),
    };
    let clock = Clock::system();
    let store = MemoryStore::new(clock.clone());
    let interner = Interner::default();
    let names = HeaderNames::new("X-Deskgate-")?;
    let signer = deskgate::jwt::Signer::new(None, "https://help.example.com", "deskgate", 300)?;
    let resolved = Resolved {
        usergroups: ["everyone", "registered", "vips"].map(String::from).to_vec(),
        permissions: [
            "chat.support",
            "kb.read",
            "news.read",
            "portal.view",
            "tickets.read",
            "comments.post",
            "downloads.read",
        ]
        .map(String::from)
        .to_vec(),
    };
    let now = clock.now();
    let before = rss_kib();
    for n in 0..count {
        let session = Session {
            account_id: deskgate::accounts::new_account_id(),
            email: Some(format!("person{n}@corp.example.com")),
            name: format!("Person {n}"),
            // A directory person: the subject and last check a re-check needs.
            provider: "ldap.corp".into(),
            subject: format!("3f2504e0-4f89-11d3-9a0c-{n:012x}").into(),
            checked_at: now,
            resolved: interner.intern(resolved.clone()),
            generation: 1,
            created_at: now,
            last_seen: now,
            ..Default::default()
        };
        let key = SessionKey::from_cookie(&new_cookie_value());
        let stored: Arc<Session> = store.put(&key, session, now + 3600).await?;
        if used {
            let mut headers = http::HeaderMap::new();
            deskgate::identity::HeaderSet::apply_signed_in(&names, &stored, "session", &mut headers);
            signer.for_session(&stored, now);
        }
    }
    let taken = rss_kib().saturating_sub(before);
    let what = if used { "just used (each keeps its token's signature)" } else { "idle (never used)" };
    println!(
        "{count} sessions, {what}: {:.0} MiB resident, {:.0} bytes a session",
        taken as f64 / 1024.0,
        taken as f64 * 1024.0 / count as f64
    );
    Ok(())
}
