//! The stateful model test: a seeded generator of terminal behaviour (on time,
//! late, far past the grace window, replays, conflicting duplicates, out-of-balance
//! closes and their corrections, skipped numbers), moving cutoffs, and operator
//! actions (settlement runs, exports, paid and failed payouts, accepting rejected
//! batches) drives the real API. After every step the model's account of what must
//! exist is compared with the service, and the ledger check must pass.
//!
//! A failure prints its seed; `RELIABILITY_MODEL_SEED=<seed>` replays that one.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{figures, provision, scale};
use crate::helpers::*;

/// SplitMix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[usize::try_from(self.below(items.len() as u64)).unwrap()]
    }
}

/// How the terminal's clock places its lines.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Age {
    /// Minutes ago: inside today's business day (late only if a cutoff moved).
    Recent,
    /// About a day and a half ago: late, inside the 72 h grace window.
    Late,
    /// Eight days ago: outside the grace window, rejected and kept.
    FarPast,
}

/// A batch the model generated, with its expected net in minor units.
#[derive(Clone, Debug)]
struct Generated {
    body: Value,
    net_minor: i64,
}

fn generate(rng: &mut Rng, number: u32, age: Age, serial: &mut u64) -> Generated {
    let base: DateTime<Utc> = Utc::now()
        - match age {
            Age::Recent => Duration::minutes(20),
            Age::Late => Duration::hours(36),
            Age::FarPast => Duration::days(8),
        };
    let mut lines = Vec::new();
    let (mut sales, mut sale_sum, mut refunds, mut refund_sum, mut voids, mut void_sum) =
        (0, 0i64, 0, 0i64, 0, 0i64);
    let mut voidable: Vec<(String, i64)> = Vec::new();
    let count = 1 + rng.below(6);
    for i in 0..count {
        *serial += 1;
        let stan = format!("{:06}", i + 1);
        let at = (base + Duration::seconds(i64::try_from(i).unwrap() * 30))
            .to_rfc3339_opts(SecondsFormat::Secs, true);
        let brand = *rng.pick(&["visa", "mastercard", "amex"]);
        let mut line = json!({
            "stan": stan, "rrn": format!("{:012}", serial), "captured_at": at,
            "card_brand": brand, "masked_pan": "411111******1111"
        });
        let kind = rng.below(10);
        if kind < 6 || (kind >= 8 && voidable.is_empty()) {
            let amount = 100 + i64::try_from(rng.below(50_000)).unwrap();
            line["type"] = json!("sale");
            line["amount"] = json!(format!("{}.{:02}", amount / 100, amount % 100));
            sales += 1;
            sale_sum += amount;
            voidable.push((stan, amount));
        } else if kind < 8 {
            let amount = 100 + i64::try_from(rng.below(2_000)).unwrap();
            line["type"] = json!("refund");
            line["amount"] = json!(format!("{}.{:02}", amount / 100, amount % 100));
            refunds += 1;
            refund_sum += amount;
        } else {
            let (original, amount) = voidable.remove(0);
            line["type"] = json!("void");
            line["original_stan"] = json!(original);
            line["amount"] = json!(format!("{}.{:02}", amount / 100, amount % 100));
            voids += 1;
            void_sum += amount;
        }
        lines.push(line);
    }
    let money = |m: i64| format!("{}.{:02}", m / 100, m % 100);
    Generated {
        body: json!({
            "batch_number": number,
            "currency": "USD",
            "totals": {
                "sale_count": sales, "sale_amount": money(sale_sum),
                "refund_count": refunds, "refund_amount": money(refund_sum),
                "void_count": voids, "void_amount": money(void_sum)
            },
            "transactions": lines
        }),
        net_minor: sale_sum - void_sum - refund_sum,
    }
}

