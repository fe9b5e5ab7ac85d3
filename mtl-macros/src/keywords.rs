//! The DSL's words: sections, body kinds and their options, limits. One place, so that the
//! checks, their messages and the documentation name the same things.

use mtl_runtime::spec::MoeKind;

/// The sections of a model.
pub const SECTIONS: [&str; 7] = [
    "schema",
    "inputs",
    "exclude",
    "body",
    "towers",
    "tasks",
    "loss_balancing",
];

/// The values of `loss_balancing:`.
pub const LOSS_BALANCING: [&str; 3] = ["fixed", "uncertainty", "gradnorm(alpha = 1.5)"];

/// The most layers an MLP has. dfdx implements modules for tuples of up to 6, so deeper MLPs
/// are tuples of tuples (parameter names `0.0.weight`, ..., `1.2.weight`).
pub const MAX_MLP_LAYERS: usize = 36;

/// Upper bounds of sizes: beyond them a model cannot be built on any machine, and the macro
/// itself would overflow or exhaust memory. Each is a spanned error, never a panic.
///
/// Layer widths, embedding dims and continuous widths.
pub const MAX_WIDTH: usize = 1 << 20;
/// Embedding-table rows: ids are 32-bit.
pub const MAX_CARDINALITY: usize = 1 << 32;
/// Positions a list input reads per row (`max_len`), as datasets hold at most.
pub const MAX_LIST_LEN: usize = 4096;
/// Classes of a multiclass task.
pub const MAX_CLASSES: usize = 1 << 20;
/// Experts of one kind (`experts`, `task_experts`, `shared_experts`).
pub const MAX_EXPERTS: usize = 1024;
/// PLE levels.
pub const MAX_LEVELS: usize = 16;

/// The mixture-of-experts body kinds and the options each accepts.
pub const MOE_KINDS: [(MoeKind, &[&str]); 4] = [
    (MoeKind::Mmoe, &["experts", "expert", "gate", "temperature"]),
    (MoeKind::Moe, &["experts", "expert", "gate", "temperature"]),
    (
        MoeKind::Cgc,
        &[
            "task_experts",
            "shared_experts",
            "expert",
            "gate",
            "temperature",
            "shared_gate",
        ],
    ),
    (
        MoeKind::Ple,
        &[
            "levels",
            "task_experts",
            "shared_experts",
            "expert",
            "gate",
            "temperature",
            "gate_input",
        ],
    ),
];

/// The mixture-of-experts kind a body keyword names.
pub fn moe_kind(keyword: &str) -> Option<MoeKind> {
    MOE_KINDS
        .iter()
        .map(|(k, _)| *k)
        .find(|k| k.keyword() == keyword)
}
