-- A batch's lines are written in one statement, right after their batch. Their batch
-- is checked once per statement instead of once per line (a foreign key checks, and
-- locks, the batch row for every line). What the foreign key also guarded, that a
-- batch with lines never disappears, is kept by refusing to delete batches or lines,
-- or to change a batch's id or a line's batch.
CREATE FUNCTION batch_lines_check_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    batch uuid;
BEGIN
    -- One primary-key lookup per batch (a join could be planned as a scan of batches).
    FOR batch IN SELECT DISTINCT batch_id FROM new_lines LOOP
        PERFORM 1 FROM batches WHERE id = batch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'batch % of a line does not exist', batch
                USING ERRCODE = '23503', CONSTRAINT = 'batch_lines_batch_id_fkey';
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE FUNCTION batches_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % is not allowed: batches and their lines are kept as received', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END;
$$;

ALTER TABLE batch_lines DROP CONSTRAINT batch_lines_batch_id_fkey;
CREATE TRIGGER batch_lines_batch_exists AFTER INSERT ON batch_lines
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION batch_lines_check_batches();
CREATE TRIGGER batch_lines_kept BEFORE UPDATE OR DELETE ON batch_lines
    FOR EACH ROW EXECUTE FUNCTION batches_refuse_change();
CREATE TRIGGER batch_lines_no_truncate BEFORE TRUNCATE ON batch_lines
    FOR EACH STATEMENT EXECUTE FUNCTION batches_refuse_change();
CREATE TRIGGER batches_kept BEFORE DELETE ON batches
    FOR EACH ROW EXECUTE FUNCTION batches_refuse_change();
CREATE TRIGGER batches_id_kept BEFORE UPDATE OF id ON batches
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION batches_refuse_change();
CREATE TRIGGER batches_no_truncate BEFORE TRUNCATE ON batches
    FOR EACH STATEMENT EXECUTE FUNCTION batches_refuse_change();
