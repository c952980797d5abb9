-- 0003 runtime state: small named values that must survive a restart
-- (e.g. the simulated clock's current time).
CREATE TABLE runtime_state (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
