-- The rest of the workspace model (04 §2) and the preset tables (05 §2.1–2.4).
-- `templates`, `workspaces`, `provisioner_keys` and the enums `provisioner_type`,
-- `automatic_updates` come from m0003_workspaces_core.
CREATE TYPE provisioner_storage_method AS ENUM ('file');
CREATE TYPE provisioner_job_type AS ENUM ('template_version_import', 'workspace_build', 'template_version_dry_run');
CREATE TYPE provisioner_job_status AS ENUM ('pending', 'running', 'succeeded', 'canceling', 'canceled', 'failed', 'unknown');
CREATE TYPE log_level AS ENUM ('trace', 'debug', 'info', 'warn', 'error');
CREATE TYPE log_source AS ENUM ('provisioner_daemon', 'provisioner');
CREATE TYPE workspace_transition AS ENUM ('start', 'stop', 'delete');
CREATE TYPE build_reason AS ENUM ('initiator', 'autostart', 'autostop', 'dormancy', 'failedstop', 'autodelete');
CREATE TYPE workspace_agent_lifecycle_state AS ENUM ('created', 'starting', 'start_timeout', 'start_error', 'ready', 'shutting_down', 'shutdown_timeout', 'shutdown_error', 'off');
CREATE TYPE workspace_app_health AS ENUM ('disabled', 'initializing', 'healthy', 'unhealthy');
CREATE TYPE app_sharing_level AS ENUM ('owner', 'authenticated', 'organization', 'public');
CREATE TYPE workspace_app_open_in AS ENUM ('tab', 'window', 'slim-window');
CREATE TYPE workspace_app_status_state AS ENUM ('working', 'complete', 'failure', 'idle');
CREATE TYPE workspace_agent_monitor_state AS ENUM ('OK', 'NOK');
CREATE TYPE prebuild_status AS ENUM ('normal', 'hard_limited', 'validation_failed');

-- 04 §2.2
CREATE TABLE files (
    id uuid NOT NULL PRIMARY KEY,
    hash varchar(64) NOT NULL,
    created_at timestamptz NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    mimetype varchar(64) NOT NULL,
    data bytea NOT NULL,
    CONSTRAINT files_hash_created_by_key UNIQUE (hash, created_by)
);

