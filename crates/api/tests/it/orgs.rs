//! Organizations, members, groups and the delete guard (02 §4.4–4.5, §11 items 19–27).

use hangar_testkit::{Client, TestServer, db_tests, spawn_server};
use serde_json::{Value, json};
use uuid::Uuid;

async fn insert_template(srv: &TestServer, org: &str, by: &str) -> Uuid {
    let db = srv.db();
    let c = db.ctx();
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner, active_version_id, created_by) \
         VALUES ($1, $2, $2, $3, $4, 'echo'::provisioner_type, $5, $6)",
        vec![c.uuid(id), c.ts(srv.clock_now()), c.uuid(org.parse().unwrap()), c.text(format!("t{}", &id.simple().to_string()[..6])), c.uuid(Uuid::new_v4()), c.uuid(by.parse().unwrap())],
    )
    .await
    .unwrap();
    id
}

async fn insert_workspace(srv: &TestServer, org: &str, template: Uuid, owner: &str) -> Uuid {
    let db = srv.db();
    let c = db.ctx();
    let id = Uuid::new_v4();
    db.execute(
        "INSERT INTO workspaces (id, created_at, updated_at, owner_id, organization_id, template_id, name) VALUES ($1, $2, $2, $3, $4, $5, $6)",
        vec![c.uuid(id), c.ts(srv.clock_now()), c.uuid(owner.parse().unwrap()), c.uuid(org.parse().unwrap()), c.uuid(template), c.text(format!("w{}", &id.simple().to_string()[..6]))],
    )
    .await
    .unwrap();
    id
}

trait ClockNow {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc>;
}

