-- A close is matched against the host's authorizations, and the host closes what a
-- terminal forgot (auto-close).

-- Merchant settings: what a close's lines that the host does not know (or knows
-- otherwise) do, and whether the host closes a terminal's unsettled authorizations
-- of a business day once its cutoff plus a delay has passed.
ALTER TABLE merchants
    ADD COLUMN host_matching text NOT NULL DEFAULT 'report'
        CONSTRAINT merchants_host_matching CHECK (host_matching IN ('report', 'enforce')),
    ADD COLUMN auto_close boolean NOT NULL DEFAULT false,
    ADD COLUMN auto_close_delay_minutes integer NOT NULL DEFAULT 60
        CONSTRAINT merchants_auto_close_delay CHECK (auto_close_delay_minutes BETWEEN 0 AND 720);

-- A batch's origin: closed by its terminal, or by the host on the terminal's behalf
-- (auto-close). A host batch has no terminal batch number, so the terminal's own
-- numbering, its reuse and its gap detection never see it; its status is always
-- auto_closed, and it is always booked.
ALTER TABLE batches
    ADD COLUMN origin text NOT NULL DEFAULT 'terminal'
        CONSTRAINT batches_origin CHECK (origin IN ('terminal', 'host')),
    ALTER COLUMN batch_number DROP NOT NULL,
    ADD CONSTRAINT batches_number_iff_terminal CHECK ((origin = 'terminal') = (batch_number IS NOT NULL)),
    ADD CONSTRAINT batches_auto_closed_iff_host CHECK ((origin = 'host') = (status = 'auto_closed'));
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check CHECK (status IN (
    'accepted', 'accepted_late', 'rejected_outside_grace', 'accepted_by_operator', 'declined',
    'auto_closed'));
-- What matching found: the lines the host did not authorize as presented (none when
-- NULL), and the lines a host batch had settled already (not paid again by this one).
ALTER TABLE batches
    ADD COLUMN unmatched_lines jsonb
        CONSTRAINT batches_unmatched_lines CHECK (jsonb_typeof(unmatched_lines) = 'array'),
    ADD COLUMN already_settled_lines jsonb
        CONSTRAINT batches_already_settled_lines CHECK (jsonb_typeof(already_settled_lines) = 'array');

-- A terminal's line that a host batch settled already names that batch: it is kept
-- as received, counts in the close's reconciliation, but is not in the batch's totals
-- and presents nothing (the host batch's line does). The presentment index leaves it
-- out.
ALTER TABLE batch_lines ADD COLUMN settled_by uuid;
DROP INDEX batch_lines_presented;
CREATE UNIQUE INDEX batch_lines_presented ON batch_lines (rrn, terminal_id)
    WHERE line_type <> 'void' AND released_at IS NULL AND settled_by IS NULL;

CREATE OR REPLACE FUNCTION batch_lines_release_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.batch_id, NEW.line_no, NEW.stan, NEW.rrn, NEW.line_type, NEW.amount_minor,
            NEW.original_stan, NEW.captured_at, NEW.card_brand, NEW.masked_pan, NEW.auth_code,
            NEW.terminal_id, NEW.settled_by)
           IS NOT DISTINCT FROM
           (OLD.batch_id, OLD.line_no, OLD.stan, OLD.rrn, OLD.line_type, OLD.amount_minor,
            OLD.original_stan, OLD.captured_at, OLD.card_brand, OLD.masked_pan, OLD.auth_code,
            OLD.terminal_id, OLD.settled_by) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of % is not allowed: batches and their lines are kept as received', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END;
$$;

-- The per-statement check of lines also checks that a line settled already names a
-- host batch of its terminal whose own line presents the same RRN.
CREATE OR REPLACE FUNCTION batch_lines_check_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    batch uuid;
    terminal text;
    expected integer;
    written integer;
    stans integer;
    strangers integer;
    settled integer;
BEGIN
    -- One primary-key lookup per batch (a join could be planned as a scan of batches).
    FOR batch IN SELECT DISTINCT batch_id FROM new_lines LOOP
        SELECT terminal_id, line_count INTO terminal, expected FROM batches WHERE id = batch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'batch % of a line does not exist', batch
                USING ERRCODE = '23503', CONSTRAINT = 'batch_lines_batch_id_fkey';
        END IF;
        SELECT count(*), count(DISTINCT stan), count(*) FILTER (WHERE terminal_id <> terminal),
               count(*) FILTER (WHERE settled_by IS NOT NULL)
          INTO written, stans, strangers, settled
          FROM new_lines WHERE batch_id = batch;
        IF strangers > 0 THEN
            RAISE EXCEPTION 'lines of batch % name another terminal than %', batch, terminal
                USING ERRCODE = '23514', CONSTRAINT = 'batch_lines_terminal';
        END IF;
        IF written <> expected THEN
            RAISE EXCEPTION 'batch % has % lines; they are written whole, in one statement (% here)',
                batch, expected, written
                USING ERRCODE = '23514', CONSTRAINT = 'batch_lines_whole';
        END IF;
        IF stans <> written THEN
            RAISE EXCEPTION 'a STAN repeats within batch %', batch
                USING ERRCODE = '23505', CONSTRAINT = 'batch_lines_stan_unique';
        END IF;
        IF settled > 0 AND EXISTS (
            SELECT 1 FROM new_lines n
             WHERE n.batch_id = batch AND n.settled_by IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM batch_lines h JOIN batches hb ON hb.id = h.batch_id
                    WHERE h.batch_id = n.settled_by AND h.rrn = n.rrn AND h.terminal_id = n.terminal_id
                      AND h.line_type <> 'void' AND hb.origin = 'host')) THEN
            RAISE EXCEPTION 'a line of batch % names a batch that did not settle it', batch
                USING ERRCODE = '23514', CONSTRAINT = 'batch_lines_settled_by';
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$;

-- Close attempts gain the batches booked with lines the host did not authorize as
-- presented (merchant setting `report`): an exception for operations, about the batch.
ALTER TABLE close_attempts DROP CONSTRAINT close_attempts_outcome_check;
ALTER TABLE close_attempts ADD CONSTRAINT close_attempts_outcome_check CHECK (
    outcome IN ('out_of_balance', 'duplicate_transactions', 'unmatched_transactions'));
ALTER TABLE close_attempts
    ADD COLUMN batch_id uuid REFERENCES batches (id),
    ADD CONSTRAINT close_attempts_unmatched_names_batch CHECK (
        (outcome = 'unmatched_transactions') = (batch_id IS NOT NULL));
