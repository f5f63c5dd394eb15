//! The behaviour every account store must show, run against each backend.

use super::*;

fn new(email: &str, groups: &[&str]) -> NewAccount {
    NewAccount {
        email: Some(email.into()),
        name: format!("Name of {email}"),
        password_hash: Some("$argon2id$stub".into()),
        usergroups: groups.iter().map(|g| g.to_string()).collect(),
        created_at: 1_700_000_000,
        email_verified: true,
        ..Default::default()
    }
}

/// An account whose address was only typed (open sign-up) or not vouched for.
fn unverified(email: &str) -> NewAccount {
    NewAccount { email_verified: false, ..new(email, &[]) }
}

/// Runs every check against an empty store.
pub async fn run<S: AccountStore + ProfileStore + super::factors::FactorStore + super::KeyStore>(store: &S) {
    names(store).await;
    organizations(store).await;
    provider_claims(store).await;
    listing_counting_and_disabling(store).await;
    sign_up_status(store).await;
    confirming_an_address(store).await;
    replacing_a_password(store).await;
    an_unverified_address_grants_nothing_and_cannot_keep_the_address_from_a_verified_claim(store).await;
    let a = store.create(new("Ann@Example.com", &["vips", "power_users"])).await.expect("create");
    assert_eq!(a.usergroups, ["power_users", "vips"]);
    let by_email = store.by_email("ann@example.COM").await.expect("lookup").expect("found");
    assert_eq!(by_email, a, "email lookup is case-insensitive and returns the same record");
    assert_eq!(by_email.email.as_deref(), Some("Ann@Example.com"), "the email keeps its spelling");
    assert!(matches!(store.create(new("ann@example.com", &[])).await, Err(AccountError::EmailTaken)));

    let cred = store.credential("ANN@example.com").await.expect("credential").expect("found");
    assert_eq!(cred.account_id, a.id);

    store.set_usergroups(&a.id, &["trial_users".into()]).await.expect("set");
    assert_eq!(store.by_id(&a.id).await.expect("by id").expect("found").usergroups, ["trial_users"]);
    assert!(matches!(store.set_usergroups("nobody", &[]).await, Err(AccountError::NotFound)));

    assert!(store.by_link("ldap.corp", "guid-1").await.expect("link lookup").is_none());
    store.link("ldap.corp", "guid-1", &a.id).await.expect("link");
    assert_eq!(
        store.by_link("ldap.corp", "guid-1").await.expect("link lookup").map(|x| x.id),
        Some(a.id.clone())
    );

    let no_email = store
        .create(NewAccount { name: "No Mail".into(), created_at: 1, ..Default::default() })
        .await
        .expect("accounts without email are allowed");
    let other = store
        .create(NewAccount { name: "No Mail 2".into(), created_at: 1, ..Default::default() })
        .await
        .expect("several accounts may lack an email");
    assert_ne!(no_email.id, other.id);
    assert!(store.credential("").await.expect("credential").is_none());

    // Linking a subject again points it at the new account.
    store.link("ldap.corp", "guid-1", &other.id).await.expect("relink");
    assert_eq!(
        store.by_link("ldap.corp", "guid-1").await.expect("link lookup").map(|x| x.id),
        Some(other.id.clone())
    );

    // Links are listed per account, and removed one at a time, only from their own account.
    store.link("oidc.corp", "sub-1", &other.id).await.expect("link");
    assert_eq!(
        store.links(&other.id).await.expect("links"),
        [("ldap.corp".to_owned(), "guid-1".to_owned()), ("oidc.corp".to_owned(), "sub-1".to_owned())]
    );
    assert!(matches!(store.unlink("oidc.corp", "sub-1", &a.id).await, Err(AccountError::NotFound)));
    assert_eq!(store.by_reference("sub-1").await.expect("by subject"), vec![other.id.clone()]);
    assert_eq!(
        store.by_reference("oidc.corp sub-1").await.expect("by provider and subject"),
        vec![other.id.clone()]
    );
    assert_eq!(store.by_reference(&a.id).await.expect("by id"), vec![a.id.clone()]);
    assert!(store.by_reference("nobody").await.expect("none").is_empty());
    store.unlink("oidc.corp", "sub-1", &other.id).await.expect("unlink");
    assert!(store.by_link("oidc.corp", "sub-1").await.expect("lookup").is_none());
    assert_eq!(store.links(&other.id).await.expect("links").len(), 1);

    // An account made with its link: both or neither. A taken address refuses the account,
    // and the link is not left behind pointing nowhere.
    let linked = store
        .create(NewAccount {
            link: Some(("oidc.corp".into(), "sub-9".into())),
            ..new("linked@example.com", &[])
        })
        .await
        .expect("create with link");
    assert_eq!(store.by_link("oidc.corp", "sub-9").await.expect("lookup").map(|x| x.id), Some(linked.id));
    let refused = store
        .create(NewAccount {
            link: Some(("oidc.corp".into(), "sub-10".into())),
            ..new("linked@example.com", &[])
        })
        .await;
    assert!(matches!(refused, Err(AccountError::EmailTaken)));
    assert!(store.by_link("oidc.corp", "sub-10").await.expect("lookup").is_none());

    // Concurrent creation of the same email: exactly one wins.
    let (x, y) =
        tokio::join!(store.create(new("race@example.com", &[])), store.create(new("race@example.com", &[])));
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "one of two racing sign-ups wins");
    concurrent_replacements(store).await;
    super::factors::conformance::run(store).await;
}

