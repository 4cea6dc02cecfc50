CREATE TABLE site_configs (
    key varchar(256) NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY,
    email TEXT NOT NULL,
    username TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '',
    hashed_password BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'dormant' CHECK (status IN ('active', 'suspended', 'dormant')),
    rbac_roles TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(rbac_roles)),
    login_type TEXT NOT NULL DEFAULT 'password' CHECK (login_type IN ('password', 'github', 'oidc', 'token', 'none', 'oauth2_provider_app')),
    avatar_url TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    last_seen_at TEXT NOT NULL DEFAULT '0001-01-01 00:00:00.000000+00:00',
    is_system INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_username_lower_idx ON users (lower(username)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email)) WHERE deleted = FALSE;
CREATE INDEX user_is_system_idx ON users (is_system);

CREATE TABLE organizations (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default) WHERE is_default = TRUE;

CREATE TABLE organization_members (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(roles)),
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user_idx ON organization_members (user_id);

CREATE TABLE groups (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    avatar_url TEXT NOT NULL DEFAULT '',
    quota_allowance INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'oidc')),
    CONSTRAINT groups_name_organization_id_key UNIQUE (name, organization_id)
);

CREATE TABLE group_members (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    CONSTRAINT group_members_user_id_group_id_key UNIQUE (user_id, group_id)
);

CREATE TABLE api_keys (
    id varchar(10) NOT NULL PRIMARY KEY,
    hashed_secret BLOB NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_used TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    login_type TEXT NOT NULL CHECK (login_type IN ('password', 'github', 'oidc', 'token', 'none', 'oauth2_provider_app')),
    lifetime_seconds INTEGER NOT NULL DEFAULT 86400,
    ip_address TEXT NOT NULL DEFAULT '0.0.0.0',
    scope TEXT NOT NULL DEFAULT 'all' CHECK (scope IN ('all', 'application_connect')),
    token_name TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_api_key_name ON api_keys (user_id, token_name) WHERE login_type = 'token';
CREATE INDEX idx_api_keys_user ON api_keys (user_id);

CREATE TRIGGER trigger_insert_apikeys BEFORE INSERT ON api_keys
FOR EACH ROW WHEN (SELECT deleted FROM users WHERE id = NEW.user_id) = 1
BEGIN
    SELECT RAISE(ABORT, 'hangar:user_deleted');
END;

CREATE TRIGGER trigger_update_users AFTER UPDATE OF deleted ON users
FOR EACH ROW WHEN NEW.deleted = 1 AND OLD.deleted = 0
BEGIN
    DELETE FROM api_keys WHERE user_id = NEW.id;
END;

CREATE TRIGGER trigger_delete_group_members_on_org_member_delete AFTER DELETE ON organization_members
FOR EACH ROW
BEGIN
    DELETE FROM group_members
    WHERE user_id = OLD.user_id
      AND group_id IN (SELECT id FROM groups WHERE organization_id = OLD.organization_id);
END;
