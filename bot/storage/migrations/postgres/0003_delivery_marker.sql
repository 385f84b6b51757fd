-- Set just before the image is handed to Discord: after a crash, a job with this mark is known to
-- have been (very probably) delivered, so it is never turned into a failure or refunded.
ALTER TABLE jobs ADD COLUMN delivery_attempted_at DOUBLE PRECISION;
