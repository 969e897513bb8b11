//! The metrics server: `GET /metrics` on its own port, the engine's metrics in the
//! Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;

pub use settlement_engine::metrics::*;

async fn serve(State(pool): State<PgPool>) -> Response {
    let text = render(&pool).await;
    ([(header::CONTENT_TYPE, content_type())], text).into_response()
}

/// The metrics server's router: `GET /metrics`.
pub fn router(pool: PgPool) -> Router {
    Router::new().route("/metrics", get(serve)).with_state(pool)
}
