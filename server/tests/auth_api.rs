//! Accounts, roles, sessions, CSRF, tokens, throttling and the audit trail, on a running server.

mod common;

use std::process::Command;

use common::{BIN, DOCTOR, DOCTOR_PASSWORD, Server, add_user, dicom_fixture, fixture, sign_in};
use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};
use server::domain::auth::{Access, Permission, ROUTES, Role};

fn start() -> (tempfile::TempDir, Server) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", data.path().to_str().unwrap()], &[]);
    (data, server)
}

fn dir(data: &tempfile::TempDir) -> &str {
    data.path().to_str().unwrap()
}

/// A route template with its parameters filled with ids that exist nowhere: the guard decides before the
/// handler looks, and nothing is changed by accident (no user 999999 to disable).
fn concrete(route: &str) -> String {
    route.replace("{id}", "999999").replace("{number}", "1").replace("{ae_title}", "NOBODY")
}

fn call(client: &Client, server: &Server, method: &str, route: &str) -> u16 {
    let url = server.url(&concrete(route));
    let request = match method {
        "GET" => client.get(url),
        "POST" => client.post(url).header("content-type", "application/json").body("{}"),
        "PUT" => client.put(url).header("content-type", "application/json").body("{}"),
        "DELETE" => client.delete(url),
        other => panic!("method {other} not in the test"),
    };
    request.send().unwrap().status().as_u16()
}

