-- 0008 the journal names the order behind each record, so IXFR can carry
-- the explanation (a TXT under _tapis) published beside it, and a change
-- of order behind a name is a change of the zone.
ALTER TABLE rpz_journal ADD COLUMN order_id TEXT;
