-- 0029 retention (issue 13, item 6; the policy is tapis-core/src/retention.rs).
--   audit_events.erased_by: the `retention.erased` event (the tombstone)
--     that erased this event's payload. The event keeps its sequence, time,
--     actor, action, subject, link hashes, salt and leaf; its before/after
--     become `null`. The append-only trigger allows exactly that update,
--     once, when the tombstone exists and names the event's hash, and
--     nothing else (`tapis log verify` checks the same, and more).
--   flags.erased_at, appeals.erased_at: when retention removed the
--     personal text of a public report or appeal.
ALTER TABLE audit_events ADD COLUMN erased_by BIGINT;
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.erased_by IS NULL AND NEW.erased_by IS NOT NULL AND NEW.erased_by > OLD.seq
       AND NEW.seq = OLD.seq AND NEW.at = OLD.at AND NEW.actor = OLD.actor
       AND NEW.action = OLD.action AND NEW.subject_type = OLD.subject_type
       AND NEW.subject_id = OLD.subject_id AND NEW.prev_hash = OLD.prev_hash
       AND NEW.hash = OLD.hash AND NEW.before = 'null' AND NEW.after = 'null'
       AND EXISTS (SELECT 1 FROM audit_events t WHERE t.seq = NEW.erased_by
                   AND t.action = 'retention.erased'
                   AND position('"event_hash":"' || OLD.hash || '"' IN t.after) > 0) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events are append-only';
END
$fn$;
CREATE INDEX audit_events_erased ON audit_events (erased_by);

ALTER TABLE flags ADD COLUMN erased_at BIGINT;
ALTER TABLE appeals ADD COLUMN erased_at BIGINT;
CREATE INDEX flags_decided ON flags (source_kind, decided_at);
CREATE INDEX appeals_decided ON appeals (appellant_kind, decided_at);