/// The permission matrix, generated from the server's own role and route tables: every route answers 401
/// to nobody, 403 to each role that lacks its permission, and lets through each role that has it.
#[test]
fn every_route_answers_each_role_exactly_its_permissions() {
    let (data, server) = start();
    add_user(dir(&data), "head", "department_head", "department review 1");
    let integrator_token =
        common::create_token(dir(&data), "his", "study_upload,report_read,report_export,read_metrics");
    let bearer = |token: &str| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        Client::builder().default_headers(headers).build().unwrap()
    };
    let callers: Vec<(Role, Client)> = vec![
        (Role::Radiologist, server.client().clone()),
        (Role::DepartmentHead, sign_in(&server.url(""), "head", "department review 1")),
        (Role::Admin, server.admin().clone()),
        (Role::Integrator, bearer(&integrator_token)),
    ];
    let nobody = Client::new();
    let mut checked = 0;
    for r in ROUTES {
        let (method, route, access) = (&r.method, &r.path, &r.access);
        if *route == "/api/v1/auth/logout" {
            continue; // would end the callers' sessions; tested on its own below
        }
        let anonymous = call(&nobody, &server, method, route);
        match access {
            Access::Public => assert!(anonymous != 401 && anonymous != 403, "{method} {route}: {anonymous}"),
            _ => assert_eq!(anonymous, 401, "{method} {route} without a session"),
        }
        for (role, client) in &callers {
            let status = call(client, &server, method, route);
            let allowed = match access {
                Access::Public | Access::SignedIn => true,
                Access::Person => *role != Role::Integrator, // integrators are tokens
                Access::Needs(p) => role.can(*p),
            };
            if allowed {
                assert!(status != 401 && status != 403, "{role:?} {method} {route}: {status}, expected through");
            } else {
                assert_eq!(status, 403, "{role:?} {method} {route}: expected refused");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, (ROUTES.len() - 1) * 4);

    // A token narrower than its role: upload only.
    let upload_only = bearer(&common::create_token(dir(&data), "scanner", "study_upload"));
    assert_eq!(call(&upload_only, &server, "GET", "/metrics"), 403);
    assert_eq!(call(&upload_only, &server, "POST", "/api/v1/uploads"), 400, "through to the handler (empty form)");
    // Integrators never sign or ask the model, whatever the token says.
    assert!(!Role::Integrator.can(Permission::ReportSign) && !Role::Integrator.can(Permission::Chat));
}

#[test]
fn state_changes_need_the_csrf_token_and_sign_in_rotates_the_session() {
    let (_data, server) = start();
    // Signed in, but the request carries no X-CSRF-Token: what a forged form on another site would send.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = Client::builder().cookie_provider(jar.clone()).build().unwrap();
    let signed_in = browser
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": DOCTOR, "password": DOCTOR_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookies: Vec<String> =
        signed_in.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let session_cookie = cookies.iter().find(|c| c.starts_with("mgx_session=")).expect("session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"), "{session_cookie}");
    let csrf = signed_in.json::<Value>().unwrap()["csrf_token"].as_str().unwrap().to_string();

    let forged =
        browser.post(server.url("/api/v1/uploads")).multipart(multipart::Form::new().text("x", "y")).send().unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(forged.json::<Value>().unwrap()["error"]["code"], "csrf");
    let wrong = browser.post(server.url("/api/v1/auth/logout")).header("x-csrf-token", "0".repeat(64)).send().unwrap();
    assert_eq!(wrong.status(), 403);
    assert_eq!(browser.get(server.url("/api/v1/studies")).send().unwrap().status(), 200, "reads need no token");

    // Session fixation: an id planted in the victim's browser before sign-in is not the id after it.
    let planted = "AAAAAAAAAAAAAAAAAAAAAA";
    let fixed = Client::new()
        .post(server.url("/api/v1/auth/login"))
        .header("cookie", format!("mgx_session={planted}"))
        .json(&json!({"username": DOCTOR, "password": DOCTOR_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(fixed.status(), 200);
    let issued =
        fixed.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>();
    let issued = issued.iter().find(|c| c.starts_with("mgx_session=")).unwrap();
    assert!(!issued.contains(planted), "{issued}");
    let with_planted = Client::new()
        .get(server.url("/api/v1/auth/me"))
        .header("cookie", format!("mgx_session={planted}"))
        .send()
        .unwrap();
    assert_eq!(with_planted.status(), 401);

    // Sign-out ends the session for good.
    let out = browser.post(server.url("/api/v1/auth/logout")).header("x-csrf-token", &csrf).send().unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(browser.get(server.url("/api/v1/studies")).send().unwrap().status(), 401);

    // Pages send a browser without a session to the sign-in page, and come back after.
    let page = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = page.get(server.url("/studies/7")).send().unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login?next=/studies/7");
    assert_eq!(page.get(server.url("/login")).send().unwrap().status(), 200);
}

#[test]
fn a_password_change_or_disable_ends_every_session_of_the_account() {
    let (data, server) = start();
    add_user(dir(&data), "li", "radiologist", "a long secret phrase");
    let desk = sign_in(&server.url(""), "li", "a long secret phrase");
    let laptop = sign_in(&server.url(""), "li", "a long secret phrase");
    let own = |client: &Client, current: &str, new: &str| {
        client
            .post(server.url("/api/v1/auth/password"))
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(own(&laptop, "not it at all", "another long phrase"), 400);
    // Changing one's own password ends the other sessions, not this one.
    assert_eq!(own(&laptop, "a long secret phrase", "another long phrase"), 204);
    assert_eq!(laptop.get(server.url("/api/v1/studies")).send().unwrap().status(), 200);
    assert_eq!(desk.get(server.url("/api/v1/studies")).send().unwrap().status(), 401);
    let desk = sign_in(&server.url(""), "li", "another long phrase");
    let users: Value = server.admin().get(server.url("/api/v1/admin/users")).send().unwrap().json().unwrap();
    let li = users.as_array().unwrap().iter().find(|u| u["username"] == "li").unwrap()["id"].as_i64().unwrap();
    assert!(users.to_string().find("argon2").is_none(), "hashes never leave the server");

    // The administrator cannot give a doctor's account a password it knows (it would sign in as the
    // doctor and read patients): that is the console's, where `user passwd` resets it.
    let from_the_page = server
        .admin()
        .post(server.url(&format!("/api/v1/admin/users/{li}/password")))
        .json(&json!({"password": "a brand new passphrase"}))
        .send()
        .unwrap();
    assert_eq!(from_the_page.status(), 403);
    let body: Value = from_the_page.json().unwrap();
    assert_eq!(body["error"]["code"], "console_required", "{body}");
    assert!(body["error"]["message_zh"].as_str().unwrap().contains("medgemma-x user passwd"), "{body}");
    assert_eq!(desk.get(server.url("/api/v1/studies")).send().unwrap().status(), 200, "nothing changed");
    let mut passwd = Command::new(BIN)
        .args(["user", "passwd", "li", "--password-stdin", "--data-dir", dir(&data)])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut passwd.stdin.take().unwrap(), b"a brand new passphrase\n").unwrap();
    assert!(passwd.wait().unwrap().success());
    assert_eq!(desk.get(server.url("/api/v1/studies")).send().unwrap().status(), 401);
    assert_eq!(laptop.get(server.url("/api/v1/studies")).send().unwrap().status(), 401);

    let again = sign_in(&server.url(""), "li", "a brand new passphrase");
    let disabled = server.admin().post(server.url(&format!("/api/v1/admin/users/{li}/disable"))).send().unwrap();
    assert_eq!(disabled.status(), 200);
    assert_eq!(again.get(server.url("/api/v1/studies")).send().unwrap().status(), 401);
    let refused = Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "li", "password": "a brand new passphrase"}))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().unwrap()["error"]["code"], "account_cannot_sign_in");

    // The CLI sees the same accounts.
    let list = Command::new(BIN).args(["user", "list", "--data-dir", dir(&data)]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.lines().any(|l| l.contains("li ") && l.contains("disabled")), "{list}");
}

