//! The ledger's invariants, each as one query counting the rows that break it.

use sqlx::PgConnection;

/// One invariant and how many rows break it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Stable name of the invariant.
    pub name: &'static str,
    /// What it asserts.
    pub description: &'static str,
    /// Rows that break it; zero when it holds.
    pub violations: i64,
}

/// Defines [`run_ledger_checks`] from the list of invariants: each one's name,
/// description and statement (a literal, so the statement is checked at build time).
macro_rules! ledger_checks {
    ($(($name:literal, $description:literal, $sql:literal $(,)?)),* $(,)?) => {
        /// Runs every invariant check.
        pub async fn run_ledger_checks(
            conn: &mut PgConnection,
        ) -> Result<Vec<CheckResult>, sqlx::Error> {
            let mut results = Vec::new();
            $(
                let violations: i64 = sqlx::query_scalar!($sql).fetch_one(&mut *conn).await?;
                results.push(CheckResult {
                    name: $name,
                    description: $description,
                    violations,
                });
            )*
            Ok(results)
        }
    };
}

ledger_checks! {
    (
        "entries_balance",
        "every journal entry sums to zero per currency",
        "SELECT count(*) AS \"violations!\" FROM (SELECT entry_id FROM postings GROUP BY entry_id, currency \
         HAVING sum(amount_minor) <> 0) x",
    ),
    (
        "pending_equals_unsettled_batches",
        "each merchant's pending balance equals the net of its booked, unsettled batches",
        "SELECT count(*) AS \"violations!\" FROM accounts a WHERE a.kind = 'merchant_pending' AND \
           COALESCE((SELECT -sum(amount_minor) FROM postings WHERE account_id = a.id), 0) <> \
           COALESCE((SELECT sum(net_amount_minor) FROM batches b WHERE b.merchant_id = a.merchant_id \
                     AND b.currency = a.currency AND b.status NOT IN ('rejected_outside_grace', 'declined') \
                     AND b.settlement_cycle_id IS NULL), 0)",
    ),
    (
        "payable_equals_cycles_less_payouts",
        "each merchant's payable balance equals its cycles' payable less payouts in transit or paid",
        "SELECT count(*) AS \"violations!\" FROM accounts a WHERE a.kind = 'merchant_payable' AND \
           COALESCE((SELECT -sum(amount_minor) FROM postings WHERE account_id = a.id), 0) <> \
           COALESCE((SELECT sum(payable_minor) FROM settlement_cycles c WHERE c.merchant_id = a.merchant_id \
                     AND c.currency = a.currency), 0) - \
           COALESCE((SELECT sum(amount_minor) FROM payouts p WHERE p.merchant_id = a.merchant_id \
                     AND p.currency = a.currency AND p.status IN ('in_transit', 'paid')), 0)",
    ),
    (
        "fee_revenue_equals_cycle_fees",
        "fee revenue per currency equals the fees of closed cycles",
        "SELECT count(*) AS \"violations!\" FROM (SELECT currency FROM settlement_cycles UNION \
           SELECT currency FROM accounts WHERE kind = 'fee_revenue') cur WHERE \
           COALESCE((SELECT -sum(p.amount_minor) FROM postings p JOIN accounts a ON a.id = p.account_id \
                     WHERE a.kind = 'fee_revenue' AND a.currency = cur.currency), 0) <> \
           COALESCE((SELECT sum(fee_minor) FROM settlement_cycles c WHERE c.currency = cur.currency), 0)",
    ),
    (
        "clearing_equals_payouts_in_transit",
        "payout clearing per currency equals the payouts in transit",
        "SELECT count(*) AS \"violations!\" FROM accounts a WHERE a.kind = 'payout_clearing' AND \
           COALESCE((SELECT -sum(amount_minor) FROM postings WHERE account_id = a.id), 0) <> \
           COALESCE((SELECT sum(amount_minor) FROM payouts p WHERE p.currency = a.currency \
                     AND p.status = 'in_transit'), 0)",
    ),
    (
        "scheme_receivable_equals_booked_batches",
        "scheme receivable per currency equals the net of every booked batch",
        "SELECT count(*) AS \"violations!\" FROM (SELECT currency FROM batches UNION SELECT currency FROM accounts \
           WHERE kind = 'scheme_receivable') cur WHERE \
           COALESCE((SELECT sum(p.amount_minor) FROM postings p JOIN accounts a ON a.id = p.account_id \
                     WHERE a.kind = 'scheme_receivable' AND a.currency = cur.currency), 0) <> \
           COALESCE((SELECT sum(net_amount_minor) FROM batches b WHERE b.currency = cur.currency \
                     AND b.status NOT IN ('rejected_outside_grace', 'declined')), 0)",
    ),
    (
        "bank_equals_payouts_paid",
        "the acquirer's bank account per currency has paid out exactly the payouts marked paid",
        "SELECT count(*) AS \"violations!\" FROM accounts a WHERE a.kind = 'acquirer_bank' AND \
           COALESCE((SELECT -sum(amount_minor) FROM postings WHERE account_id = a.id), 0) <> \
           COALESCE((SELECT sum(amount_minor) FROM payouts p WHERE p.currency = a.currency \
                     AND p.status = 'paid'), 0)",
    ),
    (
        "no_batch_stuck_unsettled",
        "no booked batch waits for a cycle dated more than two days ago (its cycle failed to close)",
        "SELECT count(*) AS \"violations!\" FROM batches WHERE settlement_cycle_id IS NULL \
           AND status NOT IN ('rejected_outside_grace', 'declined') AND cycle_date < current_date - 2",
    ),
    (
        "checkpoints_equal_postings",
        "every balance checkpoint equals the sum of its account's postings up to it",
        "SELECT count(*) AS \"violations!\" FROM account_checkpoints c WHERE c.balance_minor <> \
           (SELECT COALESCE(sum(p.amount_minor), 0) FROM postings p \
            WHERE p.account_id = c.account_id AND p.id <= c.through_posting_id)",
    ),
    (
        "batches_complete",
        "every batch holds all its lines, and every booked batch with a non-zero net has its journal entry",
        "SELECT count(*) AS \"violations!\" FROM batches b WHERE b.line_count <> \
           (SELECT count(*) FROM batch_lines l WHERE l.batch_id = b.id) \
           OR (b.status NOT IN ('rejected_outside_grace', 'declined') AND b.net_amount_minor <> 0 \
               AND b.journal_entry_id IS NULL)",
    ),
    (
        "batches_settled_once",
        "every booked batch whose cycle is closed is settled in that cycle, and only there",
        "SELECT count(*) AS \"violations!\" FROM batches b LEFT JOIN settlement_cycles c ON c.id = b.settlement_cycle_id \
         WHERE b.status NOT IN ('rejected_outside_grace', 'declined') AND ( \
           (b.settlement_cycle_id IS NULL AND EXISTS (SELECT 1 FROM settlement_cycles x \
              WHERE x.merchant_id = b.merchant_id AND x.currency = b.currency AND x.cycle_date = b.cycle_date)) \
           OR (c.id IS NOT NULL AND (c.cycle_date <> b.cycle_date OR c.merchant_id <> b.merchant_id)))",
    ),
    (
        "cycles_equal_their_batches",
        "every cycle's figures equal the sums of its batches",
        "SELECT count(*) AS \"violations!\" FROM settlement_cycles c LEFT JOIN ( \
             SELECT settlement_cycle_id, count(*)::int AS n, sum(net_amount_minor)::bigint AS net, \
                    sum(fee_minor)::bigint AS fee, sum(sale_count)::bigint AS sales, \
                    sum(sale_amount_minor)::bigint AS sale_amount, sum(void_amount_minor)::bigint AS voids, \
                    sum(refund_amount_minor)::bigint AS refunds \
             FROM batches WHERE settlement_cycle_id IS NOT NULL GROUP BY settlement_cycle_id) b \
           ON b.settlement_cycle_id = c.id \
         WHERE (c.batch_count, c.net_amount_minor, c.fee_minor, c.sale_count, c.sale_amount_minor, \
                c.void_amount_minor, c.refund_amount_minor) \
               IS DISTINCT FROM (b.n, b.net, b.fee, b.sales, b.sale_amount, b.voids, b.refunds)",
    ),
    (
        "payouts_equal_their_cycles",
        "every payout's amount equals the payable of the cycles it pays",
        "SELECT count(*) AS \"violations!\" FROM payouts p WHERE p.amount_minor <> \
           (SELECT COALESCE(sum(c.payable_minor), 0) FROM payout_cycles pc JOIN settlement_cycles c ON c.id = pc.cycle_id \
            WHERE pc.payout_id = p.id)",
    ),
    (
        "cycles_held_by_one_payout",
        "no cycle's money is held by two payouts at once",
        "SELECT count(*) AS \"violations!\" FROM (SELECT pc.cycle_id FROM payout_cycles pc JOIN payouts p ON p.id = pc.payout_id \
         WHERE p.status IN ('pending', 'in_transit', 'paid') GROUP BY pc.cycle_id HAVING count(*) > 1) x",
    ),
    (
        "transactions_paid_once",
        "no terminal's RRN is booked twice within the presentment window (395 days): every sale and refund is paid once",
        "SELECT count(*) AS \"violations!\" FROM (SELECT b.terminal_id, l.rrn FROM batch_lines l JOIN batches b ON b.id = l.batch_id \
           WHERE l.line_type <> 'void' AND l.settled_by IS NULL \
             AND b.status IN ('accepted', 'accepted_late', 'accepted_by_operator', 'auto_closed') \
           GROUP BY b.terminal_id, l.rrn HAVING count(*) > 1 \
              AND max(b.received_at) - min(b.received_at) < interval '395 days') x",
    ),
}
