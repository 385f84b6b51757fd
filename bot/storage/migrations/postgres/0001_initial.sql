-- PostgreSQL twin of ../0001_initial.sql (same tables and columns; a test keeps the two in step).
-- Discord ids are BIGINT, times DOUBLE PRECISION (seconds since the epoch).

-- Jobs: one row per /imagine, written before the upstream is called.
CREATE TABLE jobs (
    id                  BIGSERIAL        PRIMARY KEY,
    status              TEXT             NOT NULL,
    request_id          TEXT             UNIQUE,
    status_url          TEXT,
    response_url        TEXT,
    cancel_url          TEXT,
    user_id             BIGINT           NOT NULL,
    guild_id            BIGINT,
    channel_id          BIGINT           NOT NULL,
    message_id          BIGINT,
    application_id      BIGINT,
    interaction_token   TEXT,
    token_expires_at    DOUBLE PRECISION,
    upload_limit        BIGINT           NOT NULL,
    prompt              TEXT             NOT NULL,
    aspect_ratio        TEXT,
    resolution          TEXT             NOT NULL,
    with_text           INTEGER          NOT NULL DEFAULT 0,
    image_urls          TEXT             NOT NULL DEFAULT '[]',
    cost                INTEGER          NOT NULL DEFAULT 0,
    quota_day           TEXT             NOT NULL,
    queue_position      INTEGER,
    created_at          DOUBLE PRECISION NOT NULL,
    submitted_at        DOUBLE PRECISION,
    started_at          DOUBLE PRECISION,
    finished_at         DOUBLE PRECISION,
    cancel_requested_by BIGINT,
    cancel_requested_at DOUBLE PRECISION,
    error_type          TEXT,
    error_message       TEXT,
    updated_at          DOUBLE PRECISION NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status);
CREATE INDEX jobs_by_message ON jobs (message_id);
CREATE INDEX jobs_by_quota ON jobs (guild_id, quota_day, user_id);

-- Per-server limits; NULL means no limit.
CREATE TABLE quota_settings (
    guild_id       BIGINT PRIMARY KEY,
    user_daily     INTEGER,
    guild_daily    INTEGER,
    max_concurrent INTEGER,
    weight_4k      INTEGER,
    updated_by     BIGINT,
    updated_at     DOUBLE PRECISION
);

-- Who changed which limit, and when (shown by /quota show).
CREATE TABLE quota_changes (
    id        BIGSERIAL        PRIMARY KEY,
    guild_id  BIGINT           NOT NULL,
    user_id   BIGINT           NOT NULL,
    field     TEXT             NOT NULL,
    old_value BIGINT,
    new_value BIGINT,
    at        DOUBLE PRECISION NOT NULL
);
CREATE INDEX quota_changes_by_guild ON quota_changes (guild_id, at);