#[test]
fn guessing_is_slowed_but_the_owners_browser_still_signs_in() {
    let (_data, server) = start();
    // The owner signed in from this browser before: it holds the device cookie.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let owner = Client::builder().cookie_provider(jar).build().unwrap();
    let login = |client: &Client, password: &str| {
        client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": DOCTOR, "password": password}))
            .send()
            .unwrap()
    };
    assert_eq!(login(&owner, DOCTOR_PASSWORD).status(), 200);

    let attacker = Client::new();
    for _ in 0..5 {
        let response = login(&attacker, "guess-guess-guess");
        assert_eq!(response.status(), 401);
        assert_eq!(response.json::<Value>().unwrap()["error"]["code"], "bad_credentials");
    }
    let throttled = login(&attacker, DOCTOR_PASSWORD);
    assert_eq!(throttled.status(), 429, "even the right password waits after five failures");
    assert!(throttled.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // An unknown account answers exactly like a wrong password.
    let unknown = Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "nobody", "password": "x"}))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(login(&owner, DOCTOR_PASSWORD).status(), 200, "the owner's browser is not locked out");
}

/// Hostile input cannot bloat the audit trail: a 10 000-character username is refused with 400 (the row
/// says so without it), a refused request's path parameter is cut, an over-long path gets 414, and the
/// server keeps answering.
#[test]
fn hostile_names_and_paths_cannot_bloat_the_audit_trail() {
    let (_data, server) = start();
    let anonymous = Client::new();
    let junk = "u".repeat(10_000);
    let response = anonymous
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": junk, "password": "a guess of no account"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 400, "a username over 64 characters is refused as such");
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert!(body["error"]["message_zh"].as_str().unwrap().contains("用户名"), "{body}");
    let long_id = "9".repeat(3000);
    let refused = anonymous.get(server.url(&format!("/api/v1/studies/{long_id}"))).send().unwrap();
    assert_eq!(refused.status(), 401);
    let long_path = format!("/api/v1/studies/{}", "7".repeat(10_000));
    let too_long = anonymous.get(server.url(&long_path)).send().unwrap();
    assert_eq!(too_long.status(), 414);
    assert_eq!(too_long.json::<Value>().unwrap()["error"]["code"], "uri_too_long");
    assert_eq!(anonymous.get(server.url("/healthz")).send().unwrap().status(), 200, "still answering");

    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=100")).send().unwrap().json().unwrap();
    let rows = rows.as_array().unwrap();
    for row in rows {
        let text = row.to_string();
        assert!(!text.contains(&"u".repeat(65)) && !text.contains(&"9".repeat(65)), "unbounded row: {text:.300}");
        assert!(!text.contains(&"7".repeat(65)), "the over-long path reached the trail: {text:.300}");
    }
    let sign_in = rows
        .iter()
        .find(|r| r["action"] == "POST /api/v1/auth/login" && r["status"] == 400)
        .unwrap_or_else(|| panic!("no row for the refused sign-in: {rows:#?}"));
    assert_eq!(sign_in["detail"], "username over 64 characters");
    assert!(sign_in["actor_name"].is_null(), "{sign_in}");
    let view = rows
        .iter()
        .find(|r| r["action"] == "GET /api/v1/studies/{id}" && r["status"] == 401)
        .unwrap_or_else(|| panic!("no row for the refused view: {rows:#?}"));
    assert!(view["target"].as_str().unwrap().len() < 100, "{view}");
}

/// A burst of wrong guesses at once against one account: only the free five are checked, the rest get
/// 429 with Retry-After (and cost no hash); the owner's browser still signs in right after.
#[test]
fn a_burst_of_parallel_guesses_gets_no_more_through_than_five() {
    let (_data, server) = start();
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let owner = Client::builder().cookie_provider(jar).build().unwrap();
    let url = server.url("/api/v1/auth/login");
    let login = |client: &Client, password: &str| {
        client.post(&url).json(&json!({"username": DOCTOR, "password": password})).send().unwrap()
    };
    assert_eq!(login(&owner, DOCTOR_PASSWORD).status(), 200);

    let attacker = Client::new();
    let answers: Vec<(u16, Option<u64>)> = std::thread::scope(|s| {
        let guesses: Vec<_> = (0..100)
            .map(|i| {
                let (attacker, login) = (&attacker, &login);
                s.spawn(move || {
                    let response = login(attacker, &format!("parallel guess {i}"));
                    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                    (response.status().as_u16(), retry_after)
                })
            })
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    assert!(checked <= 5, "{checked} of 100 parallel guesses were checked: {answers:?}");
    for (status, retry_after) in &answers {
        assert!(*status == 401 || (*status == 429 && retry_after.is_some_and(|s| s >= 1)), "{answers:?}");
    }
    assert_eq!(login(&owner, DOCTOR_PASSWORD).status(), 200, "the owner's browser is not locked out");
}

/// The same throttle guards asking a signed-in person's password or code again: a stolen session cannot
/// guess the current password (to change it) or a one-time code (to turn the second factor off) faster.
#[test]
fn a_session_cannot_guess_the_current_password_or_code_in_parallel() {
    let (data, server) = start();
    let burst = |client: &Client, path: &str, body: Value| -> Vec<u16> {
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..40)
                .map(|_| {
                    let (url, body) = (server.url(path), body.clone());
                    s.spawn(move || client.post(url).json(&body).send().unwrap().status().as_u16())
                })
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        })
    };
    let doctor = server.client();
    let answers = burst(
        doctor,
        "/api/v1/auth/password",
        json!({"current_password": "not it at all", "new_password": "a new passphrase 2"}),
    );
    let checked = answers.iter().filter(|s| **s == 400).count();
    assert!(checked <= 5 && answers.iter().all(|s| *s == 400 || *s == 429), "{answers:?}");
    assert_eq!(doctor.get(server.url("/api/v1/auth/me")).send().unwrap().status(), 200, "still answering");

    add_user(dir(&data), "second", "radiologist", "another sound passphrase");
    let second = sign_in(&server.url(""), "second", "another sound passphrase");
    let setup: Value = second.post(server.url("/api/v1/auth/totp/setup")).send().unwrap().json().unwrap();
    let code = totp_code(setup["secret"].as_str().unwrap(), 0);
    let enabled = second.post(server.url("/api/v1/auth/totp/enable")).json(&json!({"code": code})).send().unwrap();
    assert_eq!(enabled.status(), 204);
    let answers = burst(&second, "/api/v1/auth/totp/disable", json!({"code": "000000"}));
    let checked = answers.iter().filter(|s| **s == 400).count();
    assert!(checked <= 5 && answers.iter().all(|s| *s == 400 || *s == 429), "{answers:?}");
    let me: Value = second.get(server.url("/api/v1/auth/me")).send().unwrap().json().unwrap();
    assert_eq!(me["totp_enabled"], true, "the second factor is still on");
}

