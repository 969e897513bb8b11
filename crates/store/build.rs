// The migrations are embedded by `sqlx::migrate!`; rebuild when one is added or
// changed (on stable Rust the macro cannot tell Cargo itself).
//
// The checked statements (`sqlx::query!` and its kin) read the offline query data
// in `.sqlx/`, or describe each statement on the database of `DATABASE_URL` when
// `SQLX_OFFLINE` is false (`scripts/sqlx-prepare`); rebuild when that choice or the
// folder the data is written to changes, since the macros cannot tell Cargo either.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    println!("cargo:rerun-if-changed=.sqlx");
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE");
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE_DIR");
}
