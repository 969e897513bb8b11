-- Every transaction is paid once: a terminal's RRN (ISO 8583 field 37) held by a batch
-- that is booked or waiting for operations cannot be presented again, and the
-- exceptions operations work from have a life (open, resolved, declined) with who,
-- when and why.

-- Batches operations declined: kept for the record, never paid; their lines may be
-- presented again. "Booked" now means accepted, accepted_late or accepted_by_operator.
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check CHECK (status IN (
    'accepted', 'accepted_late', 'rejected_outside_grace', 'accepted_by_operator', 'declined'));
ALTER TABLE batches DROP CONSTRAINT batches_cycle_iff_booked;
ALTER TABLE batches ADD CONSTRAINT batches_cycle_iff_booked CHECK (
    (status IN ('rejected_outside_grace', 'declined')) = (cycle_date IS NULL));
ALTER TABLE batches DROP CONSTRAINT batches_rejected_not_booked;
ALTER TABLE batches ADD CONSTRAINT batches_rejected_not_booked CHECK (
    status NOT IN ('rejected_outside_grace', 'declined') OR journal_entry_id IS NULL);
ALTER TABLE batches DROP CONSTRAINT batches_booked_when_net;
ALTER TABLE batches ADD CONSTRAINT batches_booked_when_net CHECK (
    status IN ('rejected_outside_grace', 'declined') OR (net_amount_minor = 0) = (journal_entry_id IS NULL));
ALTER TABLE batches DROP CONSTRAINT batches_settled_only_when_booked;
ALTER TABLE batches ADD CONSTRAINT batches_settled_only_when_booked CHECK (
    settlement_cycle_id IS NULL OR status NOT IN ('rejected_outside_grace', 'declined'));
ALTER TABLE batches DROP CONSTRAINT batches_operator_reason;
ALTER TABLE batches ADD CONSTRAINT batches_operator_reason CHECK (
    (status IN ('accepted_by_operator', 'declined')) = (operator_reason IS NOT NULL));
-- Who decided about a held batch, and when (absent on batches accepted before this).
ALTER TABLE batches
    ADD COLUMN decided_by text,
    ADD COLUMN decided_at timestamptz,
    ADD CONSTRAINT batches_decided CHECK (
        (decided_by IS NULL) = (decided_at IS NULL)
        AND (decided_at IS NULL OR status IN ('accepted_by_operator', 'declined')));
-- A rejected batch never carries a fee: it is not charged until it is booked.
UPDATE batches SET fee_minor = 0 WHERE status = 'rejected_outside_grace' AND fee_minor <> 0;
ALTER TABLE batches ADD CONSTRAINT batches_fee_only_when_booked CHECK (
    fee_minor = 0 OR status NOT IN ('rejected_outside_grace', 'declined'));
-- The exceptions list reads held and decided batches newest first.
CREATE INDEX batches_held_or_decided ON batches (id DESC)
    WHERE status IN ('rejected_outside_grace', 'accepted_by_operator', 'declined');