/// Junk request methods cannot grow the metrics without end: each is counted under `method="other"`.
#[test]
fn junk_methods_are_counted_as_other_in_the_metrics() {
    let (_data, server) = start();
    let client = Client::new();
    for i in 0..20 {
        let junk = format!("JUNK{i}{}", "X".repeat(8000));
        let method = reqwest::Method::from_bytes(junk.as_bytes()).unwrap();
        let status = client.request(method, server.url("/healthz")).send().unwrap().status();
        assert!(status.is_client_error(), "{status}");
    }
    assert_eq!(client.get(server.url("/healthz")).send().unwrap().status(), 200, "still answering");
    let metrics = server.metrics();
    assert!(!metrics.contains("JUNK"), "a junk method became a label: {:.400}", metrics);
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.contains("method=\"GET\""), "{metrics}");
}

/// Audit CSV cells a spreadsheet would run as a formula (starting with = + - @, tab or CR) are exported
/// with a leading quote: failed sign-ins with such "usernames" land in the export as text.
#[test]
fn formula_cells_in_the_audit_export_are_neutralised() {
    let (_data, server) = start();
    let names = ["=1+2", "+1+2", "-1+2", "@SUM(1)"];
    for name in names {
        let response = Client::new()
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": name, "password": "not a password of anyone"}))
            .send()
            .unwrap();
        assert_eq!(response.status(), 401, "{name}");
    }
    let csv = server.admin().get(server.url("/api/v1/audit?format=csv")).send().unwrap().text().unwrap();
    for name in names {
        assert!(csv.contains(&format!(",'{name},")), "{name} not neutralised: {csv}");
        assert!(!csv.contains(&format!(",{name},")), "{name} exported as a formula: {csv}");
    }
}

/// Token expiry is compared as a time, not as text: a token that expired an hour ago, written with a
/// +14:00 offset (its text sorts after now's), is refused; one that expires in an hour, written at
/// -12:00 (its text sorts before now's), works; an expiry that is no time is refused when made.
#[test]
fn token_expiry_is_a_time_whatever_offset_it_was_written_in() {
    use time::format_description::well_known::Rfc3339;
    let (_data, server) = start();
    let at = |hours: i64, offset: i8| {
        let when = time::OffsetDateTime::now_utc() + time::Duration::hours(hours);
        when.to_offset(time::UtcOffset::from_hms(offset, 0, 0).unwrap()).format(&Rfc3339).unwrap()
    };
    let create = |name: &str, expires_at: &str| {
        server
            .admin()
            .post(server.url("/api/v1/admin/tokens"))
            .json(&json!({"name": name, "scopes": ["study_upload"], "expires_at": expires_at}))
            .send()
            .unwrap()
    };
    let me = |token: &str| {
        Client::new().get(server.url("/api/v1/auth/me")).bearer_auth(token).send().unwrap().status().as_u16()
    };
    let token_of = |response: reqwest::blocking::Response| {
        assert_eq!(response.status(), 201);
        response.json::<Value>().unwrap()["token"].as_str().unwrap().to_string()
    };
    let expired = token_of(create("expired-east", &at(-1, 14)));
    assert_eq!(me(&expired), 401, "expired an hour ago");
    let live = token_of(create("live-west", &at(1, -12)));
    assert_eq!(me(&live), 200, "expires in an hour");
    let garbage = create("garbage", "next tuesday");
    assert_eq!(garbage.status(), 400, "an expiry that is no time");
    assert_eq!(garbage.json::<Value>().unwrap()["error"]["code"], "bad_request");
}

