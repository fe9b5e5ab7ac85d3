//! The model's static description: the builder type with `INPUT_WIDTH` and `spec()`, and its
//! `MtlModel` impl holding the `ModelSpec` (features with offsets, tasks, the body's structure,
//! the embedded schema text).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{private, Names};
use crate::model::{Body, FeatureKind, Mlp, Model};

/// An MLP as a runtime `spec::MlpSpec` value.
pub fn mlp_spec(m: &Mlp) -> TokenStream {
    let p = private();
    let widths = &m.widths;
    let act = format_ident!("{}", m.activation.type_name());
    let (dropout, batch_norm, linear_last) = (m.dropout, m.batch_norm, m.no_activation_last_layer);
    quote! {
        #p::spec::MlpSpec {
            widths: &[#(#widths),*], activation: #p::spec::Activation::#act, dropout: #dropout,
            batch_norm: #batch_norm, no_activation_last_layer: #linear_last,
        }
    }
}

/// The body's structure as a runtime `spec::BodySpec` value.
fn body_spec(body: &Body) -> TokenStream {
    let p = private();
    match body {
        Body::Mlp(m) => {
            let m = mlp_spec(m);
            quote!(#p::spec::BodySpec::Mlp(#m))
        }
        Body::Identity => quote!(#p::spec::BodySpec::Identity),
        Body::Custom { .. } => quote!(#p::spec::BodySpec::Custom),
        Body::Moe(moe) => {
            let l = moe.layout();
            let kind = format_ident!("{}", format!("{:?}", l.kind));
            let gate_input = format_ident!("{}", format!("{:?}", l.gate_input));
            let (experts, task_experts, levels, shared_gate) =
                (l.experts, l.task_experts, l.levels, l.shared_gate);
            let expert = mlp_spec(&moe.expert);
            let gate = match &moe.gate {
                Some(g) => {
                    let g = mlp_spec(g);
                    quote!(::core::option::Option::Some(#g))
                }
                None => quote!(::core::option::Option::None),
            };
            let temperature = moe.temperature;
            quote! {
                #p::spec::BodySpec::Moe(#p::spec::MoeSpec {
                    layout: #p::spec::MoeLayout {
                        kind: #p::spec::MoeKind::#kind, experts: #experts,
                        task_experts: #task_experts, levels: #levels, shared_gate: #shared_gate,
                        gate_input: #p::spec::GateInput::#gate_input,
                    },
                    expert: #expert, gate: #gate, temperature: #temperature,
                })
            }
        }
    }
}

/// The builder struct, its inherent constants and its `MtlModel` impl.
pub fn expand(model: &Model, names: &Names) -> TokenStream {
    let p = private();
    let Names { model: name, .. } = names;
    let name_str = name.to_string();
    let (vis, attrs) = (&model.vis, &model.attrs);
    let input_width = model.input_width();
    let body_width = model.body_width();
    let mut offset = 0usize;
    let features = model.features.iter().map(|f| {
        let fname = &f.name;
        let (kind, cardinality, dim, table, list) = match &f.kind {
            FeatureKind::Categorical {
                cardinality,
                dim,
                table,
                list,
            } => (
                quote!(Categorical),
                *cardinality as usize,
                *dim,
                table.clone(),
                *list,
            ),
            FeatureKind::Continuous { width } => {
                (quote!(Continuous), 0usize, *width, fname.clone(), None)
            }
        };
        let max_len = list.map_or(0, |l| l.max_len);
        let combiner = format_ident!(
            "{}",
            match list.map(|l| l.combiner).unwrap_or_default() {
                mtl_runtime::spec::Combiner::Sum => "Sum",
                mtl_runtime::spec::Combiner::Mean => "Mean",
                mtl_runtime::spec::Combiner::Sqrtn => "Sqrtn",
            }
        );
        let off = offset;
        offset += dim;
        quote! {
            #p::spec::FeatureSpec {
                name: #fname, kind: #p::spec::FeatureKind::#kind, cardinality: #cardinality,
                dim: #dim, offset: #off, table: #table, max_len: #max_len,
                combiner: #p::spec::Combiner::#combiner,
            }
        }
    });
    let tasks_spec = model.tasks.iter().map(|t| {
        let tname = &t.name;
        let output_name = format!("{}/{}", t.name, t.kind.suffix());
        let target = &t.target;
        let kind = match t.kind {
            crate::model::TaskKind::Binary => quote!(#p::spec::TaskKind::Binary),
            crate::model::TaskKind::Regression => quote!(#p::spec::TaskKind::Regression),
            crate::model::TaskKind::Multiclass(classes) => {
                quote!(#p::spec::TaskKind::Multiclass { classes: #classes })
            }
        };
        let lw = t.loss_weight as f32;
        let cw = match t.class_weights {
            Some((n, q)) => {
                let (n, q) = (n as f32, q as f32);
                quote!(::core::option::Option::Some((#n, #q)))
            }
            None => quote!(::core::option::Option::None),
        };
        let sw = &t.sample_weights;
        // `given` alone is ESMM's product; with `transfer = aitm` it names AITM's parent.
        let none = quote!(::core::option::Option::None);
        let (given, aitm) = match (&t.given, &t.transfer) {
            (Some(g), None) => {
                let parent = &g.parent;
                (quote!(::core::option::Option::Some(#parent)), none.clone())
            }
            (Some(g), Some(transfer)) => {
                let parent = &g.parent;
                let calibration = transfer.calibration as f32;
                (
                    none.clone(),
                    quote!(::core::option::Option::Some(#p::spec::AitmSpec {
                        parent: #parent,
                        calibration: #calibration,
                    })),
                )
            }
            (None, _) => (none.clone(), none.clone()),
        };
        let metrics = &t.metrics;
        let weighted = &t.weighted_metrics;
        let tower = match &t.tower {
            Some(m) => {
                let m = mlp_spec(m);
                quote!(::core::option::Option::Some(#m))
            }
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #p::spec::TaskSpec {
                name: #tname, output_name: #output_name, target: #target, kind: #kind,
                loss_weight: #lw, class_weights: #cw, sample_weights: &[#(#sw),*],
                metrics: &[#(#metrics),*], weighted_metrics: &[#(#weighted),*], tower: #tower,
                given: #given, aitm: #aitm,
            }
        }
    });
    let body_desc = model.body_description();
    let body_spec = body_spec(&model.body);
    let loss_balancing = match model.loss_balancing {
        mtl_runtime::spec::LossBalancing::Fixed => quote!(#p::spec::LossBalancing::Fixed),
        mtl_runtime::spec::LossBalancing::Uncertainty => {
            quote!(#p::spec::LossBalancing::Uncertainty)
        }
        mtl_runtime::spec::LossBalancing::GradNorm { alpha_milli } => {
            quote!(#p::spec::LossBalancing::GradNorm { alpha_milli: #alpha_milli })
        }
    };
    let (schema_path, schema_text) = match &model.schema {
        Some(s) => {
            let (path, abs) = (&s.path, &s.absolute);
            (
                quote!(::core::option::Option::Some(#path)),
                quote!(::core::option::Option::Some(include_str!(#abs))),
            )
        }
        None => (
            quote!(::core::option::Option::None),
            quote!(::core::option::Option::None),
        ),
    };

    quote! {
        #(#attrs)*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #vis struct #name;

        impl #name {
            /// Width of the `[B, INPUT_WIDTH]` network input.
            pub const INPUT_WIDTH: usize = #input_width;
            /// The static description of this model (features, tasks, schema).
            pub fn spec() -> &'static #p::spec::ModelSpec {
                <Self as #p::MtlModel>::SPEC
            }
        }

        impl #p::MtlModel for #name {
            const SPEC: &'static #p::spec::ModelSpec = &#p::spec::ModelSpec {
                name: #name_str,
                features: &[#(#features),*],
                input_width: #input_width,
                body: #body_desc,
                body_spec: #body_spec,
                body_width: #body_width,
                tasks: &[#(#tasks_spec),*],
                schema_path: #schema_path,
                schema_text: #schema_text,
                loss_balancing: #loss_balancing,
            };
            const INPUT_WIDTH: usize = #input_width;
        }
    }
}
