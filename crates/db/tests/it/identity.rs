use crate::fixtures::*;
use hangar_core::{PREBUILDS_SYSTEM_USER_ID, StoreError};
use hangar_identity::model::*;
use hangar_identity::store::IdentityStore;
use hangar_testkit::db_tests;

fn violation(e: StoreError) -> (String, String) {
    match e {
        StoreError::Violation { rule, message } => (rule, message),
        other => panic!("expected a violation, got {other:?}"),
    }
}

db_tests! {
    /// Acceptance 1: the seed rows.
    async fn seed_rows_exist(db: TestDb) {
        let org = db.default_organization().await.unwrap();
        assert_eq!(org.name, "hangar");
        assert_eq!(org.display_name, "Hangar");
        assert_eq!(org.description, "Builtin default organization.");
        let sys = db.user_by_id(PREBUILDS_SYSTEM_USER_ID).await.unwrap().expect("system user");
        assert_eq!((sys.username.as_str(), sys.email.as_str(), sys.name.as_str()), ("prebuilds", "prebuilds@system", "Prebuilds Owner"));
        assert!(sys.is_system);
        assert_eq!(sys.login_type, LoginType::None);
        assert_eq!(sys.status, UserStatus::Active);
        assert!(sys.rbac_roles.is_empty());
        assert_eq!(sys.hashed_password, b"none");
        let member = db.member(org.id, sys.id).await.unwrap().expect("system member");
        assert!(member.roles.is_empty());
        let everyone = db.group_by_id(org.id).await.unwrap().expect("Everyone");
        assert_eq!(everyone.name, "Everyone");
        assert!(!db.deployment_id().await.unwrap().is_empty());
        // Hidden from lists and counts unless asked for.
        assert_eq!(db.count_users(false).await.unwrap(), 0);
        assert_eq!(db.count_users(true).await.unwrap(), 1);
        assert!(db.list_members(org.id, false).await.unwrap().is_empty());
        assert_eq!(db.list_members(org.id, true).await.unwrap().len(), 1);
    }

    /// Acceptance 12: keys of a deleted user are gone and new ones are refused by the trigger.
    async fn deleted_user_keys(db: TestDb) {
        let u = user(&db, "alice").await;
        let key = |id: &str| ApiKey {
            id: id.into(),
            hashed_secret: vec![1; 32],
            user_id: u.id,
            last_used: now(),
            expires_at: now() + chrono::TimeDelta::hours(1),
            created_at: now(),
            updated_at: now(),
            login_type: LoginType::Password,
            lifetime_seconds: 3600,
            ip_address: "127.0.0.1".into(),
            scope: ApiKeyScope::All,
            token_name: String::new(),
        };
        db.insert_api_key(key("aaaaaaaaaa")).await.unwrap();
        db.soft_delete_user(u.id, now()).await.unwrap();
        assert!(db.api_key_by_id("aaaaaaaaaa").await.unwrap().is_none());
        let (rule, message) = violation(db.insert_api_key(key("bbbbbbbbbb")).await.unwrap_err());
        assert_eq!(rule, "user_deleted");
        assert_eq!(message, "hangar:user_deleted: Cannot create API key for deleted user");
        // The username is reusable.
        user(&db, "alice").await;
    }

    /// Acceptance 24, 26: workspaces and templates block, soft-deleted ones do not.
    async fn org_guard_counts_workspaces_and_templates(db: TestDb) {
        let u = user(&db, "owner1").await;
        let o = org(&db, "acme", &u).await;
        let t = template(&db, o.id, u.id).await;
        let w1 = workspace(&db, o.id, t, u.id).await;
        let w2 = workspace(&db, o.id, t, u.id).await;
        let (rule, message) = violation(db.soft_delete_organization(o.id, now()).await.unwrap_err());
        assert_eq!(rule, "org_not_empty");
        assert_eq!(message, "hangar:org_not_empty: cannot delete organization: organization has 2 workspaces, 1 templates that must be deleted first");
        let counts = db.organization_resource_counts(o.id).await.unwrap();
        assert_eq!(counts.blocker_parts().join(", "), "2 workspaces, 1 template");
        soft_delete(&db, "workspaces", w1).await;
        soft_delete(&db, "workspaces", w2).await;
        soft_delete(&db, "templates", t).await;
        assert!(db.soft_delete_organization(o.id, now()).await.unwrap());
        assert!(db.organization_by_id(o.id, false).await.unwrap().is_none());
        assert!(db.organization_by_id(o.id, true).await.unwrap().is_some());
        // The name is reusable.
        org(&db, "acme", &u).await;
    }

    /// Acceptance 25: groups, then members, beyond Everyone and the caller.
    async fn org_guard_counts_groups_then_members(db: TestDb) {
        let u = user(&db, "owner2").await;
        let o = org(&db, "groupy", &u).await;
        group(&db, o.id, "g1").await;
        group(&db, o.id, "g2").await;
        for n in ["m1", "m2"] {
            let m = user(&db, n).await;
            db.insert_member(o.id, m.id, vec![], now()).await.unwrap();
        }
        let (_, message) = violation(db.soft_delete_organization(o.id, now()).await.unwrap_err());
        assert_eq!(message, "hangar:org_not_empty: cannot delete organization: organization has 2 groups that must be deleted first");
        for g in db.list_groups(o.id).await.unwrap().into_iter().filter(|g| !g.is_everyone()) {
            db.delete_group(g.id).await.unwrap();
        }
        let (_, message) = violation(db.soft_delete_organization(o.id, now()).await.unwrap_err());
        assert_eq!(message, "hangar:org_not_empty: cannot delete organization: organization has 2 members that must be deleted first");
        // The system user does not count.
        db.ensure_system_member(o.id, now()).await.unwrap();
        db.ensure_system_member(o.id, now()).await.unwrap();
        let counts = db.organization_resource_counts(o.id).await.unwrap();
        assert_eq!(counts.member_count, 3);
        assert_eq!(counts.group_count, 1);
    }

    /// The default org never goes.
    async fn default_org_is_not_deleted(db: TestDb) {
        let org = db.default_organization().await.unwrap();
        assert!(!db.soft_delete_organization(org.id, now()).await.unwrap());
    }

    /// Acceptance 27, 28.
    async fn members_and_template_admins(db: TestDb) {
        let org = db.default_organization().await.unwrap();
        let mk = |name: &'static str| async move { name };
        let _ = mk;
        let owner = user(&db, "owner").await;
        db.update_user_roles(owner.id, vec!["owner".into()], now()).await.unwrap();
        let tadmin = user(&db, "tadmin").await;
        db.update_user_roles(tadmin.id, vec!["template-admin".into()], now()).await.unwrap();
        let oadmin = user(&db, "oadmin").await;
        db.insert_member(org.id, oadmin.id, vec!["organization-admin".into()], now()).await.unwrap();
        let suspended = user(&db, "suspended").await;
        db.update_user_roles(suspended.id, vec!["owner".into()], now()).await.unwrap();
        db.update_user_status(suspended.id, UserStatus::Suspended, now()).await.unwrap();
        let gone = user(&db, "gone").await;
        db.update_user_roles(gone.id, vec!["owner".into()], now()).await.unwrap();
        db.insert_member(org.id, gone.id, vec![], now()).await.unwrap();
        db.soft_delete_user(gone.id, now()).await.unwrap();
        let plain = user(&db, "plain").await;
        db.insert_member(org.id, plain.id, vec![], now()).await.unwrap();

        let names: Vec<String> = db.template_admins(org.id).await.unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(names, vec!["oadmin", "owner", "tadmin"]);

        let members: Vec<String> = db.list_members(org.id, false).await.unwrap().into_iter().map(|m| m.user.username).collect();
        assert_eq!(members, vec!["oadmin", "plain"]);
        let everyone = db.group_by_id(org.id).await.unwrap().unwrap();
        let in_everyone: Vec<String> = db.group_members(&everyone).await.unwrap().into_iter().map(|u| u.username).collect();
        assert_eq!(in_everyone, vec!["oadmin", "plain"]);
    }

    /// Unique indexes surface as named conflicts on both backends.
    async fn conflicts_are_named(db: TestDb) {
        user(&db, "alice").await;
        let e = db
            .insert_user(
                NewUser {
                    id: uuid::Uuid::new_v4(),
                    email: "other@example.com".into(),
                    username: "ALICE".into(),
                    name: String::new(),
                    hashed_password: vec![],
                    status: UserStatus::Active,
                    rbac_roles: vec![],
                    login_type: LoginType::Password,
                    now: now(),
                },
                vec![],
            )
            .await
            .unwrap_err();
        assert!(e.is_conflict_on("users_username_lower_idx"), "{e:?}");
        let org = db.default_organization().await.unwrap();
        group(&db, org.id, "dup").await;
        let e = db
            .insert_group(Group {
                id: uuid::Uuid::new_v4(),
                name: "dup".into(),
                display_name: String::new(),
                organization_id: org.id,
                avatar_url: String::new(),
                quota_allowance: 0,
                source: GroupSource::User,
            })
            .await
            .unwrap_err();
        assert!(e.is_conflict_on("groups_name_organization_id_key"), "{e:?}");
    }

    /// The usage write happens at most once an hour (02 §4.1 step 6).
    async fn key_touch_is_conditional(db: TestDb) {
        let u = user(&db, "toucher").await;
        let t0 = now();
        db.insert_api_key(ApiKey {
            id: "cccccccccc".into(),
            hashed_secret: vec![1; 32],
            user_id: u.id,
            last_used: t0,
            expires_at: t0 + chrono::TimeDelta::hours(24),
            created_at: t0,
            updated_at: t0,
            login_type: LoginType::Token,
            lifetime_seconds: 86400,
            ip_address: "10.0.0.1".into(),
            scope: ApiKeyScope::All,
            token_name: "t".into(),
        })
        .await
        .unwrap();
        let touch = |at: chrono::DateTime<chrono::Utc>| KeyTouch {
            id: "cccccccccc".into(),
            user_id: u.id,
            now: at,
            ip: "10.0.0.2".into(),
            stale_before: at - chrono::TimeDelta::hours(1),
            refresh: None,
        };
        assert!(!db.touch_api_key(touch(t0 + chrono::TimeDelta::minutes(30))).await.unwrap());
        assert!(db.touch_api_key(touch(t0 + chrono::TimeDelta::minutes(61))).await.unwrap());
        let k = db.api_key_by_id("cccccccccc").await.unwrap().unwrap();
        assert_eq!(k.ip_address, "10.0.0.2");
        assert_eq!(k.last_used, t0 + chrono::TimeDelta::minutes(61));
        assert_eq!(k.expires_at, t0 + chrono::TimeDelta::hours(24));
    }
}
