//! The `mtl_model!` DSL (in progress; see the README's status table).
