//! Console authentication against a real server: TOTP enrolment and login,
//! CSRF on cookie sessions, lock-out and its unlock, per-address rate limit,
//! and role separation on the API.

mod common;

use common::*;
use serde_json::json;
use totp_rs::{Algorithm, Secret, TOTP};

fn code(secret: &str) -> String {
    TOTP::new(Algorithm::SHA1, 6, 1, 30, Secret::Encoded(secret.into()).to_bytes().unwrap())
        .unwrap()
        .generate_current()
        .unwrap()
}

async fn login(server: &Server, user: &str, password: &str, totp: Option<String>) -> (u16, serde_json::Value) {
    let client = candor_agent::net::pinned_client(&server.ca_fingerprint()).unwrap();
    let r = client
        .post(format!("{}/api/v1/auth/login", server.url))
        .json(&json!({"username": user, "password": password, "totp": totp}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn totp_csrf_lockout_and_roles() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), "[auth]\nmax_failed_logins = 3\nlogin_attempts_per_minute = 12\n").await;
    let team = server.team().await;
    let pw = server.admin_password();

    // TOTP: set up, confirm with a current code; then login needs a code.
    let setup = team.sys.post("/api/v1/auth/totp/setup", json!({})).await;
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(setup["otpauth_url"].as_str().unwrap().starts_with("otpauth://totp/Candor:admin?"));
    let (s, _) = team
        .sys
        .call(reqwest::Method::PUT, "/api/v1/auth/totp", Some(json!({"secret": secret, "code": "000000"})))
        .await;
    assert_eq!(s, 400, "a wrong code does not turn TOTP on");
    team.sys.put("/api/v1/auth/totp", json!({"secret": secret, "code": code(&secret)})).await;
    let (s, v) = login(&server, "admin", &pw, None).await;
    assert_eq!((s, v["error"].as_str()), (401, Some("totp required")));
    let (s, v) = login(&server, "admin", &pw, Some(code(&secret))).await;
    assert_eq!(s, 200, "{v}");
    assert!(v["admin"]["totp_enabled"].as_bool().unwrap());

    // CSRF: a cookie session's writes need the token; bearer sessions do not use cookies.
    let token = v["token"].as_str().unwrap();
    let csrf = v["csrf"].as_str().unwrap();
    let client = candor_agent::net::pinned_client(&server.ca_fingerprint()).unwrap();
    let cookie = format!("candor_session={token}");
    let post = |csrf: Option<&str>| {
        let mut r = client
            .post(format!("{}/api/v1/departments", server.url))
            .header("cookie", &cookie)
            .json(&json!({"name": format!("d{}", rand_suffix())}));
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send()
    };
    assert_eq!(post(None).await.unwrap().status().as_u16(), 403);
    assert_eq!(post(Some("forged")).await.unwrap().status().as_u16(), 403);
    assert_eq!(post(Some(csrf)).await.unwrap().status().as_u16(), 200);
    let r = client.get(format!("{}/api/v1/departments", server.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "reads need no CSRF token");

    // Lock-out after 3 wrong passwords; the right password is refused while locked; an admin unlocks.
    for _ in 0..3 {
        assert_eq!(login(&server, "sec", "wrong", None).await.0, 401);
    }
    let (s, v) = login(&server, "sec", &team.sec_password, None).await;
    assert_eq!(s, 423, "{v}");
    assert!(v["error"].as_str().unwrap().contains("locked"));
    let admins = team.sys.get("/api/v1/admins").await;
    let sec_id = admins.as_array().unwrap().iter().find(|a| a["username"] == "sec").unwrap()["id"].as_u64().unwrap();
    team.sys.put(&format!("/api/v1/admins/{sec_id}"), json!({"unlock": true})).await;
    assert_eq!(login(&server, "sec", &team.sec_password, None).await.0, 200);

    // Separation of duties on the API.
    for (api, path, want) in [
        (&team.sys, "/api/v1/events", 403),
        (&team.sys, "/api/v1/access-log", 403),
        (&team.sec, "/api/v1/access-log", 403),
        (&team.sec, "/api/v1/admins", 403),
        (&team.aud, "/api/v1/access-log", 200),
        (&team.aud, "/api/v1/events", 403),
        (&team.aud, "/api/v1/policies", 200),
    ] {
        let (s, _) = api.call(reqwest::Method::GET, path, None).await;
        assert_eq!(s, want, "{path}");
    }
    let (s, _) = team.aud.call(reqwest::Method::POST, "/api/v1/policies", Some(json!({"name": "x", "doc": {}}))).await;
    assert_eq!(s, 403, "the auditor is read-only");

    // Rate limit: more than 12 attempts a minute from one address.
    let mut limited = false;
    for _ in 0..15 {
        if login(&server, "nobody", "x", None).await.0 == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "login attempts are rate-limited per address");
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}
