//! The DSL's words: sections, body kinds and their options, limits. One place, so that the
//! checks, their messages and the documentation name the same things.

use mtl_runtime::spec::MoeKind;

/// The sections of a model.
pub const SECTIONS: [&str; 6] = ["schema", "inputs", "exclude", "body", "towers", "tasks"];

/// The most layers an MLP has (dfdx implements modules for tuples of up to 6).
pub const MAX_MLP_LAYERS: usize = 6;

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
