//! What the backend is told, and that a client can forge none of it.

use crate::support::*;

const FORGED: &[(&str, &str)] = &[
    ("X-Deskgate-User", "forged-admin"),
    ("x-deskgate-email", "forged@evil.example"),
    ("X_Deskgate_User", "forged-underscore"),
    ("X-DESKGATE-USERGROUPS", "everyone,admins"),
    ("x_deskgate_permissions", "everything"),
    ("X-Deskgate-Jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9."),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Host", "evil.example"),
    ("X_Forwarded_Proto", "https"),
];

fn assert_no_forgery(seen: &serde_json::Value) {
    let headers = seen["headers"].as_object().unwrap();
    for (name, value) in headers {
        let v = value.as_str().unwrap_or("");
        assert!(!v.contains("forged") && !v.contains("admins") && !v.contains("everything"), "{name}: {v}");
        assert!(
            !v.contains("6.6.6.6") && !v.contains("evil.example") && !v.contains("eyJzdWIiOiJhZG1pbiJ9"),
            "{name}: {v}"
        );
        assert!(!name.contains('_'), "an underscore spelling reached the backend: {name}");
    }
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
}

#[tokio::test]
async fn forged_identity_headers_in_any_spelling_never_reach_the_backend_for_a_guest() {
    let stack = start(Options::default()).await;
    let mut headers: Vec<(&str, &str)> = FORGED.to_vec();
    headers.push(("Accept", "application/json"));
    let (status, body) = raw(stack.addr, "/whoami", &headers).await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_no_forgery(&seen);
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone");
    assert!(seen["headers"].get("x-deskgate-user").is_none());
}

#[tokio::test]
async fn forged_identity_headers_in_any_spelling_never_reach_the_backend_when_signed_in() {
    let stack = start(Options::default()).await;
    let b = signed_in(&stack, "real@example.org", &[]).await;
    let cookie = format!("deskgate_session={}", b.session_cookie().unwrap());
    let mut headers: Vec<(&str, &str)> = FORGED.to_vec();
    headers.push(("Cookie", &cookie));
    let (status, body) = raw(stack.addr, "/whoami", &headers).await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_no_forgery(&seen);
    assert_eq!(seen["headers"]["x-deskgate-email"], "real@example.org");
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone,registered");
    assert_eq!(seen["verified"], true);
    assert!(seen["headers"].get("cookie").is_none(), "the session cookie is not passed to the backend");
}

#[tokio::test]
async fn connection_header_cannot_make_the_proxy_drop_injected_identity() {
    let stack = start(Options::default()).await;
    let (status, body) = raw(
        stack.addr,
        "/whoami",
        &[("Connection", "close, X-Deskgate-Usergroups, X-Deskgate-Permissions, X-Forwarded-For")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-deskgate-usergroups"], "everyone");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn connection_header_cannot_make_the_proxy_drop_any_identity_header_of_a_signed_in_person() {
    let stack = start(Options::default()).await;
    let b = signed_in(&stack, "real@example.org", &[]).await;
    let cookie = format!("deskgate_session={}", b.session_cookie().expect("signed in"));
    let every = [
        "x-deskgate-user",
        "x-deskgate-email",
        "x-deskgate-email-verified",
        "x-deskgate-name",
        "x-deskgate-usergroups",
        "x-deskgate-permissions",
        "x-deskgate-provider",
        "x-deskgate-auth",
        "x-deskgate-jwt",
        "x-deskgate-amr",
    ];
    let connection = format!("close, {}", every.join(", "));
    let (status, body) =
        raw(stack.addr, "/whoami", &[("Cookie", &cookie), ("Connection", &connection)]).await;
    assert_eq!(status, 200, "{body}");
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    for name in every {
        assert!(seen["headers"][name].is_string(), "{name} was dropped: {}", seen["headers"]);
    }
    assert_eq!(seen["headers"]["x-deskgate-email-verified"], "true");
}

#[tokio::test]
async fn trusted_proxies_keep_their_forwarded_for_and_others_do_not() {
    let stack =
        start(Options { server: "trusted_proxies = [\"127.0.0.1\"]\n".into(), ..Default::default() }).await;
    let (_, body) =
        raw(stack.addr, "/whoami", &[("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https")])
            .await;
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    // Identity headers are stripped even from a trusted proxy.
    let (_, body) = raw(stack.addr, "/whoami", &[("X-Deskgate-User", "from-proxy")]).await;
    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(seen["headers"].get("x-deskgate-user").is_none());
}
