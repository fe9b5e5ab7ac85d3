//! Compile-fail cases of the `mtl_model!` DSL: every misuse is a spanned, explained error.
//!
//! Each `tests/ui/<category>/<misuse>.rs` has the compiler output it must produce next to it
//! (`.stderr`). The text depends on the compiler version; this project's toolchain is the
//! reference. Regenerate after an intended change with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn dsl_misuse_is_a_compile_error() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
