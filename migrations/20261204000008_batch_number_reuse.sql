-- Batch numbers wrap: terminals count their batches with a fixed width (999999, some
-- 999) and start again at 1, so a terminal may use a number again once its last use
-- is older than the reuse window (BATCH_NUMBER_REUSE_DAYS, at least 30 days). Each
-- use of a number is a batch of its own, counted by `number_use` (1, 2, ...), and the
-- database refuses two batches with the same use and a use that comes too soon.

ALTER TABLE batches
    ADD COLUMN number_use integer NOT NULL DEFAULT 1
        CONSTRAINT batches_number_use_positive CHECK (number_use >= 1);
-- One batch per terminal, number and use; the close looks up a number's latest use here.
ALTER TABLE batches
    ADD CONSTRAINT batches_terminal_number_use_unique UNIQUE (terminal_id, batch_number, number_use);
ALTER TABLE batches DROP CONSTRAINT batches_terminal_number_unique;

-- A use after the first follows the use before it by at least 30 days (the shortest
-- window the service accepts), so two batches of one number never coexist inside any
-- window, and uses are never skipped. The previous use is committed before the next
-- is inserted (a close holds its terminal's lock), so reading it here is sound; two
-- inserts of the same use meet at the unique key.
CREATE FUNCTION batches_check_number_reuse() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    previous_received_at timestamptz;
BEGIN
    SELECT received_at INTO previous_received_at FROM batches
     WHERE terminal_id = NEW.terminal_id AND batch_number = NEW.batch_number
       AND number_use = NEW.number_use - 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'use % of batch number % of terminal % follows no use %',
            NEW.number_use, NEW.batch_number, NEW.terminal_id, NEW.number_use - 1
            USING ERRCODE = '23514', CONSTRAINT = 'batches_number_reuse';
    END IF;
    IF NEW.received_at < previous_received_at + interval '30 days' THEN
        RAISE EXCEPTION 'batch number % of terminal % was used at %, less than 30 days before',
            NEW.batch_number, NEW.terminal_id, previous_received_at
            USING ERRCODE = '23514', CONSTRAINT = 'batches_number_reuse';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER batches_number_reuse BEFORE INSERT ON batches
    FOR EACH ROW WHEN (NEW.number_use > 1) EXECUTE FUNCTION batches_check_number_reuse();
-- A batch keeps its terminal, number and use.
CREATE TRIGGER batches_number_kept BEFORE UPDATE OF terminal_id, batch_number, number_use ON batches
    FOR EACH ROW WHEN (OLD.terminal_id IS DISTINCT FROM NEW.terminal_id
                       OR OLD.batch_number IS DISTINCT FROM NEW.batch_number
                       OR OLD.number_use IS DISTINCT FROM NEW.number_use)
    EXECUTE FUNCTION batches_refuse_change();
