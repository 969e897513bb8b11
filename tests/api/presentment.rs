//! Every transaction is paid once: duplicate presentment, held batches declined or
//! accepted, review requests, and the life of exceptions.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// `batch_body(from)` under another batch number: the same transactions (RRNs and
/// STANs), re-entered as a new batch.
fn reentered(from: u32, batch_number: u32, captured_at: chrono::DateTime<Utc>) -> Value {
    let mut body = batch_body(from, captured_at);
    body["batch_number"] = json!(batch_number);
    body
}

/// Sale and refund lines that present their RRN now.
async fn presented(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM batch_lines WHERE line_type <> 'void' AND released_at IS NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// Releases every line, as for lines stored before presentments were kept, or
/// presented longer ago than the window.
async fn release_everything(app: &TestApp) {
    sqlx::query("UPDATE batch_lines SET released_at = now()")
        .execute(&app.db)
        .await
        .unwrap();
}

async fn ledger_check(app: &TestApp) -> Value {
    json_of(app.get("/v1/ops/ledger/check", &ops_token()).await).await
}

fn check_named<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("check {name} in {report}"))
}

async fn exceptions(app: &TestApp, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/v1/ops/exceptions{query}"), &ops_token())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_same_transactions_closed_again_as_a_new_batch_are_refused_and_paid_once() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    let first = json_of(app.close("t1", "m1", "k1", &batch_body(1, at)).await).await;
    assert_eq!(first["status"], "accepted");
    let entries = app.count("journal_entries").await;
    let refusals = || {
        settlement_api::metrics::METRICS
            .batches_closed
            .with_label_values(&["duplicate_transactions"])
            .get()
    };
    let refused_before = refusals();

    let r = app.close("t1", "m1", "k2", &reentered(1, 2, at)).await;
    // Counted by its outcome (tests in this process share the metrics: at least one).
    assert!(refusals() > refused_before);
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    // The sale, the refund and the voided sale present their RRNs; the void does not.
    let duplicates = problem["duplicates"].as_array().unwrap();
    assert_eq!(duplicates.len(), 3, "{problem}");
    assert_eq!(duplicates[0]["stan"], "000001");
    assert_eq!(duplicates[0]["rrn"], rrn_of(1, 1));
    assert_eq!(duplicates[0]["batch"]["id"], first["id"]);
    assert_eq!(duplicates[0]["batch"]["batch_number"], 1);
    assert_eq!(duplicates[0]["batch"]["status"], "accepted");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("paid once"), "{detail}");
    // Nothing booked, nothing half-written.
    assert_eq!(app.count("batches").await, 1);
    assert_eq!(app.count("batch_lines").await, 4);
    assert_eq!(app.count("journal_entries").await, entries);
    assert_eq!(presented(&app).await, 3);

    // The answer is stored under the key like any other outcome, and replayed.
    let again = app.close("t1", "m1", "k2", &reentered(1, 2, at)).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(json_of(again).await["attempt_id"], problem["attempt_id"]);

    // Operations have it as an open exception, and the merchant an event.
    let open = exceptions(&app, "?kind=duplicate_transactions").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], problem["attempt_id"]);
    assert_eq!(open[0]["state"], "open");
    assert_eq!(open[0]["duplicates"].as_array().unwrap().len(), 3);
    assert_eq!(open[0]["duplicates_total"], 3);
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE merchant_id = 'm1' AND type = 'batch.duplicate_transactions'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(events, 1);

    // Batch 2 closed again with transactions of its own is booked and resolves the
    // attempt.
    let r = app.close("t1", "m1", "k3", &batch_body(2, at)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(exceptions(&app, "?kind=duplicate_transactions")
        .await
        .is_empty());
    let resolved = exceptions(&app, "?state=resolved&kind=duplicate_transactions").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["decided_by"], "system");
    assert!(resolved[0]["resolution"]
        .as_str()
        .unwrap()
        .contains("closed afterwards"));

    let report = ledger_check(&app).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        check_named(&report, "transactions_paid_once")["violations"],
        0
    );
}