fn org(id: &str, domains: &[&str], usergroups: &[&str]) -> Organization {
    Organization {
        id: id.into(),
        name: format!("Name of {id}"),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        usergroups: usergroups.iter().map(|g| g.to_string()).collect(),
    }
}

/// Organizations: created, replaced whole, a taken domain refuses the whole change, deleted.
async fn organizations<S: AccountStore>(store: &S) {
    assert!(store.organizations().await.expect("list").is_empty());
    let corp = org("corp", &["corp.example.com", "b.corp.example"], &["vips", "power_users"]);
    store.put_organization(&corp).await.expect("create");
    let sorted = org("corp", &["b.corp.example", "corp.example.com"], &["power_users", "vips"]);
    assert_eq!(
        store.organizations().await.expect("list"),
        std::slice::from_ref(&sorted),
        "domains and usergroups sorted"
    );
    let acme = org("acme", &["acme.example"], &[]);
    store.put_organization(&acme).await.expect("create another");
    assert_eq!(store.organizations().await.expect("list"), [acme.clone(), sorted.clone()], "by id");

    let grab = Organization {
        name: "Renamed".into(),
        ..org("acme", &["acme.example", "corp.example.com"], &["vips"])
    };
    assert!(
        matches!(store.put_organization(&grab).await, Err(AccountError::DomainTaken(d)) if d == "corp.example.com"),
        "a domain of another organization is refused"
    );
    assert_eq!(
        store.organizations().await.expect("list"),
        [acme.clone(), sorted.clone()],
        "and nothing of the refused change is kept"
    );
    let renamed =
        Organization { name: "Acme Corp".into(), ..org("acme", &["acme.example"], &["trial_users"]) };
    store.put_organization(&renamed).await.expect("replace");
    store
        .put_organization(&org("corp", &["corp.example.com"], &[]))
        .await
        .expect("replace, dropping a domain");
    assert_eq!(
        store.organizations().await.expect("list"),
        [renamed.clone(), org("corp", &["corp.example.com"], &[])]
    );
    // The dropped domain is free again.
    store.put_organization(&org("bee", &["b.corp.example"], &[])).await.expect("freed domain");
    for id in ["bee", "corp", "acme"] {
        store.delete_organization(id).await.expect("delete");
    }
    assert!(matches!(store.delete_organization("acme").await, Err(AccountError::NotFound)));
    assert!(store.organizations().await.expect("list").is_empty());
}

