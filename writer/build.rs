fn main() {
    // `sqlx::migrate!` embeds the files it finds; a new one must rebuild the crate.
    println!("cargo:rerun-if-changed=migrations");
}