/// The separation the role table promises: from the administration page an admin can make neither a
/// clinical account, nor a doctor's password, nor a token that reads patient data — each is refused
/// (403 `console_required`, naming the console command), nothing is made, and the refusal is audited.
/// Admin accounts and tokens that only send images in still come from the page.
#[test]
fn an_administrator_gets_no_path_to_patient_data_from_the_page() {
    let (_data, server) = start();
    let admin = server.admin();
    let post = |path: &str, body: Value| admin.post(server.url(path)).json(&body).send().unwrap();
    for role in ["radiologist", "department_head"] {
        let refused = post(
            "/api/v1/admin/users",
            json!({"username": format!("mole-{role}"), "display_name": "x", "role": role, "password": "a long enough phrase"}),
        );
        assert_eq!(refused.status(), 403, "{role}");
        let body: Value = refused.json().unwrap();
        assert_eq!(body["error"]["code"], "console_required", "{body}");
        assert!(body["error"]["message_en"].as_str().unwrap().contains("medgemma-x user add"), "{body}");
    }
    for scope in ["report_read", "report_export"] {
        let refused = post("/api/v1/admin/tokens", json!({"name": "mine", "scopes": ["study_upload", scope]}));
        assert_eq!(refused.status(), 403, "{scope}");
        assert_eq!(refused.json::<Value>().unwrap()["error"]["code"], "console_required");
    }
    let users: Value = admin.get(server.url("/api/v1/admin/users")).send().unwrap().json().unwrap();
    assert!(!users.to_string().contains("mole-"), "no account was made: {users}");
    let tokens: Value = admin.get(server.url("/api/v1/admin/tokens")).send().unwrap().json().unwrap();
    assert_eq!(tokens.as_array().unwrap().len(), 0, "no token was made: {tokens}");

    // What the page may still do.
    let second = post(
        "/api/v1/admin/users",
        json!({"username": "admin2", "display_name": "值班管理员", "role": "admin", "password": "a long enough phrase"}),
    );
    assert_eq!(second.status(), 201);
    let second_id = second.json::<Value>().unwrap()["id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/users/{second_id}/password");
    assert_eq!(post(&path, json!({"password": "short"})).status(), 400, "a weak password is still refused");
    assert_eq!(post(&path, json!({"password": "another long phrase"})).status(), 200);
    assert_eq!(post("/api/v1/admin/tokens", json!({"name": "pacs", "scopes": ["study_upload"]})).status(), 201);

    let trail: Value = admin.get(server.url("/api/v1/audit?limit=100")).send().unwrap().json().unwrap();
    let denied = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "denied" && r["action"].as_str().unwrap().starts_with("POST /api/v1/admin/"))
        .count();
    assert_eq!(denied, 4, "{trail:#}");
}

