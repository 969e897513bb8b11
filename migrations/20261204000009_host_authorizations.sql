-- Authorizations from the acquirer's host: each sale or refund its authorization
-- switch approved online (ISO 8583 0100/0200), one row per terminal and RRN (field
-- 37), kept as received. A reversal (0400) cancels one: the one change allowed is
-- setting reversed_at, once. An authorization that is not reversed and that no
-- booked or held batch presents (batch_lines_presented) is an unsettled transaction
-- of its terminal.
CREATE TABLE host_authorizations (
    terminal_id       text NOT NULL REFERENCES terminals (terminal_id),
    merchant_id       text NOT NULL REFERENCES merchants (merchant_id),
    rrn               char(12) NOT NULL CHECK (rrn ~ '^[A-Za-z0-9]{12}$'),
    stan              char(6) NOT NULL CHECK (stan ~ '^[0-9]{6}$'),
    auth_code         char(6) NOT NULL CHECK (auth_code ~ '^[A-Za-z0-9]{6}$'),
    transaction_type  text NOT NULL CHECK (transaction_type IN ('sale', 'refund')),
    amount_minor      bigint NOT NULL CHECK (amount_minor > 0),
    currency          char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    authorized_at     timestamptz NOT NULL,
    card_brand        text CHECK (card_brand ~ '^[a-z0-9_]{1,20}$'),
    masked_pan        text CHECK (masked_pan ~ '^[0-9]{0,6}[*]+[0-9]{0,4}$'),
    reversed_at       timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (terminal_id, rrn)
);
-- A terminal's unsettled transactions, oldest first.
CREATE INDEX host_authorizations_open ON host_authorizations (terminal_id, authorized_at, rrn)
    WHERE reversed_at IS NULL;

-- Authorizations stay as received: the one change allowed is their reversal, once.
CREATE FUNCTION host_authorizations_reverse_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.reversed_at IS NULL AND NEW.reversed_at IS NOT NULL
       AND (NEW.terminal_id, NEW.merchant_id, NEW.rrn, NEW.stan, NEW.auth_code,
            NEW.transaction_type, NEW.amount_minor, NEW.currency, NEW.authorized_at,
            NEW.card_brand, NEW.masked_pan, NEW.received_at)
           IS NOT DISTINCT FROM
           (OLD.terminal_id, OLD.merchant_id, OLD.rrn, OLD.stan, OLD.auth_code,
            OLD.transaction_type, OLD.amount_minor, OLD.currency, OLD.authorized_at,
            OLD.card_brand, OLD.masked_pan, OLD.received_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% of % is not allowed: authorizations are kept as received; a reversal is set once',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END;
$$;
CREATE TRIGGER host_authorizations_kept BEFORE UPDATE OR DELETE ON host_authorizations
    FOR EACH ROW EXECUTE FUNCTION host_authorizations_reverse_only();
CREATE TRIGGER host_authorizations_no_truncate BEFORE TRUNCATE ON host_authorizations
    FOR EACH STATEMENT EXECUTE FUNCTION batches_refuse_change();