-- 04 §2.6
CREATE TABLE provisioner_daemons (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    name varchar(64) NOT NULL,
    provisioners provisioner_type[] NOT NULL,
    tags jsonb NOT NULL DEFAULT '{}',
    last_seen_at timestamptz,
    version text NOT NULL DEFAULT '',
    api_version text NOT NULL DEFAULT '1.0',
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key_id uuid REFERENCES provisioner_keys (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX idx_provisioner_daemons_org_name_owner_key
    ON provisioner_daemons (organization_id, name, lower(coalesce(tags ->> 'owner', '')));
CREATE INDEX provisioner_daemons_key_id_idx ON provisioner_daemons (key_id);

-- 04 §2.5
CREATE TABLE provisioner_jobs (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    started_at timestamptz,
    canceled_at timestamptz,
    completed_at timestamptz,
    error text,
    error_code text,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    initiator_id uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    provisioner provisioner_type NOT NULL,
    storage_method provisioner_storage_method NOT NULL DEFAULT 'file',
    type provisioner_job_type NOT NULL,
    file_id uuid NOT NULL REFERENCES files (id),
    input jsonb NOT NULL,
    worker_id uuid REFERENCES provisioner_daemons (id) ON DELETE SET NULL,
    tags jsonb NOT NULL DEFAULT '{"owner":"","scope":"organization"}',
    logs_length integer NOT NULL DEFAULT 0 CONSTRAINT max_provisioner_logs_length CHECK (logs_length <= 1048576),
    logs_overflowed boolean NOT NULL DEFAULT FALSE,
    -- A NULL error counts as no error (`NULL <> ''` is NULL, so the WHEN falls through).
    job_status provisioner_job_status NOT NULL GENERATED ALWAYS AS (
        CASE
            WHEN completed_at IS NOT NULL THEN
                CASE
                    WHEN error <> '' THEN 'failed'::provisioner_job_status
                    WHEN canceled_at IS NOT NULL THEN 'canceled'::provisioner_job_status
                    ELSE 'succeeded'::provisioner_job_status
                END
            ELSE
                CASE
                    WHEN error <> '' THEN 'failed'::provisioner_job_status
                    WHEN canceled_at IS NOT NULL THEN 'canceling'::provisioner_job_status
                    WHEN started_at IS NULL THEN 'pending'::provisioner_job_status
                    ELSE 'running'::provisioner_job_status
                END
        END
    ) STORED
);
CREATE INDEX idx_provisioner_jobs_status ON provisioner_jobs (job_status);
CREATE INDEX idx_provisioner_jobs_pending ON provisioner_jobs (organization_id, created_at) WHERE job_status = 'pending';
CREATE INDEX idx_provisioner_jobs_worker ON provisioner_jobs (worker_id, organization_id, completed_at DESC);

CREATE TABLE provisioner_job_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    source log_source NOT NULL DEFAULT 'provisioner',
    level log_level NOT NULL,
    stage varchar(128) NOT NULL,
    output text NOT NULL
);
CREATE INDEX provisioner_job_logs_id_job_id_idx ON provisioner_job_logs (job_id, id);

-- 04 §2.4
CREATE TABLE template_versions (
    id uuid NOT NULL PRIMARY KEY,
    template_id uuid REFERENCES templates (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    name varchar(64) NOT NULL,
    message varchar(1048576) NOT NULL DEFAULT '',
    readme text NOT NULL DEFAULT '',
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id),
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    archived boolean NOT NULL DEFAULT FALSE,
    has_ai_task boolean,
    CONSTRAINT template_versions_template_id_name_key UNIQUE (template_id, name),
    CONSTRAINT template_versions_job_id_key UNIQUE (job_id)
);
CREATE INDEX idx_template_versions_has_ai_task ON template_versions (has_ai_task);

CREATE TABLE template_version_parameters (
    template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    type text NOT NULL,
    mutable boolean NOT NULL DEFAULT FALSE,
    default_value text NOT NULL DEFAULT '',
    icon text NOT NULL DEFAULT '',
    options jsonb NOT NULL DEFAULT '[]',
    validation_regex text NOT NULL DEFAULT '',
    validation_error text NOT NULL DEFAULT '',
    validation_min integer,
    validation_max integer,
    validation_monotonic text NOT NULL DEFAULT ''
        CONSTRAINT validation_monotonic_order CHECK (validation_monotonic IN ('', 'increasing', 'decreasing')),
    required boolean NOT NULL DEFAULT TRUE,
    ephemeral boolean NOT NULL DEFAULT FALSE,
    display_order integer NOT NULL DEFAULT 0,
    CONSTRAINT template_version_parameters_template_version_id_name_key UNIQUE (template_version_id, name)
);

CREATE TABLE template_version_variables (
    template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text NOT NULL DEFAULT '',
    type text NOT NULL,
    value text NOT NULL DEFAULT '',
    default_value text NOT NULL DEFAULT '',
    required boolean NOT NULL DEFAULT FALSE,
    sensitive boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT template_version_variables_template_version_id_name_key UNIQUE (template_version_id, name)
);

-- 05 §2.2–2.3
CREATE TABLE template_version_presets (
    id uuid NOT NULL PRIMARY KEY,
    template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (name <> ''),
    created_at timestamptz NOT NULL,
    desired_instances integer CHECK (desired_instances >= 0),
    invalidate_after_secs integer DEFAULT 0
        CHECK (invalidate_after_secs = 0 OR invalidate_after_secs BETWEEN 3600 AND 31536000),
    prebuild_status prebuild_status NOT NULL DEFAULT 'normal',
    scheduling_timezone text NOT NULL DEFAULT '',
    is_default boolean NOT NULL DEFAULT FALSE,
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 128),
    icon text NOT NULL DEFAULT '' CHECK (length(icon) <= 256),
    last_invalidated_at timestamptz
);
CREATE UNIQUE INDEX idx_unique_preset_name ON template_version_presets (template_version_id, name);
CREATE UNIQUE INDEX idx_template_version_presets_default ON template_version_presets (template_version_id) WHERE is_default = TRUE;

