//! Query of the exceptions list, and an exception as the API shows it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use settlement_domain::batch::FieldError;
use settlement_domain::exception::{ExceptionKind, ExceptionState};
use uuid::Uuid;

/// Query of the exceptions list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    /// `open` (the default), `resolved`, `declined` or `all`.
    pub state: Option<String>,
    /// `rejected_outside_grace`, `out_of_balance`, `duplicate_transactions` or
    /// `review_request`; every kind when absent.
    pub kind: Option<String>,
    pub merchant_id: Option<String>,
}

impl ExceptionQuery {
    /// The state the list keeps: open when the query names none, any (`None`) for
    /// `all`.
    pub fn state_filter(&self) -> Result<Option<ExceptionState>, FieldError> {
        match self.state.as_deref() {
            None => Ok(Some(ExceptionState::Open)),
            Some("all") => Ok(None),
            Some(text) => ExceptionState::parse(text)
                .map(Some)
                .ok_or_else(|| FieldError::new("state", "must be open, resolved, declined or all")),
        }
    }

    /// The kind the list keeps; any (`None`) when the query names none.
    pub fn kind_filter(&self) -> Result<Option<ExceptionKind>, FieldError> {
        self.kind
            .as_deref()
            .map(|text| {
                ExceptionKind::parse(text).ok_or_else(|| {
                    FieldError::new(
                        "kind",
                        "must be rejected_outside_grace, out_of_balance, duplicate_transactions or review_request",
                    )
                })
            })
            .transpose()
    }
}

/// One exception as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExceptionView {
    pub id: Uuid,
    pub kind: ExceptionKind,
    /// `open` until it is resolved or declined.
    pub state: ExceptionState,
    pub merchant_id: String,
    pub terminal_id: String,
    pub batch_number: i32,
    pub currency: String,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grace_deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Value>,
    /// With `unmatched_transactions`: the batch's lines the host did not authorize as
    /// presented (the first 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_lines: Option<Value>,
    /// For a duplicate attempt: the repeated lines, each with the batch that holds it
    /// (the first `MAX_LISTED_DUPLICATES`; `duplicates_total` counts them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates_total: Option<usize>,
    /// The batch it is about (a held batch, or the batch a review request names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<Uuid>,
    /// The merchant's note of a review request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who resolved or declined it (`system` when a later close resolved it).
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// Why it was resolved or declined.
    pub resolution: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(state: Option<&str>, kind: Option<&str>) -> ExceptionQuery {
        ExceptionQuery {
            state: state.map(str::to_owned),
            kind: kind.map(str::to_owned),
            ..ExceptionQuery::default()
        }
    }

    #[test]
    fn exceptions_answers_parse_and_serialise_back_to_the_same_bytes() {
        for json in [
            r#"{"id":"0190a5a0-0000-7000-8000-000000000001","kind":"rejected_outside_grace","state":"open","merchant_id":"M1","terminal_id":"T1","batch_number":7,"currency":"USD","received_at":"2026-11-06T03:00:00Z","grace_deadline":"2026-11-05T22:00:00Z","net_amount":"10.00","batch_id":"0190a5a0-0000-7000-8000-000000000001","decided_by":null,"decided_at":null,"resolution":null}"#,
            r#"{"id":"0190a5a0-0000-7000-8000-000000000002","kind":"out_of_balance","state":"resolved","merchant_id":"M1","terminal_id":"T1","batch_number":8,"currency":"EUR","received_at":"2026-11-06T03:00:00Z","differences":[{"host":"1","terminal":"2","total":"sale_count"}],"decided_by":"system","decided_at":"2026-11-06T04:00:00Z","resolution":"closed afterwards"}"#,
            r#"{"id":"0190a5a0-0000-7000-8000-000000000003","kind":"duplicate_transactions","state":"open","merchant_id":"M1","terminal_id":"T1","batch_number":9,"currency":"USD","received_at":"2026-11-06T03:00:00Z","duplicates":[{"stan":"000001"}],"duplicates_total":1,"decided_by":null,"decided_at":null,"resolution":null}"#,
            r#"{"id":"0190a5a0-0000-7000-8000-000000000004","kind":"review_request","state":"declined","merchant_id":"M1","terminal_id":"T1","batch_number":7,"currency":"USD","received_at":"2026-11-06T05:00:00Z","grace_deadline":"2026-11-05T22:00:00Z","net_amount":"10.00","batch_id":"0190a5a0-0000-7000-8000-000000000001","note":"please look","decided_by":"ops@example.com","decided_at":"2026-11-06T06:00:00Z","resolution":"the batch was declined: duplicate"}"#,
        ] {
            let view: ExceptionView = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&view).unwrap(), json);
        }
    }

    #[test]
    fn an_exception_of_a_kind_or_state_not_known_is_refused() {
        let json = r#"{"id":"0190a5a0-0000-7000-8000-000000000002","kind":"KIND","state":"STATE","merchant_id":"M1","terminal_id":"T1","batch_number":8,"currency":"EUR","received_at":"2026-11-06T03:00:00Z","decided_by":null,"decided_at":null,"resolution":null}"#;
        for (kind, state) in [("out_of_balance", "closed"), ("refund", "open")] {
            let text = json.replace("KIND", kind).replace("STATE", state);
            assert!(
                serde_json::from_str::<ExceptionView>(&text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn the_state_filter_is_open_by_default_and_any_for_all() {
        assert_eq!(
            query(None, None).state_filter(),
            Ok(Some(ExceptionState::Open))
        );
        assert_eq!(query(Some("all"), None).state_filter(), Ok(None));
        for s in ExceptionState::ALL {
            assert_eq!(query(Some(s.as_str()), None).state_filter(), Ok(Some(s)));
        }
        for bad in ["", "Open", "pending", "any"] {
            assert_eq!(
                query(Some(bad), None).state_filter(),
                Err(FieldError::new(
                    "state",
                    "must be open, resolved, declined or all"
                ))
            );
        }
    }

    #[test]
    fn the_kind_filter_names_one_kind_or_none() {
        assert_eq!(query(None, None).kind_filter(), Ok(None));
        for k in ExceptionKind::ALL {
            assert_eq!(query(None, Some(k.as_str())).kind_filter(), Ok(Some(k)));
        }
        for bad in ["", "all", "review", "declined"] {
            let refused = query(None, Some(bad)).kind_filter().unwrap_err();
            assert_eq!(refused.field, "kind");
            assert_eq!(
                refused.reason,
                "must be rejected_outside_grace, out_of_balance, duplicate_transactions or review_request"
            );
        }
    }
}