#[test]
fn tokens_are_shown_once_scoped_and_revocable() {
    let (_data, server) = start();
    let admin = server.admin();
    let refused = admin
        .post(server.url("/api/v1/admin/tokens"))
        .json(&json!({"name": "his", "scopes": ["report_sign"]}))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 400, "no token can sign");
    let made: Value = admin
        .post(server.url("/api/v1/admin/tokens"))
        .json(&json!({"name": "pacs", "scopes": ["study_upload"]}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = made["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("mgx_") && token.len() == 68, "{token}");
    let listed = admin.get(server.url("/api/v1/admin/tokens")).send().unwrap().text().unwrap();
    assert!(!listed.contains(&token[4..]), "the token is shown once, never listed: {listed}");

    let file = dicom_fixture("synthetic/cxr.jpg");
    let upload = |token: &str| {
        Client::new()
            .post(server.url("/api/v1/uploads"))
            .bearer_auth(token)
            .multipart(
                multipart::Form::new()
                    .text("patient_id", "P-TOKEN")
                    .part("files", multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name("cxr.jpg")),
            )
            .send()
            .unwrap()
    };
    let landed = upload(&token);
    assert_eq!(landed.status(), 200, "tokens need no CSRF token");
    // The scheme is case-insensitive: recognised (403 for the scope, not 401).
    let lower =
        Client::new().get(server.url("/metrics")).header("authorization", format!("bearer {token}")).send().unwrap();
    assert_eq!(lower.status(), 403);
    let study = landed.json::<Value>().unwrap()["files"][0]["study_id"].as_i64().unwrap();
    let chat = Client::new()
        .post(server.url(&format!("/api/v1/studies/{study}/chat")))
        .bearer_auth(&token)
        .json(&json!({"message": "描述"}))
        .send()
        .unwrap();
    assert_eq!(chat.status(), 403);
    let id = made["info"]["id"].as_i64().unwrap();
    assert_eq!(admin.post(server.url(&format!("/api/v1/admin/tokens/{id}/revoke"))).send().unwrap().status(), 200);
    assert_eq!(upload(&token).status(), 401);
    assert_eq!(upload("mgx_not-a-token").status(), 401);
}

/// Who looked at which patient: every read is in the trail, with the caller, the address and the
/// patient's pseudonym (never the ID); a row edited in the database file is found by `audit verify`.
#[test]
fn the_audit_trail_names_who_saw_which_patient_and_shows_tampering() {
    let (data, server) = start();
    let file = dicom_fixture("synthetic/cxr.jpg");
    let form = multipart::Form::new()
        .text("patient_id", "P-AUDIT-88")
        .part("files", multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name("cxr.jpg"));
    let uploaded: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let study = uploaded["files"][0]["study_id"].as_i64().unwrap();
    assert_eq!(server.get(&format!("/api/v1/studies/{study}")).status(), 200);
    assert_eq!(server.client().get(server.url("/api/v1/audit")).send().unwrap().status(), 403);
    // The console writes to the same chain while the server runs.
    add_user(dir(&data), "late-arrival", "radiologist", "added while serving");
    assert_eq!(server.get("/api/v1/studies").status(), 200);

    let rows: Value = server.admin().get(server.url("/api/v1/audit?limit=100")).send().unwrap().json().unwrap();
    let view = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "GET /api/v1/studies/{id}" && r["study_id"] == study)
        .unwrap_or_else(|| panic!("no row for the study view: {rows:#}"));
    assert_eq!(view["actor_name"], DOCTOR);
    assert_eq!(view["role"], "radiologist");
    assert_eq!(view["ip"], "127.0.0.1");
    assert_eq!(view["outcome"], "ok");
    assert!(view["patient_ref"].as_str().unwrap().starts_with("P-"), "{view}");
    let denied =
        rows.as_array().unwrap().iter().find(|r| r["action"] == "GET /api/v1/audit" && r["outcome"] == "denied");
    assert!(denied.is_some(), "the refused read of the trail is itself recorded");
    let console = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "user.add" && r["detail"] == "late-arrival role=radiologist");
    assert_eq!(console.unwrap_or_else(|| panic!("{rows:#}"))["actor_kind"], "console");
    let csv = server.admin().get(server.url("/api/v1/audit?format=csv")).send().unwrap().text().unwrap();
    assert!(csv.starts_with("id,ts,actor_kind"), "{csv}");
    assert!(!csv.contains("P-AUDIT-88") && !rows.to_string().contains("P-AUDIT-88"), "patient IDs only as pseudonyms");
    let verified: Value = server.admin().get(server.url("/api/v1/audit/verify")).send().unwrap().json().unwrap();
    assert_eq!(verified["ok"], true, "{verified}");
    drop(server);

    let verify = || Command::new(BIN).args(["audit", "verify", "--data-dir", dir(&data)]).output().unwrap();
    assert!(verify().status.success());
    // Somebody with the database file removes the guard and rewrites who looked.
    let view_id = view["id"].as_i64().unwrap();
    let tamper = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DROP TRIGGER audit_events_no_update'); \
             c.execute(\"UPDATE audit_events SET actor_name='someone-else' WHERE id=?\", (int(sys.argv[2]),)); c.commit()",
        ])
        .arg(data.path().join("db/medgemma-x.sqlite3"))
        .arg(view_id.to_string())
        .output()
        .unwrap();
    assert!(tamper.status.success(), "{}", String::from_utf8_lossy(&tamper.stderr));
    let out = verify();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("row {view_id}")), "{said}");
}

