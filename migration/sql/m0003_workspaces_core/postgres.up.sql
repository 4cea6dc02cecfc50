-- The org-owned tables that the organization delete guard counts (04 §2.3, §2.6, §2.7).
-- The rest of the workspace model arrives with the workspaces area's own steps.
CREATE TYPE provisioner_type AS ENUM ('echo', 'terraform');
CREATE TYPE automatic_updates AS ENUM ('always', 'never');

CREATE TABLE templates (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    deleted boolean NOT NULL DEFAULT FALSE,
    name varchar(64) NOT NULL,
    display_name varchar(64) NOT NULL DEFAULT '',
    description varchar(128) NOT NULL DEFAULT '',
    icon varchar(256) NOT NULL DEFAULT '',
    provisioner provisioner_type NOT NULL,
    active_version_id uuid NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    default_ttl bigint NOT NULL DEFAULT 0,
    allow_user_cancel_workspace_jobs boolean NOT NULL DEFAULT TRUE,
    require_active_version boolean NOT NULL DEFAULT FALSE,
    deprecated text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_templates_name_lower ON templates (organization_id, lower(name)) WHERE deleted = FALSE;

CREATE TABLE provisioner_keys (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name varchar(64) NOT NULL,
    hashed_secret bytea NOT NULL UNIQUE,
    tags jsonb NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX provisioner_keys_organization_id_name_idx ON provisioner_keys (organization_id, lower(name));

CREATE TABLE workspaces (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    template_id uuid NOT NULL REFERENCES templates (id) ON DELETE RESTRICT,
    deleted boolean NOT NULL DEFAULT FALSE,
    name varchar(64) NOT NULL,
    autostart_schedule text,
    ttl bigint,
    last_used_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    dormant_at timestamptz,
    deleting_at timestamptz,
    automatic_updates automatic_updates NOT NULL DEFAULT 'never',
    next_start_at timestamptz
);
CREATE UNIQUE INDEX workspaces_owner_id_lower_idx ON workspaces (owner_id, lower(name)) WHERE deleted = FALSE;
CREATE INDEX workspaces_template_id_idx ON workspaces (template_id) WHERE deleted = FALSE;
CREATE INDEX workspaces_next_start_at_idx ON workspaces (next_start_at) WHERE deleted = FALSE;
CREATE INDEX workspaces_organization_id_idx ON workspaces (organization_id) WHERE deleted = FALSE;
