//! Build script for the C ABI (cargo feature `ffi`, on by default; without it this script
//! does nothing and cbindgen is not even compiled).
//!
//! 1. Generates the C header from the crate's sources with cbindgen into
//!    `$OUT_DIR/tokenward.h`, always.
//! 2. Copies it to `include/tokenward.h` only when building a checkout of the tokenward
//!    repository itself (see [`writes_source_tree`]): the header is committed, CI rebuilds and
//!    fails on `git diff`, so the committed header is always the truth. A build of the
//!    published crate (as a dependency, by `cargo package`'s verification, from a vendored
//!    copy) never writes outside `OUT_DIR`.
//! 3. On Linux, gives the shared library the SONAME `libtokenward.so.<ABI>`, where `<ABI>` is
//!    `TW_ABI_VERSION` as cbindgen found it in the sources: the header, `tw_abi_version()` and
//!    the SONAME cannot disagree.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ffi")]
    ffi::main();
}

#[cfg(feature = "ffi")]
mod ffi {
    use std::env;
    use std::path::{Path, PathBuf};

    /// Overrides the checkout detection: `1` writes `include/tokenward.h`, `0` never does.
    const WRITE_HEADER_ENV: &str = "TOKENWARD_WRITE_HEADER";

    pub fn main() {
        let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
        let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
        // cbindgen reads every module reachable from src/lib.rs (constants and types may live
        // outside src/ffi), so any source change may change the header.
        println!("cargo:rerun-if-changed=src");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        println!("cargo:rerun-if-env-changed={WRITE_HEADER_ENV}");

        let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
            .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
        // with_src parses src/lib.rs and follows its `mod` declarations without running
        // `cargo metadata`, which would resolve (and may write) a Cargo.lock in a registry
        // copy of this crate.
        let bindings = cbindgen::Builder::new()
            .with_config(config)
            .with_src(root.join("src").join("lib.rs"))
            .generate()
            .unwrap_or_else(|e| panic!("cbindgen could not generate the C header: {e}"));
        let mut text = Vec::new();
        bindings.write(&mut text);
        let text = String::from_utf8(text).expect("cbindgen writes UTF-8");

        let generated = out_dir.join("tokenward.h");
        std::fs::write(&generated, &text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", generated.display()));

        if writes_source_tree(&root) {
            let header = root.join("include").join("tokenward.h");
            // Rebuild when someone edits the committed header, so the CI check sees the
            // regenerated one. write_to_file leaves the file alone when nothing changed.
            println!("cargo:rerun-if-changed=include/tokenward.h");
            bindings.write_to_file(&header);
        }

        if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
            let abi = abi_version(&text);
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtokenward.so.{abi}");
        }
    }

    /// True when this build may refresh `include/tokenward.h` in the source tree: the
    /// manifest directory is a git checkout (`.git` is a directory, or a file in a worktree)
    /// and not one cargo unpacked itself (cargo marks its registry and git-dependency copies
    /// with `.cargo-ok`; a packaged crate has no `.git`). `TOKENWARD_WRITE_HEADER=1`/`0`
    /// overrides the guess either way.
    fn writes_source_tree(root: &Path) -> bool {
        match env::var(WRITE_HEADER_ENV).as_deref() {
            Ok("1") => true,
            Ok("0") => false,
            Ok(other) => panic!("{WRITE_HEADER_ENV} must be 1 or 0, not {other:?}"),
            Err(_) => root.join(".git").exists() && !root.join(".cargo-ok").exists(),
        }
    }

    /// The value of `#define TW_ABI_VERSION N` in the generated header.
    fn abi_version(header: &str) -> u32 {
        header
            .lines()
            .find_map(|line| line.strip_prefix("#define TW_ABI_VERSION "))
            .and_then(|value| value.trim().parse().ok())
            .expect("the generated header defines TW_ABI_VERSION as a number (src/ffi)")
    }
}
