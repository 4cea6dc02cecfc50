//! Users, first user, login (02 §11 items 2–14).

use hangar_testkit::client::{ADMIN_EMAIL, ADMIN_PASSWORD};
use hangar_testkit::{Client, db_tests, spawn_server};
use serde_json::json;

db_tests! {
    /// 2: the first user, once; 3–4: password strength.
    async fn first_user(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        let a = c.get("/api/v2/users/first").await;
        assert_eq!((a.status.as_u16(), a.message()), (404, "The initial user has not been created!"));
        let weak = c.post("/api/v2/users/first", &json!({"email": "a@b.c", "username": "admin", "password": "password"})).await;
        assert_eq!(weak.status.as_u16(), 400);
        assert_eq!(weak.message(), "Password not strong enough!");
        assert_eq!(
            weak.json["validations"][0]["detail"],
            "insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password"
        );
        let long: String = ('a'..='z').chain('A'..='Z').chain('0'..='9').chain("!@$".chars()).collect();
        let a = c.post("/api/v2/users/first", &json!({"email": "a@b.c", "username": "admin", "password": long})).await;
        assert_eq!(a.json["validations"][0]["detail"], "password must be no more than 64 characters");

        let a = c.post("/api/v2/users/first", &json!({"email": ADMIN_EMAIL, "username": "admin", "password": ADMIN_PASSWORD, "trial": false})).await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text);
        let org = c.with_token("x").get("/api/v2/users/first").await;
        assert_eq!(org.message(), "The initial user has already been created!");
        let admin = c.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let default = admin.get("/api/v2/organizations/default").await;
        assert_eq!(a.json["organization_id"], default.json["id"]);
        let me = admin.get("/api/v2/users/me").await;
        assert_eq!(me.json["roles"], json!([{"name": "owner", "display_name": "Owner"}]));
        assert_eq!(me.json["status"], "active");
        let again = c.post("/api/v2/users/first", &json!({"email": "b@b.c", "username": "other", "password": ADMIN_PASSWORD})).await;
        assert_eq!((again.status.as_u16(), again.message()), (409, "The initial user has already been created."));
        // `password1234` is strong enough.
        let (_, bob) = admin.create_user("bob").await;
        let a = bob.put("/api/v2/users/me/password", &json!({"old_password": ADMIN_PASSWORD, "password": "password1234"})).await;
        assert_eq!(a.status.as_u16(), 204, "{}", a.text);
    }

    /// Concurrent first-user calls yield exactly one 201.
    async fn first_user_race(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        let mut tasks = vec![];
        for i in 0..8 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.post("/api/v2/users/first", &json!({"email": format!("u{i}@x.io"), "username": format!("u{i}"), "password": ADMIN_PASSWORD}))
                    .await
                    .status
                    .as_u16()
            }));
        }
        let mut codes = vec![];
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
        assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
    }

    /// 5–6, 9: login, token format, bad credentials, logout.
    async fn login_and_logout(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        let admin = c.first_user().await;
        let token = admin.token.clone().unwrap();
        let (id, secret) = token.split_once('-').unwrap();
        assert!(id.len() == 10 && secret.len() == 22 && token.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-'));
        let stored = db
            .query("SELECT hashed_password FROM users WHERE username = 'admin'", vec![])
            .await
            .unwrap()
            .remove(0)
            .bytes("hashed_password")
            .unwrap();
        let stored = String::from_utf8(stored).unwrap();
        let parts: Vec<&str> = stored.split('$').collect();
        assert_eq!((parts[1], parts[2], parts[3].len(), parts[4].len()), ("pbkdf2-sha256", "65535", 22, 86));

        for (email, pw) in [(ADMIN_EMAIL, "wrong-password"), ("nobody@example.com", ADMIN_PASSWORD), ("prebuilds@system", "none")] {
            let a = c.post("/api/v2/users/login", &json!({"email": email, "password": pw})).await;
            assert_eq!((a.status.as_u16(), a.message()), (401, "Incorrect email or password."), "{email}");
        }
        let a = c.post("/api/v2/users/login", &json!({"email": ADMIN_EMAIL.to_uppercase(), "password": ADMIN_PASSWORD})).await;
        assert_eq!(a.status.as_u16(), 201);
        assert!(a.header("set-cookie").starts_with("coder_session_token="));
        assert!(a.header("set-cookie").contains("HttpOnly"));

        let out = admin.post("/api/v2/users/logout", &json!({})).await;
        assert_eq!((out.status.as_u16(), out.message()), (200, "Logged out!"));
        let after = admin.get("/api/v2/users/me").await;
        assert_eq!((after.status.as_u16(), after.detail()), (401, "API key is invalid."));
    }

    /// 7: suspended users; dormant users become active.
    async fn suspend_and_dormant(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (bob, bob_c) = admin.create_user("bob").await;
        let a = admin.put(&format!("/api/v2/users/{}/status/suspend", bob["id"].as_str().unwrap()), &json!({})).await;
        assert_eq!((a.status.as_u16(), a.json["status"].as_str()), (200, Some("suspended")));
        let denied = bob_c.get("/api/v2/users/me").await;
        assert_eq!(denied.status.as_u16(), 401);
        assert_eq!(denied.message(), "User is not active (status = \"suspended\"). Contact an admin to reactivate your account.");
        let login = Client::new(&srv.url).post("/api/v2/users/login", &json!({"email": "bob@example.com", "password": ADMIN_PASSWORD})).await;
        assert_eq!((login.status.as_u16(), login.message()), (401, "Your account is suspended. Contact an admin to reactivate your account."));
        // Self-suspend and owner-suspend are refused.
        let a = admin.put("/api/v2/users/me/status/suspend", &json!({})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "You cannot suspend yourself."));
        admin.put("/api/v2/users/bob/status/activate", &json!({})).await;
        admin.put("/api/v2/users/bob/roles", &json!({"roles": ["owner"]})).await;
        let a = admin.put("/api/v2/users/bob/status/suspend", &json!({})).await;
        assert_eq!(a.message(), "You cannot suspend a user with the \"owner\" role. You must remove the role first.");

        // A dormant user (the default) becomes active on first request.
        let org = admin.get("/api/v2/organizations/default").await;
        let a = admin.post("/api/v2/users", &json!({"email": "d@example.com", "username": "dora", "password": ADMIN_PASSWORD, "organization_ids": [org.json["id"]]})).await;
        assert_eq!(a.json["status"], "dormant");
        let dora = Client::new(&srv.url).login("d@example.com", ADMIN_PASSWORD).await;
        assert_eq!(dora.get("/api/v2/users/me").await.json["status"], "active");
    }

    /// 8: the 61st login in a minute from one IP → 429.
    async fn login_rate_limit(db: TestDb) {
        let srv = spawn_server(&db).await;
        let c = Client::new(&srv.url);
        for i in 0..60 {
            let a = c.post("/api/v2/users/login", &json!({"email": "x@y.z", "password": "nope"})).await;
            assert_eq!(a.status.as_u16(), 401, "attempt {i}");
        }
        let a = c.post("/api/v2/users/login", &json!({"email": "x@y.z", "password": "nope"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (429, "You've been rate limited for sending more than 60 requests in 1m0s."));
    }

    /// 10–13: listing, conflicts, reserved names, system user, deletes.
    async fn user_rules(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (alice, alice_c) = admin.create_user("alice").await;
        let list = admin.get("/api/v2/users").await;
        let names: Vec<&str> = list.json["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["admin", "alice"]);
        assert_eq!(list.json["count"], 2);
        assert_eq!(admin.get("/api/v2/users?q=prebuilds").await.json["count"], 0);
        assert_eq!(admin.get("/api/v2/users/prebuilds").await.status.as_u16(), 200);
        assert_eq!(admin.get("/api/v2/users?limit=1").await.json["users"].as_array().unwrap().len(), 1);
        assert_eq!(admin.get("/api/v2/users?limit=1&offset=1").await.json["users"][0]["username"], "alice");
        assert_eq!(admin.get("/api/v2/users?q=status:active%20ali").await.json["count"], 1);
        let bad = admin.get("/api/v2/users?limit=-1").await;
        assert_eq!((bad.status.as_u16(), bad.message()), (400, "Query parameters have invalid values."));
        let bad = admin.get("/api/v2/users?q=color:blue").await;
        assert_eq!((bad.status.as_u16(), bad.message()), (400, "Invalid user search query."));
        // A member sees only themself.
        let own = alice_c.get("/api/v2/users").await;
        assert_eq!(own.json["count"], 1);
        assert_eq!(alice_c.get("/api/v2/users/admin").await.status.as_u16(), 404);

        let org = admin.get("/api/v2/organizations/default").await.json["id"].clone();
        let dup = admin.post("/api/v2/users", &json!({"email": "x@example.com", "username": "Alice", "password": ADMIN_PASSWORD, "organization_ids": [org]})).await;
        assert_eq!((dup.status.as_u16(), dup.message()), (409, "User already exists."));
        let me = admin.post("/api/v2/users", &json!({"email": "me@example.com", "username": "me", "password": ADMIN_PASSWORD, "organization_ids": [org]})).await;
        assert_eq!((me.status.as_u16(), me.message()), (400, "Validation failed."));
        assert_eq!(me.json["validations"][0]["field"], "username");
        let no_org = admin.post("/api/v2/users", &json!({"email": "n@example.com", "username": "norg", "password": ADMIN_PASSWORD})).await;
        assert_eq!(no_org.status.as_u16(), 400);

        // 13: every mutation of the system user.
        for (method, path, body) in [
            ("PUT", "/api/v2/users/prebuilds/status/suspend", json!({})),
            ("PUT", "/api/v2/users/prebuilds/roles", json!({"roles": ["auditor"]})),
            ("PUT", "/api/v2/users/prebuilds/password", json!({"password": "AnotherStrongOne!9"})),
            ("DELETE", "/api/v2/users/prebuilds", json!(null)),
            ("POST", "/api/v2/users/prebuilds/keys/tokens", json!({})),
            ("POST", "/api/v2/users/prebuilds/keys", json!({})),
        ] {
            let a = admin.send(method.parse().unwrap(), path, Some(&body.to_string())).await;
            assert_eq!((a.status.as_u16(), a.message()), (403, "Cannot modify or delete system users."), "{method} {path}");
        }

        // A user with a live workspace → 417.
        let (carol, _) = admin.create_user("carol").await;
        {
            let c = db.ctx();
            let now = hangar_core::Clock::now(&hangar_core::SystemClock);
            let (t, w) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            let carol_id: uuid::Uuid = carol["id"].as_str().unwrap().parse().unwrap();
            let org_id: uuid::Uuid = org.as_str().unwrap().parse().unwrap();
            db.execute(
                "INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner, active_version_id, created_by) \
                 VALUES ($1, $2, $2, $3, 'tpl', 'echo'::provisioner_type, $4, $5)",
                vec![c.uuid(t), c.ts(now), c.uuid(org_id), c.uuid(uuid::Uuid::new_v4()), c.uuid(carol_id)],
            )
            .await
            .unwrap();
            db.execute(
                "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, name) VALUES ($1, $2, $2, $3, $4, $5, 'ws')",
                vec![c.uuid(w), c.ts(now), c.uuid(carol_id), c.uuid(org_id), c.uuid(t)],
            )
            .await
            .unwrap();
        }
        let a = admin.delete("/api/v2/users/carol").await;
        assert_eq!(
            (a.status.as_u16(), a.message()),
            (417, "You cannot delete a user that has workspaces. Delete their workspaces and try again!")
        );

        // Deletes: self → 403; others → soft delete, keys gone, name reusable.
        let a = admin.delete("/api/v2/users/me").await;
        assert_eq!((a.status.as_u16(), a.message()), (403, "You cannot delete yourself!"));
        let a = admin.delete(&format!("/api/v2/users/{}", alice["id"].as_str().unwrap())).await;
        assert_eq!((a.status.as_u16(), a.message()), (200, "User has been deleted!"));
        assert_eq!(alice_c.get("/api/v2/users/me").await.detail(), "API key is invalid.");
        assert_eq!(admin.get("/api/v2/users/alice").await.status.as_u16(), 404);
        admin.create_user("alice").await;
    }

    /// 14: a password change drops every key; wrong old passwords are refused.
    async fn password_change(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (_, bob) = admin.create_user("bob").await;
        let second = Client::new(&srv.url).login("bob@example.com", ADMIN_PASSWORD).await;
        let a = bob.put("/api/v2/users/me/password", &json!({"password": "NewSecurePassword!1"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Old password is required."));
        let a = bob.put("/api/v2/users/me/password", &json!({"old_password": "wrong", "password": "NewSecurePassword!1"})).await;
        assert_eq!(a.message(), "Old password is incorrect.");
        let a = bob.put("/api/v2/users/me/password", &json!({"old_password": ADMIN_PASSWORD, "password": ADMIN_PASSWORD})).await;
        assert_eq!(a.message(), "New password cannot match old password.");
        let a = bob.put("/api/v2/users/me/password", &json!({"old_password": ADMIN_PASSWORD, "password": "weak"})).await;
        assert_eq!(a.message(), "Invalid password.");
        let a = bob.put("/api/v2/users/me/password", &json!({"old_password": ADMIN_PASSWORD, "password": "NewSecurePassword!1"})).await;
        assert_eq!(a.status.as_u16(), 204, "{}", a.text);
        assert_eq!(bob.get("/api/v2/users/me").await.status.as_u16(), 401);
        assert_eq!(second.get("/api/v2/users/me").await.status.as_u16(), 401);
        Client::new(&srv.url).login("bob@example.com", "NewSecurePassword!1").await;
    }

    /// 15: role assignment rules.
    async fn role_assignment(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (_, ua) = admin.create_user("useradmin").await;
        admin.create_user("carol").await;
        let a = admin.put("/api/v2/users/useradmin/roles", &json!({"roles": ["user-admin"]})).await;
        assert_eq!(a.status.as_u16(), 200, "{}", a.text);
        let a = ua.put("/api/v2/users/carol/roles", &json!({"roles": ["owner"]})).await;
        assert_eq!((a.status.as_u16(), a.message()), (403, "Forbidden."));
        let a = ua.put("/api/v2/users/carol/roles", &json!({"roles": ["auditor"]})).await;
        assert_eq!(a.status.as_u16(), 200, "{}", a.text);
        assert_eq!(a.json["roles"], json!([{"name": "auditor", "display_name": "Auditor"}]));
        let a = ua.put("/api/v2/users/me/roles", &json!({"roles": []})).await;
        assert_eq!(a.message(), "You cannot change your own roles.");
        let a = admin.put("/api/v2/users/carol/roles", &json!({"roles": ["wizard"]})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Invalid roles."));
        let roles = admin.get("/api/v2/users/carol/roles").await;
        assert_eq!(roles.json["roles"], json!(["auditor"]));
    }
}
