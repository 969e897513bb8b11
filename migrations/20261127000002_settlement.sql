-- Settlement cycles, payouts, holidays, operator acceptance and the audit trail.

ALTER TABLE merchants
    ADD COLUMN bank_account text
        CONSTRAINT merchants_bank_account_format CHECK (bank_account ~ '^[A-Za-z0-9]{4,34}$');

ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check CHECK (kind IN (
    'merchant_pending', 'merchant_payable',
    'scheme_receivable', 'fee_revenue', 'payout_clearing', 'acquirer_bank'));

ALTER TABLE journal_entries DROP CONSTRAINT journal_entries_kind_check;
ALTER TABLE journal_entries ADD CONSTRAINT journal_entries_kind_check CHECK (kind IN (
    'batch_accepted', 'cycle_settled', 'payout_in_transit', 'payout_paid',
    'payout_failed', 'payout_canceled'));

CREATE TABLE settlement_cycles (
    id                   uuid PRIMARY KEY,
    merchant_id          text NOT NULL REFERENCES merchants (merchant_id),
    currency             char(3) NOT NULL,
    cycle_date           date NOT NULL,
    closed_at            timestamptz NOT NULL,
    batch_count          integer NOT NULL CHECK (batch_count >= 1),
    sale_count           bigint NOT NULL CHECK (sale_count >= 0),
    sale_amount_minor    bigint NOT NULL CHECK (sale_amount_minor >= 0),
    void_amount_minor    bigint NOT NULL CHECK (void_amount_minor >= 0),
    refund_amount_minor  bigint NOT NULL CHECK (refund_amount_minor >= 0),
    net_amount_minor     bigint NOT NULL,
    fee_minor            bigint NOT NULL CHECK (fee_minor >= 0),
    payable_minor        bigint NOT NULL,
    journal_entry_id     uuid REFERENCES journal_entries (id),
    -- The fence: one cycle per merchant, currency and date, whoever closes it.
    CONSTRAINT settlement_cycles_fence UNIQUE (merchant_id, currency, cycle_date),
    CONSTRAINT settlement_cycles_net CHECK (
        net_amount_minor = sale_amount_minor - void_amount_minor - refund_amount_minor),
    CONSTRAINT settlement_cycles_payable CHECK (payable_minor = net_amount_minor - fee_minor),
    CONSTRAINT settlement_cycles_booked CHECK (
        (journal_entry_id IS NULL) = (net_amount_minor = 0 AND fee_minor = 0))
);
CREATE INDEX settlement_cycles_merchant_id_desc ON settlement_cycles (merchant_id, id DESC);

ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check CHECK (status IN (
    'accepted', 'accepted_late', 'rejected_outside_grace', 'accepted_by_operator'));
ALTER TABLE batches
    ADD COLUMN fee_minor bigint NOT NULL DEFAULT 0 CONSTRAINT batches_fee_non_negative CHECK (fee_minor >= 0),
    ADD COLUMN settlement_cycle_id uuid REFERENCES settlement_cycles (id),
    ADD COLUMN operator_reason text,
    ADD CONSTRAINT batches_settled_only_when_booked CHECK (
        settlement_cycle_id IS NULL OR status <> 'rejected_outside_grace'),
    ADD CONSTRAINT batches_operator_reason CHECK (
        (status = 'accepted_by_operator') = (operator_reason IS NOT NULL));
-- Booked batches waiting for their cycle: what the scheduler looks for.
CREATE INDEX batches_unsettled ON batches (cycle_date, merchant_id)
    WHERE settlement_cycle_id IS NULL AND status <> 'rejected_outside_grace';
CREATE INDEX batches_settlement_cycle ON batches (settlement_cycle_id);
CREATE INDEX batches_terminal_received ON batches (terminal_id, received_at DESC);

CREATE TABLE payouts (
    id             uuid PRIMARY KEY,
    merchant_id    text NOT NULL REFERENCES merchants (merchant_id),
    currency       char(3) NOT NULL,
    amount_minor   bigint NOT NULL CONSTRAINT payouts_amount_positive CHECK (amount_minor > 0),
    status         text NOT NULL CHECK (status IN ('pending', 'in_transit', 'paid', 'failed', 'canceled')),
    arrival_date   date NOT NULL,
    failure_code   text CHECK (failure_code ~ '^[a-z0-9_]{1,64}$'),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    CONSTRAINT payouts_failure_code CHECK ((status = 'failed') = (failure_code IS NOT NULL))
);
CREATE INDEX payouts_merchant_id_desc ON payouts (merchant_id, id DESC);
CREATE INDEX payouts_status_arrival ON payouts (status, arrival_date);

-- The cycles a payout pays. A cycle whose payout failed or was canceled is paid
-- again by a later payout, so a cycle may appear under several payouts, but under
-- at most one that still holds its money.
CREATE TABLE payout_cycles (
    payout_id  uuid NOT NULL REFERENCES payouts (id),
    cycle_id   uuid NOT NULL REFERENCES settlement_cycles (id),
    PRIMARY KEY (payout_id, cycle_id)
);
CREATE INDEX payout_cycles_cycle ON payout_cycles (cycle_id);

CREATE TABLE holidays (
    holiday_date  date PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200)
);

-- Every operator action: who, what, when, why, before and after. Append-only.
CREATE TABLE audit_records (
    id           uuid PRIMARY KEY,
    actor        text NOT NULL,
    action       text NOT NULL,
    object_type  text NOT NULL,
    object_id    text NOT NULL,
    reason       text,
    before       jsonb,
    after        jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_records_id_desc ON audit_records (id DESC);

CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
