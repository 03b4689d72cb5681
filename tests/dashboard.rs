//! The dashboard's sign-in as a user meets it, over loopback HTTP on SQLite
//! and PostgreSQL (`LINKWATCH_TEST_PG_URL`): users made with `linkwatch user
//! add`, good and bad passwords with one generic error, the rate limit,
//! sessions that end (sign-out, expiry, user removed), forged form posts
//! refused, and pages that send a stranger to the sign-in page.

mod common;

use common::cli::linkwatch_input;

use common::db::{TestDb, on_both};
use common::web::{Browser, default_options, serve};
use linkwatch::collector::access::{Level, Role};
use linkwatch::collector::devices::token_hash;
use linkwatch::collector::store::{NewSession, Office};
use linkwatch::collector::web::users;
use std::sync::Arc;

const PW: &str = "correct horse battery";

on_both!(
    sign_in_good_and_bad_and_sign_out,
    attempts_are_rate_limited,
    sessions_expire_and_end_with_their_user,
    forged_forms_are_refused,
    cli_adds_lists_and_removes_users,
);

fn now() -> i64 {
    linkwatch::shared::time::now_ms()
}

async fn offices(store: &dyn linkwatch::collector::store::Store) {
    let o = |code: &str, div: &str| Office {
        code: code.into(),
        name: format!("UNO {code}"),
        division: div.into(),
        district: div.into(),
        upazila: "Sadar".into(),
        hours: None,
    };
    store
        .upsert_offices(&[o("dhk-1", "Dhaka"), o("ctg-1", "Chattogram")])
        .await
        .unwrap();
}

async fn sign_in_good_and_bad_and_sign_out(db: Arc<TestDb>) {
    let store = db.open().await;
    users::add_user(store.as_ref(), "admin", Role::Admin, None, PW, now())
        .await
        .unwrap();
    let web = serve(store.clone(), default_options()).await;
    let mut b = Browser::new(&web);

    // A stranger is sent to the sign-in page from every page.
    let root = b.get("/").await;
    assert_eq!(
        (root.status, root.location.as_deref()),
        (303, Some("/fleet"))
    );
    for path in ["/fleet", "/fleet?level=division&name=Dhaka", "/devices/x"] {
        let p = b.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(p.location.as_deref(), Some("/signin"), "{path}");
    }

    // Wrong password and unknown user: the same status and the same words.
    let wrong = b.sign_in("admin", "not the password").await;
    let unknown = b.sign_in("nobody", PW).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    let said = wrong.error().unwrap();
    assert_eq!(Some(said.clone()), unknown.error());
    assert!(said.contains("check the user name and password"), "{said}");
    assert!(!b.cookies.contains_key("lw_session"));

    // The right one: a session cookie, HttpOnly and SameSite=Strict (not
    // Secure over plain HTTP), and the fleet page.
    let ok = b.sign_in("admin", PW).await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/fleet")));
    let cookie = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("lw_session="))
        .unwrap();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let first = b.cookies["lw_session"].clone();
    // Only its hash is stored.
    assert!(store.session(&first, now()).await.unwrap().is_none());
    assert!(
        store
            .session(&token_hash(&first), now())
            .await
            .unwrap()
            .is_some()
    );
    let fleet = b.get("/fleet").await;
    assert_eq!(fleet.status, 200);
    assert!(
        fleet
            .header("content-type")
            .starts_with("text/html; charset=utf-8")
    );
    assert!(fleet.text.contains("Fleet now"));
    // The sign-in page of a signed-in user goes to the fleet.
    assert_eq!(b.get("/signin").await.location.as_deref(), Some("/fleet"));

    // Sign out: the cookie is dropped and the old value no longer works.
    let csrf = fleet.csrf();
    let out = b.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (out.status, out.location.as_deref()),
        (303, Some("/signin"))
    );
    assert!(!b.cookies.contains_key("lw_session"));
    b.cookies.insert("lw_session".into(), first.clone());
    let replay = b.get("/fleet").await;
    assert_eq!(replay.location.as_deref(), Some("/signin?expired=1"));

    // Each sign-in makes a new session (no fixation).
    b.cookies.clear();
    b.sign_in("admin", PW).await;
    assert_ne!(b.cookies["lw_session"], first);

    // Switch to Bangla: the user's pages are in Bangla, digits too.
    let page = b.get("/fleet").await;
    let to_bn = b
        .post(
            "/lang",
            &[("csrf", &page.csrf()), ("lang", "bn"), ("back", "/fleet")],
        )
        .await;
    assert_eq!(to_bn.location.as_deref(), Some("/fleet"));
    let bn = b.get("/fleet").await;
    assert!(bn.text.contains("lang=\"bn\""), "{}", bn.text);
    assert!(bn.text.contains("এখনকার অবস্থা"));
    assert_eq!(bn.count("total"), "০");
}

