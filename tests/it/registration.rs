//! Registration disabled: no link, sign-up refused, existing accounts and admin-made ones work.

use crate::support::*;

#[tokio::test]
async fn registration_disabled_hides_the_link_refuses_sign_up_and_admin_made_accounts_work() {
    let stack =
        start(Options { head: "[registration]\nmode = \"disabled\"\n".into(), ..Default::default() }).await;
    let mut b = Browser::new(&stack);
    let login = b.get("/.deskgate/login").await;
    assert_eq!(login.status, 200);
    assert!(!login.body.contains("/.deskgate/register"), "no register link");

    let form = b.get("/.deskgate/register").await;
    assert_eq!(form.status, 403);
    assert!(form.body.contains("Registration is disabled"));
    let csrf = login.field("csrf").unwrap();
    let post = b
        .post(
            "/.deskgate/register",
            &[
                ("name", "N"),
                ("email", "new@example.org"),
                ("password", "long password 1"),
                ("confirm", "long password 1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(post.status, 403);
    assert!(b.session_cookie().is_none());

    // An existing account still signs in.
    account(&stack, "old@example.org", "Old", "correct horse battery", &[]).await;
    assert_eq!(b.sign_in("old@example.org", "correct horse battery").await.status, 303);

    // `deskgate accounts add` creates one that works, with its usergroups.
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_deskgate"));
    cmd.args(["accounts", "add", "--config"])
        .arg(&stack.config_path)
        .args(["--email", "made@example.org", "--name", "Made By Admin", "--usergroup", "vips"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use tokio::io::AsyncWriteExt;
    child.stdin.take().unwrap().write_all(b"admin chosen password\n").await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("created account "));

    let mut made = Browser::new(&stack);
    let page = made.sign_in("made@example.org", "admin chosen password").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(made.whoami().await["headers"]["x-deskgate-usergroups"], "everyone,registered,vips");
    assert_eq!(made.get("/chat/support").await.status, 200);
}

#[tokio::test]
async fn open_registration_shows_the_link_and_refuses_a_taken_email() {
    let stack = start(Options::default()).await;
    let mut b = Browser::new(&stack);
    assert!(b.get("/.deskgate/login").await.body.contains("/.deskgate/register"));
    assert_eq!(b.sign_up("One", "one@example.org", "long password 1").await.status, 303);
    let mut c = Browser::new(&stack);
    let again = c.sign_up("Two", "ONE@example.org", "long password 2").await;
    assert_eq!(again.status, 409);
    assert!(again.body.contains("already exists"));
    let short = c.sign_up("Three", "three@example.org", "short").await;
    assert_eq!(short.status, 422);
}
