-- A lease per scheduled job on SQLite, so two servers on one file never run the same job at
-- once (PostgreSQL uses a session advisory lock instead, which dies with its process).
CREATE TABLE IF NOT EXISTS job_locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Every run of a job: when, by whom, what it did.
CREATE TABLE IF NOT EXISTS job_runs (
    name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    holder TEXT NOT NULL,
    outcome TEXT,
    PRIMARY KEY (name, started_at, holder)
);
