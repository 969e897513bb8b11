//! Sessions of the web pages: created at sign-in, found by the hash of their id,
//! revoked at sign-out, deleted once expired.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WebSession {
    pub role: String,
    pub subject: String,
    pub merchant_id: Option<String>,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A session to store.
#[derive(Debug, Clone)]
pub struct NewWebSession<'a> {
    pub id_sha256: &'a [u8],
    pub role: &'a str,
    pub subject: &'a str,
    pub merchant_id: Option<&'a str>,
    pub csrf_token: &'a str,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new session.
pub async fn insert_web_session(
    conn: &mut PgConnection,
    session: &NewWebSession<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO web_sessions \
         (id_sha256, role, subject, merchant_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        session.id_sha256,
        session.role,
        session.subject,
        session.merchant_id,
        session.csrf_token,
        session.created_at,
        session.expires_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The session whose id hashes to `id_sha256`, when it is neither revoked nor
/// expired at `now`.
pub async fn find_live_web_session(
    conn: &mut PgConnection,
    id_sha256: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<WebSession>, sqlx::Error> {
    sqlx::query_as!(
        WebSession,
        "SELECT role, subject, merchant_id, csrf_token, created_at, expires_at \
         FROM web_sessions \
         WHERE id_sha256 = $1 AND revoked_at IS NULL AND expires_at > $2",
        id_sha256,
        now,
    )
    .fetch_optional(conn)
    .await
}

/// Revokes a session (sign-out); false when there was no live one.
pub async fn revoke_web_session(
    conn: &mut PgConnection,
    id_sha256: &[u8],
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "UPDATE web_sessions SET revoked_at = $2 \
         WHERE id_sha256 = $1 AND revoked_at IS NULL",
        id_sha256,
        now,
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes sessions that expired before `before`; how many went.
pub async fn delete_expired_web_sessions(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!("DELETE FROM web_sessions WHERE expires_at < $1", before)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