-- Presentments -------------------------------------------------------------------
-- A sale or refund line presents its RRN (ISO 8583 field 37) for its terminal. While
-- a line that is not released presents an RRN, no other line of that terminal may
-- present it: a partial unique index on the lines themselves (one index entry per
-- line, in place of the STAN index below, so a close costs about what it did).
-- Voids cancel a sale of their own batch and are not paid, so they present nothing
-- (they often carry the sale's RRN). A line is released when operations decline its
-- batch, and once its batch is older than the presentment window (13 months: how
-- long card schemes keep a presentment open to dispute; terminals' RRN counters may
-- wrap after that). Lines are otherwise never changed.
ALTER TABLE batch_lines
    ADD COLUMN terminal_id text,
    ADD COLUMN released_at timestamptz;
ALTER TABLE batch_lines DISABLE TRIGGER batch_lines_kept;
UPDATE batch_lines l SET terminal_id = b.terminal_id FROM batches b WHERE b.id = l.batch_id;
-- What was presented before: the first line to present an RRN keeps it, a repeat
-- already booked is released (and shows in the ledger check), and lines past the
-- window are released.
UPDATE batch_lines l SET released_at = now()
  FROM (SELECT batch_id, line_no,
               row_number() OVER (PARTITION BY terminal_id, rrn ORDER BY batch_id, line_no) AS k
          FROM batch_lines WHERE line_type <> 'void') d
 WHERE d.batch_id = l.batch_id AND d.line_no = l.line_no AND d.k > 1;
UPDATE batch_lines l SET released_at = now() FROM batches b
 WHERE b.id = l.batch_id AND b.received_at < now() - interval '395 days' AND l.released_at IS NULL;
ALTER TABLE batch_lines ENABLE TRIGGER batch_lines_kept;
ALTER TABLE batch_lines ALTER COLUMN terminal_id SET NOT NULL;
-- The RRN leads: a close probes its RRNs with rrn = ANY(...), which the index serves
-- only as its leading column (led by the terminal, the planner may scan the
-- terminal's whole history with the RRNs as a filter when its statistics think the
-- terminal small: seen at 35 ms a close with 90,000 lines).
CREATE UNIQUE INDEX batch_lines_presented ON batch_lines (rrn, terminal_id)
    WHERE line_type <> 'void' AND released_at IS NULL;

-- Lines stay as received: the one change allowed is their release (and its undoing
-- when operations accept a held batch whose lines were released).
CREATE FUNCTION batch_lines_release_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (NEW.batch_id, NEW.line_no, NEW.stan, NEW.rrn, NEW.line_type, NEW.amount_minor,
            NEW.original_stan, NEW.captured_at, NEW.card_brand, NEW.masked_pan, NEW.auth_code,
            NEW.terminal_id)
           IS NOT DISTINCT FROM
           (OLD.batch_id, OLD.line_no, OLD.stan, OLD.rrn, OLD.line_type, OLD.amount_minor,
            OLD.original_stan, OLD.captured_at, OLD.card_brand, OLD.masked_pan, OLD.auth_code,
            OLD.terminal_id) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of % is not allowed: batches and their lines are kept as received', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END;
$$;
DROP TRIGGER batch_lines_kept ON batch_lines;
CREATE TRIGGER batch_lines_kept BEFORE UPDATE OR DELETE ON batch_lines
    FOR EACH ROW EXECUTE FUNCTION batch_lines_release_only();

-- How far the release of lines past the presentment window has come: batches are
-- walked in id order (time-ordered ids), a bounded number per scheduler tick.
CREATE TABLE presentment_release_mark (
    only_row          boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    through_batch_id  uuid NOT NULL
);
INSERT INTO presentment_release_mark (through_batch_id) VALUES ('00000000-0000-0000-0000-000000000000');

-- Checked once per statement of lines: their batch exists and is their terminal's,
-- a batch's lines are written whole (as many as its line_count, so none can be
-- added later) and their STANs are distinct. This replaces the index that kept a
-- batch's STANs unique.
CREATE OR REPLACE FUNCTION batch_lines_check_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    batch uuid;
    terminal text;
    expected integer;
    written integer;
    stans integer;
    strangers integer;
BEGIN
    -- One primary-key lookup per batch (a join could be planned as a scan of batches).
    FOR batch IN SELECT DISTINCT batch_id FROM new_lines LOOP
        SELECT terminal_id, line_count INTO terminal, expected FROM batches WHERE id = batch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'batch % of a line does not exist', batch
                USING ERRCODE = '23503', CONSTRAINT = 'batch_lines_batch_id_fkey';
        END IF;
        SELECT count(*), count(DISTINCT stan), count(*) FILTER (WHERE terminal_id <> terminal)
          INTO written, stans, strangers
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
    END LOOP;
    RETURN NULL;
END;
$$;
ALTER TABLE batch_lines DROP CONSTRAINT batch_lines_stan_unique;

-- Close attempts and their life ---------------------------------------------------
ALTER TABLE close_attempts DROP CONSTRAINT close_attempts_outcome_check;
ALTER TABLE close_attempts ADD CONSTRAINT close_attempts_outcome_check CHECK (
    outcome IN ('out_of_balance', 'duplicate_transactions'));
