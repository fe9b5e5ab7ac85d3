//! The `mtl_model!` DSL reference (written below).
