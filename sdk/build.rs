//! Decides whether the generated export macros are public (`#[macro_export]`).
//!
//! Every world exports `copra:plugin/plugin`, and wit-bindgen puts a public export macro
//! at the crate root under a name derived from that interface: two plugin kinds in one
//! build would define it twice. Public macros are only needed by a wasm build of one
//! plugin, so they are enabled exactly then (`copra_public_exports`). Native builds
//! (unit tests of several plugins at once) get crate-private macros and no clash; a wasm
//! build with several kinds gets one clear `compile_error!` from `lib.rs`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(copra_public_exports)");
    let wasm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32");
    let kinds = ["STORAGE", "FORMAT", "CONDITION", "NOTIFIER"]
        .iter()
        .filter(|kind| std::env::var_os(format!("CARGO_FEATURE_{kind}")).is_some())
        .count();
    if wasm && kinds == 1 {
        println!("cargo::rustc-cfg=copra_public_exports");
    }
}