/// What providers said of an account: kept per provider, replaced whole, gone with the
/// account, and counted in usergroup membership without regard to ASCII case.
async fn provider_claims<S: AccountStore>(store: &S) {
    let a = store.create(new("claims@example.net", &[])).await.expect("create");
    let b = store.create(new("other-claims@example.net", &[])).await.expect("create");
    let strings = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let claims =
        |provider: &str, groups: &[&str], organizations: &[&str], attributes: &[&str]| ProviderClaims {
            provider: provider.into(),
            groups: strings(groups),
            organizations: strings(organizations),
            attributes: strings(attributes),
        };
    let said = claims(
        "ldap.corp",
        &["CN=VIPs,DC=x", "CN=Agents,DC=x", "CN=VIPs,DC=x"],
        &[],
        &["username: claims", "email: claims@example.net"],
    );
    store.set_provider_claims(&a.id, &said).await.expect("set");
    store.set_provider_claims(&a.id, &claims("oidc.google", &[], &["Acme Corp"], &[])).await.expect("set");
    assert_eq!(store.by_reference("CLAIMS").await.expect("by username"), vec![a.id.clone()]);
    let want = vec![
        claims(
            "ldap.corp",
            &["CN=Agents,DC=x", "CN=VIPs,DC=x"],
            &[],
            &["email: claims@example.net", "username: claims"],
        ),
        claims("oidc.google", &[], &["Acme Corp"], &[]),
    ];
    assert_eq!(store.provider_claims(&a.id).await.expect("read"), want);
    assert!(store.provider_claims(&b.id).await.expect("read").is_empty());

    let by_group = Membership {
        usergroup: "vips".into(),
        provider_groups: vec![("ldap.corp".into(), "cn=vips,dc=x".into())],
        ..Default::default()
    };
    let by_org = Membership {
        usergroup: "trial_users".into(),
        organization_names: vec!["acme corp".into()],
        ..Default::default()
    };
    let other_provider = Membership {
        usergroup: "vips".into(),
        provider_groups: vec![("ldap.other".into(), "cn=vips,dc=x".into())],
        ..Default::default()
    };
    assert_eq!(
        store.count_by_usergroup(&[by_group.clone(), by_org.clone(), other_provider]).await.expect("count"),
        [1, 1, 0]
    );
    let page = store
        .list(&AccountQuery { usergroup: Some(by_group.clone()), ..Default::default() }, 0, 10)
        .await
        .expect("list");
    assert_eq!(page.accounts.len(), 1);
    assert_eq!(page.accounts[0].claims, want, "a listing carries the claims");

    // A new sign-in through a provider replaces what it said; the other provider's stays.
    store
        .set_provider_claims(&a.id, &claims("ldap.corp", &["CN=Agents,DC=x"], &[], &[]))
        .await
        .expect("replace");
    assert_eq!(store.provider_claims(&a.id).await.expect("read")[0].groups, ["CN=Agents,DC=x"]);
    assert_eq!(store.provider_claims(&a.id).await.expect("read").len(), 2);
    assert_eq!(store.count_by_usergroup(&[by_group]).await.expect("count"), [0]);
    assert!(matches!(
        store.set_provider_claims("nobody", &claims("ldap.corp", &[], &[], &[])).await,
        Err(AccountError::NotFound)
    ));
    store.delete(&a.id).await.expect("delete");
    assert!(store.provider_claims(&a.id).await.expect("read").is_empty(), "gone with the account");
    assert_eq!(store.count_by_usergroup(&[by_org]).await.expect("count"), [0]);
    store.delete(&b.id).await.expect("delete");
}

fn emails(page: &AccountPage) -> Vec<Option<&str>> {
    page.accounts.iter().map(|l| l.account.email.as_deref()).collect()
}

/// Listing, searching, filtering by usergroup membership, counting, and disabling: run
/// first, on an empty store, so that totals are exact.
/// Accounts start active unless told otherwise; a pending or rejected one hands out a
/// credential that says why it cannot sign in; the status filter lists exactly the pending.
/// Leaves the store as it found it.
async fn an_unverified_address_grants_nothing_and_cannot_keep_the_address_from_a_verified_claim<
    S: AccountStore,
