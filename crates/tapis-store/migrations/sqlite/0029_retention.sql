-- 0029 retention (issue 13, item 6; the policy is tapis-core/src/retention.rs).
--   audit_events.erased_by: the `retention.erased` event (the tombstone)
--     that erased this event's payload. The event keeps its sequence, time,
--     actor, action, subject, link hashes, salt and leaf; its before/after
--     become `null`. The append-only trigger allows exactly that update,
--     once, when the tombstone exists and names the event's hash, and
--     nothing else (`tapis log verify` checks the same, and more).
--   flags.erased_at, appeals.erased_at: when retention removed the
--     personal text of a public report or appeal.
DROP TRIGGER audit_events_no_update;
ALTER TABLE audit_events ADD COLUMN erased_by INTEGER;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
WHEN NOT (
    OLD.erased_by IS NULL AND NEW.erased_by IS NOT NULL AND NEW.erased_by > OLD.seq
    AND NEW.seq = OLD.seq AND NEW.at = OLD.at AND NEW.actor = OLD.actor
    AND NEW.action = OLD.action AND NEW.subject_type = OLD.subject_type
    AND NEW.subject_id = OLD.subject_id AND NEW.prev_hash = OLD.prev_hash
    AND NEW.hash = OLD.hash AND NEW.before = 'null' AND NEW.after = 'null'
    AND EXISTS (SELECT 1 FROM audit_events t WHERE t.seq = NEW.erased_by
                AND t.action = 'retention.erased'
                AND instr(t.after, '"event_hash":"' || OLD.hash || '"') > 0)
)
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only');
END;
CREATE INDEX audit_events_erased ON audit_events (erased_by);

ALTER TABLE flags ADD COLUMN erased_at INTEGER;
ALTER TABLE appeals ADD COLUMN erased_at INTEGER;
CREATE INDEX flags_decided ON flags (source_kind, decided_at);
CREATE INDEX appeals_decided ON appeals (appellant_kind, decided_at);
