-- OAuth2 provider (03 §2), SQLite form: uuid/timestamps as TEXT, bytea as BLOB, text[] as a
-- JSON array in TEXT. Triggers raise the tag alone; crates/db maps it to the same text as
-- PostgreSQL's.

CREATE TABLE oauth2_provider_apps (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    client_id_issued_at TEXT NOT NULL,
    name TEXT NOT NULL CHECK (length(name) <= 64),
    icon TEXT NOT NULL DEFAULT '' CHECK (length(icon) <= 256),
    callback_url TEXT NOT NULL,
    redirect_uris TEXT NOT NULL
        CHECK (json_valid(redirect_uris) AND json_type(redirect_uris) = 'array' AND json_array_length(redirect_uris) >= 1),
    client_type TEXT NOT NULL DEFAULT 'confidential' CHECK (client_type IN ('confidential', 'public')),
    token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic'
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    dynamically_registered INTEGER NOT NULL DEFAULT 0,
    grant_types TEXT NOT NULL DEFAULT '["authorization_code","refresh_token"]'
        CHECK (json_valid(grant_types) AND json_type(grant_types) = 'array'),
    response_types TEXT NOT NULL DEFAULT '["code"]'
        CHECK (json_valid(response_types) AND json_type(response_types) = 'array'),
    contacts TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(contacts) AND json_type(contacts) = 'array'),
    scope TEXT NOT NULL DEFAULT '',
    client_secret_expires_at TEXT,
    last_used_at TEXT,
    client_uri TEXT,
    logo_uri TEXT,
    tos_uri TEXT,
    policy_uri TEXT,
    jwks_uri TEXT,
    software_id TEXT,
    software_version TEXT,
    registration_client_uri TEXT,
    jwks TEXT CHECK (jwks IS NULL OR json_valid(jwks)),
    registration_access_token BLOB,
    CONSTRAINT oauth2_provider_apps_public_iff_none
        CHECK ((client_type = 'public') = (token_endpoint_auth_method = 'none')),
    CONSTRAINT oauth2_provider_apps_rat_only_dcr
        CHECK (dynamically_registered OR registration_access_token IS NULL)
);

CREATE TABLE oauth2_provider_app_secrets (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    hashed_secret BLOB NOT NULL,
    display_secret TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    secret_prefix BLOB NOT NULL UNIQUE
);
CREATE INDEX idx_oauth2_provider_app_secrets_app_id ON oauth2_provider_app_secrets (app_id);

CREATE TABLE oauth2_provider_app_codes (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    secret_prefix BLOB NOT NULL UNIQUE,
    hashed_secret BLOB NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    resource_uri TEXT,
    code_challenge TEXT,
    code_challenge_method TEXT CHECK (code_challenge_method = 'S256'),
    redirect_uri TEXT,
    consumed_at TEXT,
    CONSTRAINT oauth2_provider_app_codes_pkce_pair
        CHECK ((code_challenge IS NULL) = (code_challenge_method IS NULL))
);
CREATE INDEX idx_oauth2_provider_app_codes_app_user ON oauth2_provider_app_codes (app_id, user_id);
CREATE INDEX idx_oauth2_provider_app_codes_expires_at ON oauth2_provider_app_codes (expires_at);

CREATE TABLE oauth2_provider_app_tokens (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    hash_prefix BLOB NOT NULL UNIQUE,
    refresh_hash BLOB NOT NULL,
    app_secret_id TEXT REFERENCES oauth2_provider_app_secrets (id) ON DELETE CASCADE,
    api_key_id TEXT NOT NULL UNIQUE REFERENCES api_keys (id) ON DELETE CASCADE,
    audience TEXT,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_id TEXT NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    family_id TEXT NOT NULL
);
CREATE INDEX idx_oauth2_provider_app_tokens_app_user ON oauth2_provider_app_tokens (app_id, user_id);
CREATE INDEX idx_oauth2_provider_app_tokens_family ON oauth2_provider_app_tokens (family_id);
CREATE INDEX idx_oauth2_provider_app_tokens_expires_at ON oauth2_provider_app_tokens (expires_at);

CREATE TABLE oauth2_provider_app_token_rotations (
    hash_prefix BLOB NOT NULL PRIMARY KEY,
    refresh_hash BLOB NOT NULL,
    family_id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rotated_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX idx_oauth2_provider_app_token_rotations_expires_at
    ON oauth2_provider_app_token_rotations (expires_at);

CREATE TRIGGER trigger_delete_oauth2_provider_app_token AFTER DELETE ON oauth2_provider_app_tokens
FOR EACH ROW
BEGIN
    DELETE FROM api_keys WHERE id = OLD.api_key_id;
END;

CREATE TRIGGER trigger_check_oauth2_provider_app_token_insert BEFORE INSERT ON oauth2_provider_app_tokens
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'hangar:oauth2_token_key_mismatch')
    WHERE NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = NEW.api_key_id
                      AND k.user_id = NEW.user_id AND k.login_type = 'oauth2_provider_app');
    SELECT RAISE(ABORT, 'hangar:oauth2_token_secret_mismatch')
    WHERE NEW.app_secret_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM oauth2_provider_app_secrets s
                      WHERE s.id = NEW.app_secret_id AND s.app_id = NEW.app_id);
END;
CREATE TRIGGER trigger_check_oauth2_provider_app_token_update BEFORE UPDATE ON oauth2_provider_app_tokens
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'hangar:oauth2_token_key_mismatch')
    WHERE NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = NEW.api_key_id
                      AND k.user_id = NEW.user_id AND k.login_type = 'oauth2_provider_app');
    SELECT RAISE(ABORT, 'hangar:oauth2_token_secret_mismatch')
    WHERE NEW.app_secret_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM oauth2_provider_app_secrets s
                      WHERE s.id = NEW.app_secret_id AND s.app_id = NEW.app_id);
END;

CREATE TRIGGER trigger_check_oauth2_provider_app_secret BEFORE INSERT ON oauth2_provider_app_secrets
FOR EACH ROW WHEN (SELECT client_type FROM oauth2_provider_apps WHERE id = NEW.app_id) = 'public'
BEGIN
    SELECT RAISE(ABORT, 'hangar:oauth2_public_app_secret');
END;
