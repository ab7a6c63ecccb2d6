//! cli.rs (included by the config_parse target) names the commit it was
//! built from; here that is no commit in particular.
fn main() {
    println!("cargo:rustc-env=HDRTAP_COMMIT=fuzz");
}
