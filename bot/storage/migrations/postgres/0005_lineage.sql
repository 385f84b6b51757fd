-- Lineage: the job a new job was made from (by a button under its image), and which action made it.
ALTER TABLE jobs ADD COLUMN parent_job_id BIGINT REFERENCES jobs (id);
ALTER TABLE jobs ADD COLUMN action TEXT;
-- /history: a member's images in a server, newest first.
CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, id);
