-- A merchant's accounts by merchant: balance reads and the checkpoints of a cycle
-- close look accounts up by merchant alone, which the unique index (led by kind)
-- cannot serve.
CREATE INDEX accounts_merchant ON accounts (merchant_id, currency, kind) WHERE merchant_id IS NOT NULL;

-- Entry balance checks that cost per entry, not per posting. An entry's postings are
-- written together, in one statement: at the end of every statement that adds
-- postings, each entry it touched must have at least two postings and balance per
-- currency (stricter than before, when only commit was checked). The deferred
-- per-entry trigger stays, so an entry left without postings still fails at commit.
CREATE OR REPLACE FUNCTION ledger_assert_entry_balanced(entry uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
    unbalanced text;
BEGIN
    SELECT sum(g.postings), min(g.currency) FILTER (WHERE g.total <> 0)
      INTO n, unbalanced
      FROM (SELECT currency::text AS currency, count(*) AS postings, sum(amount_minor) AS total
              FROM postings WHERE entry_id = entry GROUP BY currency) g;
    IF COALESCE(n, 0) < 2 THEN
        RAISE EXCEPTION 'journal entry % has % postings; at least two are required', entry, COALESCE(n, 0)
            USING ERRCODE = '23514', CONSTRAINT = 'ledger_entry_balanced';
    END IF;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'journal entry % does not balance in %', entry, unbalanced
            USING ERRCODE = '23514', CONSTRAINT = 'ledger_entry_balanced';
    END IF;
END;
$$;

CREATE FUNCTION postings_check_entries_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    entry uuid;
BEGIN
    FOR entry IN SELECT DISTINCT entry_id FROM new_postings LOOP
        PERFORM ledger_assert_entry_balanced(entry);
    END LOOP;
    RETURN NULL;
END;
$$;

DROP TRIGGER postings_balanced ON postings;
DROP FUNCTION postings_check_balanced();
CREATE TRIGGER postings_balanced AFTER INSERT ON postings
    REFERENCING NEW TABLE AS new_postings
    FOR EACH STATEMENT EXECUTE FUNCTION postings_check_entries_balanced();

-- At most one pending payout per merchant and currency: new settled money joins it
-- until it is exported, and a cycle close counts the cycles it holds as not yet sent.
CREATE UNIQUE INDEX payouts_one_pending ON payouts (merchant_id, currency) WHERE status = 'pending';
