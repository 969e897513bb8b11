-- Merchants, terminals, batches and their lines, close attempts, idempotency keys,
-- and the double-entry ledger. The database refuses what must never happen:
-- unbalanced entries, edited or deleted postings, amounts of the wrong sign, a
-- batch number closed twice by one terminal.

CREATE TABLE merchants (
    merchant_id                 text PRIMARY KEY
        CONSTRAINT merchants_id_format CHECK (merchant_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name                        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    default_currency            char(3) NOT NULL,
    time_zone                   text NOT NULL,
    cutoff_local_time           time NOT NULL CHECK (cutoff_local_time < '24:00'),
    grace_period_hours          integer NOT NULL CHECK (grace_period_hours BETWEEN 0 AND 168),
    payout_delay_business_days  integer NOT NULL CHECK (payout_delay_business_days BETWEEN 0 AND 30),
    mdr_basis_points            integer NOT NULL CHECK (mdr_basis_points BETWEEN 0 AND 10000),
    fixed_fee_minor             bigint NOT NULL CHECK (fixed_fee_minor >= 0),
    created_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE terminals (
    terminal_id  text PRIMARY KEY
        CONSTRAINT terminals_id_format CHECK (terminal_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    merchant_id  text NOT NULL REFERENCES merchants (merchant_id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX terminals_merchant ON terminals (merchant_id);

-- Ledger -------------------------------------------------------------------------

CREATE TABLE accounts (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN (
                     'merchant_pending', 'merchant_payable',
                     'scheme_receivable', 'fee_revenue', 'payout_clearing')),
    merchant_id  text REFERENCES merchants (merchant_id),
    currency     char(3) NOT NULL,
    CONSTRAINT accounts_owner CHECK (
        (kind IN ('merchant_pending', 'merchant_payable')) = (merchant_id IS NOT NULL)),
    CONSTRAINT accounts_unique UNIQUE NULLS NOT DISTINCT (kind, merchant_id, currency),
    -- lets postings name the account and its currency together
    CONSTRAINT accounts_id_currency UNIQUE (id, currency)
);

CREATE TABLE journal_entries (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('batch_accepted')),
    merchant_id  text REFERENCES merchants (merchant_id),
    description  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE postings (
    id            bigserial PRIMARY KEY,
    entry_id      uuid NOT NULL REFERENCES journal_entries (id),
    account_id    bigint NOT NULL,
    currency      char(3) NOT NULL,
    amount_minor  bigint NOT NULL CONSTRAINT postings_nonzero CHECK (amount_minor <> 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT postings_account_currency FOREIGN KEY (account_id, currency)
        REFERENCES accounts (id, currency)
);
CREATE INDEX postings_entry ON postings (entry_id);
CREATE INDEX postings_account ON postings (account_id);

-- Every entry sums to zero per currency and has at least two postings, checked at
-- commit so an entry can be written posting by posting inside its transaction.
CREATE FUNCTION ledger_assert_entry_balanced(entry uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    unbalanced text;
    n integer;
BEGIN
    SELECT count(*) INTO n FROM postings WHERE entry_id = entry;
    IF n < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings; at least two are required', entry, n
            USING ERRCODE = '23514', CONSTRAINT = 'ledger_entry_balanced';
    END IF;
    SELECT currency INTO unbalanced FROM postings WHERE entry_id = entry
        GROUP BY currency HAVING sum(amount_minor) <> 0 LIMIT 1;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance in %', entry, unbalanced
            USING ERRCODE = '23514', CONSTRAINT = 'ledger_entry_balanced';
    END IF;
END;
$$;

CREATE FUNCTION postings_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_entry_balanced(NEW.entry_id);
    RETURN NULL;
END;
$$;

CREATE FUNCTION journal_entries_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_entry_balanced(NEW.id);
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER postings_balanced
    AFTER INSERT ON postings DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION postings_check_balanced();
CREATE CONSTRAINT TRIGGER journal_entries_balanced
    AFTER INSERT ON journal_entries DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_entries_check_balanced();

-- The ledger is append-only: corrections are new, reversing entries.
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % is not allowed: the ledger is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END;
$$;

CREATE TRIGGER postings_append_only BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_entries_append_only BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER journal_entries_no_truncate BEFORE TRUNCATE ON journal_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
-- An account never changes owner, kind or currency once postings may name it.
CREATE TRIGGER accounts_append_only BEFORE UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- Batches ------------------------------------------------------------------------

CREATE TABLE batches (
    id                   uuid PRIMARY KEY,
    terminal_id          text NOT NULL REFERENCES terminals (terminal_id),
    merchant_id          text NOT NULL REFERENCES merchants (merchant_id),
    batch_number         integer NOT NULL CHECK (batch_number BETWEEN 1 AND 999999),
    status               text NOT NULL CHECK (status IN (
                             'accepted', 'accepted_late', 'rejected_outside_grace')),
    currency             char(3) NOT NULL,
    business_date        date NOT NULL,
    cycle_date           date,
    received_at          timestamptz NOT NULL,
    cutoff_at            timestamptz NOT NULL,
    grace_deadline       timestamptz NOT NULL,
    late_by_seconds      bigint NOT NULL CHECK (late_by_seconds >= 0),
    sale_count           bigint NOT NULL CHECK (sale_count >= 0),
    sale_amount_minor    bigint NOT NULL CHECK (sale_amount_minor >= 0),
    refund_count         bigint NOT NULL CHECK (refund_count >= 0),
    refund_amount_minor  bigint NOT NULL CHECK (refund_amount_minor >= 0),
    void_count           bigint NOT NULL CHECK (void_count >= 0),
    void_amount_minor    bigint NOT NULL CHECK (void_amount_minor >= 0),
    net_amount_minor     bigint NOT NULL,
    line_count           integer NOT NULL CHECK (line_count BETWEEN 1 AND 10000),
    content_hash         bytea NOT NULL,
    journal_entry_id     uuid REFERENCES journal_entries (id),
    CONSTRAINT batches_terminal_number_unique UNIQUE (terminal_id, batch_number),
    CONSTRAINT batches_net CHECK (
        net_amount_minor = sale_amount_minor - void_amount_minor - refund_amount_minor),
    CONSTRAINT batches_cycle_iff_booked CHECK (
        (status = 'rejected_outside_grace') = (cycle_date IS NULL)),
    CONSTRAINT batches_rejected_not_booked CHECK (
        status <> 'rejected_outside_grace' OR journal_entry_id IS NULL),
    CONSTRAINT batches_booked_when_net CHECK (
        status = 'rejected_outside_grace' OR (net_amount_minor = 0) = (journal_entry_id IS NULL))
);
CREATE INDEX batches_merchant_id_desc ON batches (merchant_id, id DESC);
CREATE INDEX batches_rejected ON batches (id DESC) WHERE status = 'rejected_outside_grace';

CREATE TABLE batch_lines (
    batch_id       uuid NOT NULL REFERENCES batches (id),
    line_no        integer NOT NULL CHECK (line_no >= 1),
    stan           char(6) NOT NULL CHECK (stan ~ '^[0-9]{6}$'),
    rrn            char(12) NOT NULL CHECK (rrn ~ '^[A-Za-z0-9]{12}$'),
    line_type      text NOT NULL CHECK (line_type IN ('sale', 'refund', 'void')),
    amount_minor   bigint NOT NULL CHECK (amount_minor >= 0),
    original_stan  char(6),
    captured_at    timestamptz NOT NULL,
    card_brand     text,
    masked_pan     text CHECK (masked_pan ~ '^[0-9]{0,6}[*]+[0-9]{0,4}$'),
    auth_code      text,
    PRIMARY KEY (batch_id, line_no),
    CONSTRAINT batch_lines_stan_unique UNIQUE (batch_id, stan),
    CONSTRAINT batch_lines_void_names_original CHECK ((line_type = 'void') = (original_stan IS NOT NULL))
);

-- Closes that booked nothing because the totals disagreed, kept for operations.
CREATE TABLE close_attempts (
    id               uuid PRIMARY KEY,
    terminal_id      text NOT NULL REFERENCES terminals (terminal_id),
    merchant_id      text NOT NULL REFERENCES merchants (merchant_id),
    batch_number     integer NOT NULL,
    currency         char(3) NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('out_of_balance')),
    differences      jsonb NOT NULL,
    received_at      timestamptz NOT NULL
);
CREATE INDEX close_attempts_id_desc ON close_attempts (id DESC);

-- Idempotency keys, scoped to the terminal. The row is inserted first in the
-- request's transaction, so a concurrent request with the same key waits on it and
-- then replays the stored response.
CREATE TABLE idempotency_keys (
    terminal_id      text NOT NULL REFERENCES terminals (terminal_id),
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash     bytea NOT NULL,
    response_status  integer CHECK (response_status BETWEEN 200 AND 599),
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (terminal_id, idempotency_key),
    CONSTRAINT idempotency_keys_response_whole CHECK (
        (response_status IS NULL) = (response_body IS NULL))
);