/// A patient's name, ID, birth date and accession number, planted in a DICOM file, never appear in any log
/// file after upload, worklist search, viewing, questions to the model, a report draft and an audit export
/// — with the log level at debug.
#[test]
fn a_planted_patient_never_reaches_the_logs() {
    let data = tempfile::tempdir().unwrap();
    let planted = data.path().join("planted.dcm");
    let made = Command::new("python3")
        .args([
            "-c",
            "import pydicom,sys; d=pydicom.dcmread(sys.argv[1]); d.PatientName='ZHOU^PLANTEDNAME'; \
             d.PatientID='PLANT-7731'; d.PatientBirthDate='19570312'; d.AccessionNumber='ACCPLANT55'; d.save_as(sys.argv[2])",
        ])
        .arg(dicom_fixture("synthetic/cr_monochrome1.dcm"))
        .arg(&planted)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let server = Server::start(
        &["--data-dir", dir(&data), "--model-dir", fixture("tiny-a").to_str().unwrap(), "--log", "debug"],
        &[],
    );
    let form = multipart::Form::new()
        .part("files", multipart::Part::bytes(std::fs::read(&planted).unwrap()).file_name("planted.dcm"));
    let uploaded: Value =
        server.client().post(server.url("/api/v1/uploads")).multipart(form).send().unwrap().json().unwrap();
    let study = uploaded["files"][0]["study_id"].as_i64().unwrap_or_else(|| panic!("{uploaded:#}"));
    let instance = uploaded["files"][0]["instance_id"].as_i64().unwrap();
    let found: Value = server.get("/api/v1/studies?q=PLANTEDNAME").json().unwrap();
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(server.get("/api/v1/studies?q=ACCPLANT55").json::<Value>().unwrap()["total"], 1);
    assert_eq!(server.get(&format!("/api/v1/instances/{instance}/frames/1/image.png")).status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for body in [
        json!({"message": "这位患者 ZHOU^PLANTEDNAME（PLANT-7731）的胸片怎么样？", "max_new_tokens": 8}),
        json!({"message": "生成结构化报告", "mode": "report_draft", "context": false}),
    ] {
        loop {
            let response =
                server.client().post(server.url(&format!("/api/v1/studies/{study}/chat"))).json(&body).send().unwrap();
            if response.status() == 503 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(200)); // model still loading
                continue;
            }
            let text = response.text().unwrap();
            assert!(text.contains("event: done"), "{text}");
            break;
        }
    }
    let csv = server.admin().get(server.url("/api/v1/audit?format=csv")).send().unwrap().text().unwrap();
    // A failed sign-in with a patient's name typed as the username is the one way a name could reach the
    // trail; usernames are not patient data and are kept, but never logged.
    let _ = Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "PLANTEDNAME", "password": "x"}))
        .send()
        .unwrap();
    let (status, _) = server.terminate();
    assert!(status.success());

    let mut logs = String::new();
    for entry in std::fs::read_dir(data.path().join("logs")).unwrap() {
        logs.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(logs.len() > 10_000, "debug logging was on: {} bytes", logs.len());
    for secret in ["PLANTEDNAME", "PLANT-7731", "19570312", "1957-03-12", "ACCPLANT55"] {
        assert!(!logs.contains(secret), "{secret} is in the logs");
        assert!(!csv.contains(secret), "{secret} is in the audit export");
    }
}

