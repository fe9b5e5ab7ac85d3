//! The `body` section and the MLP blocks (`body`, `towers`, experts, gates): `mlp[..]`,
//! `identity`, `custom(..)` and the mixture-of-experts kinds.

use super::options::{flag, positive_int, Options};
use super::Errors;
use mtl_runtime::spec::MoeKind;

use crate::keywords::{moe_kind, MAX_EXPERTS, MAX_LEVELS, MAX_MLP_LAYERS, MAX_WIDTH, MOE_KINDS};
use crate::model::{Activation, Body, GateInput, Mlp, Moe};
use crate::parse::{Arg, Call, Value};

pub fn mlp_value(value: &Value, what: &str, errors: &mut Errors) -> Option<Mlp> {
    match value {
        Value::Call(call) if call.name == "mlp" => mlp(call, what, errors),
        other => {
            errors.at(
                other.span(),
                format!("{what} must be an MLP, e.g. `mlp[32, 16]`"),
            );
            None
        }
    }
}

pub fn mlp(call: &Call, what: &str, errors: &mut Errors) -> Option<Mlp> {
    let Some((bracket_span, items)) = &call.brackets else {
        errors.at(
            call.name.span(),
            "an MLP lists its layer widths: `mlp[32, 16]`",
        );
        return None;
    };
    let mut ok = true;
    if items.is_empty() {
        errors.at(
            *bracket_span,
            "an MLP needs at least one layer: `mlp[32, 16]`",
        );
        ok = false;
    }
    if items.len() > MAX_MLP_LAYERS {
        errors.at(
            *bracket_span,
            format!(
                "an MLP has at most {MAX_MLP_LAYERS} layers here ({} given)",
                items.len()
            ),
        );
        ok = false;
    }
    let mut widths = Vec::new();
    for item in items {
        match item {
            Value::Int {
                lit,
                negative: false,
                ..
            } => {
                match lit.base10_parse::<u128>() {
                    Ok(0) => {
                        errors.at(lit.span(), "a layer width must be at least 1");
                        ok = false;
                    }
                    Ok(w) if w > MAX_WIDTH as u128 => {
                        errors.at(lit.span(), format!("a layer width is at most {MAX_WIDTH} (larger layers cannot be built)"));
                        ok = false;
                    }
                    Ok(w) => widths.push(w as usize),
                    Err(e) => {
                        errors.at(lit.span(), e);
                        ok = false;
                    }
                }
            }
            other => {
                errors.at(other.span(), "a layer width is a positive integer");
                ok = false;
            }
        }
    }
    let mut opts = Options::new(call, what, errors);
    let activation = match opts.take("activation") {
        Some((key, Some(v))) => {
            match v.as_ident().and_then(|i| Activation::parse(&i.to_string())) {
                Some(a) => a,
                None => {
                    let shown = v
                        .as_ident()
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| v.describe().to_string());
                    errors.at(
                        v.span(),
                        format!(
                            "unknown activation `{shown}`; expected one of: {}",
                            Activation::NAMES.join(", ")
                        ),
                    );
                    let _ = key;
                    Activation::Relu
                }
            }
        }
        Some((key, None)) => {
            errors.at(
                key.span(),
                "`activation` needs a value: `activation = relu`",
            );
            Activation::Relu
        }
        None => Activation::Relu,
    };
    let dropout = match opts.take("dropout") {
        Some((key, v)) => match v.and_then(Value::as_f64) {
            Some(p) if (0.0..1.0).contains(&p) => {
                let permille = (p * 1000.0).round();
                if (permille - p * 1000.0).abs() > 1e-9 {
                    errors.at(
                        v.map_or(key.span(), Value::span),
                        "a dropout rate is a multiple of 0.001",
                    );
                }
                permille as u16
            }
            _ => {
                errors.at(
                    v.map_or(key.span(), Value::span),
                    "`dropout` is a rate in [0, 1), e.g. `dropout = 0.1`",
                );
                0
            }
        },
        None => 0,
    };
    let batch_norm = opts
        .take("batch_norm")
        .is_some_and(|(k, v)| flag(v, k, errors));
    let no_activation_last_layer = opts
        .take("no_activation_last_layer")
        .is_some_and(|(k, v)| flag(v, k, errors));
    opts.finish(
        &[
            "activation",
            "dropout",
            "batch_norm",
            "no_activation_last_layer",
        ],
        errors,
    );
    ok.then_some(Mlp {
        widths,
        activation,
        dropout,
        batch_norm,
        no_activation_last_layer,
    })
}

