CREATE VIEW organization_resource_counts AS
SELECT o.id AS organization_id,
  (SELECT count(*) FROM workspaces w WHERE w.organization_id = o.id AND w.deleted = FALSE) AS workspace_count,
  (SELECT count(*) FROM templates t WHERE t.organization_id = o.id AND t.deleted = FALSE) AS template_count,
  (SELECT count(*) FROM groups g WHERE g.organization_id = o.id) AS group_count,
  (SELECT count(*) FROM organization_members m JOIN users u ON u.id = m.user_id
     WHERE m.organization_id = o.id AND u.deleted = FALSE AND u.is_system = FALSE) AS member_count,
  (SELECT count(*) FROM provisioner_keys k WHERE k.organization_id = o.id) AS provisioner_key_count
FROM organizations o;

-- SQLite 3.40 cannot format a message in RAISE, so the trigger raises the tag and
-- crates/db composes the same text as PostgreSQL from the view, in the same transaction.
CREATE TRIGGER protect_deleting_organizations BEFORE UPDATE OF deleted ON organizations
FOR EACH ROW WHEN NEW.deleted = 1 AND OLD.deleted = 0
BEGIN
    SELECT RAISE(ABORT, 'hangar:org_not_empty')
    FROM organization_resource_counts c
    WHERE c.organization_id = NEW.id
      AND (c.workspace_count > 0 OR c.template_count > 0 OR c.provisioner_key_count > 0
           OR c.group_count > 1 OR c.member_count > 1);
END;