>(
    store: &S,
) {
    let squatter = store.create(unverified("Boss@Squat.example")).await.expect("create");
    assert!(!squatter.email_verified);
    let read = store.by_email("boss@squat.example").await.expect("lookup").expect("found");
    assert_eq!(read, squatter, "the flag is stored");
    // Membership by domain or by an assigned address counts verified addresses only.
    let by_email = Membership {
        usergroup: "squat_vips".into(),
        emails: vec!["boss@squat.example".into()],
        domains: vec!["squat.example".into()],
        ..Default::default()
    };
    assert_eq!(store.count_by_usergroup(std::slice::from_ref(&by_email)).await.expect("count"), [0]);
    // A second unproven claim does not take the address: sign-in by email stays unambiguous.
    assert!(matches!(store.create(unverified("boss@squat.example")).await, Err(AccountError::EmailTaken)));
    // A verified claim does; the unverified holder loses the address and nothing else.
    let owner =
        store.create(new("BOSS@squat.example", &[])).await.expect("a verified address takes precedence");
    assert!(owner.email_verified);
    let lost = store.by_id(&squatter.id).await.expect("by id").expect("still there");
    assert_eq!((lost.email, lost.email_verified), (None, false));
    assert_eq!(
        store.by_email("boss@squat.example").await.expect("lookup").map(|a| a.id),
        Some(owner.id.clone())
    );
    assert_eq!(store.count_by_usergroup(std::slice::from_ref(&by_email)).await.expect("count"), [1]);
    // A verified holder keeps it against anyone, verified or not.
    assert!(matches!(store.create(new("boss@squat.example", &[])).await, Err(AccountError::EmailTaken)));
    assert!(matches!(
        store.set_email(&squatter.id, Some("boss@SQUAT.example"), true).await,
        Err(AccountError::EmailTaken)
    ));
    assert!(matches!(
        store.set_email(&squatter.id, Some("boss@squat.example"), false).await,
        Err(AccountError::EmailTaken)
    ));
    // set_email: an unverified address is taken over by an administrator's (verified) one;
    // the account itself can be marked verified; clearing works; unknown ids are refused.
    store.set_email(&squatter.id, Some("second@squat.example"), false).await.expect("set unverified");
    let other =
        store.create(NewAccount { name: "Other".into(), ..Default::default() }).await.expect("create");
    store.set_email(&other.id, Some("Second@squat.example"), true).await.expect("verified takes it");
    assert_eq!(store.by_id(&squatter.id).await.expect("by id").expect("found").email, None);
    let other = store.by_id(&other.id).await.expect("by id").expect("found");
    assert_eq!((other.email.as_deref(), other.email_verified), (Some("Second@squat.example"), true));
    store.set_email(&squatter.id, Some("third@squat.example"), false).await.expect("set");
    store
        .set_email(&squatter.id, Some("third@squat.example"), true)
        .await
        .expect("its own address, verified");
    assert!(store.by_id(&squatter.id).await.expect("by id").expect("found").email_verified);
    store.set_email(&squatter.id, None, true).await.expect("clear");
    let cleared = store.by_id(&squatter.id).await.expect("by id").expect("found");
    assert_eq!((cleared.email, cleared.email_verified), (None, false), "no address is never verified");
    assert!(matches!(
        store.set_email("nobody", Some("x@squat.example"), true).await,
        Err(AccountError::NotFound)
    ));
    for id in [squatter.id, owner.id, other.id] {
        store.delete(&id).await.expect("clean up");
    }
}

/// A new password counts in the password serial; only an account with a password gets one.
async fn replacing_a_password<S: AccountStore>(store: &S) {
    let a = store.create(new("reset@example.com", &[])).await.expect("create");
    assert_eq!(store.password_serial(&a.id).await.expect("serial"), 0);
    assert_eq!(store.set_password(&a.id, "$argon2id$new").await.expect("set"), 1);
    assert_eq!(store.set_password(&a.id, "$argon2id$newer").await.expect("set"), 2);
    assert_eq!(store.password_serial(&a.id).await.expect("serial"), 2);
    let cred = store.credential("reset@example.com").await.expect("credential").expect("found");
    assert_eq!(cred.password_hash, "$argon2id$newer");
    let none = store
        .create(NewAccount { password_hash: None, ..new("nopassword@example.com", &[]) })
        .await
        .expect("create");
    assert!(matches!(store.set_password(&none.id, "$argon2id$x").await, Err(AccountError::NotFound)));
    assert!(matches!(store.set_password("missing", "$argon2id$x").await, Err(AccountError::NotFound)));
    assert_eq!(store.password_serial("missing").await.expect("serial"), 0);
    assert!(store.credential("nopassword@example.com").await.expect("credential").is_none());
    store.delete(&a.id).await.expect("delete");
    store.delete(&none.id).await.expect("delete");
}

