// `sqlx::migrate!` embeds `migrations/` when the crate compiles, but cargo tracks only the files
// it read: a migration added later would not rebuild the crate, and a binary built after it would
// migrate without it. Watching the directory makes a new file a change.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
