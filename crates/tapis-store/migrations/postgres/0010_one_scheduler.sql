-- One scheduler: the escalation ladder's timers join the order jobs in
-- one table with one dispatcher. A notice's timer becomes the job kind
-- `notice_<step>` with the notice as its subject; pending ones stay
-- pending, fired and cancelled ones keep their history.
INSERT INTO jobs (id, kind, subject_id, due_at, state, fired_at)
    SELECT id, 'notice_' || step, notice_id, due_at, state, fired_at FROM timers;
DROP TABLE timers;
CREATE INDEX jobs_subject ON jobs (subject_id, state);
