//! The committed header is the generated one: run scripts/gen-header.sh
//! after changing src/ffi.

#[test]
fn committed_header_equals_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/smtpc.h"));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/smtpc.h"))
            .expect("include/smtpc.h exists");
    assert!(
        committed == generated,
        "include/smtpc.h is stale: run scripts/gen-header.sh and commit it"
    );
}

#[test]
fn header_version_macros_match_the_crate_version() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/smtpc.h"));
    let expect = format!(
        "#define SMTPC_VERSION_STRING \"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(header.contains(&expect), "missing: {expect}");
    for (part, value) in [
        ("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(header.contains(&format!("#define SMTPC_VERSION_{part} {value}\n")));
    }
}

#[test]
fn every_exported_function_is_documented_in_the_header() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/smtpc.h"));
    let lines: Vec<&str> = header.lines().collect();
    let mut functions = 0;
    for (i, line) in lines.iter().enumerate() {
        let is_decl =
            (line.contains(" smtp_session_") || line.contains(" smtpc_") || line.contains("*smtp"))
                && line.contains('(')
                && !line.starts_with(' ')
                && !line.starts_with("typedef")
                && !line.starts_with('#')
                && !line.starts_with("/*")
                && !line.starts_with(" *");
        if is_decl {
            functions += 1;
            assert!(
                i > 0 && lines[i - 1].trim_start().starts_with("*/"),
                "{line} has no doc comment"
            );
        }
    }
    assert!(functions > 40, "found only {functions} functions");
}
