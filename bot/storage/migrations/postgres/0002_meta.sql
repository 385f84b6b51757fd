-- Small facts the bot keeps about itself (e.g. a digest of the commands last synced to Discord).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
