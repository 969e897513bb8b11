//! Probes: liveness and readiness. They take no token, so orchestrators can call them.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: the process is alive and serving.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the database is reachable and every migration is applied.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let check = async {
        let mut conn = state.pool.acquire().await?;
        settlement_store::migrations_applied(&mut conn).await
    };
    match check.await {
        Ok(true) => Json(json!({"status": "ready"})).into_response(),
        Ok(false) => ApiError::NotReady("database migrations are not applied").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::NotReady("the database is not reachable").into_response()
        }
    }
}
