//! Conservation under concurrency, after Jepsen's bank test: terminals close
//! batches through two replicas while cycles close (schedulers and operators'
//! runs), payouts are exported, paid and failed, and readers keep reading. Every
//! read of the ledger must balance, and every invariant of the ledger check hold.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::harness::*;
use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_balances_while_closes_cycles_and_payouts_race() {
    let seconds = scale("RELIABILITY_CONSERVATION_SECONDS", 10);
    let scheduler = [("SETTLEMENT_RUN_INTERVAL_SECONDS", "1")];
    let app = spawn_app().await;
    let replica = spawn_replica(&app, &scheduler).await;
    // Merchants whose cutoffs pass one after another while the load runs.
    let mut fleet = Vec::new();
    let merchants = 4;
    for m in 0..merchants {
        let cutoff = (Utc::now() + chrono::Duration::seconds(3 + 2 * m))
            .format("%H:%M:%S")
            .to_string();
        fleet.extend(provision(&app.base, &format!("c{m}"), 1, 2, &cutoff).await);
    }
    let (stop, tally, tasks) = start_fleet(
        vec![app.base.clone(), replica.base.clone()],
        &fleet,
        Some(app.db.clone()),
    );
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let moves = Arc::new(AtomicU64::new(0));

    // Operators: settlement runs, exports, and confirmations that pay some payouts
    // and fail others (failed money is paid again by a later payout).
    let operator = {
        let (base, done, moves) = (app.base.clone(), done.clone(), moves.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut round = 0u64;
            while !done.load(Ordering::Relaxed) {
                round += 1;
                let r = client
                    .post(format!("{base}/v1/ops/settlement-runs"))
                    .bearer_auth(ops_token())
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                let far = (Utc::now() + chrono::Duration::days(30)).date_naive();
                let csv = client
                    .post(format!("{base}/v1/ops/payouts/export?through={far}"))
                    .bearer_auth(ops_token())
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                for (i, line) in csv.lines().skip(1).enumerate() {
                    let id = line.split(',').next().unwrap();
                    let outcome = if (round + i as u64).is_multiple_of(3) {
                        "failed"
                    } else {
                        "paid"
                    };
                    let body = if outcome == "failed" {
                        json!({"failure_code": "account_closed", "reason": "bank returned it"})
                    } else {
                        json!({})
                    };
                    let r = client
                        .post(format!("{base}/v1/ops/payouts/{id}/{outcome}"))
                        .bearer_auth(ops_token())
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
                    moves.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };

    // Readers: the ledger check, the raw sums, and merchants' balances.
    let mut readers = Vec::new();
    for reader in 0..2 {
        let (base, db, done, reads) = (
            app.base.clone(),
            app.db.clone(),
            done.clone(),
            reads.clone(),
        );
        let merchant_id = format!("c{reader}m0");
        readers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !done.load(Ordering::Relaxed) {
                let check: Value = client
                    .get(format!("{base}/v1/ops/ledger/check"))
                    .bearer_auth(ops_token())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(check["ok"], true, "{check:#}");
                let mut conn = db.acquire().await.unwrap();
                for (currency, sum) in settlement_store::ledger::posting_sums_by_currency(&mut conn)
                    .await
                    .unwrap()
                {
                    assert_eq!(sum, 0, "a read of {currency} postings sums to {sum}");
                }
                drop(conn);
                let balance: Value = client
                    .get(format!("{base}/v1/merchants/{merchant_id}/balance"))
                    .bearer_auth(merchant_token(&merchant_id))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for b in balance["balances"].as_array().unwrap() {
                    for field in ["pending", "payable"] {
                        let amount: Decimal = b[field].as_str().unwrap().parse().unwrap();
                        assert!(amount >= Decimal::ZERO, "{balance}");
                    }
                }
                reads.fetch_add(3, Ordering::Relaxed);
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop_fleet(stop, tasks).await;
    done.store(true, Ordering::Relaxed);
    operator.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    let tally = tally.lock().unwrap().clone();
    verify(&app.db, &tally, &fleet).await;
    let cycles = app.count("settlement_cycles").await;
    assert_eq!(
        cycles, merchants,
        "every merchant's cycle closed during the load"
    );
    assert!(
        moves.load(Ordering::Relaxed) > 0,
        "payouts moved during the load"
    );
    figures(
        "conservation",
        &[
            ("seconds", seconds.to_string()),
            ("closes_acknowledged", tally.acknowledged.len().to_string()),
            ("cycles_closed", cycles.to_string()),
            ("payout_moves", moves.load(Ordering::Relaxed).to_string()),
            (
                "ledger_reads_checked",
                reads.load(Ordering::Relaxed).to_string(),
            ),
        ],
    );
}