async fn sign_up_status<S: AccountStore>(store: &S) {
    let active = store.create(new("status-active@example.com", &[])).await.expect("create");
    assert_eq!(active.status, AccountStatus::Active);
    let waiting =
        NewAccount { status: AccountStatus::PendingApproval, ..new("status-wait@example.com", &["vips"]) };
    let waiting = store.create(waiting).await.expect("create pending");
    assert_eq!(waiting.status, AccountStatus::PendingApproval);
    let mail = NewAccount { status: AccountStatus::PendingValidation, ..new("status-mail@example.com", &[]) };
    let mail = store.create(mail).await.expect("create pending validation");
    assert_eq!(
        store.by_id(&mail.id).await.expect("by id").expect("found").status,
        AccountStatus::PendingValidation
    );

    let cred = |email: &'static str| async move {
        store.credential(email).await.expect("credential").expect("found")
    };
    assert_eq!(cred("status-active@example.com").await.pending, None);
    assert_eq!(
        cred("status-wait@example.com").await.pending,
        AccountStatus::PendingApproval.pending_reason()
    );
    assert_eq!(
        cred("STATUS-MAIL@example.com").await.pending,
        AccountStatus::PendingValidation.pending_reason()
    );
    assert_ne!(
        AccountStatus::PendingValidation.pending_reason(),
        AccountStatus::PendingApproval.pending_reason()
    );

    let pending = AccountQuery { status: Some(AccountStatus::PendingApproval), ..Default::default() };
    let page = store.list(&pending, 0, 10).await.expect("list pending");
    assert_eq!(page.total, 1);
    let ids: Vec<&str> = page.accounts.iter().map(|l| l.account.id.as_str()).collect();
    assert_eq!(ids, [waiting.id.as_str()]);
    assert_eq!(page.accounts[0].account.status, AccountStatus::PendingApproval);
    assert_eq!(page.accounts[0].account.usergroups, ["vips"]);

    store.set_status(&waiting.id, AccountStatus::Rejected).await.expect("reject");
    assert!(cred("status-wait@example.com").await.pending.is_some(), "a rejected account never signs in");
    assert_eq!(
        store.by_email("status-wait@example.com").await.expect("lookup").expect("found").status,
        AccountStatus::Rejected
    );
    assert_eq!(store.list(&pending, 0, 10).await.expect("list pending").total, 0);
    store.set_status(&mail.id, AccountStatus::Active).await.expect("activate");
    assert_eq!(cred("status-mail@example.com").await.pending, None);
    assert!(matches!(store.set_status("nobody", AccountStatus::Active).await, Err(AccountError::NotFound)));

    for a in [&active, &waiting, &mail] {
        store.delete(&a.id).await.expect("delete");
        assert!(store.by_id(&a.id).await.expect("by id").is_none());
    }
    assert!(store.credential("status-wait@example.com").await.expect("credential").is_none());
    assert!(matches!(store.delete(&active.id).await, Err(AccountError::NotFound)));
    // A deleted account's email is free again.
    let again = store.create(new("status-mail@example.com", &[])).await.expect("create again");
    store.delete(&again.id).await.expect("delete again");
}

/// Following a validation link: the address, verified, and the activation come together or
/// not at all.
async fn confirming_an_address<S: AccountStore>(store: &S) {
    let waiting = |email: Option<&str>| NewAccount {
        email: email.map(Into::into),
        status: AccountStatus::PendingValidation,
        ..unverified("unused@example.com")
    };
    let holder = store.create(unverified("confirm@example.com")).await.expect("holder");
    let signup = store.create(waiting(None)).await.expect("sign-up without an address");
    store.confirm_email(&signup.id, "Confirm@example.com").await.expect("confirm");
    let confirmed = store.by_id(&signup.id).await.expect("by id").expect("found");
    assert_eq!(
        (confirmed.status, confirmed.email.as_deref(), confirmed.email_verified),
        (AccountStatus::Active, Some("Confirm@example.com"), true)
    );
    assert_eq!(store.by_id(&holder.id).await.expect("by id").expect("found").email, None, "released");
    assert!(
        matches!(store.confirm_email(&signup.id, "again@example.com").await, Err(AccountError::NotFound)),
        "only a waiting sign-up is confirmed"
    );
    assert_eq!(store.by_id(&signup.id).await.expect("by id").expect("found").email, confirmed.email);

    // A verified holder keeps the address: the sign-up stays waiting, its address unset.
    let late = store.create(waiting(None)).await.expect("second sign-up");
    assert!(matches!(
        store.confirm_email(&late.id, "confirm@EXAMPLE.com").await,
        Err(AccountError::EmailTaken)
    ));
    let still = store.by_id(&late.id).await.expect("by id").expect("found");
    assert_eq!((still.status, still.email), (AccountStatus::PendingValidation, None));
    for a in [&holder, &signup, &late] {
        store.delete(&a.id).await.expect("delete");
    }
}

