CREATE VIEW organization_resource_counts AS
SELECT o.id AS organization_id,
  (SELECT count(*) FROM workspaces w WHERE w.organization_id = o.id AND w.deleted = FALSE) AS workspace_count,
  (SELECT count(*) FROM templates t WHERE t.organization_id = o.id AND t.deleted = FALSE) AS template_count,
  (SELECT count(*) FROM groups g WHERE g.organization_id = o.id) AS group_count,
  (SELECT count(*) FROM organization_members m JOIN users u ON u.id = m.user_id
     WHERE m.organization_id = o.id AND u.deleted = FALSE AND u.is_system = FALSE) AS member_count,
  (SELECT count(*) FROM provisioner_keys k WHERE k.organization_id = o.id) AS provisioner_key_count
FROM organizations o;

CREATE FUNCTION protect_deleting_organizations() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    c organization_resource_counts%ROWTYPE;
    parts text;
BEGIN
    SELECT * INTO c FROM organization_resource_counts WHERE organization_id = NEW.id;
    parts := concat_ws(', ',
        CASE WHEN c.workspace_count > 0 THEN c.workspace_count || ' workspaces' END,
        CASE WHEN c.template_count > 0 THEN c.template_count || ' templates' END,
        CASE WHEN c.provisioner_key_count > 0 THEN c.provisioner_key_count || ' provisioner keys' END);
    IF parts <> '' THEN
        RAISE EXCEPTION 'hangar:org_not_empty: cannot delete organization: organization has % that must be deleted first', parts;
    END IF;
    IF c.group_count > 1 THEN
        RAISE EXCEPTION 'hangar:org_not_empty: cannot delete organization: organization has % groups that must be deleted first', c.group_count - 1;
    END IF;
    IF c.member_count > 1 THEN
        RAISE EXCEPTION 'hangar:org_not_empty: cannot delete organization: organization has % members that must be deleted first', c.member_count - 1;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER protect_deleting_organizations BEFORE UPDATE OF deleted ON organizations
    FOR EACH ROW WHEN (NEW.deleted = TRUE AND OLD.deleted = FALSE)
    EXECUTE FUNCTION protect_deleting_organizations();
