//! With the `sqlx` feature: the domain's status enums as Postgres `text` columns,
//! written by their stable names and refused on read when a row holds a name the
//! enum does not know. The rules stay pure; only the storage crate turns this on, and
//! uses [`text_column!`](crate::text_column) for its own status enums.

/// Maps an enum with `as_str(self) -> &'static str` and `parse(&str) -> Option<Self>`
/// to a Postgres `text` column (the caller depends on sqlx).
#[macro_export]
macro_rules! text_column {
    ($t:ty) => {
        impl sqlx::Type<sqlx::Postgres> for $t {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $t {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                <$t>::parse(text)
                    .ok_or_else(|| format!("{} {text:?} is unknown", stringify!($t)).into())
            }
        }

        impl sqlx::postgres::PgHasArrayType for $t {
            fn array_type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::postgres::PgHasArrayType>::array_type_info()
            }
        }
    };
}

text_column!(crate::lateness::BatchStatus);
text_column!(crate::lateness::BatchOrigin);
text_column!(crate::payout::PayoutStatus);
text_column!(crate::exception::ExceptionState);
text_column!(crate::exception::ExceptionKind);
text_column!(crate::exception::AttemptOutcome);
text_column!(crate::ledger::AccountKind);
