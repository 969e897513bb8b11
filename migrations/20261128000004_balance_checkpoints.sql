-- Reads that do not grow with history.

-- A merchant account's balance as of a posting. Written when the merchant's cycle
-- closes, under the merchant's exclusive cycle lock: every transaction that posts to
-- a merchant's accounts holds that lock shared until it commits, so when a checkpoint
-- is written every posting up to `through_posting_id` has committed and no later one
-- can get a lower id. A balance is the latest checkpoint plus the postings after it.
CREATE TABLE account_checkpoints (
    account_id          bigint NOT NULL REFERENCES accounts (id),
    through_posting_id  bigint NOT NULL,
    balance_minor       bigint NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, through_posting_id)
);
CREATE TRIGGER account_checkpoints_append_only BEFORE UPDATE OR DELETE ON account_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER account_checkpoints_no_truncate BEFORE TRUNCATE ON account_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- An account's postings after a checkpoint, summed from the index alone.
CREATE INDEX postings_account_id ON postings (account_id, id) INCLUDE (amount_minor);
DROP INDEX postings_account;

-- The merchant's recent closes (status: skipped numbers, batches needing attention).
CREATE INDEX batches_merchant_received ON batches (merchant_id, received_at DESC);
-- The merchant's booked batches waiting for a cycle (status: pending money).
CREATE INDEX batches_unsettled_merchant ON batches (merchant_id)
    WHERE settlement_cycle_id IS NULL AND status <> 'rejected_outside_grace';