#[tokio::test]
async fn a_repeat_of_some_lines_refuses_the_whole_close_and_lists_only_those() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    app.create_terminal("m1", "t2").await;
    let at = Utc::now() - Duration::minutes(30);
    app.close("t1", "m1", "k1", &batch_body(1, at)).await;
    // The same RRNs on another terminal are other transactions.
    let r = app.close("t2", "m1", "k1", &batch_body(1, at)).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let mut body = batch_body(2, at);
    body["transactions"][1]["rrn"] = json!(rrn_of(1, 2));
    let r = app.close("t1", "m1", "k2", &body).await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    let duplicates = problem["duplicates"].as_array().unwrap();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0]["stan"], "000002");
    assert_eq!(app.count("batches").await, 2);
    // Its other RRNs were not kept: the corrected close presents them.
    let r = app.close("t1", "m1", "k3", &batch_body(2, at)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn one_close_presenting_an_rrn_twice_is_a_validation_error() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let mut body = batch_body(1, Utc::now() - Duration::minutes(30));
    body["transactions"][2]["rrn"] = body["transactions"][0]["rrn"].clone();
    let r = app.close("t1", "m1", "k1", &body).await;
    let problem = assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["field"], "transactions[2].rrn");
    assert_eq!(app.count("batches").await, 0);
    assert_eq!(presented(&app).await, 0);
}

