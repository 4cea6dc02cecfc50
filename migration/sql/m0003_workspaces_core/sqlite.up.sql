-- The org-owned tables that the organization delete guard counts (04 §2.3, §2.6, §2.7).
-- The rest of the workspace model arrives with the workspaces area's own steps.
CREATE TABLE templates (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    deleted INTEGER NOT NULL DEFAULT 0,
    name varchar(64) NOT NULL,
    display_name varchar(64) NOT NULL DEFAULT '',
    description varchar(128) NOT NULL DEFAULT '',
    icon varchar(256) NOT NULL DEFAULT '',
    provisioner TEXT NOT NULL CHECK (provisioner IN ('echo', 'terraform')),
    active_version_id TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    default_ttl INTEGER NOT NULL DEFAULT 0,
    allow_user_cancel_workspace_jobs INTEGER NOT NULL DEFAULT 1,
    require_active_version INTEGER NOT NULL DEFAULT 0,
    deprecated TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_templates_name_lower ON templates (organization_id, lower(name)) WHERE deleted = FALSE;

CREATE TABLE provisioner_keys (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name varchar(64) NOT NULL,
    hashed_secret BLOB NOT NULL UNIQUE,
    tags TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags))
);
CREATE UNIQUE INDEX provisioner_keys_organization_id_name_idx ON provisioner_keys (organization_id, lower(name));

CREATE TABLE workspaces (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    template_id TEXT NOT NULL REFERENCES templates (id) ON DELETE RESTRICT,
    deleted INTEGER NOT NULL DEFAULT 0,
    name varchar(64) NOT NULL,
    autostart_schedule TEXT,
    ttl INTEGER,
    last_used_at TEXT NOT NULL DEFAULT '0001-01-01 00:00:00.000000+00:00',
    dormant_at TEXT,
    deleting_at TEXT,
    automatic_updates TEXT NOT NULL DEFAULT 'never' CHECK (automatic_updates IN ('always', 'never')),
    next_start_at TEXT
);
CREATE UNIQUE INDEX workspaces_owner_id_lower_idx ON workspaces (owner_id, lower(name)) WHERE deleted = FALSE;
CREATE INDEX workspaces_template_id_idx ON workspaces (template_id) WHERE deleted = FALSE;
CREATE INDEX workspaces_next_start_at_idx ON workspaces (next_start_at) WHERE deleted = FALSE;
CREATE INDEX workspaces_organization_id_idx ON workspaces (organization_id) WHERE deleted = FALSE;
