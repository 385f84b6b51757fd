-- Server controls set by admins with /settings (Manage Server). Each entry keeps who set it and when.

-- Who may use 4K ('everyone', 'roles': only the roles in four_k_roles, 'off') and the channel where
-- refusals and failures worth an admin's attention are posted (NULL: none).
CREATE TABLE server_controls (
    guild_id       BIGINT PRIMARY KEY,
    four_k         TEXT   NOT NULL DEFAULT 'everyone',
    log_channel_id BIGINT,
    updated_by     BIGINT,
    updated_at     DOUBLE PRECISION
);

CREATE TABLE four_k_roles (
    guild_id BIGINT           NOT NULL,
    role_id  BIGINT           NOT NULL,
    set_by   BIGINT           NOT NULL,
    set_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

-- A role's daily allowance (NULL: no limit); the highest of a member's roles replaces the server's
-- per-member default (quota_settings.user_daily).
CREATE TABLE role_limits (
    guild_id BIGINT           NOT NULL,
    role_id  BIGINT           NOT NULL,
    daily    INTEGER,
    set_by   BIGINT           NOT NULL,
    set_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

-- A member's own daily allowance (NULL: no limit); it wins over their roles and the default.
CREATE TABLE member_limits (
    guild_id BIGINT           NOT NULL,
    user_id  BIGINT           NOT NULL,
    daily    INTEGER,
    set_by   BIGINT           NOT NULL,
    set_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Members who may not make images in a server at all.
CREATE TABLE blocked_members (
    guild_id BIGINT           NOT NULL,
    user_id  BIGINT           NOT NULL,
    set_by   BIGINT           NOT NULL,
    set_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

-- Blocked words and phrases: as typed, and folded (case, accents) for uniqueness and removal.
-- COLLATE "C": compared and ordered by code point, as SQLite does.
CREATE TABLE blocked_words (
    guild_id BIGINT           NOT NULL,
    folded   TEXT COLLATE "C" NOT NULL,
    phrase   TEXT             NOT NULL,
    set_by   BIGINT           NOT NULL,
    set_at   DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, folded)
);

-- Failed jobs by when they ended (for the log channel).
CREATE INDEX jobs_by_finish ON jobs (status, finished_at);
