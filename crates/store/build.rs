// The migrations are embedded by `sqlx::migrate!`; rebuild when one is added or
// changed (on stable Rust the macro cannot tell Cargo itself).
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
