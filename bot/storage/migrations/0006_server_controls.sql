-- Server controls set by admins with /settings (Manage Server). Each entry keeps who set it and when.

-- Who may use 4K ('everyone', 'roles': only the roles in four_k_roles, 'off') and the channel where
-- refusals and failures worth an admin's attention are posted (NULL: none).
CREATE TABLE server_controls (
    guild_id       INTEGER PRIMARY KEY,
    four_k         TEXT    NOT NULL DEFAULT 'everyone',
    log_channel_id INTEGER,
    updated_by     INTEGER,
    updated_at     REAL
);

CREATE TABLE four_k_roles (
    guild_id INTEGER NOT NULL,
    role_id  INTEGER NOT NULL,
    set_by   INTEGER NOT NULL,
    set_at   REAL    NOT NULL,
    PRIMARY KEY (guild_id, role_id)
) WITHOUT ROWID;

-- A role's daily allowance (NULL: no limit); the highest of a member's roles replaces the server's
-- per-member default (quota_settings.user_daily).
CREATE TABLE role_limits (
    guild_id INTEGER NOT NULL,
    role_id  INTEGER NOT NULL,
    daily    INTEGER,
    set_by   INTEGER NOT NULL,
    set_at   REAL    NOT NULL,
    PRIMARY KEY (guild_id, role_id)
) WITHOUT ROWID;

-- A member's own daily allowance (NULL: no limit); it wins over their roles and the default.
CREATE TABLE member_limits (
    guild_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    daily    INTEGER,
    set_by   INTEGER NOT NULL,
    set_at   REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

-- Members who may not make images in a server at all.
CREATE TABLE blocked_members (
    guild_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    set_by   INTEGER NOT NULL,
    set_at   REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;

-- Blocked words and phrases: as typed, and folded (case, accents) for uniqueness and removal.
CREATE TABLE blocked_words (
    guild_id INTEGER NOT NULL,
    folded   TEXT    NOT NULL,
    phrase   TEXT    NOT NULL,
    set_by   INTEGER NOT NULL,
    set_at   REAL    NOT NULL,
    PRIMARY KEY (guild_id, folded)
) WITHOUT ROWID;

-- Failed jobs by when they ended (for the log channel).
CREATE INDEX jobs_by_finish ON jobs (status, finished_at);