impl ClockNow for TestServer {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use hangar_core::Clock;
        self.clock.now()
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

db_tests! {
    /// 19–20: create, names, default org rules, reuse after delete.
    async fn org_create_and_delete(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let a = admin.post("/api/v2/organizations", &json!({"name": "acme"})).await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text);
        assert_eq!(a.json["display_name"], "acme");
        let org = id(&a.json);
        let members = admin.get("/api/v2/organizations/acme/members").await;
        assert_eq!(members.json.as_array().unwrap().len(), 1);
        assert_eq!(members.json[0]["username"], "admin");
        let groups = admin.get(&format!("/api/v2/organizations/{org}/groups")).await;
        assert_eq!(groups.json[0]["name"], "Everyone");
        assert_eq!(groups.json[0]["id"], org);
        let a = admin.post("/api/v2/organizations", &json!({"name": "Default"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Organization name \"Default\" is reserved."));
        let a = admin.post("/api/v2/organizations", &json!({"name": "ACME"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (409, "Organization already exists with that name."));
        let a = admin.post("/api/v2/organizations", &json!({"name": "bad name"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Validation failed."));
        let a = admin.delete("/api/v2/organizations/default").await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "Default organization cannot be deleted."));
        let a = admin.patch("/api/v2/organizations/acme", &json!({"description": "Rockets"})).await;
        assert_eq!((a.json["description"].as_str(), a.json["name"].as_str()), (Some("Rockets"), Some("acme")));
        let a = admin.delete("/api/v2/organizations/acme").await;
        assert_eq!((a.status.as_u16(), a.message()), (200, "Organization has been deleted."), "{}", a.text);
        assert_eq!(admin.get(&format!("/api/v2/organizations/{org}")).await.status.as_u16(), 404);
        assert_eq!(admin.post("/api/v2/organizations", &json!({"name": "acme"})).await.status.as_u16(), 201);
    }

    /// 21–23, 26: the clean delete error lists only non-zero blockers.
    async fn org_delete_blockers(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let me = id(&admin.get("/api/v2/users/me").await.json);
        let org = id(&admin.post("/api/v2/organizations", &json!({"name": "acme"})).await.json);
        let t = insert_template(&srv, &org, &me).await;
        let a = admin.delete("/api/v2/organizations/acme").await;
        assert_eq!((a.status.as_u16(), a.message()), (409, "Error deleting organization."));
        assert_eq!(a.detail(), "This organization has 1 template that must be deleted first.");
        let w1 = insert_workspace(&srv, &org, t, &me).await;
        let w2 = insert_workspace(&srv, &org, t, &me).await;
        let (bob, _) = admin.create_user("bob").await;
        admin.post(&format!("/api/v2/organizations/acme/members/{}", id(&bob)), &json!({})).await;
        let g = admin.post("/api/v2/organizations/acme/groups", &json!({"name": "devs"})).await;
        assert_eq!(g.status.as_u16(), 201, "{}", g.text);
        let a = admin.delete("/api/v2/organizations/acme").await;
        assert_eq!(a.detail(), "This organization has 2 workspaces, 1 template, 1 member, 1 group that must be deleted first.");
        // Only workspaces left.
        db.execute("UPDATE templates SET deleted = TRUE WHERE id = $1", vec![db.ctx().uuid(t)]).await.unwrap();
        admin.delete(&format!("/api/v2/organizations/acme/members/{}", id(&bob))).await;
        admin.delete(&format!("/api/v2/groups/{}", id(&g.json))).await;
        let a = admin.delete("/api/v2/organizations/acme").await;
        assert_eq!(a.detail(), "This organization has 2 workspaces that must be deleted first.");
        for w in [w1, w2] {
            db.execute("UPDATE workspaces SET deleted = TRUE WHERE id = $1", vec![db.ctx().uuid(w)]).await.unwrap();
        }
        let a = admin.delete("/api/v2/organizations/acme").await;
        assert_eq!(a.status.as_u16(), 200, "{}", a.text);
        // 10.2: a refused delete makes one UPDATE plus one count (a transaction's commit aside).
    }

    /// 27 and members/groups rules.
    async fn members_and_groups(db: TestDb) {
        let srv = spawn_server(&db).await;
        let admin = Client::new(&srv.url).first_user().await;
        let (bob, bob_c) = admin.create_user("bob").await;
        let (carol, _) = admin.create_user("carol").await;
        let def = admin.get("/api/v2/organizations/default").await;
        let members = admin.get("/api/v2/organizations/default/members").await;
        let names: Vec<&str> = members.json.as_array().unwrap().iter().map(|m| m["username"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["admin", "bob", "carol"]);
        let with_system = admin.get("/api/v2/organizations/default/members?include_system=true").await;
        assert_eq!(with_system.json.as_array().unwrap().len(), 4);
        let everyone = admin.get(&format!("/api/v2/groups/{}", id(&def.json))).await;
        assert_eq!(everyone.json["total_member_count"], 3);
        assert_eq!(everyone.json["organization_name"], "hangar");
        // Everyone cannot be written.
        let a = admin.patch(&format!("/api/v2/groups/{}", id(&def.json)), &json!({"name": "x"})).await;
        assert_eq!(a.status.as_u16(), 400);
        assert_eq!(admin.delete(&format!("/api/v2/groups/{}", id(&def.json))).await.status.as_u16(), 400);
        // Adding an existing member, removing self.
        let a = admin.post(&format!("/api/v2/organizations/default/members/{}", id(&bob)), &json!({})).await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "User is already an organization member"));
        let a = admin.delete("/api/v2/organizations/default/members/me").await;
        assert_eq!((a.status.as_u16(), a.message()), (400, "cannot remove self from an organization"));
        let a = admin.put("/api/v2/organizations/default/members/me/roles", &json!({"roles": []})).await;
        assert_eq!(a.message(), "You cannot change your own organization roles.");
        let a = admin.put("/api/v2/organizations/default/members/bob/roles", &json!({"roles": ["organization-auditor"]})).await;
        assert_eq!(a.status.as_u16(), 200, "{}", a.text);
        assert_eq!(a.json["roles"][0]["name"], "organization-auditor");
        let a = admin.post("/api/v2/organizations/default/members/prebuilds", &json!({})).await;
        assert_eq!(a.status.as_u16(), 403);
        // Groups.
        let g = admin.post("/api/v2/organizations/default/groups", &json!({"name": "devs"})).await;
        let gid = id(&g.json);
        let a = admin.post("/api/v2/organizations/default/groups", &json!({"name": "devs"})).await;
        assert_eq!((a.status.as_u16(), a.message()), (409, "Group with name \"devs\" already exists."));
        let a = admin.patch(&format!("/api/v2/groups/{gid}"), &json!({"add_users": [id(&bob), id(&carol)]})).await;
        assert_eq!(a.json["total_member_count"], 2, "{}", a.text);
        let outsider = admin.post("/api/v2/organizations", &json!({"name": "other"})).await;
        let og = admin.post("/api/v2/organizations/other/groups", &json!({"name": "x"})).await;
        let a = admin.patch(&format!("/api/v2/groups/{}", id(&og.json)), &json!({"add_users": [id(&bob)]})).await;
        assert_eq!(a.status.as_u16(), 400, "{}", a.text);
        let _ = outsider;
        // A deleted user leaves every list and count.
        admin.delete("/api/v2/users/carol").await;
        assert_eq!(admin.get(&format!("/api/v2/groups/{gid}")).await.json["total_member_count"], 1);
        assert_eq!(admin.get(&format!("/api/v2/groups/{}", id(&def.json))).await.json["total_member_count"], 2);
        // A member reads its org but not another.
        assert_eq!(bob_c.get("/api/v2/organizations/default").await.status.as_u16(), 200);
        assert_eq!(bob_c.get("/api/v2/organizations/other").await.status.as_u16(), 404);
        assert_eq!(bob_c.get("/api/v2/organizations").await.json.as_array().unwrap().len(), 1);
        assert_eq!(bob_c.post("/api/v2/organizations", &json!({"name": "mine"})).await.status.as_u16(), 403);
        let a = admin.delete(&format!("/api/v2/groups/{gid}")).await;
        assert_eq!(a.message(), "Successfully deleted group!");
        // Leaving an org removes the user from its groups.
        let g2 = admin.post("/api/v2/organizations/other/groups", &json!({"name": "y"})).await;
        admin.post(&format!("/api/v2/organizations/other/members/{}", id(&bob)), &json!({})).await;
        admin.patch(&format!("/api/v2/groups/{}", id(&g2.json)), &json!({"add_users": [id(&bob)]})).await;
        assert_eq!(admin.delete(&format!("/api/v2/organizations/other/members/{}", id(&bob))).await.status.as_u16(), 204);
        assert_eq!(admin.get(&format!("/api/v2/groups/{}", id(&g2.json))).await.json["total_member_count"], 0);
    }
}