CREATE TABLE template_version_preset_parameters (
    id uuid NOT NULL PRIMARY KEY,
    template_version_preset_id uuid NOT NULL REFERENCES template_version_presets (id) ON DELETE CASCADE,
    name text NOT NULL,
    value text NOT NULL
);
CREATE UNIQUE INDEX idx_preset_parameters_unique_name ON template_version_preset_parameters (template_version_preset_id, name);

CREATE TABLE template_version_preset_prebuild_schedules (
    id uuid NOT NULL PRIMARY KEY,
    preset_id uuid NOT NULL REFERENCES template_version_presets (id) ON DELETE CASCADE,
    cron_expression text NOT NULL,
    desired_instances integer NOT NULL CHECK (desired_instances >= 0)
);
CREATE INDEX idx_preset_prebuild_schedules_preset_id ON template_version_preset_prebuild_schedules (preset_id);

-- 04 §2.9 (before workspace_builds, whose ai_task_sidebar_app_id references workspace_apps)
CREATE TABLE workspace_resources (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    transition workspace_transition NOT NULL,
    type varchar(192) NOT NULL,
    name varchar(64) NOT NULL,
    hide boolean NOT NULL DEFAULT FALSE,
    icon varchar(256) NOT NULL DEFAULT '',
    instance_type varchar(256),
    daily_cost integer NOT NULL DEFAULT 0,
    module_path text
);
CREATE INDEX workspace_resources_job_id_idx ON workspace_resources (job_id);

CREATE TABLE workspace_resource_metadata (
    workspace_resource_id uuid NOT NULL REFERENCES workspace_resources (id) ON DELETE CASCADE,
    key varchar(1024) NOT NULL,
    value varchar(65536),
    sensitive boolean NOT NULL DEFAULT FALSE,
    CONSTRAINT workspace_resource_metadata_name UNIQUE (workspace_resource_id, key)
);

CREATE TABLE workspace_agents (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    name varchar(64) NOT NULL,
    resource_id uuid NOT NULL REFERENCES workspace_resources (id) ON DELETE CASCADE,
    auth_token uuid NOT NULL,
    architecture varchar(64) NOT NULL,
    operating_system varchar(64) NOT NULL,
    environment_variables jsonb,
    directory varchar(4096) NOT NULL DEFAULT '',
    expanded_directory varchar(4096) NOT NULL DEFAULT '',
    version text NOT NULL DEFAULT '',
    api_version text NOT NULL DEFAULT '',
    lifecycle_state workspace_agent_lifecycle_state NOT NULL DEFAULT 'created',
    first_connected_at timestamptz,
    last_connected_at timestamptz,
    disconnected_at timestamptz,
    started_at timestamptz,
    ready_at timestamptz,
    last_connected_replica_id uuid,
    connection_timeout_seconds integer NOT NULL DEFAULT 0,
    troubleshooting_url text NOT NULL DEFAULT '',
    motd_file text NOT NULL DEFAULT '',
    display_apps jsonb NOT NULL DEFAULT '["vscode","web_terminal","ssh_helper","port_forwarding_helper"]',
    display_order integer NOT NULL DEFAULT 0,
    reachable_host text NOT NULL DEFAULT '',
    parent_id uuid REFERENCES workspace_agents (id) ON DELETE CASCADE,
    deleted boolean NOT NULL DEFAULT FALSE
);
CREATE INDEX workspace_agents_resource_id_idx ON workspace_agents (resource_id);
CREATE INDEX workspace_agents_auth_token_idx ON workspace_agents (auth_token);
CREATE INDEX workspace_agents_parent_id_idx ON workspace_agents (parent_id);

