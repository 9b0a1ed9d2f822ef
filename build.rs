//! Generates include/tokenward.h from src/ffi with cbindgen. The header is committed; CI
//! regenerates it and fails on any difference, so the header is always the truth.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = match cbindgen::Config::from_file(root.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(e) => {
            println!("cargo:warning=cbindgen.toml unreadable, header not regenerated: {e}");
            return;
        }
    };
    let header = root.join("include").join("tokenward.h");
    match cbindgen::Builder::new()
        .with_crate(&root)
        .with_config(config)
        .generate()
    {
        // write_to_file only touches the file when the content changed.
        Ok(bindings) => {
            bindings.write_to_file(&header);
        }
        Err(e) => {
            println!("cargo:warning=cbindgen failed, include/tokenward.h not regenerated: {e}")
        }
    }
}
