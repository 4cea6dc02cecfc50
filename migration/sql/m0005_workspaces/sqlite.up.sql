-- The rest of the workspace model (04 §2) and the preset tables (05 §2.1–2.4).
-- `templates`, `workspaces` and `provisioner_keys` come from m0003_workspaces_core.
-- Nothing here is newer than SQLite 3.40 (STORED generated columns need 3.31).

-- 04 §2.2
CREATE TABLE files (
    id TEXT NOT NULL PRIMARY KEY,
    hash varchar(64) NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    mimetype varchar(64) NOT NULL,
    data BLOB NOT NULL,
    CONSTRAINT files_hash_created_by_key UNIQUE (hash, created_by)
);

-- 04 §2.6
CREATE TABLE provisioner_daemons (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    name varchar(64) NOT NULL,
    provisioners TEXT NOT NULL CHECK (json_valid(provisioners)),
    tags TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(tags)),
    last_seen_at TEXT,
    version TEXT NOT NULL DEFAULT '',
    api_version TEXT NOT NULL DEFAULT '1.0',
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    key_id TEXT REFERENCES provisioner_keys (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX idx_provisioner_daemons_org_name_owner_key
    ON provisioner_daemons (organization_id, name, lower(coalesce(json_extract(tags, '$.owner'), '')));
CREATE INDEX provisioner_daemons_key_id_idx ON provisioner_daemons (key_id);

-- 04 §2.5
CREATE TABLE provisioner_jobs (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    canceled_at TEXT,
    completed_at TEXT,
    error TEXT,
    error_code TEXT,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    initiator_id TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    provisioner TEXT NOT NULL CHECK (provisioner IN ('echo', 'terraform')),
    storage_method TEXT NOT NULL DEFAULT 'file' CHECK (storage_method IN ('file')),
    type TEXT NOT NULL CHECK (type IN ('template_version_import', 'workspace_build', 'template_version_dry_run')),
    file_id TEXT NOT NULL REFERENCES files (id),
    input TEXT NOT NULL CHECK (json_valid(input)),
    worker_id TEXT REFERENCES provisioner_daemons (id) ON DELETE SET NULL,
    tags TEXT NOT NULL DEFAULT '{"owner":"","scope":"organization"}' CHECK (json_valid(tags)),
    logs_length INTEGER NOT NULL DEFAULT 0 CONSTRAINT max_provisioner_logs_length CHECK (logs_length <= 1048576),
    logs_overflowed INTEGER NOT NULL DEFAULT 0,
    -- A NULL error counts as no error (`NULL <> ''` is NULL, so the WHEN falls through).
    job_status TEXT NOT NULL GENERATED ALWAYS AS (
        CASE
            WHEN completed_at IS NOT NULL THEN
                CASE
                    WHEN error <> '' THEN 'failed'
                    WHEN canceled_at IS NOT NULL THEN 'canceled'
                    ELSE 'succeeded'
                END
            ELSE
                CASE
                    WHEN error <> '' THEN 'failed'
                    WHEN canceled_at IS NOT NULL THEN 'canceling'
                    WHEN started_at IS NULL THEN 'pending'
                    ELSE 'running'
                END
        END
    ) STORED
);
CREATE INDEX idx_provisioner_jobs_status ON provisioner_jobs (job_status);
CREATE INDEX idx_provisioner_jobs_pending ON provisioner_jobs (organization_id, created_at) WHERE job_status = 'pending';
CREATE INDEX idx_provisioner_jobs_worker ON provisioner_jobs (worker_id, organization_id, completed_at DESC);

CREATE TABLE provisioner_job_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT 'provisioner' CHECK (source IN ('provisioner_daemon', 'provisioner')),
    level TEXT NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
    stage varchar(128) NOT NULL,
    output TEXT NOT NULL
);
CREATE INDEX provisioner_job_logs_id_job_id_idx ON provisioner_job_logs (job_id, id);

-- 04 §2.4
CREATE TABLE template_versions (
    id TEXT NOT NULL PRIMARY KEY,
    template_id TEXT REFERENCES templates (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE RESTRICT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name varchar(64) NOT NULL,
    message varchar(1048576) NOT NULL DEFAULT '',
    readme TEXT NOT NULL DEFAULT '',
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id),
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    archived INTEGER NOT NULL DEFAULT 0,
    has_ai_task INTEGER,
    CONSTRAINT template_versions_template_id_name_key UNIQUE (template_id, name),
    CONSTRAINT template_versions_job_id_key UNIQUE (job_id)
);
CREATE INDEX idx_template_versions_has_ai_task ON template_versions (has_ai_task);