CREATE TABLE workspace_apps (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    slug text NOT NULL,
    display_name varchar(64) NOT NULL DEFAULT '',
    icon varchar(256) NOT NULL DEFAULT '',
    command text,
    url text,
    healthcheck_url text NOT NULL DEFAULT '',
    healthcheck_interval integer NOT NULL DEFAULT 0,
    healthcheck_threshold integer NOT NULL DEFAULT 0,
    health workspace_app_health NOT NULL DEFAULT 'disabled',
    subdomain boolean NOT NULL DEFAULT FALSE,
    sharing_level app_sharing_level NOT NULL DEFAULT 'owner',
    external boolean NOT NULL DEFAULT FALSE,
    display_order integer NOT NULL DEFAULT 0,
    hidden boolean NOT NULL DEFAULT FALSE,
    open_in workspace_app_open_in NOT NULL DEFAULT 'slim-window',
    display_group text,
    CONSTRAINT workspace_apps_agent_id_slug_idx UNIQUE (agent_id, slug)
);

-- 04 §2.8
CREATE TABLE workspace_builds (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    build_number integer NOT NULL,
    transition workspace_transition NOT NULL,
    initiator_id uuid NOT NULL REFERENCES users (id),
    provisioner_state bytea,
    job_id uuid NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    deadline timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    max_deadline timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    reason build_reason NOT NULL DEFAULT 'initiator',
    daily_cost integer NOT NULL DEFAULT 0,
    template_version_preset_id uuid REFERENCES template_version_presets (id) ON DELETE SET NULL,
    has_ai_task boolean,
    ai_task_sidebar_app_id uuid REFERENCES workspace_apps (id),
    CONSTRAINT workspace_builds_workspace_id_build_number_key UNIQUE (workspace_id, build_number),
    CONSTRAINT workspace_builds_job_id_key UNIQUE (job_id),
    CONSTRAINT workspace_builds_deadline_below_max_deadline
        CHECK (max_deadline = '0001-01-01 00:00:00+00' OR deadline <= max_deadline),
    CONSTRAINT workspace_builds_ai_task_sidebar_app_id_required
        CHECK (((has_ai_task IS NULL OR has_ai_task = FALSE) AND ai_task_sidebar_app_id IS NULL)
               OR (has_ai_task = TRUE AND ai_task_sidebar_app_id IS NOT NULL))
);
CREATE INDEX idx_workspace_builds_initiator_id ON workspace_builds (initiator_id);
CREATE INDEX idx_workspace_builds_preset_id ON workspace_builds (template_version_preset_id);

CREATE TABLE workspace_build_parameters (
    workspace_build_id uuid NOT NULL REFERENCES workspace_builds (id) ON DELETE CASCADE,
    name text NOT NULL,
    value text NOT NULL,
    CONSTRAINT workspace_build_parameters_workspace_build_id_name_key UNIQUE (workspace_build_id, name)
);

-- 04 §2.10: history, so no cascades.
CREATE TABLE workspace_app_statuses (
    id uuid NOT NULL PRIMARY KEY,
    created_at timestamptz NOT NULL,
    agent_id uuid NOT NULL REFERENCES workspace_agents (id),
    app_id uuid NOT NULL REFERENCES workspace_apps (id),
    workspace_id uuid NOT NULL REFERENCES workspaces (id),
    state workspace_app_status_state NOT NULL,
    message text NOT NULL,
    uri text
);
CREATE INDEX idx_workspace_app_statuses_workspace_id_created_at ON workspace_app_statuses (workspace_id, created_at DESC);
CREATE INDEX workspace_app_statuses_app_id_idx ON workspace_app_statuses (app_id, created_at DESC);