async fn listing_counting_and_disabling<S: AccountStore>(store: &S) {
    let ann = store.create(new("ann@acme.example", &["vips"])).await.expect("create");
    let bob = store
        .create(NewAccount { name: "Bob Builder".into(), ..new("bob@example.org", &["power_users"]) })
        .await
        .expect("create");
    store.create(new("carol@acme.example", &[])).await.expect("create");
    store.create(new("dave@notacme.example", &[])).await.expect("create");
    let under = store
        .create(NewAccount { name: "Under_Score 100%".into(), ..new("eve@example.org", &[]) })
        .await
        .expect("create");
    let dana = store
        .create(NewAccount { name: "Dana No Mail".into(), created_at: 1, ..Default::default() })
        .await
        .expect("create");
    store.create(new("zed@other.example", &["vips", "power_users"])).await.expect("create");

    let all = store.list(&AccountQuery::default(), 0, 100).await.expect("list");
    assert_eq!(all.total, 7);
    assert_eq!(
        emails(&all),
        [
            Some("ann@acme.example"),
            Some("bob@example.org"),
            Some("carol@acme.example"),
            Some("dave@notacme.example"),
            Some("eve@example.org"),
            Some("zed@other.example"),
            None
        ],
        "by email, accounts without one last"
    );
    assert_eq!(all.accounts[0].account, ann, "a listed account is the whole record");
    assert_eq!(all.accounts[5].account.usergroups, ["power_users", "vips"]);
    let page = store.list(&AccountQuery::default(), 2, 2).await.expect("page");
    assert_eq!(page.total, 7, "the total counts every match, not the page");
    assert_eq!(emails(&page), [Some("carol@acme.example"), Some("dave@notacme.example")]);
    assert!(store.list(&AccountQuery::default(), 7, 10).await.expect("past the end").accounts.is_empty());

    let search = |text: &str| AccountQuery { text: Some(text.into()), ..Default::default() };
    let found = store.list(&search("BUILDER"), 0, 10).await.expect("search");
    assert_eq!(emails(&found), [Some("bob@example.org")], "the name, without regard to case");
    let found = store.list(&search("Acme.Example"), 0, 10).await.expect("search");
    assert_eq!(found.total, 3, "the email: {:?}", emails(&found));
    let found = store.list(&search("_"), 0, 10).await.expect("search");
    assert_eq!(
        found.accounts.iter().map(|l| &l.account.id).collect::<Vec<_>>(),
        [&under.id],
        "`_` is literal"
    );
    assert_eq!(store.list(&search("0%"), 0, 10).await.expect("search").total, 1, "`%` is literal");
    assert_eq!(store.list(&search(&dana.id), 0, 10).await.expect("search").total, 1, "the id");

    // VIPs: assigned to ann and zed, assigned by the config to eve, and given by an
    // organization to acme.example (ann again, and carol; not dave at notacme.example).
    let vips = Membership {
        usergroup: "vips".into(),
        emails: vec!["eve@example.org".into()],
        domains: vec!["acme.example".into()],
        ..Default::default()
    };
    let members = store
        .list(&AccountQuery { usergroup: Some(vips.clone()), ..Default::default() }, 0, 10)
        .await
        .expect("filter");
    assert_eq!(
        emails(&members),
        [
            Some("ann@acme.example"),
            Some("carol@acme.example"),
            Some("eve@example.org"),
            Some("zed@other.example")
        ],
        "each member once, whatever the number of reasons"
    );
    let filtered = AccountQuery { text: Some("acme".into()), usergroup: Some(vips.clone()), status: None };
    assert_eq!(store.list(&filtered, 0, 10).await.expect("both").total, 2, "search within a usergroup");
    let power = Membership { usergroup: "power_users".into(), ..Default::default() };
    let nobody = Membership { usergroup: "trial_users".into(), ..Default::default() };
    assert_eq!(store.count_by_usergroup(&[vips, power, nobody]).await.expect("count"), [4, 2, 0]);
    assert!(store.count_by_usergroup(&[]).await.expect("count").is_empty());

    assert_eq!(store.providers(&bob.id).await.expect("providers"), ["builtin"]);
    assert!(store.providers(&dana.id).await.expect("providers").is_empty(), "no password, no link");
    store.link("oidc.google", "g-1", &dana.id).await.expect("link");
    store.link("ldap.corp", "l-1", &dana.id).await.expect("link");
    store.link("ldap.corp", "l-2", &dana.id).await.expect("link");
    store.link("ldap.corp", "l-3", &bob.id).await.expect("link");
    assert_eq!(store.providers(&dana.id).await.expect("providers"), ["ldap.corp", "oidc.google"]);
    assert_eq!(store.providers(&bob.id).await.expect("providers"), ["builtin", "ldap.corp"]);
    assert!(matches!(store.providers("nobody").await, Err(AccountError::NotFound)));
    let listed = store.list(&AccountQuery::default(), 0, 100).await.expect("list");
    let of =
        |id: &str| listed.accounts.iter().find(|l| l.account.id == id).expect("listed").providers.clone();
    assert_eq!(of(&dana.id), ["ldap.corp", "oidc.google"]);
    assert_eq!(of(&bob.id), ["builtin", "ldap.corp"]);
    assert_eq!(of(&ann.id), ["builtin"]);

    store.set_disabled(&bob.id, true).await.expect("disable");
    assert!(store.by_id(&bob.id).await.expect("by id").expect("found").disabled);
    assert!(store.credential("bob@example.org").await.expect("credential").expect("found").disabled);
    let listed = store.list(&search("bob@"), 0, 10).await.expect("list");
    assert!(listed.accounts[0].account.disabled, "listings show it");
    store.set_disabled(&bob.id, true).await.expect("disabling twice is fine");
    store.set_disabled(&bob.id, false).await.expect("enable");
    assert!(!store.by_id(&bob.id).await.expect("by id").expect("found").disabled);
    assert!(!store.credential("bob@example.org").await.expect("credential").expect("found").disabled);
    assert!(matches!(store.set_disabled("nobody", true).await, Err(AccountError::NotFound)));
}