CREATE TABLE template_version_parameters (
    template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    mutable INTEGER NOT NULL DEFAULT 0,
    default_value TEXT NOT NULL DEFAULT '',
    icon TEXT NOT NULL DEFAULT '',
    options TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(options)),
    validation_regex TEXT NOT NULL DEFAULT '',
    validation_error TEXT NOT NULL DEFAULT '',
    validation_min INTEGER,
    validation_max INTEGER,
    validation_monotonic TEXT NOT NULL DEFAULT ''
        CONSTRAINT validation_monotonic_order CHECK (validation_monotonic IN ('', 'increasing', 'decreasing')),
    required INTEGER NOT NULL DEFAULT 1,
    ephemeral INTEGER NOT NULL DEFAULT 0,
    display_order INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT template_version_parameters_template_version_id_name_key UNIQUE (template_version_id, name)
);

CREATE TABLE template_version_variables (
    template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '',
    default_value TEXT NOT NULL DEFAULT '',
    required INTEGER NOT NULL DEFAULT 0,
    sensitive INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT template_version_variables_template_version_id_name_key UNIQUE (template_version_id, name)
);

-- 05 §2.2–2.3
CREATE TABLE template_version_presets (
    id TEXT NOT NULL PRIMARY KEY,
    template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name TEXT NOT NULL CHECK (name <> ''),
    created_at TEXT NOT NULL,
    desired_instances INTEGER CHECK (desired_instances >= 0),
    invalidate_after_secs INTEGER DEFAULT 0
        CHECK (invalidate_after_secs = 0 OR invalidate_after_secs BETWEEN 3600 AND 31536000),
    prebuild_status TEXT NOT NULL DEFAULT 'normal' CHECK (prebuild_status IN ('normal', 'hard_limited', 'validation_failed')),
    scheduling_timezone TEXT NOT NULL DEFAULT '',
    is_default INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 128),
    icon TEXT NOT NULL DEFAULT '' CHECK (length(icon) <= 256),
    last_invalidated_at TEXT
);
CREATE UNIQUE INDEX idx_unique_preset_name ON template_version_presets (template_version_id, name);
CREATE UNIQUE INDEX idx_template_version_presets_default ON template_version_presets (template_version_id) WHERE is_default = TRUE;

