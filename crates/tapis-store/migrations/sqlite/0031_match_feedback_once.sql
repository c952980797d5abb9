-- 0031 match feedback counts once per platform and signal, and the bank
-- export reads in pages. A platform's new verdict on a signal supersedes
-- its earlier one (kept, marked with the id of the verdict that replaced
-- it): only the live verdict of each platform is counted, so one platform
-- cannot flood a signal into review. Earlier duplicates are superseded
-- here by the platform's latest one.
ALTER TABLE match_feedback ADD COLUMN superseded_by TEXT;

UPDATE match_feedback SET superseded_by = (
    SELECT g.id FROM match_feedback g
    WHERE g.signal_id = match_feedback.signal_id
      AND g.platform_id = match_feedback.platform_id
    ORDER BY g.at DESC, g.id DESC LIMIT 1
)
WHERE EXISTS (
    SELECT 1 FROM match_feedback g
    WHERE g.signal_id = match_feedback.signal_id
      AND g.platform_id = match_feedback.platform_id
      AND (g.at > match_feedback.at OR (g.at = match_feedback.at AND g.id > match_feedback.id))
);

CREATE UNIQUE INDEX match_feedback_live ON match_feedback (signal_id, platform_id)
    WHERE superseded_by IS NULL;

-- the export's pages: live signals of a bank in sequence order
CREATE INDEX bank_signals_by_seq ON bank_signals (bank_id, added_seq);