/// Two replacements of one account's usergroups at once leave one of the two sets,
/// never their union.
pub async fn concurrent_replacements<S: AccountStore>(store: &S) {
    let a = store.create(new("concurrent@example.com", &[])).await.expect("create");
    let (one, two) = (vec!["vips".to_string()], vec!["power_users".to_string(), "trial_users".to_string()]);
    for _ in 0..5 {
        let (x, y) = tokio::join!(store.set_usergroups(&a.id, &one), store.set_usergroups(&a.id, &two));
        x.expect("set");
        y.expect("set");
        let now = store.by_id(&a.id).await.expect("by id").expect("found").usergroups;
        assert!(now == one || now == two, "one replacement wins, got {now:?}");
    }
}

/// A person's new display name is kept, whatever its script; nobody else's changes.
async fn names<S: AccountStore + ProfileStore>(store: &S) {
    let a = store.create(new("named@example.com", &[])).await.expect("create");
    let b = store.create(new("unnamed@example.com", &[])).await.expect("create");
    store.set_name(&a.id, "Zoë O'Brien <ü>").await.expect("set name");
    assert_eq!(store.by_id(&a.id).await.expect("by id").expect("found").name, "Zoë O'Brien <ü>");
    assert_eq!(store.by_id(&b.id).await.expect("by id").expect("found").name, b.name);
    assert!(matches!(store.set_name("missing", "x").await, Err(AccountError::NotFound)));
    for id in [a.id, b.id] {
        store.delete(&id).await.expect("delete");
    }
}