#[tokio::test]
async fn re_entering_a_held_batch_is_refused_with_the_way_to_a_review() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let old = Utc::now() - Duration::days(5);
    let r = app.close("t1", "m1", "k1", &batch_body(3, old)).await;
    let held = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch_outside_grace_window",
    )
    .await;
    let held_id = held["batch_id"].as_str().unwrap().to_owned();
    // A held batch is not charged.
    assert_eq!(held["batch"]["fee"], "0.00");
    assert!(held["batch"]["status_reason"]
        .as_str()
        .unwrap()
        .contains("review-requests"));

    // The merchant re-enters the transactions as a new batch (补录): refused, and
    // told that they wait for operations and how to ask for a review.
    let r = app.close("t1", "m1", "k2", &reentered(3, 4, old)).await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    assert_eq!(
        problem["duplicates"][0]["batch"]["status"],
        "rejected_outside_grace"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("waits for operations"), "{detail}");
    assert!(
        detail.contains(&format!(
            "/v1/merchants/m1/batches/{held_id}/review-requests"
        )),
        "{detail}"
    );
    assert_eq!(app.count("batches").await, 1);

    // The merchant asks for the review; asking again answers the open request.
    let path = format!("/v1/merchants/m1/batches/{held_id}/review-requests");
    let r = app
        .post(
            &path,
            &merchant_token("m1"),
            &json!({"note": "Terminal was off for a holiday; please pay these sales."}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let review = json_of(r).await;
    assert_eq!(review["state"], "open");
    let r = app
        .post(&path, &merchant_token("m1"), &json!({"note": "again"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["id"], review["id"]);
    // Another merchant cannot see or ask about it; a terminal cannot ask at all.
    app.merchant_with_terminal("m2", "t9").await;
    let r = app
        .post(
            &format!("/v1/merchants/m2/batches/{held_id}/review-requests"),
            &merchant_token("m2"),
            &json!({"note": "mine?"}),
        )
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .post(&path, &merchant_token("m2"), &json!({"note": "mine?"}))
        .await;
    assert_problem(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .post(&path, &terminal_token("t1", "m1"), &json!({"note": "x"}))
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;

    let status = json_of(
        app.get("/v1/merchants/m1/status", &merchant_token("m1"))
            .await,
    )
    .await;
    assert_eq!(status["review_requests"][0]["id"], review["id"]);
    assert_eq!(status["review_requests"][0]["state"], "open");
    let open = exceptions(&app, "?merchant_id=m1").await;
    let kinds: Vec<&str> = open.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "review_request",
            "duplicate_transactions",
            "rejected_outside_grace"
        ]
    );
    assert_eq!(open[0]["batch_id"], held_id.as_str());
    assert!(exceptions(&app, "?merchant_id=m2").await.is_empty());

    // Operations accept the held batch: it is booked once, the review is resolved.
    let r = app
        .post(
            &format!("/v1/ops/batches/{held_id}/accept"),
            &ops_token(),
            &json!({"reason": "holiday closure confirmed by phone"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let accepted = json_of(r).await;
    assert_ne!(accepted["fee"], "0.00");
    let reviews = exceptions(&app, "?state=resolved&kind=review_request").await;
    assert_eq!(reviews.len(), 1);
    assert_eq!(reviews[0]["decided_by"], "ops:alice");
    // The refused re-entry is resolved with it: its transactions are paid in batch 3.
    assert!(exceptions(&app, "?merchant_id=m1").await.is_empty());
    let attempts = exceptions(&app, "?state=resolved&kind=duplicate_transactions").await;
    assert!(attempts[0]["resolution"]
        .as_str()
        .unwrap()
        .contains("accepted"));
    let batches = exceptions(&app, "?state=resolved&kind=rejected_outside_grace").await;
    assert_eq!(
        batches[0]["resolution"],
        "holiday closure confirmed by phone"
    );
    // The re-entry stays refused: the transactions are paid in batch 3.
    let r = app.close("t1", "m1", "k3", &reentered(3, 4, old)).await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    assert_eq!(
        problem["duplicates"][0]["batch"]["status"],
        "accepted_by_operator"
    );
    let r = app
        .post(&path, &merchant_token("m1"), &json!({"note": "x"}))
        .await;
    assert_problem(r, StatusCode::CONFLICT, "batch_not_held").await;
    let report = ledger_check(&app).await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn a_declined_batch_is_never_paid_and_its_transactions_may_be_closed_again() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let old = Utc::now() - Duration::days(5);
    let r = app.close("t1", "m1", "k1", &batch_body(3, old)).await;
    let held = json_of(r).await;
    let held_id = held["batch_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/merchants/m1/batches/{held_id}/review-requests");
    app.post(&path, &merchant_token("m1"), &json!({"note": "please"}))
        .await;

    let decline = format!("/v1/ops/batches/{held_id}/decline");
    let r = app
        .post(&decline, &merchant_token("m1"), &json!({"reason": "x"}))
        .await;
    assert_problem(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .post(&decline, &ops_token(), &json!({"reason": " "}))
        .await;
    assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post(
            &decline,
            &ops_token(),
            &json!({"reason": "sales older than the scheme allows; refund the customers"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let declined = json_of(r).await;
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["reason_code"], "declined_by_operator");
    assert_eq!(declined["fee"], "0.00");
    assert_eq!(declined["cycle_date"], Value::Null);
    // The merchant reads the reason on the batch.
    let seen = json_of(
        app.get(
            &format!("/v1/merchants/m1/batches/{held_id}"),
            &merchant_token("m1"),
        )
        .await,
    )
    .await;
    assert!(seen["status_reason"]
        .as_str()
        .unwrap()
        .contains("refund the customers"));
    // Decided once: a second decision, either way, is refused.
    let r = app
        .post(&decline, &ops_token(), &json!({"reason": "again"}))
        .await;
    assert_problem(r, StatusCode::CONFLICT, "batch_not_rejected").await;
    let r = app
        .post(
            &format!("/v1/ops/batches/{held_id}/accept"),
            &ops_token(),
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_problem(r, StatusCode::CONFLICT, "batch_not_rejected").await;

    let reviews = exceptions(&app, "?state=declined&kind=review_request").await;
    assert_eq!(reviews.len(), 1);
    assert!(reviews[0]["resolution"]
        .as_str()
        .unwrap()
        .contains("declined"));
    let batches = exceptions(&app, "?state=declined").await;
    assert!(batches
        .iter()
        .any(|e| e["kind"] == "rejected_outside_grace" && e["decided_by"] == "ops:alice"));
    let audit = json_of(app.get("/v1/ops/audit", &ops_token()).await).await;
    assert_eq!(audit["data"][0]["action"], "batch.decline");

    // Released: the transactions may be presented again, and are paid once.
    let recent = Utc::now() - Duration::minutes(30);
    let r = app.close("t1", "m1", "k2", &reentered(3, 4, recent)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let report = ledger_check(&app).await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn accepting_a_held_batch_whose_transactions_are_booked_elsewhere_is_refused() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let old = Utc::now() - Duration::days(5);
    let held = json_of(app.close("t1", "m1", "k1", &batch_body(3, old)).await).await;
    let held_id = held["batch_id"].as_str().unwrap().to_owned();
    // A held batch whose presentments are gone, as one stored before presentments
    // existed, or presented longer ago than the window.
    release_everything(&app).await;
    let recent = Utc::now() - Duration::minutes(30);
    let r = app.close("t1", "m1", "k2", &reentered(3, 4, recent)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entries = app.count("journal_entries").await;

    let r = app
        .post(
            &format!("/v1/ops/batches/{held_id}/accept"),
            &ops_token(),
            &json!({"reason": "customer called"}),
        )
        .await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    assert_eq!(problem["duplicates"].as_array().unwrap().len(), 3);
    assert_eq!(problem["duplicates"][0]["batch"]["batch_number"], 4);
    assert_eq!(app.count("journal_entries").await, entries);
    let still: String = sqlx::query_scalar("SELECT status FROM batches WHERE id = $1::uuid")
        .bind(&held_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(still, "rejected_outside_grace");
}

/// Writes, behind the service's back, a held copy of a stored batch under `number`,
/// its lines copied with `rrn_of_line` mapping each RRN; returns the lines' outcome.
async fn copy_batch_by_hand(
    app: &TestApp,
    from: &str,
    number: i32,
    rrn_of_line: &str,
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    let copy: uuid::Uuid = sqlx::query_scalar(
        "INSERT INTO batches (id, terminal_id, merchant_id, batch_number, status, currency, business_date, \
             received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, sale_amount_minor, \
             refund_count, refund_amount_minor, void_count, void_amount_minor, net_amount_minor, line_count, \
             content_hash, fee_minor) \
         SELECT gen_random_uuid(), terminal_id, merchant_id, $2, 'rejected_outside_grace', currency, business_date, \
             received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, sale_amount_minor, \
             refund_count, refund_amount_minor, void_count, void_amount_minor, net_amount_minor, line_count, \
             content_hash, 0 FROM batches WHERE id = $1::uuid RETURNING id",
    )
    .bind(from)
    .bind(number)
    .fetch_one(&app.db)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO batch_lines (batch_id, terminal_id, line_no, stan, rrn, line_type, amount_minor, \
             original_stan, captured_at) \
         SELECT $1, terminal_id, line_no, stan, {rrn_of_line}, line_type, amount_minor, original_stan, captured_at \
         FROM batch_lines WHERE batch_id = $2::uuid"
    ))
    .bind(copy)
    .bind(from)
    .execute(&app.db)
    .await
}

#[tokio::test]
async fn the_database_presents_every_line_it_stores_and_refuses_a_second_presentment() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    let first = json_of(app.close("t1", "m1", "k1", &batch_body(1, at)).await).await;
    let batch_id = first["id"].as_str().unwrap();

    // Lines written behind the service's back present their RRNs too: the same
    // transactions again are refused, nothing of them is kept...
    let err = copy_batch_by_hand(&app, batch_id, 76, "rrn")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("batch_lines_presented"), "{err}");
    // ...new ones are presented by their batch (voids present nothing).
    copy_batch_by_hand(&app, batch_id, 77, "'9' || substr(rrn, 2)")
        .await
        .unwrap();
    assert_eq!(presented(&app).await, 6);
    // A line changes only by its release; anything else is refused.
    let err = sqlx::query("UPDATE batch_lines SET amount_minor = 1 WHERE rrn LIKE '9%'")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kept as received"), "{err}");
    let err = sqlx::query("UPDATE batch_lines SET terminal_id = 't2' WHERE rrn LIKE '9%'")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kept as received"), "{err}");

    // A batch's lines are written whole, once: none can be added later, and STANs
    // do not repeat within a batch.
    let err = sqlx::query(
        "INSERT INTO batch_lines (batch_id, terminal_id, line_no, stan, rrn, line_type, amount_minor, original_stan, captured_at) \
         VALUES ($1::uuid, 't1', 98, '000098', '999999999998', 'void', 100, '000001', now())",
    )
    .bind(batch_id)
    .execute(&app.db)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("written whole"), "{err}");
    sqlx::query(
        "INSERT INTO batches (id, terminal_id, merchant_id, batch_number, status, currency, business_date, \
             received_at, cutoff_at, grace_deadline, late_by_seconds, sale_count, sale_amount_minor, \
             refund_count, refund_amount_minor, void_count, void_amount_minor, net_amount_minor, line_count, \
             content_hash, fee_minor) \
         VALUES ('00000000-0000-7000-8000-000000000001', 't1', 'm1', 78, 'rejected_outside_grace', 'USD', \
             current_date, now(), now(), now(), 0, 2, 200, 0, 0, 0, 0, 200, 2, decode('00', 'hex'), 0)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let err = sqlx::query(
        "INSERT INTO batch_lines (batch_id, terminal_id, line_no, stan, rrn, line_type, amount_minor, captured_at) VALUES \
             ('00000000-0000-7000-8000-000000000001', 't1', 1, '000001', '888888888881', 'sale', 100, now()), \
             ('00000000-0000-7000-8000-000000000001', 't1', 2, '000001', '888888888882', 'sale', 100, now())",
    )
    .execute(&app.db)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("STAN repeats"), "{err}");
}

#[tokio::test]
async fn the_ledger_check_reports_an_rrn_booked_twice() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    app.close("t1", "m1", "k1", &batch_body(1, at)).await;
    // What the service refuses, forced behind its back: the presentments of batch 1
    // are dropped and the same transactions booked again as batch 2.
    release_everything(&app).await;
    let r = app.close("t1", "m1", "k2", &reentered(1, 2, at)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let report = ledger_check(&app).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        check_named(&report, "transactions_paid_once")["violations"],
        3
    );
}

#[tokio::test]
async fn exception_filters_are_checked() {
    let app = spawn_app().await;
    for query in ["?state=closed", "?kind=other", "?merchant_id=has%20space"] {
        let r = app
            .get(&format!("/v1/ops/exceptions{query}"), &ops_token())
            .await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    let r = app.get("/v1/ops/exceptions?state=all", &ops_token()).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn presentments_past_the_window_and_old_idempotency_keys_are_released_by_housekeeping() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = Utc::now() - Duration::minutes(30);
    app.close("t1", "m1", "k1", &batch_body(1, at)).await;
    app.close("t1", "m1", "k2", &batch_body(2, at)).await;
    // Batch 1 received 400 days ago and its key written 8 days ago: past the window
    // (395 days) and the retention (7 days); batch 2 is recent.
    sqlx::query(
        "UPDATE batches SET received_at = now() - interval '400 days' WHERE batch_number = 1",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '8 days' WHERE idempotency_key = 'k1'",
    )
    .execute(&app.db)
    .await
    .unwrap();

    let (keys, released) = settlement_api::scheduler::housekeeping(&app.db, Utc::now())
        .await
        .unwrap();
    assert_eq!((keys, released), (1, 3));
    assert_eq!(presented(&app).await, 3);
    // The walk stopped at batch 2, inside the window: nothing more to release.
    let (_, again) = settlement_api::scheduler::housekeeping(&app.db, Utc::now())
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(app.count("idempotency_keys").await, 1);
    // A wrapped RRN counter may now present batch 1's numbers again.
    let r = app.close("t1", "m1", "k3", &reentered(1, 3, at)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A retry of the purged key is judged afresh: the same content under the same
    // number still answers the stored batch, and books nothing again.
    let r = app.close("t1", "m1", "k1", &batch_body(1, at)).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_exception_lists_at_most_a_hundred_repeated_lines_and_counts_them_all() {
    let app = spawn_app().await;
    app.merchant_with_terminal("m1", "t1").await;
    let at = rfc3339(Utc::now() - Duration::minutes(30));
    let body = |number: u32| {
        let lines: Vec<Value> = (1..=150)
            .map(|i| {
                json!({"stan": format!("{i:06}"), "rrn": format!("{:012}", 5_000 + i),
                       "type": "sale", "amount": "1.00", "captured_at": at})
            })
            .collect();
        json!({"batch_number": number, "currency": "USD",
               "totals": {"sale_count": 150, "sale_amount": "150.00", "refund_count": 0,
                          "refund_amount": "0.00", "void_count": 0, "void_amount": "0.00"},
               "transactions": lines})
    };
    assert_eq!(
        app.close("t1", "m1", "k1", &body(1)).await.status(),
        StatusCode::CREATED
    );
    let r = app.close("t1", "m1", "k2", &body(2)).await;
    let problem = assert_problem(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "duplicate_transactions",
    )
    .await;
    // The terminal hears of every repeated line; the exceptions list stays small.
    assert_eq!(problem["duplicates"].as_array().unwrap().len(), 150);
    let listed = exceptions(&app, "?kind=duplicate_transactions").await;
    assert_eq!(listed[0]["duplicates"].as_array().unwrap().len(), 100);
    assert_eq!(listed[0]["duplicates_total"], 150);
}
