//! The bank holiday calendar operations load; payouts skip these days.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use sqlx::PgConnection;

/// A holiday row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HolidayRow {
    pub holiday_date: NaiveDate,
    pub name: String,
}

/// Inserts or renames a holiday; returns the previous row when there was one.
pub async fn upsert_holiday(
    conn: &mut PgConnection,
    h: &HolidayRow,
) -> Result<Option<HolidayRow>, sqlx::Error> {
    let before = sqlx::query_as!(
        HolidayRow,
        "SELECT holiday_date, name FROM holidays WHERE holiday_date = $1 FOR UPDATE",
        h.holiday_date,
    )
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO holidays (holiday_date, name) VALUES ($1, $2) \
         ON CONFLICT (holiday_date) DO UPDATE SET name = EXCLUDED.name",
        h.holiday_date,
        h.name,
    )
    .execute(conn)
    .await?;
    Ok(before)
}

/// Removes a holiday; returns it when it existed.
pub async fn delete_holiday(
    conn: &mut PgConnection,
    date: NaiveDate,
) -> Result<Option<HolidayRow>, sqlx::Error> {
    sqlx::query_as!(
        HolidayRow,
        "DELETE FROM holidays WHERE holiday_date = $1 RETURNING holiday_date, name",
        date,
    )
    .fetch_optional(conn)
    .await
}

/// Every holiday, in date order.
pub async fn list_holidays(conn: &mut PgConnection) -> Result<Vec<HolidayRow>, sqlx::Error> {
    sqlx::query_as!(
        HolidayRow,
        "SELECT holiday_date, name FROM holidays ORDER BY holiday_date"
    )
    .fetch_all(conn)
    .await
}

/// Holidays from `from` on (a payout never looks back), as a set.
pub async fn holidays_from(
    conn: &mut PgConnection,
    from: NaiveDate,
) -> Result<BTreeSet<NaiveDate>, sqlx::Error> {
    let dates = sqlx::query_scalar!(
        "SELECT holiday_date FROM holidays WHERE holiday_date >= $1",
        from,
    )
    .fetch_all(conn)
    .await?;
    Ok(dates.into_iter().collect())
}
