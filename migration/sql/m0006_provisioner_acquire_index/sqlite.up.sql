-- Acquire takes the oldest pending job of an organization, human-initiated jobs before
-- prebuild jobs (04 §9). Its ORDER BY starts with "initiator is the prebuilds system user", so
-- the (organization_id, created_at) index cannot return rows in order and every acquire sorted
-- all pending jobs. This index carries that expression, with the system user's fixed id
-- written out (a parameter would not match it), so acquire walks the index and stops at the
-- first job whose tags match.
DROP INDEX idx_provisioner_jobs_pending;
CREATE INDEX idx_provisioner_jobs_acquire ON provisioner_jobs
    (organization_id, (initiator_id = 'c42fdf75-3097-471c-8c33-fb52454d81c0'), created_at, id)
    WHERE job_status = 'pending';
