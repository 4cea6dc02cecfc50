CREATE TYPE user_status AS ENUM ('active', 'suspended', 'dormant');
CREATE TYPE login_type AS ENUM ('password', 'github', 'oidc', 'token', 'none', 'oauth2_provider_app');
CREATE TYPE api_key_scope AS ENUM ('all', 'application_connect');
CREATE TYPE group_source AS ENUM ('user', 'oidc');

CREATE TABLE site_configs (
    key varchar(256) NOT NULL PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE users (
    id uuid NOT NULL PRIMARY KEY,
    email text NOT NULL,
    username text NOT NULL DEFAULT '',
    name text NOT NULL DEFAULT '',
    hashed_password bytea NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    status user_status NOT NULL DEFAULT 'dormant',
    rbac_roles jsonb NOT NULL DEFAULT '[]',
    login_type login_type NOT NULL DEFAULT 'password',
    avatar_url text NOT NULL DEFAULT '',
    deleted boolean NOT NULL DEFAULT FALSE,
    last_seen_at timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    is_system boolean NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX users_username_lower_idx ON users (lower(username)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email)) WHERE deleted = FALSE;
CREATE INDEX user_is_system_idx ON users (is_system);

CREATE TABLE organizations (
    id uuid NOT NULL PRIMARY KEY,
    name text NOT NULL,
    display_name text NOT NULL,
    description text NOT NULL DEFAULT '',
    icon text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    is_default boolean NOT NULL DEFAULT FALSE,
    deleted boolean NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name)) WHERE deleted = FALSE;
CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default) WHERE is_default = TRUE;

CREATE TABLE organization_members (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    roles jsonb NOT NULL DEFAULT '[]',
    PRIMARY KEY (organization_id, user_id)
);
CREATE INDEX organization_members_user_idx ON organization_members (user_id);

CREATE TABLE groups (
    id uuid NOT NULL PRIMARY KEY,
    name text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    avatar_url text NOT NULL DEFAULT '',
    quota_allowance integer NOT NULL DEFAULT 0,
    source group_source NOT NULL DEFAULT 'user',
    CONSTRAINT groups_name_organization_id_key UNIQUE (name, organization_id)
);

CREATE TABLE group_members (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    CONSTRAINT group_members_user_id_group_id_key UNIQUE (user_id, group_id)
);

CREATE TABLE api_keys (
    id varchar(10) NOT NULL PRIMARY KEY,
    hashed_secret bytea NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    last_used timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    login_type login_type NOT NULL,
    lifetime_seconds bigint NOT NULL DEFAULT 86400,
    ip_address inet NOT NULL DEFAULT '0.0.0.0',
    scope api_key_scope NOT NULL DEFAULT 'all',
    token_name text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_api_key_name ON api_keys (user_id, token_name) WHERE login_type = 'token';
CREATE INDEX idx_api_keys_user ON api_keys (user_id);

CREATE FUNCTION insert_apikey_fail_if_user_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT deleted FROM users WHERE id = NEW.user_id) THEN
        RAISE EXCEPTION 'hangar:user_deleted: Cannot create API key for deleted user';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_insert_apikeys BEFORE INSERT ON api_keys
    FOR EACH ROW EXECUTE FUNCTION insert_apikey_fail_if_user_deleted();

CREATE FUNCTION delete_deleted_user_api_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted = TRUE AND OLD.deleted = FALSE THEN
        DELETE FROM api_keys WHERE user_id = NEW.id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_update_users AFTER UPDATE OF deleted ON users
    FOR EACH ROW WHEN (NEW.deleted = TRUE) EXECUTE FUNCTION delete_deleted_user_api_keys();

CREATE FUNCTION delete_group_members_on_org_member_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM group_members
    WHERE user_id = OLD.user_id
      AND group_id IN (SELECT id FROM groups WHERE organization_id = OLD.organization_id);
    RETURN OLD;
END;
$$;
CREATE TRIGGER trigger_delete_group_members_on_org_member_delete AFTER DELETE ON organization_members
    FOR EACH ROW EXECUTE FUNCTION delete_group_members_on_org_member_delete();