ALTER TABLE close_attempts
    ADD COLUMN state text NOT NULL DEFAULT 'open'
        CONSTRAINT close_attempts_state CHECK (state IN ('open', 'resolved', 'declined')),
    ADD COLUMN decided_by text,
    ADD COLUMN decided_at timestamptz,
    ADD COLUMN resolution text,
    ADD CONSTRAINT close_attempts_decided CHECK (
        (state = 'open') = (decided_at IS NULL)
        AND (decided_at IS NULL) = (decided_by IS NULL)
        AND (decided_at IS NULL) = (resolution IS NULL));
-- A booked close resolves the open attempts of its terminal and batch number.
CREATE INDEX close_attempts_open ON close_attempts (terminal_id, batch_number) WHERE state = 'open';
CREATE INDEX close_attempts_merchant ON close_attempts (merchant_id, id DESC);
-- Attempts made before a later close of the same number was stored are resolved.
UPDATE close_attempts a SET state = 'resolved', decided_by = 'system', decided_at = now(),
       resolution = 'batch ' || b.id || ' was closed afterwards (' || b.status || ')'
  FROM batches b
 WHERE b.terminal_id = a.terminal_id AND b.batch_number = a.batch_number
   AND b.received_at >= a.received_at AND a.state = 'open';

-- Review requests: a merchant asks operations to look at a held batch.
CREATE TABLE review_requests (
    id            uuid PRIMARY KEY,
    merchant_id   text NOT NULL REFERENCES merchants (merchant_id),
    batch_id      uuid NOT NULL REFERENCES batches (id),
    note          text NOT NULL CHECK (length(note) BETWEEN 1 AND 1000),
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'open'
        CONSTRAINT review_requests_state CHECK (state IN ('open', 'resolved', 'declined')),
    decided_by    text,
    decided_at    timestamptz,
    resolution    text,
    CONSTRAINT review_requests_decided CHECK (
        (state = 'open') = (decided_at IS NULL)
        AND (decided_at IS NULL) = (decided_by IS NULL)
        AND (decided_at IS NULL) = (resolution IS NULL))
);
-- One open request per batch: asking again answers the open one.
CREATE UNIQUE INDEX review_requests_one_open ON review_requests (batch_id) WHERE state = 'open';
CREATE INDEX review_requests_id_desc ON review_requests (id DESC);
CREATE INDEX review_requests_merchant ON review_requests (merchant_id, id DESC);

-- Idempotency keys are purged after their retention, oldest first, a bounded number
-- per scheduler tick; keys arrive in time order, so a block range index finds them.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys USING brin (created_at);

-- Payouts on hold: a payout returned because the merchant's bank account cannot take
-- money (closed, blocked, incorrect) holds the merchant's payouts, so no payout is
-- sent to that account again, until operations change the bank account.
CREATE TABLE payout_holds (
    merchant_id   text PRIMARY KEY REFERENCES merchants (merchant_id),
    payout_id     uuid NOT NULL REFERENCES payouts (id),
    failure_code  text NOT NULL,
    held_since    timestamptz NOT NULL
);

-- Bank accounts sealed at rest (AES-256-GCM, by the service): the key id, the nonce
-- and ciphertext, and the last four characters that answers show. The plain column
-- stays only until the service, which holds the keys, seals what it holds at
-- start-up; it is never written again.
ALTER TABLE merchants
    ADD COLUMN bank_account_key_id text,
    ADD COLUMN bank_account_sealed bytea,
    ADD COLUMN bank_account_last4 text,
    ADD CONSTRAINT merchants_bank_account_sealed_whole CHECK (
        (bank_account_key_id IS NULL) = (bank_account_sealed IS NULL)
        AND (bank_account_key_id IS NULL) = (bank_account_last4 IS NULL)),
    ADD CONSTRAINT merchants_bank_account_once CHECK (
        bank_account IS NULL OR bank_account_sealed IS NULL);

-- Payout files: which payouts each exported file carries, so a bank's status report
-- (pain.002, naming the file's message id) is matched to its payouts. The files
-- themselves, which carry whole bank accounts, are never kept.
CREATE TABLE payout_files (
    message_id  text PRIMARY KEY CHECK (length(message_id) BETWEEN 1 AND 35),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE payout_file_items (
    message_id  text NOT NULL REFERENCES payout_files (message_id),
    payout_id   uuid NOT NULL REFERENCES payouts (id),
    PRIMARY KEY (message_id, payout_id)
);
CREATE INDEX payout_file_items_payout ON payout_file_items (payout_id);