/// What the model knows of one terminal.
#[derive(Default)]
struct TerminalModel {
    next_number: u32,
    /// Batch number -> (expected statuses, net, batch id).
    stored: BTreeMap<u32, (Vec<&'static str>, i64, String)>,
    /// The last close: key, body and the answer it got.
    last: Option<(String, Value, u16, String)>,
}

struct World {
    app: TestApp,
    rng: Rng,
    terminals: Vec<(String, String)>,
    models: BTreeMap<String, TerminalModel>,
    serial: u64,
    keys: u64,
    /// Rejected batches not yet accepted by an operator: (terminal, number).
    rejected: Vec<(String, u32)>,
    actions: BTreeMap<&'static str, u64>,
    clock_moves: u32,
}

impl World {
    fn key(&mut self) -> String {
        self.keys += 1;
        format!("model-key-{}", self.keys)
    }

    async fn close(&mut self, terminal: usize, age: Age) {
        let (t, m) = self.terminals[terminal].clone();
        let model = self.models.get_mut(&t).unwrap();
        model.next_number += 1;
        let number = model.next_number;
        let generated = generate(&mut self.rng, number, age, &mut self.serial);
        let key = self.key();
        let r = self.app.close(&t, &m, &key, &generated.body).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        let model = self.models.get_mut(&t).unwrap();
        let (expected_status, statuses): (StatusCode, Vec<&'static str>) = match age {
            Age::Recent => (StatusCode::CREATED, vec!["accepted", "accepted_late"]),
            Age::Late => (StatusCode::CREATED, vec!["accepted_late"]),
            Age::FarPast => (
                StatusCode::UNPROCESSABLE_ENTITY,
                vec!["rejected_outside_grace"],
            ),
        };
        assert_eq!(
            status, expected_status,
            "{age:?} close of {t} #{number}: {body}"
        );
        let id = if age == Age::FarPast {
            assert_eq!(body["code"], "batch_outside_grace_window", "{body}");
            self.rejected.push((t.clone(), number));
            body["batch_id"].as_str().unwrap().to_owned()
        } else {
            assert!(
                statuses.contains(&body["status"].as_str().unwrap()),
                "{body}"
            );
            body["id"].as_str().unwrap().to_owned()
        };
        model
            .stored
            .insert(number, (statuses, generated.net_minor, id.clone()));
        model.last = Some((key, generated.body, status.as_u16(), id));
    }

    /// The terminal lost the answer and sends the same request again.
    async fn replay(&mut self, terminal: usize) {
        let (t, m) = self.terminals[terminal].clone();
        let Some((key, body, status, id)) = self.models[&t].last.clone() else {
            return;
        };
        let r = self.app.close(&t, &m, &key, &body).await;
        assert_eq!(
            r.status().as_u16(),
            status,
            "a replay gets the first answer"
        );
        let answer: Value = r.json().await.unwrap();
        let replayed_id = answer["id"].as_str().or(answer["batch_id"].as_str());
        assert_eq!(replayed_id, Some(id.as_str()), "{answer}");
    }

    /// The same batch number with other content under a new key.
    async fn conflicting_duplicate(&mut self, terminal: usize) {
        let (t, m) = self.terminals[terminal].clone();
        let Some(number) = self.models[&t].stored.keys().next_back().copied() else {
            return;
        };
        let other = generate(&mut self.rng, number, Age::Recent, &mut self.serial);
        let key = self.key();
        let r = self.app.close(&t, &m, &key, &other.body).await;
        let answer = assert_problem(r, StatusCode::CONFLICT, "batch_already_closed").await;
        assert_eq!(
            answer["batch_id"],
            self.models[&t].stored[&number].2.as_str()
        );
    }