async fn attempts_are_rate_limited(db: Arc<TestDb>) {
    let store = db.open().await;
    for name in ["rahim", "karim"] {
        users::add_user(store.as_ref(), name, Role::Read, None, PW, now())
            .await
            .unwrap();
    }
    let web = serve(store.clone(), default_options()).await;
    let mut b = Browser::new(&web);
    for _ in 0..5 {
        assert_eq!(b.sign_in("rahim", "wrong password!").await.status, 401);
    }
    // Locked: even the right password is refused, with no hint.
    let locked = b.sign_in("Rahim", PW).await;
    assert_eq!(locked.status, 429);
    let said = locked.error().unwrap();
    assert!(said.contains("Too many sign-in attempts"), "{said}");
    assert!(!b.cookies.contains_key("lw_session"));
    // Another account from the same address still signs in.
    assert_eq!(b.sign_in("karim", PW).await.status, 303);

    // Two collectors on one database (replicas behind one address): the
    // limit is theirs together. Three failures on one and two on the other
    // lock the account on both; a made-up name is counted the same way, so
    // the answers do not tell which names exist.
    let other = serve(db.open().await, default_options()).await;
    for name in ["karim", "nobody-here"] {
        let (mut one, mut two) = (Browser::new(&web), Browser::new(&other));
        for i in 0..5 {
            let b = if i < 3 { &mut one } else { &mut two };
            let s = b.sign_in(name, "wrong password!").await.status;
            assert_eq!(s, 401, "{name}, failure {i}");
        }
        for (which, b) in [("first", &mut one), ("second", &mut two)] {
            let s = b.sign_in(name, PW).await.status;
            assert_eq!(s, 429, "{name} on the {which} collector");
        }
    }
}

async fn sessions_expire_and_end_with_their_user(db: Arc<TestDb>) {
    let store = db.open().await;
    let u = users::add_user(store.as_ref(), "viewer", Role::Read, None, PW, now())
        .await
        .unwrap();
    let web = serve(store.clone(), default_options()).await;
    let mut b = Browser::new(&web);
    // A session that ended a minute ago.
    let value = "lw1_expired-session-value";
    store
        .add_session(&NewSession {
            id_hash: &token_hash(value),
            user_id: u.id,
            csrf: "c",
            now_ms: now() - 120_000,
            expires_ms: now() - 60_000,
        })
        .await
        .unwrap();
    b.cookies.insert("lw_session".into(), value.into());
    let p = b.get("/fleet").await;
    assert_eq!(p.location.as_deref(), Some("/signin?expired=1"));
    let note = b.get("/signin?expired=1").await;
    assert!(
        note.text.contains("Your session has ended"),
        "{}",
        note.text
    );

    // A live session ends when its user is removed.
    b.cookies.clear();
    assert_eq!(b.sign_in("viewer", PW).await.status, 303);
    assert_eq!(b.get("/fleet").await.status, 200);
    assert!(store.remove_user("viewer").await.unwrap());
    assert_eq!(
        b.get("/fleet").await.location.as_deref(),
        Some("/signin?expired=1")
    );
}

async fn forged_forms_are_refused(db: Arc<TestDb>) {
    let store = db.open().await;
    users::add_user(store.as_ref(), "admin", Role::Admin, None, PW, now())
        .await
        .unwrap();
    let web = serve(store.clone(), default_options()).await;
    let mut b = Browser::new(&web);
    // Sign-in without the form's cookie (a post from another site), or with
    // a token that does not match it.
    let mut stranger = Browser::new(&web);
    let p = stranger
        .post(
            "/signin",
            &[("csrf", "x"), ("name", "admin"), ("password", PW)],
        )
        .await;
    assert_eq!(p.status, 403);
    stranger.get("/signin").await;
    let p = stranger
        .post(
            "/signin",
            &[("csrf", "x"), ("name", "admin"), ("password", PW)],
        )
        .await;
    assert_eq!(p.status, 403);
    assert!(!stranger.cookies.contains_key("lw_session"));

    assert_eq!(b.sign_in("admin", PW).await.status, 303);
    let real = b.get("/fleet").await.csrf();
    for form in [
        vec![],
        vec![("csrf", "forged")],
        vec![("csrf", &real[..real.len() - 1])],
    ] {
        let p = b.post("/signout", &form).await;
        assert_eq!(p.status, 403, "{form:?}");
        let mut f = form.clone();
        f.push(("lang", "bn"));
        assert_eq!(b.post("/lang", &f).await.status, 403, "{f:?}");
    }
    // Still signed in, still in English.
    let p = b.get("/fleet").await;
    assert_eq!(p.status, 200);
    assert!(p.text.contains("lang=\"en\""));
    // Another session's token does not do either.
    let mut other = Browser::new(&web);
    other.sign_in("admin", PW).await;
    let theirs = other.get("/fleet").await.csrf();
    assert_ne!(theirs, real);
    assert_eq!(b.post("/signout", &[("csrf", &theirs)]).await.status, 403);
}

