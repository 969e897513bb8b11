//! Demo data for the local run: one merchant with two terminals.

use chrono::{Duration, NaiveTime, SecondsFormat, Utc};
use serde_json::json;
use sqlx::PgPool;

use settlement_store::batches;

use settlement_store::merchants::{self, MerchantRow};

/// What the demo consists of.
pub struct Demo {
    pub merchant_id: String,
    pub terminal_id: String,
    /// The batch number the example close uses: one past the terminal's highest.
    pub next_batch_number: i32,
}

const MERCHANT_ID: &str = "demo-merchant";
const TERMINAL_IDS: [&str; 2] = ["demo-t1", "demo-t2"];

/// Creates the demo merchant and terminals when absent.
pub async fn ensure_demo_data(
    pool: &PgPool,
    keys: &settlement_api::bank_account::BankAccountKeys,
) -> anyhow::Result<Demo> {
    let mut conn = pool.acquire().await?;
    if merchants::find_merchant(&mut conn, MERCHANT_ID)
        .await?
        .is_none()
    {
        let account = keys.seal(MERCHANT_ID, "DE89370400440532013000")?;
        merchants::insert_merchant(
            &mut conn,
            &MerchantRow {
                merchant_id: MERCHANT_ID.into(),
                name: "Demo Coffee Roasters".into(),
                default_currency: "USD".into(),
                time_zone: "America/New_York".into(),
                cutoff_local_time: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
                grace_period_hours: 72,
                payout_delay_business_days: 1,
                mdr_basis_points: 150,
                fixed_fee_minor: 10,
                created_at: Utc::now(),
                bank_account_key_id: Some(account.key_id),
                bank_account_sealed: Some(account.sealed),
                bank_account_last4: Some(account.last4),
                host_matching: "report".into(),
                auto_close: true,
                auto_close_delay_minutes: 60,
                locale: "en".to_owned(),
            },
        )
        .await?;
    }
    for terminal_id in TERMINAL_IDS {
        if merchants::find_terminal(&mut conn, terminal_id)
            .await?
            .is_none()
        {
            merchants::insert_terminal(&mut conn, MERCHANT_ID, terminal_id).await?;
        }
    }
    let latest = batches::find_latest_batch_number(&mut conn, TERMINAL_IDS[0]).await?;
    Ok(Demo {
        merchant_id: MERCHANT_ID.into(),
        terminal_id: TERMINAL_IDS[0].into(),
        next_batch_number: latest.map_or(1, |n| n % 999_999 + 1),
    })
}

/// A `curl` command that closes a balanced batch with a sale, a voided sale and a
/// refund, captured ten minutes ago.
pub fn curl_close_example(base: &str, token: &str, demo: &Demo) -> String {
    let at = |minutes: i64| {
        (Utc::now() - Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    // Each batch number has transactions of its own: a transaction is paid once, so
    // the next run's example must not present this one's RRNs again.
    let rrn = |stan: u32| format!("63{:06}{stan:04}", demo.next_batch_number);
    let body = json!({
        "batch_number": demo.next_batch_number,
        "currency": "USD",
        "totals": {
            "sale_count": 2, "sale_amount": "30.00",
            "refund_count": 1, "refund_amount": "5.00",
            "void_count": 1, "void_amount": "7.00"
        },
        "transactions": [
            {"stan": "000001", "rrn": rrn(1), "type": "sale", "amount": "23.00",
             "captured_at": at(10), "card_brand": "visa", "masked_pan": "411111******1111", "auth_code": "A1B2C3"},
            {"stan": "000002", "rrn": rrn(2), "type": "refund", "amount": "5.00",
             "captured_at": at(8), "card_brand": "mastercard", "masked_pan": "550000******0004"},
            {"stan": "000003", "rrn": rrn(3), "type": "sale", "amount": "7.00",
             "captured_at": at(6), "card_brand": "visa", "masked_pan": "411111******1111", "auth_code": "D4E5F6"},
            {"stan": "000004", "rrn": rrn(4), "type": "void", "amount": "7.00", "original_stan": "000003",
             "captured_at": at(5), "card_brand": "visa", "masked_pan": "411111******1111"}
        ]
    });
    format!(
        "curl -sS -X POST {base}/v1/terminals/{terminal}/batches \\\n  -H 'Authorization: Bearer {token}' \\\n  \
         -H 'Idempotency-Key: {key}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{body}'",
        terminal = demo.terminal_id,
        key = uuid::Uuid::new_v4(),
    )
}
