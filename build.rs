//! Generates the C header from `src/ffi` with cbindgen and sets the shared
//! library's SONAME. The header goes to OUT_DIR; `scripts/gen-header.sh`
//! copies it to include/smtpc.h, and a test fails when the two differ.

use std::env;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("smtpc.h");
    let version = env::var("CARGO_PKG_VERSION").unwrap();
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    config.after_includes = Some(format!(
        "\n/* The version of the header; smtpc_version() returns the library's. */\n\
         #define SMTPC_VERSION_MAJOR {major}\n\
         #define SMTPC_VERSION_MINOR {minor}\n\
         #define SMTPC_VERSION_PATCH {patch}\n\
         #define SMTPC_VERSION_STRING \"{version}\""
    ));
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write_to_file(&out);
    // cbindgen closes its `extern "C"` guard with `// __cplusplus`: a C99
    // comment, which C89 with -pedantic refuses.
    let header = std::fs::read_to_string(&out).expect("the header was written");
    std::fs::write(&out, header.replace("// __cplusplus", "/* __cplusplus */"))
        .expect("the header is writable");

    // Packagers ship libsmtpc.so.0; the ABI major is 0 while the API is v0.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsmtpc.so.{major}");
    link_soname_in_build_tree(&major);

    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
}

/// Programs linked against target/<profile>/libsmtpc.so ask the loader for
/// its SONAME, libsmtpc.so.N: a symlink beside it lets them run from the
/// build tree (examples, C tests, bindings). The link may dangle until the
/// library itself is linked, moments later.
fn link_soname_in_build_tree(major: &str) {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    // OUT_DIR is target/<profile>/build/smtpc-<hash>/out.
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    let link = profile_dir.join(format!("libsmtpc.so.{major}"));
    if std::fs::symlink_metadata(&link).is_err() {
        let _ = std::os::unix::fs::symlink("libsmtpc.so", &link);
    }
}