#[tokio::test]
async fn sqlite_store_passes_the_conformance_suite() {
    let dir = std::env::temp_dir().join(format!("deskgate-acc-{}", new_account_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = SqliteStore::open(&dir.join("a.db")).await.expect("open");
    run(&store).await;
    // Reopening runs no migration twice and keeps the data.
    let again = SqliteStore::open(&dir.join("a.db")).await.expect("reopen");
    assert!(again.by_email("ann@example.com").await.expect("lookup").is_some());
    let _ = std::fs::remove_dir_all(dir);
}

/// An account made with its link is one transaction in SQLite too: a link that cannot be
/// written leaves no account. (PostgreSQL's connection cut at the link is in the
/// integration tests' faults.)
#[tokio::test]
async fn sqlite_account_is_not_left_without_its_link_when_writing_the_link_fails() {
    let store = SqliteStore::open(std::path::Path::new(":memory:")).await.expect("open");
    let refuse = "CREATE TRIGGER refuse_links BEFORE INSERT ON account_links BEGIN SELECT RAISE(ABORT, 'refused'); END";
    sqlx::raw_sql(refuse).execute(&store.pool).await.expect("trigger");
    let linked = || NewAccount {
        link: Some(("oidc.corp".into(), "sub-1".into())),
        ..new("cut@example.com", &["vips"])
    };
    assert!(matches!(store.create(linked()).await, Err(AccountError::Database(_))));
    assert!(store.by_email("cut@example.com").await.expect("lookup").is_none());
    assert_eq!(store.list(&AccountQuery::default(), 0, 10).await.expect("list").total, 0);

    sqlx::raw_sql("DROP TRIGGER refuse_links").execute(&store.pool).await.expect("drop trigger");
    let made = store.create(linked()).await.expect("the next attempt");
    assert_eq!(store.by_link("oidc.corp", "sub-1").await.expect("lookup").map(|a| a.id), Some(made.id));
}

/// Where a test finds PostgreSQL: `DESKGATE_TEST_POSTGRES`, else the local default. The
/// role must be allowed to create databases.
fn postgres_url() -> String {
    std::env::var("DESKGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A connection to the test PostgreSQL (to create and drop databases) and its options;
/// `None` when it is unreachable outside CI.
pub(super) async fn postgres_admin() -> Option<(sqlx::PgConnection, sqlx::postgres::PgConnectOptions)> {
    use std::str::FromStr;

    use sqlx::Connection;
    use sqlx::postgres::{PgConnectOptions, PgConnection};

    let url = postgres_url();
    let options = PgConnectOptions::from_str(&url).expect("a valid PostgreSQL URL");
    let connected =
        tokio::time::timeout(std::time::Duration::from_secs(10), PgConnection::connect_with(&options)).await;
    match connected {
        Ok(Ok(conn)) => Some((conn, options)),
        Ok(Err(e)) => {
            unreachable_postgres(&url, &e);
            None
        }
        Err(e) => {
            unreachable_postgres(&url, &e);
            None
        }
    }
}

#[tokio::test]
async fn postgres_store_passes_the_conformance_suite() {
    use sqlx::Executor;

    let Some((mut admin, admin_options)) = postgres_admin().await else { return };
    // A database of its own: tests running at once each migrate and fill their own.
    let name = format!("deskgate_test_{}", new_account_id().replace('-', ""));
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create database");
    let options = admin_options.clone().database(&name);

    // Two replicas starting at once on an empty database: both come up, one migrates.
    let (a, b) =
        tokio::join!(PostgresStore::open_with(options.clone()), PostgresStore::open_with(options.clone()));
    let (store, alongside) = (a.expect("open"), b.expect("open alongside"));
    run(&store).await;
    // Reopening runs no migration twice and keeps the data.
    let again = PostgresStore::open_with(options).await.expect("reopen");
    assert!(again.by_email("ann@example.com").await.expect("lookup").is_some());
    let migrations: i64 = sqlx::query_scalar("SELECT count(*) FROM deskgate_migrations")
        .fetch_one(&again.pool)
        .await
        .expect("count migrations");
    assert_eq!(usize::try_from(migrations).expect("count"), postgres::MIGRATIONS.len());

    for s in [store, alongside, again] {
        s.close().await;
    }
    admin.execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str()).await.expect("drop database");
}

/// Under `CI=true` an unreachable PostgreSQL fails the test; elsewhere it is skipped, loudly.
fn unreachable_postgres(url: &str, e: &dyn std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("PostgreSQL at {url} is unreachable ({e}); CI needs it (apt-get install postgresql)");
    }
    eprintln!(
        "SKIP: PostgreSQL at {url} is unreachable ({e}): the PostgreSQL account store was NOT tested. \
         Start one (apt-get install postgresql) or set DESKGATE_TEST_POSTGRES."
    );
}

/// Upgrading: accounts stored before addresses were marked keep their grants by email
/// (how each address was set is not recorded), except sign-ups still waiting for their link.
#[tokio::test]
async fn accounts_from_before_the_upgrade_are_verified_except_unconfirmed_sign_ups() {
    use sqlx::Connection;
    let dir = std::env::temp_dir().join(format!("deskgate-acc-{}", new_account_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let mut old = sqlx::SqliteConnection::connect_with(&options).await.expect("open");
    sqlx::raw_sql(
        "CREATE TABLE deskgate_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(&mut old)
    .await
    .expect("migrations table");
    for (version, sql) in sqlite::MIGRATIONS.iter().filter(|(v, _)| *v <= 3) {
        sqlx::raw_sql(sql).execute(&mut old).await.expect("old migration");
        sqlx::query("INSERT INTO deskgate_migrations VALUES (?, 0)")
            .bind(version)
            .execute(&mut old)
            .await
            .expect("mark");
    }
    for (id, email, status) in [
        ("a-active", Some("ann@acme.example"), "active"),
        ("a-pending", Some("pam@acme.example"), "pending-validation"),
        ("a-none", None, "active"),
    ] {
        sqlx::query("INSERT INTO accounts (id, email, email_lower, name, created_at, status) VALUES (?, ?, ?, 'x', 1, ?)")
            .bind(id)
            .bind(email)
            .bind(email.map(str::to_lowercase))
            .bind(status)
            .execute(&mut old)
            .await
            .expect("old account");
    }
    old.close().await.expect("close");
    let store = SqliteStore::open(&path).await.expect("migrates");
    let flag = |id: &'static str| {
        let store = store.clone();
        async move { store.by_id(id).await.expect("read").expect("found").email_verified }
    };
    assert!(flag("a-active").await);
    assert!(!flag("a-pending").await, "not confirmed yet");
    assert!(!flag("a-none").await, "no address is never verified");
    let _ = std::fs::remove_dir_all(dir);
}