-- 04 §2.11
CREATE TABLE workspace_agent_devcontainers (
    id uuid NOT NULL PRIMARY KEY,
    workspace_agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    workspace_folder text NOT NULL,
    config_path text NOT NULL,
    name text NOT NULL
);
CREATE INDEX workspace_agent_devcontainers_workspace_agent_id ON workspace_agent_devcontainers (workspace_agent_id);

CREATE TABLE workspace_agent_memory_resource_monitors (
    agent_id uuid NOT NULL PRIMARY KEY REFERENCES workspace_agents (id) ON DELETE CASCADE,
    enabled boolean NOT NULL,
    threshold integer NOT NULL CHECK (threshold BETWEEN 0 AND 100),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    state workspace_agent_monitor_state NOT NULL DEFAULT 'OK',
    debounced_until timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00'
);

CREATE TABLE workspace_agent_volume_resource_monitors (
    agent_id uuid NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    enabled boolean NOT NULL,
    threshold integer NOT NULL CHECK (threshold BETWEEN 0 AND 100),
    path text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    state workspace_agent_monitor_state NOT NULL DEFAULT 'OK',
    debounced_until timestamptz NOT NULL DEFAULT '0001-01-01 00:00:00+00',
    PRIMARY KEY (agent_id, path)
);

-- 04 §2.12
CREATE VIEW workspace_latest_builds AS
SELECT lb.* FROM workspaces w
LEFT JOIN LATERAL (
  SELECT wb.id, wb.workspace_id, wb.template_version_id, wb.job_id,
         wb.template_version_preset_id, wb.transition, wb.created_at, pj.job_status
  FROM workspace_builds wb JOIN provisioner_jobs pj ON pj.id = wb.job_id
  WHERE wb.workspace_id = w.id ORDER BY wb.build_number DESC LIMIT 1) lb ON TRUE
WHERE w.deleted = FALSE ORDER BY w.id;

-- 04 §2.13: an untagged job runs only on an untagged daemon; otherwise containment.
CREATE FUNCTION provisioner_tagset_contains(daemon_tags jsonb, job_tags jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN job_tags = '{"owner":"","scope":"organization"}'::jsonb THEN job_tags = daemon_tags
        ELSE job_tags <@ daemon_tags
    END
$$;

-- 04 §2.9: agent names are unique among the live agents of one workspace build.
CREATE FUNCTION check_workspace_agent_name_unique() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    build_job uuid;
BEGIN
    SELECT wb.job_id INTO build_job
    FROM workspace_resources r JOIN workspace_builds wb ON wb.job_id = r.job_id
    WHERE r.id = NEW.resource_id;
    -- Resources of a template-import job belong to no build.
    IF build_job IS NULL THEN
        RETURN NEW;
    END IF;
    IF EXISTS (
        SELECT 1 FROM workspace_agents a JOIN workspace_resources r ON r.id = a.resource_id
        WHERE r.job_id = build_job AND a.name = NEW.name AND a.id <> NEW.id AND a.deleted = FALSE
    ) THEN
        RAISE EXCEPTION 'hangar:agent_name_unique: workspace agent name "%" already exists in this workspace build', NEW.name;
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER workspace_agent_name_unique_trigger BEFORE INSERT OR UPDATE OF name, resource_id ON workspace_agents
    FOR EACH ROW EXECUTE FUNCTION check_workspace_agent_name_unique();

-- 05 §2.4: a build's preset belongs to the build's template version.
CREATE FUNCTION check_workspace_build_preset_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.template_version_preset_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM template_version_presets p
        WHERE p.id = NEW.template_version_preset_id AND p.template_version_id <> NEW.template_version_id
    ) THEN
        RAISE EXCEPTION 'hangar:preset_version_mismatch: preset does not belong to the template version';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER trg_workspace_builds_preset_version
    BEFORE INSERT OR UPDATE OF template_version_preset_id, template_version_id ON workspace_builds
    FOR EACH ROW EXECUTE FUNCTION check_workspace_build_preset_version();
