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
-- One row per terminal and RRN while a batch that is booked or held presents it: the
-- primary key refuses a second presentment. Voids cancel a sale of their own batch
-- and are not paid, so they present nothing (they often carry the sale's RRN).
-- A row is released when operations decline its batch, and when it is older than
-- the presentment window (13 months: how long card schemes keep a presentment open
-- to dispute; terminals' RRN counters may wrap after that). The lines themselves are
-- never deleted; this table is the index of what is presented now.
CREATE TABLE presentments (
    terminal_id   text NOT NULL,
    rrn           char(12) NOT NULL,
    batch_id      uuid NOT NULL,
    presented_at  timestamptz NOT NULL,
    -- The RRN leads: a close probes its RRNs with rrn = ANY(...), which the index
    -- can only serve as its leading column. Led by the terminal, the planner may scan
    -- the terminal's whole history with the RRNs as a filter whenever its statistics
    -- think the terminal small (seen: 35 ms a close at 90,000 presentments).
    CONSTRAINT presentments_pkey PRIMARY KEY (rrn, terminal_id)
);
-- Rows arrive in time order: a block range index finds the expired ones for almost
-- nothing per insert.
CREATE INDEX presentments_presented_at ON presentments USING brin (presented_at);

-- What was presented before this table existed: the first batch to present an RRN
-- keeps it (a repeat already booked shows in the ledger check).
INSERT INTO presentments (terminal_id, rrn, batch_id, presented_at)
SELECT DISTINCT ON (b.terminal_id, l.rrn) b.terminal_id, l.rrn, b.id, b.received_at
  FROM batch_lines l JOIN batches b ON b.id = l.batch_id
 WHERE l.line_type <> 'void' AND b.received_at > now() - interval '395 days'
 ORDER BY b.terminal_id, l.rrn, b.id
ON CONFLICT DO NOTHING;

-- The database's half of "paid once": writing a batch's sales and refunds presents
-- their RRNs, in the same statement-level trigger that checks the lines' batch, so no
-- line is written without its presentment and a second presentment of a terminal's
-- RRN fails on the primary key. The service looks the RRNs up first (one statement)
-- to answer a repeat with the batch that holds it; this is the guard behind that.
--
-- The index that kept a batch's STANs unique is replaced by a check in the same
-- trigger, once per statement: a batch's lines are written whole, in one statement
-- (as many as its line_count, so none can be added later), and their STANs are
-- distinct. Each line then costs one index entry fewer, which pays for most of its
-- presentment.
CREATE OR REPLACE FUNCTION batch_lines_check_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    batch uuid;
    terminal text;
    expected integer;
    written integer;
    stans integer;
BEGIN
    -- One primary-key lookup per batch (a join could be planned as a scan of batches).
    FOR batch IN SELECT DISTINCT batch_id FROM new_lines LOOP
        SELECT terminal_id, line_count INTO terminal, expected FROM batches WHERE id = batch;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'batch % of a line does not exist', batch
                USING ERRCODE = '23503', CONSTRAINT = 'batch_lines_batch_id_fkey';
        END IF;
        SELECT count(*), count(DISTINCT stan) INTO written, stans
          FROM new_lines WHERE batch_id = batch;
        IF written <> expected THEN
            RAISE EXCEPTION 'batch % has % lines; they are written whole, in one statement (% here)',
                batch, expected, written
                USING ERRCODE = '23514', CONSTRAINT = 'batch_lines_whole';
        END IF;
        IF stans <> written THEN
            RAISE EXCEPTION 'a STAN repeats within batch %', batch
                USING ERRCODE = '23505', CONSTRAINT = 'batch_lines_stan_unique';
        END IF;
        INSERT INTO presentments (rrn, terminal_id, batch_id, presented_at)
        SELECT l.rrn, terminal, batch, now() FROM new_lines l
         WHERE l.batch_id = batch AND l.line_type <> 'void';
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
