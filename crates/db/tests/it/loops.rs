//! The hung-job detector's store half (04 §6.5, §8).

use crate::fixtures::{now, user};
use chrono::TimeDelta;
use hangar_core::StoreError;
use hangar_identity::IdentityStore;
use hangar_testkit::db_tests;
use hangar_workspaces::model::*;
use hangar_workspaces::rules::untagged;
use hangar_workspaces::store::*;
use uuid::Uuid;

/// A running import job held by a fresh daemon.
async fn running_job(db: &hangar_db::Db) -> (Uuid, Uuid) {
    let org = db.default_organization().await.unwrap();
    let u = user(
        db,
        &format!("u{}", &Uuid::new_v4().simple().to_string()[..8]),
    )
    .await;
    let t = now();
    let (file, _) = db
        .insert_file(File {
            id: Uuid::new_v4(),
            hash: Uuid::new_v4().simple().to_string(),
            created_at: t,
            created_by: u.id,
            mimetype: "application/x-tar".into(),
            data: vec![0; 1024],
        })
        .await
        .unwrap();
    let version = Uuid::new_v4();
    let job = ProvisionerJob {
        id: Uuid::new_v4(),
        created_at: t,
        updated_at: t,
        started_at: None,
        canceled_at: None,
        completed_at: None,
        error: None,
        error_code: None,
        organization_id: org.id,
        initiator_id: u.id,
        provisioner: ProvisionerType::Echo,
        job_type: JobType::TemplateVersionImport,
        file_id: file.id,
        input: JobInput {
            template_version_id: Some(version),
            ..Default::default()
        },
        worker_id: None,
        tags: untagged(),
        logs_length: 0,
        logs_overflowed: false,
        status: JobStatus::Pending,
    };
    let v = TemplateVersion {
        id: version,
        template_id: None,
        organization_id: org.id,
        created_at: t,
        updated_at: t,
        name: "v1".into(),
        message: String::new(),
        readme: String::new(),
        job_id: job.id,
        created_by: u.id,
        archived: false,
        has_ai_task: None,
    };
    db.insert_version_with_job(v, job.clone()).await.unwrap();
    let daemon = db
        .register_daemon(DaemonRegistration {
            name: format!("d-{}", job.id),
            organization_id: org.id,
            provisioners: vec![ProvisionerType::Echo],
            tags: untagged(),
            key_id: None,
            version: String::new(),
            now: t,
        })
        .await
        .unwrap();
    let got = db
        .acquire(AcquireRequest {
            daemon_id: daemon,
            organization_id: org.id,
            provisioners: vec![ProvisionerType::Echo],
            tags: untagged(),
            now: t,
        })
        .await
        .unwrap()
        .expect("acquired");
    assert_eq!(got.id, job.id);
    (job.id, daemon)
}

db_tests! {
    async fn hung_jobs_fail_and_late_completions_conflict(db: TestDb) {
        let (job, daemon) = running_job(&db).await;
        let t = now();
        // Fresh: not hung yet.
        assert!(db.fail_hung_jobs(t - TimeDelta::minutes(5), t - TimeDelta::minutes(10), "hung", t).await.unwrap().is_empty());
        // Five minutes without updates.
        let later = t + TimeDelta::minutes(6);
        let failed = db
            .fail_hung_jobs(later - TimeDelta::minutes(5), later - TimeDelta::minutes(10), hangar_workspaces::lifecycle::HUNG_ERROR, later)
            .await
            .unwrap();
        assert_eq!(failed, vec![job]);
        let j = db.job_by_id(job).await.unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Failed);
        assert_eq!(j.error.as_deref(), Some(hangar_workspaces::lifecycle::HUNG_ERROR));
        let logs = db.job_logs(job, 0).await.unwrap();
        assert_eq!(logs.last().unwrap().output, hangar_workspaces::lifecycle::HUNG_ERROR);
        // The lost daemon's late completion is refused.
        let late = db
            .complete_import(job, daemon, ImportResult { readme: String::new(), has_ai_task: false, resources: vec![], parameters: vec![], variables: vec![] }, later)
            .await
            .unwrap_err();
        assert!(matches!(late, StoreError::Conflict { ref constraint } if constraint == "job_not_held"), "{late:?}");
    }

    async fn stuck_cancels_are_completed_as_canceled(db: TestDb) {
        let (job, _) = running_job(&db).await;
        let t = now();
        assert_eq!(db.cancel_job(job, t).await.unwrap(), CancelOutcome::Canceling);
        let later = t + TimeDelta::minutes(11);
        let failed = db.fail_hung_jobs(later - TimeDelta::minutes(5), later - TimeDelta::minutes(10), "hung", later).await.unwrap();
        assert_eq!(failed, vec![job]);
        let j = db.job_by_id(job).await.unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Canceled);
        assert_eq!(j.error, None);
    }
}