async fn cli_adds_lists_and_removes_users(db: Arc<TestDb>) {
    let store = db.open().await;
    offices(store.as_ref()).await;
    let cfg_path = db.dir().join("collector.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = {:?}\n",
            db.url()
        ),
    )
    .unwrap();
    let cfg = cfg_path.to_str().unwrap();
    let dir = db.dir();
    let pw = format!("{PW}\n");
    let (code, out, err) = linkwatch_input(
        &[
            "user",
            "add",
            "first-admin",
            "--role",
            "admin",
            "--config",
            cfg,
        ],
        &pw,
        dir,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("user `first-admin` added (admin role"),
        "{out}"
    );
    let (code, _, err) = linkwatch_input(
        &[
            "user",
            "add",
            "ctg-it",
            "--role",
            "read",
            "--division",
            "chattogram",
            "--config",
            cfg,
        ],
        &pw,
        dir,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let u = store.user_by_name("ctg-it").await.unwrap().unwrap();
    assert_eq!(
        u.branch.as_ref().map(|b| (b.level, b.name.as_str())),
        Some((Level::Division, "Chattogram"))
    );
    assert!(u.password_hash.starts_with("$argon2id$"));
    assert!(!u.password_hash.contains(PW));

    // Refused: a short password, a taken name, an unknown branch, a bad name.
    for (args, said) in [
        (
            vec!["user", "add", "x", "--role", "read"],
            "password too short",
        ),
        (
            vec!["user", "add", "first-admin", "--role", "read"],
            "already exists",
        ),
        (
            vec![
                "user",
                "add",
                "y",
                "--role",
                "read",
                "--district",
                "Nowhere",
            ],
            "--district",
        ),
        (
            vec!["user", "add", "a b", "--role", "read"],
            "user name `a b`",
        ),
    ] {
        let mut a = args.clone();
        a.extend(["--config", cfg]);
        let input = if said == "password too short" {
            "short\n"
        } else {
            pw.as_str()
        };
        let (code, _, err) = linkwatch_input(&a, input, dir).await;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
    }

    let (code, out, _) = linkwatch_input(&["user", "list", "--config", cfg], "", dir).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("ctg-it") && out.contains("division Chattogram"),
        "{out}"
    );
    assert!(!out.contains("argon2"), "{out}");

    // The user the CLI made signs in over HTTP; removed, it cannot.
    let web = serve(store.clone(), default_options()).await;
    let mut b = Browser::new(&web);
    assert_eq!(b.sign_in("first-admin", PW).await.status, 303);
    // A new password from the CLI: checked, the sessions end, the old one
    // no longer signs in, the new one does.
    let new_pw = "a brand new passphrase\n";
    let (code, _, err) = linkwatch_input(
        &["user", "password", "first-admin", "--config", cfg],
        "short\n",
        dir,
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("password too short"), "{err}");
    assert_eq!(
        b.get("/fleet").await.status,
        200,
        "a refused change ends nothing"
    );
    let (code, out, err) = linkwatch_input(
        &["user", "password", "first-admin", "--config", cfg],
        new_pw,
        dir,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sessions have ended"), "{out}");
    assert_eq!(b.get("/fleet").await.status, 303);
    let mut n = Browser::new(&web);
    assert_eq!(n.sign_in("first-admin", PW).await.status, 401);
    assert_eq!(
        n.sign_in("first-admin", new_pw.trim_end()).await.status,
        303
    );
    let (code, _, err) = linkwatch_input(
        &["user", "password", "nobody", "--config", cfg],
        new_pw,
        dir,
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("no user named"), "{err}");
    let mut b = n;
    let (code, out, _) =
        linkwatch_input(&["user", "remove", "first-admin", "--config", cfg], "", dir).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(b.get("/fleet").await.status, 303);
    let mut c = Browser::new(&web);
    assert_eq!(
        c.sign_in("first-admin", new_pw.trim_end()).await.status,
        401
    );
    let (code, _, err) =
        linkwatch_input(&["user", "remove", "first-admin", "--config", cfg], "", dir).await;
    assert_eq!(code, 2);
    assert!(err.contains("no user named"), "{err}");
}
