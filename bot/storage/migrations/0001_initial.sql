-- Jobs: one row per /imagine, written before the upstream is called.
CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    status              TEXT    NOT NULL,
    request_id          TEXT    UNIQUE,
    status_url          TEXT,
    response_url        TEXT,
    cancel_url          TEXT,
    user_id             INTEGER NOT NULL,
    guild_id            INTEGER,
    channel_id          INTEGER NOT NULL,
    message_id          INTEGER,
    application_id      INTEGER,
    interaction_token   TEXT,
    token_expires_at    REAL,
    upload_limit        INTEGER NOT NULL,
    prompt              TEXT    NOT NULL,
    aspect_ratio        TEXT,
    resolution          TEXT    NOT NULL,
    with_text           INTEGER NOT NULL DEFAULT 0,
    image_urls          TEXT    NOT NULL DEFAULT '[]',
    cost                INTEGER NOT NULL DEFAULT 0,
    quota_day           TEXT    NOT NULL,
    queue_position      INTEGER,
    created_at          REAL    NOT NULL,
    submitted_at        REAL,
    started_at          REAL,
    finished_at         REAL,
    cancel_requested_by INTEGER,
    cancel_requested_at REAL,
    error_type          TEXT,
    error_message       TEXT,
    updated_at          REAL    NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status);
CREATE INDEX jobs_by_message ON jobs (message_id);
CREATE INDEX jobs_by_quota ON jobs (guild_id, quota_day, user_id);

-- Per-server limits; NULL means no limit.
CREATE TABLE quota_settings (
    guild_id       INTEGER PRIMARY KEY,
    user_daily     INTEGER,
    guild_daily    INTEGER,
    max_concurrent INTEGER,
    weight_4k      INTEGER,
    updated_by     INTEGER,
    updated_at     REAL
);

-- Who changed which limit, and when (shown by /quota show).
CREATE TABLE quota_changes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    field     TEXT    NOT NULL,
    old_value INTEGER,
    new_value INTEGER,
    at        REAL    NOT NULL
);
CREATE INDEX quota_changes_by_guild ON quota_changes (guild_id, at);
