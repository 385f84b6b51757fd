-- Two-phase submit: set just before the submit request is written. A PENDING job without it never
-- reached the upstream and is submitted at the next start; one with it and no request id may exist
-- upstream and is closed as uncertain rather than sent twice.
ALTER TABLE jobs ADD COLUMN submit_started_at DOUBLE PRECISION;
-- Set once the member has been shown the job's terminal state. A job that ended while Discord could
-- not be reached is told again later (at the next start or sweep).
ALTER TABLE jobs ADD COLUMN told_at DOUBLE PRECISION;
UPDATE jobs SET told_at = finished_at WHERE status IN ('delivered', 'failed', 'cancelled');
CREATE INDEX jobs_untold ON jobs (status, told_at);