    /// Totals that disagree with the lines: refused and kept for operations, the
    /// number stays free, and the corrected close under a new key books.
    async fn out_of_balance_then_corrected(&mut self, terminal: usize) {
        let (t, m) = self.terminals[terminal].clone();
        let number = self.models[&t].next_number + 1;
        let mut generated = generate(&mut self.rng, number, Age::Recent, &mut self.serial);
        let mut wrong = generated.body.clone();
        let count = wrong["totals"]["sale_count"].as_i64().unwrap();
        wrong["totals"]["sale_count"] = json!(count + 1);
        let key = self.key();
        let r = self.app.close(&t, &m, &key, &wrong).await;
        assert_problem(r, StatusCode::UNPROCESSABLE_ENTITY, "out_of_balance").await;
        // The model's next close reuses the number with the right totals.
        generated.body["batch_number"] = json!(number);
        let key = self.key();
        let r = self.app.close(&t, &m, &key, &generated.body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        let model = self.models.get_mut(&t).unwrap();
        model.next_number = number;
        model.stored.insert(
            number,
            (
                vec!["accepted", "accepted_late"],
                generated.net_minor,
                body["id"].as_str().unwrap().to_owned(),
            ),
        );
        model.last = Some((
            key,
            generated.body,
            201,
            body["id"].as_str().unwrap().to_owned(),
        ));
    }

    async fn skip_number(&mut self, terminal: usize) {
        let t = self.terminals[terminal].0.clone();
        self.models.get_mut(&t).unwrap().next_number += 1;
    }

    async fn accept_rejected(&mut self) {
        if self.rejected.is_empty() {
            return;
        }
        let i = usize::try_from(self.rng.below(self.rejected.len() as u64)).unwrap();
        let (t, number) = self.rejected.remove(i);
        let id = self.models[&t].stored[&number].2.clone();
        let r = self
            .app
            .post(
                &format!("/v1/ops/batches/{id}/accept"),
                &ops_token(),
                &json!({"reason": "the terminal was offline for repairs"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        let entry = self
            .models
            .get_mut(&t)
            .unwrap()
            .stored
            .get_mut(&number)
            .unwrap();
        entry.0 = vec!["accepted_by_operator"];
    }

    async fn settlement_run(&mut self) {
        let r = self
            .app
            .post("/v1/ops/settlement-runs", &ops_token(), &json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// A merchant's cutoff moves to two seconds from now and passes: its cycle
    /// closes at the next run, and recent closes after it belong to the next day.
    async fn move_cutoff(&mut self) {
        if self.clock_moves >= 2 {
            return;
        }
        self.clock_moves += 1;
        let m = self.rng.pick(&self.terminals).1.clone();
        let cutoff = (Utc::now() + Duration::seconds(2))
            .format("%H:%M:%S")
            .to_string();
        let r = self
            .app
            .client
            .patch(self.app.url(&format!("/v1/ops/merchants/{m}")))
            .bearer_auth(ops_token())
            .json(&json!({"cutoff_local_time": cutoff, "reason": "merchant closes earlier"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        tokio::time::sleep(StdDuration::from_millis(3200)).await;
        self.settlement_run().await;
    }

    async fn export_and_confirm(&mut self) {
        let far = (Utc::now() + Duration::days(30)).date_naive();
        let r = self
            .app
            .client
            .post(
                self.app
                    .url(&format!("/v1/ops/payouts/export?through={far}")),
            )
            .bearer_auth(ops_token())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let csv = r.text().await.unwrap();
        for line in csv.lines().skip(1) {
            let id = line.split(',').next().unwrap();
            let (outcome, body) = if self.rng.below(3) == 0 {
                ("failed", json!({"failure_code": "account_closed"}))
            } else {
                ("paid", json!({}))
            };
            let r = self
                .app
                .post(
                    &format!("/v1/ops/payouts/{id}/{outcome}"),
                    &ops_token(),
                    &body,
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        }
    }

    /// The model against the service: each terminal's batches and statuses, the
    /// money of every booked batch, and the ledger check.
    async fn check(&self) {
        let mut booked_net = 0i64;
        for (t, model) in &self.models {
            let rows: Vec<(i32, String, String, i64)> = sqlx::query_as(
                "SELECT batch_number, id::text, status, net_amount_minor FROM batches \
                 WHERE terminal_id = $1 ORDER BY batch_number",
            )
            .bind(t)
            .fetch_all(&self.app.db)
            .await
            .unwrap();
            let numbers: Vec<u32> = rows.iter().map(|r| u32::try_from(r.0).unwrap()).collect();
            let expected: Vec<u32> = model.stored.keys().copied().collect();
            assert_eq!(numbers, expected, "{t}: the batches the model expects");
            for (number, id, status, net) in rows {
                let (statuses, model_net, model_id) =
                    &model.stored[&u32::try_from(number).unwrap()];
                assert_eq!(&id, model_id);
                assert!(
                    statuses.contains(&status.as_str()),
                    "{t} #{number}: {status}"
                );
                assert_eq!(net, *model_net, "{t} #{number}: net");
                if status != "rejected_outside_grace" {
                    booked_net += net;
                }
            }
        }
        let stored_net: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(net_amount_minor), 0)::bigint FROM batches \
             WHERE status <> 'rejected_outside_grace'",
        )
        .fetch_one(&self.app.db)
        .await
        .unwrap();
        assert_eq!(stored_net, booked_net, "booked money equals the model's");
        let check = json_of(self.app.get("/v1/ops/ledger/check", &ops_token()).await).await;
        assert_eq!(check["ok"], true, "{check:#}");
    }
}

async fn run_seed(seed: u64, steps: u64) -> BTreeMap<&'static str, u64> {
    let app = spawn_app().await;
    let mut terminals = provision(&app.base, "a", 1, 2, &cutoff_far_from_now("UTC")).await;
    terminals.extend(provision(&app.base, "b", 1, 1, &cutoff_far_from_now("UTC")).await);
    let models = terminals
        .iter()
        .map(|(t, _)| (t.clone(), TerminalModel::default()))
        .collect();
    let mut world = World {
        app,
        rng: Rng(seed),
        terminals,
        models,
        serial: seed * 1_000_000,
        keys: 0,
        rejected: Vec::new(),
        actions: BTreeMap::new(),
        clock_moves: 0,
    };
    for _ in 0..steps {
        let terminal = usize::try_from(world.rng.below(world.terminals.len() as u64)).unwrap();
        let roll = world.rng.below(100);
        let action = match roll {
            0..=34 => "close_on_time",
            35..=44 => "close_late",
            45..=49 => "close_past_grace",
            50..=59 => "replay",
            60..=64 => "conflicting_duplicate",
            65..=71 => "out_of_balance_then_corrected",
            72..=75 => "skip_number",
            76..=81 => "accept_rejected",
            82..=89 => "settlement_run",
            90..=96 => "export_and_confirm",
            _ => "move_cutoff",
        };
        match action {
            "close_on_time" => world.close(terminal, Age::Recent).await,
            "close_late" => world.close(terminal, Age::Late).await,
            "close_past_grace" => world.close(terminal, Age::FarPast).await,
            "replay" => world.replay(terminal).await,
            "conflicting_duplicate" => world.conflicting_duplicate(terminal).await,
            "out_of_balance_then_corrected" => world.out_of_balance_then_corrected(terminal).await,
            "skip_number" => world.skip_number(terminal).await,
            "accept_rejected" => world.accept_rejected().await,
            "settlement_run" => world.settlement_run().await,
            "export_and_confirm" => world.export_and_confirm().await,
            _ => world.move_cutoff().await,
        }
        *world.actions.entry(action).or_default() += 1;
        world.check().await;
    }
    world.actions
}

#[tokio::test]
async fn a_seeded_model_of_terminals_clocks_and_operators_agrees_with_the_service() {
    let steps = scale("RELIABILITY_MODEL_STEPS", 60);
    let seeds: Vec<u64> = match std::env::var("RELIABILITY_MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("a numeric seed")],
        Err(_) => (1..=scale("RELIABILITY_MODEL_SEEDS", 3)).collect(),
    };
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    for &seed in &seeds {
        let run = tokio::spawn(run_seed(seed, steps)).await;
        match run {
            Ok(actions) => {
                for (k, v) in actions {
                    *totals.entry(k).or_default() += v;
                }
            }
            Err(e) => {
                panic!("model seed {seed} failed; replay with RELIABILITY_MODEL_SEED={seed}: {e}")
            }
        }
    }
    let mut fields = vec![
        ("seeds", seeds.len().to_string()),
        ("steps_each", steps.to_string()),
    ];
    fields.extend(totals.iter().map(|(k, v)| (*k, v.to_string())));
    figures("model", &fields);
}