pub fn body(value: &Value, errors: &mut Errors) -> Option<Body> {
    let call = match value {
        Value::Call(c) => c,
        other => {
            errors.at(
                other.span(),
                "expected a body: `mlp[..]`, `identity` or `custom(Block, width = N)`",
            );
            return None;
        }
    };
    match call.name.to_string().as_str() {
        "mlp" => mlp(call, "the `mlp` body", errors).map(Body::Mlp),
        "identity" => {
            if let Some((span, _)) = &call.args {
                errors.at(*span, "`identity` takes no options");
            }
            Some(Body::Identity)
        }
        "custom" => {
            let Some((span, args)) = &call.args else {
                errors.at(
                    call.name.span(),
                    "write `custom(Block, width = N)`: your block type and its output width",
                );
                return None;
            };
            let mut ty = None;
            let mut width = None;
            for arg in args {
                match arg {
                    Arg::Positional(Value::Type(t)) if ty.is_none() => ty = Some(t.clone()),
                    Arg::Positional(v) if ty.is_none() => match v.as_ident() {
                        Some(i) => ty = Some(syn::parse_quote!(#i)),
                        None => errors.at(v.span(), "expected your block's type"),
                    },
                    Arg::Flag(i) if ty.is_none() => ty = Some(syn::parse_quote!(#i)),
                    Arg::Keyed { key, value } if key == "width" => {
                        width = positive_int(Some(value), key, MAX_WIDTH, errors)
                    }
                    Arg::Keyed { key, .. } | Arg::Flag(key) => errors.at(
                        key.span(),
                        format!("unknown option `{key}` for `custom`; accepted: width"),
                    ),
                    Arg::Positional(v) => errors.at(v.span(), "`custom` takes one block type"),
                }
            }
            if ty.is_none() {
                errors.at(
                    *span,
                    "`custom` needs your block's type first: `custom(Block, width = N)`",
                );
            }
            if width.is_none() && ty.is_some() {
                errors.at(
                    *span,
                    "`custom` needs the block's output width: `custom(Block, width = N)`",
                );
            }
            Some(Body::Custom {
                ty: ty?,
                width: width?,
            })
        }
        name if moe_kind(name).is_some() => {
            let kind = moe_kind(name)?;
            moe(call, kind, errors).map(Body::Moe)
        }
        other => {
            errors.at(call.name.span(), format!("unknown body `{other}`; expected `mlp[..]`, `identity`, `custom(Block, width = N)`, `mmoe(..)`, `moe(..)`, `cgc(..)` or `ple(..)`"));
            None
        }
    }
}

/// A count of experts (`task_experts`/`shared_experts`), 0 allowed; Merlin's default is 1.
fn expert_count(opts: &mut Options, key: &str, errors: &mut Errors) -> Option<usize> {
    match opts.take(key) {
        Some((
            k,
            Some(Value::Int {
                lit,
                negative: false,
                ..
            }),
        )) => match lit.base10_parse::<u128>() {
            Ok(v) if v > MAX_EXPERTS as u128 => {
                errors.at(lit.span(), super::options::too_large(key, MAX_EXPERTS));
                None
            }
            Ok(v) => Some(v as usize),
            Err(e) => {
                errors.at(k.span(), e);
                None
            }
        },
        Some((k, v)) => {
            errors.at(
                v.map_or(k.span(), Value::span),
                format!("`{key}` is a number of experts, e.g. `{key} = 2`"),
            );
            None
        }
        None => Some(1),
    }
}

fn moe(call: &Call, moe_kind: MoeKind, errors: &mut Errors) -> Option<Moe> {
    let kind = moe_kind.keyword();
    let what = format!("the `{kind}` body");
    let per_task = matches!(moe_kind, MoeKind::Cgc | MoeKind::Ple);
    let example = match moe_kind {
        MoeKind::Cgc => "task_experts = 2, shared_experts = 1, expert = mlp[16]",
        MoeKind::Ple => "levels = 2, task_experts = 2, shared_experts = 1, expert = mlp[16]",
        MoeKind::Mmoe | MoeKind::Moe => "experts = 4, expert = mlp[16]",
    };
    if let Some((span, _)) = &call.brackets {
        errors.at(
            *span,
            format!("`{kind}` takes options in parentheses: `{kind}({example})`"),
        );
    }
    let mut opts = Options::new(call, &what, errors);
    let levels = if moe_kind == MoeKind::Ple {
        match opts.take("levels") {
            Some((k, v)) => positive_int(v, k, MAX_LEVELS, errors),
            None => {
                errors.at(
                    call.name.span(),
                    "`ple` needs the number of levels: `levels = 2`",
                );
                None
            }
        }
    } else {
        Some(1)
    };
    let (experts, task_experts) = if per_task {
        let task = expert_count(&mut opts, "task_experts", errors);
        let shared = expert_count(&mut opts, "shared_experts", errors);
        if task == Some(0) && shared == Some(0) {
            errors.at(call.name.span(), format!("`{kind}` needs at least one expert: `task_experts` and `shared_experts` cannot both be 0"));
        }
        (shared, task.unwrap_or(0))
    } else {
        let experts = match opts.take("experts") {
            Some((k, v)) => positive_int(v, k, MAX_EXPERTS, errors),
            None => {
                errors.at(
                    call.name.span(),
                    format!("`{kind}` needs the number of experts: `experts = 4`"),
                );
                None
            }
        };
        (experts, 0)
    };
    let expert = match opts.take("expert") {
        Some((_, Some(v))) => mlp_value(v, "`expert`", errors),
        Some((k, None)) => {
            errors.at(k.span(), "`expert` needs a value: `expert = mlp[16]`");
            None
        }
        None => {
            errors.at(
                call.name.span(),
                format!("`{kind}` needs the expert block: `expert = mlp[16]`"),
            );
            None
        }
    };
    let gate = match opts.take("gate") {
        Some((_, Some(v))) if v.as_ident().is_some_and(|i| i == "none") => None,
        Some((_, Some(v))) => mlp_value(v, "`gate`", errors),
        Some((k, None)) => {
            errors.at(
                k.span(),
                "`gate` needs a value: `gate = mlp[16]` or `gate = none`",
            );
            None
        }
        None => None,
    };
    let temperature = match opts.take("temperature") {
        Some((k, v)) => match v.and_then(Value::as_f64) {
            Some(t) if t > 0.0 && t.is_finite() && t <= 65.0 => {
                let permille = (t * 1000.0).round();
                if (permille - t * 1000.0).abs() > 1e-9 || permille < 1.0 {
                    errors.at(
                        v.map_or(k.span(), Value::span),
                        "the temperature is a multiple of 0.001",
                    );
                }
                permille as u16
            }
            _ => {
                errors.at(v.map_or(k.span(), Value::span), "`temperature` must be a number above 0 (and at most 65), e.g. `temperature = 1.0`");
                1000
            }
        },
        None => 1000,
    };
    // Options of one kind only are taken for that kind; for the others `finish_hinted` names
    // the kind they belong to.
    let shared_gate = match opts.take_if(moe_kind == MoeKind::Cgc, "shared_gate") {
        Some((k, v)) => flag(v, k, errors),
        None => false,
    };
    let gate_input = match opts.take_if(moe_kind == MoeKind::Ple, "gate_input") {
        Some((k, v)) => match v
            .and_then(Value::as_ident)
            .map(|i| i.to_string())
            .as_deref()
        {
            Some("original") => GateInput::Original,
            Some("level") => GateInput::Level,
            _ => {
                errors.at(
                    v.map_or(k.span(), Value::span),
                    "`gate_input` is `original` (every gate reads the body input, as in Merlin) or `level` (gates read their level's input, as in the PLE paper)",
                );
                GateInput::Original
            }
        },
        None => GateInput::Original,
    };
    let accepted = MOE_KINDS
        .iter()
        .find(|(k, _)| *k == moe_kind)
        .map_or(&[][..], |(_, a)| a);
    opts.finish_hinted(
        accepted,
        |key| {
            let owners: Vec<String> = MOE_KINDS
                .iter()
                .filter(|(k, a)| *k != moe_kind && a.contains(&key))
                .map(|(k, _)| format!("`{}`", k.keyword()))
                .collect();
            (!owners.is_empty()).then(|| {
                format!(
                    "`{key}` is an option of {}, not of `{kind}`; `{kind}` accepts: {}",
                    owners.join(" and "),
                    accepted.join(", ")
                )
            })
        },
        errors,
    );
    let experts = experts?;
    if experts + task_experts == 0 {
        return None;
    }
    Some(Moe {
        kind: moe_kind,
        experts,
        task_experts,
        expert: expert?,
        gate,
        temperature,
        levels: levels?,
        shared_gate,
        gate_input,
    })
}