CREATE TABLE template_version_preset_parameters (
    id TEXT NOT NULL PRIMARY KEY,
    template_version_preset_id TEXT NOT NULL REFERENCES template_version_presets (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX idx_preset_parameters_unique_name ON template_version_preset_parameters (template_version_preset_id, name);

CREATE TABLE template_version_preset_prebuild_schedules (
    id TEXT NOT NULL PRIMARY KEY,
    preset_id TEXT NOT NULL REFERENCES template_version_presets (id) ON DELETE CASCADE,
    cron_expression TEXT NOT NULL,
    desired_instances INTEGER NOT NULL CHECK (desired_instances >= 0)
);
CREATE INDEX idx_preset_prebuild_schedules_preset_id ON template_version_preset_prebuild_schedules (preset_id);

-- 04 §2.9 (before workspace_builds, whose ai_task_sidebar_app_id references workspace_apps)
CREATE TABLE workspace_resources (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    transition TEXT NOT NULL CHECK (transition IN ('start', 'stop', 'delete')),
    type varchar(192) NOT NULL,
    name varchar(64) NOT NULL,
    hide INTEGER NOT NULL DEFAULT 0,
    icon varchar(256) NOT NULL DEFAULT '',
    instance_type varchar(256),
    daily_cost INTEGER NOT NULL DEFAULT 0,
    module_path TEXT
);
CREATE INDEX workspace_resources_job_id_idx ON workspace_resources (job_id);

CREATE TABLE workspace_resource_metadata (
    workspace_resource_id TEXT NOT NULL REFERENCES workspace_resources (id) ON DELETE CASCADE,
    key varchar(1024) NOT NULL,
    value varchar(65536),
    sensitive INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT workspace_resource_metadata_name UNIQUE (workspace_resource_id, key)
);

CREATE TABLE workspace_agents (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name varchar(64) NOT NULL,
    resource_id TEXT NOT NULL REFERENCES workspace_resources (id) ON DELETE CASCADE,
    auth_token TEXT NOT NULL,
    architecture varchar(64) NOT NULL,
    operating_system varchar(64) NOT NULL,
    environment_variables TEXT CHECK (environment_variables IS NULL OR json_valid(environment_variables)),
    directory varchar(4096) NOT NULL DEFAULT '',
    expanded_directory varchar(4096) NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '',
    api_version TEXT NOT NULL DEFAULT '',
    lifecycle_state TEXT NOT NULL DEFAULT 'created' CHECK (lifecycle_state IN ('created', 'starting', 'start_timeout', 'start_error', 'ready', 'shutting_down', 'shutdown_timeout', 'shutdown_error', 'off')),
    first_connected_at TEXT,
    last_connected_at TEXT,
    disconnected_at TEXT,
    started_at TEXT,
    ready_at TEXT,
    last_connected_replica_id TEXT,
    connection_timeout_seconds INTEGER NOT NULL DEFAULT 0,
    troubleshooting_url TEXT NOT NULL DEFAULT '',
    motd_file TEXT NOT NULL DEFAULT '',
    display_apps TEXT NOT NULL DEFAULT '["vscode","web_terminal","ssh_helper","port_forwarding_helper"]' CHECK (json_valid(display_apps)),
    display_order INTEGER NOT NULL DEFAULT 0,
    reachable_host TEXT NOT NULL DEFAULT '',
    parent_id TEXT REFERENCES workspace_agents (id) ON DELETE CASCADE,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workspace_agents_resource_id_idx ON workspace_agents (resource_id);
CREATE INDEX workspace_agents_auth_token_idx ON workspace_agents (auth_token);
CREATE INDEX workspace_agents_parent_id_idx ON workspace_agents (parent_id);

CREATE TABLE workspace_apps (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    display_name varchar(64) NOT NULL DEFAULT '',
    icon varchar(256) NOT NULL DEFAULT '',
    command TEXT,
    url TEXT,
    healthcheck_url TEXT NOT NULL DEFAULT '',
    healthcheck_interval INTEGER NOT NULL DEFAULT 0,
    healthcheck_threshold INTEGER NOT NULL DEFAULT 0,
    health TEXT NOT NULL DEFAULT 'disabled' CHECK (health IN ('disabled', 'initializing', 'healthy', 'unhealthy')),
    subdomain INTEGER NOT NULL DEFAULT 0,
    sharing_level TEXT NOT NULL DEFAULT 'owner' CHECK (sharing_level IN ('owner', 'authenticated', 'organization', 'public')),
    external INTEGER NOT NULL DEFAULT 0,
    display_order INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    open_in TEXT NOT NULL DEFAULT 'slim-window' CHECK (open_in IN ('tab', 'window', 'slim-window')),
    display_group TEXT,
    CONSTRAINT workspace_apps_agent_id_slug_idx UNIQUE (agent_id, slug)
);

-- 04 §2.8
CREATE TABLE workspace_builds (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    build_number INTEGER NOT NULL,
    transition TEXT NOT NULL CHECK (transition IN ('start', 'stop', 'delete')),
    initiator_id TEXT NOT NULL REFERENCES users (id),
    provisioner_state BLOB,
    job_id TEXT NOT NULL REFERENCES provisioner_jobs (id) ON DELETE CASCADE,
    deadline TEXT NOT NULL DEFAULT '0001-01-01 00:00:00.000000+00:00',
    max_deadline TEXT NOT NULL DEFAULT '0001-01-01 00:00:00.000000+00:00',
    reason TEXT NOT NULL DEFAULT 'initiator' CHECK (reason IN ('initiator', 'autostart', 'autostop', 'dormancy', 'failedstop', 'autodelete')),
    daily_cost INTEGER NOT NULL DEFAULT 0,
    template_version_preset_id TEXT REFERENCES template_version_presets (id) ON DELETE SET NULL,
    has_ai_task INTEGER,
    ai_task_sidebar_app_id TEXT REFERENCES workspace_apps (id),
    CONSTRAINT workspace_builds_workspace_id_build_number_key UNIQUE (workspace_id, build_number),
    CONSTRAINT workspace_builds_job_id_key UNIQUE (job_id),
    CONSTRAINT workspace_builds_deadline_below_max_deadline
        CHECK (max_deadline = '0001-01-01 00:00:00.000000+00:00' OR deadline <= max_deadline),
    CONSTRAINT workspace_builds_ai_task_sidebar_app_id_required
        CHECK (((has_ai_task IS NULL OR has_ai_task = FALSE) AND ai_task_sidebar_app_id IS NULL)
               OR (has_ai_task = TRUE AND ai_task_sidebar_app_id IS NOT NULL))
);
CREATE INDEX idx_workspace_builds_initiator_id ON workspace_builds (initiator_id);
CREATE INDEX idx_workspace_builds_preset_id ON workspace_builds (template_version_preset_id);

CREATE TABLE workspace_build_parameters (
    workspace_build_id TEXT NOT NULL REFERENCES workspace_builds (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    CONSTRAINT workspace_build_parameters_workspace_build_id_name_key UNIQUE (workspace_build_id, name)
);

-- 04 §2.10: history, so no cascades.
CREATE TABLE workspace_app_statuses (
    id TEXT NOT NULL PRIMARY KEY,
    created_at TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES workspace_agents (id),
    app_id TEXT NOT NULL REFERENCES workspace_apps (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    state TEXT NOT NULL CHECK (state IN ('working', 'complete', 'failure', 'idle')),
    message TEXT NOT NULL,
    uri TEXT
);
CREATE INDEX idx_workspace_app_statuses_workspace_id_created_at ON workspace_app_statuses (workspace_id, created_at DESC);
CREATE INDEX workspace_app_statuses_app_id_idx ON workspace_app_statuses (app_id, created_at DESC);

-- 04 §2.11
CREATE TABLE workspace_agent_devcontainers (
    id TEXT NOT NULL PRIMARY KEY,
    workspace_agent_id TEXT NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    workspace_folder TEXT NOT NULL,
    config_path TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE INDEX workspace_agent_devcontainers_workspace_agent_id ON workspace_agent_devcontainers (workspace_agent_id);

CREATE TABLE workspace_agent_memory_resource_monitors (
    agent_id TEXT NOT NULL PRIMARY KEY REFERENCES workspace_agents (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL,
    threshold INTEGER NOT NULL CHECK (threshold BETWEEN 0 AND 100),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'OK' CHECK (state IN ('OK', 'NOK')),
    debounced_until TEXT NOT NULL DEFAULT '0001-01-01 00:00:00.000000+00:00'
);

CREATE TABLE workspace_agent_volume_resource_monitors (
    agent_id TEXT NOT NULL REFERENCES workspace_agents (id) ON DELETE CASCADE,
    enabled INTEGER NOT NULL,
    threshold INTEGER NOT NULL CHECK (threshold BETWEEN 0 AND 100),
    path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'OK' CHECK (state IN ('OK', 'NOK')),
    debounced_until TEXT NOT NULL DEFAULT '0001-01-01 00:00:00.000000+00:00',
    PRIMARY KEY (agent_id, path)
);

-- 04 §2.12: no LATERAL in SQLite; the correlated subquery walks the same
-- (workspace_id, build_number) index.
CREATE VIEW workspace_latest_builds AS
SELECT wb.id, wb.workspace_id, wb.template_version_id, wb.job_id,
       wb.template_version_preset_id, wb.transition, wb.created_at, pj.job_status
FROM workspaces w
LEFT JOIN workspace_builds wb ON wb.id = (
    SELECT b.id FROM workspace_builds b WHERE b.workspace_id = w.id ORDER BY b.build_number DESC LIMIT 1)
LEFT JOIN provisioner_jobs pj ON pj.id = wb.job_id
WHERE w.deleted = FALSE ORDER BY w.id;

-- 04 §2.13: SQLite cannot define functions; crates/db inlines provisioner_tagset_contains.

-- 04 §2.9: agent names are unique among the live agents of one workspace build. SQLite
-- cannot format the name into the message; hangar-db maps the bare tag.
CREATE TRIGGER workspace_agent_name_unique_trigger_insert BEFORE INSERT ON workspace_agents
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'hangar:agent_name_unique')
    FROM workspace_resources nr JOIN workspace_builds wb ON wb.job_id = nr.job_id
    WHERE nr.id = NEW.resource_id
      AND EXISTS (
        SELECT 1 FROM workspace_agents a JOIN workspace_resources r ON r.id = a.resource_id
        WHERE r.job_id = nr.job_id AND a.name = NEW.name AND a.id <> NEW.id AND a.deleted = FALSE);
END;

CREATE TRIGGER workspace_agent_name_unique_trigger_update BEFORE UPDATE OF name, resource_id ON workspace_agents
FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'hangar:agent_name_unique')
    FROM workspace_resources nr JOIN workspace_builds wb ON wb.job_id = nr.job_id
    WHERE nr.id = NEW.resource_id
      AND EXISTS (
        SELECT 1 FROM workspace_agents a JOIN workspace_resources r ON r.id = a.resource_id
        WHERE r.job_id = nr.job_id AND a.name = NEW.name AND a.id <> NEW.id AND a.deleted = FALSE);
END;

-- 05 §2.4: a build's preset belongs to the build's template version.
CREATE TRIGGER trg_workspace_builds_preset_version_insert BEFORE INSERT ON workspace_builds
FOR EACH ROW WHEN NEW.template_version_preset_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'hangar:preset_version_mismatch')
    FROM template_version_presets p
    WHERE p.id = NEW.template_version_preset_id AND p.template_version_id <> NEW.template_version_id;
END;

CREATE TRIGGER trg_workspace_builds_preset_version_update
BEFORE UPDATE OF template_version_preset_id, template_version_id ON workspace_builds
FOR EACH ROW WHEN NEW.template_version_preset_id IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'hangar:preset_version_mismatch')
    FROM template_version_presets p
    WHERE p.id = NEW.template_version_preset_id AND p.template_version_id <> NEW.template_version_id;
END;