/// The security self-check names the initial password that still works, lists the role table, checks file
/// modes and the audit chain, and says plainly that dependency advisories were not checked offline.
#[test]
fn the_security_self_check_reports_what_needs_doing() {
    let (data, server) = start();
    let report = || {
        let out = Command::new(BIN).args(["audit-report", "--data-dir", dir(&data)]).output().unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = report();
    assert_eq!(code, Some(1), "the initial admin password still works: {text}");
    assert!(text.contains("账号 admin 仍在使用初始密码"), "{text}");
    for role in Role::ALL {
        assert!(text.contains(role.as_str()), "{text}");
    }
    assert!(
        text.contains("| `report_sign` | ✓ | ✓ |  |  |"),
        "radiologist and head sign, integrator and admin do not: {text}"
    );
    assert!(text.contains("| POST | `/api/v1/studies/{id}/chat` | `chat` |"), "{text}");
    assert!(text.contains("listening on 127.0.0.1:"), "{text}");
    assert!(text.contains("/secrets/site.key` mode 600 (want 600)"), "{text}");
    assert!(text.contains("/db` mode 700 (want 700)"), "{text}");
    assert!(text.contains("hash chain intact"), "{text}");
    assert!(text.contains("cargo audit") || text.contains("not checked"), "{text}");

    let changed = Command::new(BIN).args(["user", "passwd", "admin", "--data-dir", dir(&data)]).output().unwrap();
    assert!(changed.status.success());
    let (code, text) = report();
    assert!(text.contains("admin: the initial password no longer signs in"), "{text}");
    assert_eq!(code, Some(0), "warnings only now: {text}");
    drop(server);
}

/// The OpenAPI document is public, lists every route of the table with the permission it needs, and passes
/// a real OpenAPI 3.0 validator (openapi-spec-validator).
#[test]
fn the_openapi_document_covers_every_route_and_validates() {
    let (data, server) = start();
    let response = Client::new().get(server.url("/api/v1/openapi.json")).send().unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().unwrap();
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        assert_eq!(op["summary"], r.summary, "{} {}", r.method, r.path);
        let needs = match r.access {
            Access::Needs(p) => p.as_str().to_string(),
            Access::Public => "none (public)".into(),
            Access::SignedIn => "any signed-in caller".into(),
            Access::Person => "a signed-in person (no API token)".into(),
        };
        assert_eq!(op["x-permission"], needs.as_str());
    }
    let file = data.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let checked = Command::new("python3")
        .args(["-c", "import json,sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
}

/// The code an authenticator app shows for `secret` at the current 30-second step plus `offset` — computed
/// independently of the server (Python's standard library, RFC 6238).
fn totp_code(secret: &str, offset: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import base64,hmac,hashlib,struct,sys,time\n\
             s=base64.b32decode(sys.argv[1]+'='*(-len(sys.argv[1])%8)); c=int(time.time())//30+int(sys.argv[2])\n\
             h=hmac.new(s,struct.pack('>Q',c),hashlib.sha1).digest(); o=h[-1]&15\n\
             print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))",
        ])
        .arg(secret)
        .arg(offset.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_second_factor_is_asked_for_once_enrolled_and_each_code_works_once() {
    let (data, server) = start();
    let doctor = server.client();
    let setup: Value = doctor.post(server.url("/api/v1/auth/totp/setup")).send().unwrap().json().unwrap();
    let secret = setup["secret"].as_str().unwrap().to_string();
    assert!(
        setup["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with(&format!("otpauth://totp/MedGemma-X:{DOCTOR}?secret={secret}"))
    );
    // Not required until confirmed.
    assert_eq!(sign_in_status(&server, None), 200);
    let wrong = doctor.post(server.url("/api/v1/auth/totp/enable")).json(&json!({"code": "12345"})).send().unwrap();
    assert_eq!(wrong.status(), 400);
    let enabled = doctor
        .post(server.url("/api/v1/auth/totp/enable"))
        .json(&json!({"code": totp_code(&secret, 0)}))
        .send()
        .unwrap();
    assert_eq!(enabled.status(), 204);
    assert_eq!(
        doctor.get(server.url("/api/v1/auth/me")).send().unwrap().json::<Value>().unwrap()["totp_enabled"],
        true
    );

    let login = |code: Option<&str>| {
        let mut body = json!({"username": DOCTOR, "password": DOCTOR_PASSWORD});
        if let Some(code) = code {
            body["totp"] = json!(code);
        }
        Client::new().post(server.url("/api/v1/auth/login")).json(&body).send().unwrap()
    };
    let missing = login(None);
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.json::<Value>().unwrap()["error"]["code"], "totp_required");
    let valid_now: Vec<String> = (-1..=2).map(|o| totp_code(&secret, o)).collect();
    let not_a_code = (0..1_000_000).map(|n| format!("{n:06}")).find(|c| !valid_now.contains(c)).unwrap();
    let bad = login(Some(&not_a_code));
    assert_eq!(bad.json::<Value>().unwrap()["error"]["code"], "bad_totp");
    // The next step's code (the enrolment used this step's): accepted once, refused when replayed.
    let next = totp_code(&secret, 1);
    assert_eq!(login(Some(&next)).status(), 200);
    let replayed = login(Some(&next));
    assert_eq!(replayed.status(), 401);
    assert_eq!(replayed.json::<Value>().unwrap()["error"]["code"], "bad_totp");

    // A lost phone: the admin removes the factor (and the console can too).
    let users: Value = server.admin().get(server.url("/api/v1/admin/users")).send().unwrap().json().unwrap();
    let id = users.as_array().unwrap().iter().find(|u| u["username"] == DOCTOR).unwrap()["id"].as_i64().unwrap();
    assert_eq!(users.as_array().unwrap().iter().find(|u| u["username"] == DOCTOR).unwrap()["totp_enabled"], true);
    assert!(!users.to_string().contains(&secret), "the secret never leaves after set-up");
    let reset = server.admin().post(server.url(&format!("/api/v1/admin/users/{id}/totp/reset"))).send().unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(login(None).status(), 200);
    let cli = Command::new(BIN).args(["user", "totp-reset", DOCTOR, "--data-dir", dir(&data)]).output().unwrap();
    assert!(cli.status.success());
}

fn sign_in_status(server: &Server, totp: Option<&str>) -> u16 {
    let mut body = json!({"username": DOCTOR, "password": DOCTOR_PASSWORD});
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    Client::new().post(server.url("/api/v1/auth/login")).json(&body).send().unwrap().status().as_u16()
}

/// A session past its idle deadline (the store's expiry, moved on by requests) no longer signs anyone in;
/// the deadline follows `--session-idle-minutes`.
#[test]
fn an_idle_session_ends() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&["--data-dir", dir(&data), "--session-idle-minutes", "5"], &[]);
    let doctor = server.client();
    assert_eq!(server.get("/api/v1/studies").status(), 200);
    let db = data.path().join("db/medgemma-x.sqlite3");
    let sqlite = |sql: &str| {
        let out = Command::new("python3")
            .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r)"])
            .arg(&db)
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // The store keeps the deadline as a timestamp text ("2026-11-30 03:58:00.12+00:00").
    let left: i64 = sqlite("SELECT MAX(CAST(strftime('%s', expiry_date) AS INTEGER)) - CAST(strftime('%s','now') AS INTEGER) FROM tower_sessions")
        .trim_matches(|c| "[](),\n".contains(c))
        .parse()
        .unwrap();
    assert!((240..=300).contains(&left), "the idle deadline is 5 minutes out: {left} s");
    sqlite("UPDATE tower_sessions SET expiry_date = datetime('now', '-1 second')");
    assert_eq!(doctor.get(server.url("/api/v1/studies")).send().unwrap().status(), 401);
}
