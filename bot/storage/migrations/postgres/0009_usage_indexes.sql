-- The quota check of every new job reads the server's and the member's use today and the member's
-- active jobs. Read through these, its cost follows today's jobs in the server (an index range,
-- without touching the table) and the member's active jobs, not the server's whole history.
DROP INDEX jobs_by_quota;
CREATE INDEX jobs_by_day ON jobs (guild_id, quota_day, user_id, cost);
CREATE INDEX jobs_active_by_member ON jobs (guild_id, user_id) WHERE status IN ('pending', 'queued', 'running', 'delivering');
