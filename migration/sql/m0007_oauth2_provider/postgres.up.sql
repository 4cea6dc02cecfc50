-- OAuth2 provider (03 §2): apps (the client_id is the app id), client secrets, authorization
-- codes, the one live access/refresh pair per grant, and spent refresh tokens for reuse
-- detection. No soft delete: deleting an app or user cascades through all of them.

CREATE TABLE oauth2_provider_apps (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    client_id_issued_at timestamptz NOT NULL,
    name varchar(64) NOT NULL,
    icon varchar(256) NOT NULL DEFAULT '',
    callback_url text NOT NULL,
    redirect_uris text[] NOT NULL CHECK (cardinality(redirect_uris) >= 1),
    client_type text NOT NULL DEFAULT 'confidential' CHECK (client_type IN ('confidential', 'public')),
    token_endpoint_auth_method text NOT NULL DEFAULT 'client_secret_basic'
        CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')),
    dynamically_registered boolean NOT NULL DEFAULT false,
    grant_types text[] NOT NULL DEFAULT '{authorization_code,refresh_token}',
    response_types text[] NOT NULL DEFAULT '{code}',
    contacts text[] NOT NULL DEFAULT '{}',
    scope text NOT NULL DEFAULT '',
    client_secret_expires_at timestamptz,
    last_used_at timestamptz,
    client_uri text,
    logo_uri text,
    tos_uri text,
    policy_uri text,
    jwks_uri text,
    software_id text,
    software_version text,
    registration_client_uri text,
    jwks jsonb,
    registration_access_token bytea,
    CONSTRAINT oauth2_provider_apps_public_iff_none
        CHECK ((client_type = 'public') = (token_endpoint_auth_method = 'none')),
    CONSTRAINT oauth2_provider_apps_rat_only_dcr
        CHECK (dynamically_registered OR registration_access_token IS NULL)
);

CREATE TABLE oauth2_provider_app_secrets (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    last_used_at timestamptz,
    hashed_secret bytea NOT NULL,
    display_secret text NOT NULL,
    app_id uuid NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    secret_prefix bytea NOT NULL,
    CONSTRAINT oauth2_provider_app_secrets_secret_prefix_key UNIQUE (secret_prefix)
);
CREATE INDEX idx_oauth2_provider_app_secrets_app_id ON oauth2_provider_app_secrets (app_id);

CREATE TABLE oauth2_provider_app_codes (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    secret_prefix bytea NOT NULL,
    hashed_secret bytea NOT NULL,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_id uuid NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    resource_uri text,
    code_challenge text,
    code_challenge_method text CHECK (code_challenge_method = 'S256'),
    redirect_uri text,
    consumed_at timestamptz,
    CONSTRAINT oauth2_provider_app_codes_secret_prefix_key UNIQUE (secret_prefix),
    CONSTRAINT oauth2_provider_app_codes_pkce_pair
        CHECK ((code_challenge IS NULL) = (code_challenge_method IS NULL))
);
CREATE INDEX idx_oauth2_provider_app_codes_app_user ON oauth2_provider_app_codes (app_id, user_id);
CREATE INDEX idx_oauth2_provider_app_codes_expires_at ON oauth2_provider_app_codes (expires_at);

CREATE TABLE oauth2_provider_app_tokens (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    hash_prefix bytea NOT NULL,
    refresh_hash bytea NOT NULL,
    app_secret_id uuid REFERENCES oauth2_provider_app_secrets (id) ON DELETE CASCADE,
    api_key_id varchar(10) NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    audience text,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    app_id uuid NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    family_id uuid NOT NULL,
    CONSTRAINT oauth2_provider_app_tokens_hash_prefix_key UNIQUE (hash_prefix),
    CONSTRAINT oauth2_provider_app_tokens_api_key_id_key UNIQUE (api_key_id)
);
CREATE INDEX idx_oauth2_provider_app_tokens_app_user ON oauth2_provider_app_tokens (app_id, user_id);
CREATE INDEX idx_oauth2_provider_app_tokens_family ON oauth2_provider_app_tokens (family_id);
CREATE INDEX idx_oauth2_provider_app_tokens_expires_at ON oauth2_provider_app_tokens (expires_at);

CREATE TABLE oauth2_provider_app_token_rotations (
    hash_prefix bytea NOT NULL PRIMARY KEY,
    refresh_hash bytea NOT NULL,
    family_id uuid NOT NULL,
    app_id uuid NOT NULL REFERENCES oauth2_provider_apps (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rotated_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX idx_oauth2_provider_app_token_rotations_expires_at
    ON oauth2_provider_app_token_rotations (expires_at);

-- A token row and its API key live and die together: the FK drops the row with the key,
-- this drops the key with the row.
CREATE FUNCTION delete_deleted_oauth2_provider_app_token_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM api_keys WHERE id = OLD.api_key_id;
    RETURN OLD;
END;
$$;
CREATE TRIGGER trigger_delete_oauth2_provider_app_token AFTER DELETE ON oauth2_provider_app_tokens
FOR EACH ROW EXECUTE FUNCTION delete_deleted_oauth2_provider_app_token_api_key();

CREATE FUNCTION check_oauth2_provider_app_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = NEW.api_key_id
                   AND k.user_id = NEW.user_id AND k.login_type = 'oauth2_provider_app') THEN
        RAISE EXCEPTION 'hangar:oauth2_token_key_mismatch: oauth2 provider app token must reference an oauth2_provider_app api key of the same user';
    END IF;
    IF NEW.app_secret_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM oauth2_provider_app_secrets s
                   WHERE s.id = NEW.app_secret_id AND s.app_id = NEW.app_id) THEN
        RAISE EXCEPTION 'hangar:oauth2_token_secret_mismatch: oauth2 provider app token secret must belong to the token app';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_check_oauth2_provider_app_token BEFORE INSERT OR UPDATE ON oauth2_provider_app_tokens
FOR EACH ROW EXECUTE FUNCTION check_oauth2_provider_app_token();

CREATE FUNCTION check_oauth2_provider_app_secret() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT client_type FROM oauth2_provider_apps WHERE id = NEW.app_id) = 'public' THEN
        RAISE EXCEPTION 'hangar:oauth2_public_app_secret: public oauth2 provider apps cannot have secrets';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trigger_check_oauth2_provider_app_secret BEFORE INSERT ON oauth2_provider_app_secrets
FOR EACH ROW EXECUTE FUNCTION check_oauth2_provider_app_secret();
