-- Sharding: the shard of the job's server (Discord's (guild_id >> 22) % shard_count; direct
-- messages 0) and the process that may change the job. NULL: left for the owner of its shard, who
-- takes it when it starts. Jobs from before are on shard 0.
ALTER TABLE jobs ADD COLUMN shard_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN owner TEXT;
CREATE INDEX jobs_by_owner ON jobs (owner, status);
