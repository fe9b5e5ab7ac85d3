//! Code generation for mixture-of-experts bodies: `mmoe`, `moe`, `cgc` and `ple`.
//!
//! All four are stacks of levels (one level unless `ple`). Level l holds:
//! - its experts: at level 1 ONE group `[B, IN] → [B, K·H]` over the body input x (K =
//!   T·task_experts + shared experts, task blocks first in task order, then the shared ones);
//!   from level 2 on one group per source — task t's experts read task t's previous output, the
//!   shared experts the previous shared output — joined into the same `[B, K·H]` layout. A
//!   group's first layer is one `Dense` K times as wide; deeper experts (`expert = mlp[H1, H]`)
//!   continue with `GroupedDense` layers, each expert reading only its own columns;
//! - its gates: one per task (over the task's own + the shared experts, so tasks never see each
//!   other's experts) and/or a shared gate over all K;
//! - one mixing of all its gates (`nn::mix_gates`, told which experts each gate weighs).
//!
//! A value with several consumers (x, an intermediate level's outputs) goes through
//! `nn::Fanout` so exactly one consumer carries its gradient tape. Gates and outputs nobody reads
//! are not created at all, so every parameter receives a gradient — except the shared gate of a
//! lone `cgc(shared_gate = true)`, which (as in Merlin) only feeds the gate metrics.
//!
//! Field layout (and safetensors names): `mmoe`/`moe`/`cgc` keep `experts` and `gates.<gate>` on
//! the network; `ple` has `level_<l>.experts[.<group>]` and `level_<l>.gates.<gate>`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::network::{experts_type, mlp_type, visit_fields};
use super::private;
use mtl_runtime::spec::{GateColumns, MoeKind};

use crate::model::{Mlp, Model, Moe};

/// What the generated MoE body is made of, for `network::body` to place.
pub struct MoeCode {
    /// Network fields.
    pub fields: TokenStream,
    pub field_names: Vec<String>,
    /// Level/gate/expert structs and their `TensorCollection` impls.
    pub items: TokenStream,
    /// Inference: binds `__h_<task>` from `x`.
    pub infer: TokenStream,
    /// Training: binds `__h_<task>` from a taped `x`.
    pub train: TokenStream,
    /// The `try_gate_weights` method of `TaskNetwork`.
    pub gate_weights: TokenStream,
    /// `summary::Block` expressions.
    pub summary: Vec<TokenStream>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Infer,
    Train,
    /// Inference that collects every gate's weights instead of producing outputs.
    Gates,
}

/// One gate of a level.
struct GateDef {
    /// Field name in the level's gates struct.
    field: Ident,
    /// Metric name (`gate_click/binary_output`, `shared_gate`, `level_1/...` for PLE).
    metric: String,
    /// Experts it weighs.
    experts: usize,
    /// Where its experts sit among all K of the level, in the order of its weights.
    columns: GateColumns,
    /// The task it serves (`None`: the shared gate).
    task: Option<usize>,
    /// Part of the forward pass (false: metrics only).
    in_forward: bool,
}

struct Ctx<'a> {
    model: &'a Model,
    moe: &'a Moe,
    tasks: Vec<Ident>,
    k: usize,
    h: usize,
}

impl Ctx<'_> {
    fn ple(&self) -> bool {
        self.moe.kind == MoeKind::Ple
    }

    /// `self` or `self.level_<l>`.
    fn path(&self, l: usize) -> TokenStream {
        if self.ple() {
            let f = format_ident!("level_{}", l);
            quote!(self.#f)
        } else {
            quote!(self)
        }
    }

    /// Dotted name prefix for the summary (`""` or `level_<l>.`).
    fn label(&self, l: usize) -> String {
        if self.ple() {
            format!("level_{l}.")
        } else {
            String::new()
        }
    }

    fn gates_ty(&self, l: usize) -> Ident {
        let name = &self.model.name;
        if self.ple() {
            format_ident!("{}Level{}Gates", name, l)
        } else {
            format_ident!("{}Gates", name)
        }
    }

    fn gates(&self, l: usize) -> Vec<GateDef> {
        let moe = self.moe;
        let t_count = self.tasks.len();
        let prefix = if self.ple() {
            format!("level_{l}/")
        } else {
            String::new()
        };
        let mut out = Vec::new();
        if moe.has_task_gates(l) {
            for (i, (task, ident)) in self.model.tasks.iter().zip(&self.tasks).enumerate() {
                let columns = moe.layout().task_gate_ranges(i, t_count);
                out.push(GateDef {
                    field: ident.clone(),
                    metric: format!("{prefix}gate_{}/{}", task.name, task.kind.suffix()),
                    experts: moe.gate_experts(),
                    columns,
                    task: Some(i),
                    in_forward: true,
                });
            }
        }
        if moe.has_shared_gate(l) {
            out.push(GateDef {
                field: format_ident!("shared"),
                metric: format!("{prefix}shared_gate"),
                experts: self.k,
                columns: GateColumns::all(self.k),
                task: None,
                in_forward: moe.layout().shared_gate_in_forward(l),
            });
        }
        out
    }

    /// The gate block type and its output width for gates reading `input` columns.
    fn gate_block(&self, input: usize) -> (usize, TokenStream) {
        let p = private();
        match &self.moe.gate {
            Some(m) => (m.out_width(), mlp_type(m, input)),
            None => (input, quote!(#p::nn::Identity)),
        }
    }

    fn gate_ty(&self, l: usize, g: &GateDef) -> TokenStream {
        let p = private();
        let gi = self.moe.gate_input_width(l, self.model.input_width());
        let (gw, block) = self.gate_block(gi);
        let (kg, temp) = (g.experts, self.moe.temperature);
        quote!(#p::nn::Gate<#gw, #kg, #temp, #block, E, D>)
    }

    /// An expert group of `count` experts reading `input` columns, side by side.
    fn experts_ty(&self, count: usize, input: usize) -> TokenStream {
        experts_type(&self.moe.expert, input, count)
    }

    /// Expert groups of a level ≥ 2: `(field, count)`, tasks first, then `shared`.
    fn groups(&self) -> Vec<(Ident, usize)> {
        let mut g = Vec::new();
        if self.moe.task_experts > 0 {
            g.extend(
                self.tasks
                    .iter()
                    .map(|t| (t.clone(), self.moe.task_experts)),
            );
        }
        if self.moe.experts > 0 {
            g.push((format_ident!("shared"), self.moe.experts));
        }
        g
    }
}

pub fn expand(model: &Model, moe: &Moe, tasks: &[Ident]) -> MoeCode {
    let ctx = Ctx {
        model,
        moe,
        tasks: tasks.to_vec(),
        k: moe.total_experts(tasks.len()),
        h: moe.expert.out_width(),
    };
    let (fields, field_names, items) = structs(&ctx);
    MoeCode {
        fields,
        field_names,
        items,
        infer: forward(&ctx, Mode::Infer),
        train: forward(&ctx, Mode::Train),
        gate_weights: gate_weights(&ctx),
        summary: summary(&ctx),
    }
}

/// The structs: gates per level, PLE levels and their expert groups.
fn structs(ctx: &Ctx) -> (TokenStream, Vec<String>, TokenStream) {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let vis = &ctx.model.vis;
    let name = &ctx.model.name;
    let input_width = ctx.model.input_width();
    let mut items = TokenStream::new();
    let mut level_fields = Vec::new();
    // `#[derive]` + `TensorCollection` for a struct of named sub-modules.
    let collection = |ty: &Ident, doc: String, fields: &[(Ident, TokenStream)]| -> TokenStream {
        let names: Vec<&Ident> = fields.iter().map(|(f, _)| f).collect();
        let types: Vec<&TokenStream> = fields.iter().map(|(_, t)| t).collect();
        let visit_list: Vec<(String, Ident)> = fields
            .iter()
            .map(|(f, _)| (f.to_string(), f.clone()))
            .collect();
        let visit = visit_fields(ty, &visit_list, quote!());
        quote! {
            #[doc = #doc]
            #[derive(Debug, Clone)]
            #vis struct #ty<E: #tp::Dtype, D: #tp::Device<E>> {
                #(pub #names: #types,)*
            }
            impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #ty<E, D> {
                type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #ty<E2, D2>;
                #visit
            }
        }
    };
    for l in 1..=ctx.moe.levels {
        let gates_ty = ctx.gates_ty(l);
        let gate_fields: Vec<(Ident, TokenStream)> = ctx
            .gates(l)
            .iter()
            .map(|g| (g.field.clone(), ctx.gate_ty(l, g)))
            .collect();
        items.extend(collection(
            &gates_ty,
            format!(
                "The gates of level {l} of `{name}`: `softmax(W·gate(x) / τ)` over its experts."
            ),
            &gate_fields,
        ));
        let experts_ty = if l == 1 {
            ctx.experts_ty(ctx.k, input_width)
        } else {
            let ty = format_ident!("{}Level{}Experts", name, l);
            let groups: Vec<(Ident, TokenStream)> = ctx
                .groups()
                .into_iter()
                .map(|(f, count)| (f, ctx.experts_ty(count, ctx.h)))
                .collect();
            items.extend(collection(
                &ty,
                format!("The expert groups of level {l} of `{name}`, each one batched MLP."),
                &groups,
            ));
            quote!(#ty<E, D>)
        };
        if ctx.ple() {
            let level_ty = format_ident!("{}Level{}", name, l);
            items.extend(collection(
                &level_ty,
                format!("Level {l} of the PLE body of `{name}`."),
                &[
                    (format_ident!("experts"), experts_ty),
                    (format_ident!("gates"), quote!(#gates_ty<E, D>)),
                ],
            ));
            level_fields.push((format_ident!("level_{}", l), quote!(#level_ty<E, D>)));
        } else {
            level_fields.push((format_ident!("experts"), experts_ty));
            level_fields.push((format_ident!("gates"), quote!(#gates_ty<E, D>)));
        }
    }
    let names: Vec<String> = level_fields.iter().map(|(f, _)| f.to_string()).collect();
    let (idents, types): (Vec<Ident>, Vec<TokenStream>) = level_fields.into_iter().unzip();
    (quote!(#(pub #idents: #types,)*), names, items)
}

/// The body's forward pass in `mode`. Infer/Train bind `__h_<task>`; Gates fills `__gates`.
fn forward(ctx: &Ctx, mode: Mode) -> TokenStream {
    let p = private();
    let moe = ctx.moe;
    let levels = moe.levels;
    let (k, h) = (ctx.k, ctx.h);
    let kh = k * h;
    let fwd = if mode == Mode::Train {
        quote!(try_forward_mut)
    } else {
        quote!(try_forward)
    };
    let weights = if mode == Mode::Train {
        quote!(try_weights_mut)
    } else {
        quote!(try_weights)
    };
    let realize = quote!(.try_realize::<(usize, usize)>().unwrap_or_else(|_| unreachable!()));
    let prev = |l: usize, field: &Ident| format_ident!("__l{}_{}", l - 1, field);
    let mut code = quote!(let mut __x = #p::nn::Fanout::new(x););
    for l in 1..=levels {
        let path = ctx.path(l);
        let last = l == levels;
        let gates: Vec<GateDef> = ctx
            .gates(l)
            .into_iter()
            .filter(|g| g.in_forward || mode == Mode::Gates)
            .collect();
        let mixes = !(last && mode == Mode::Gates);
        let e = format_ident!("__e{}", l);
        // Experts (not needed when only the last level's gate weights are wanted).
        if mixes {
            if l == 1 {
                code.extend(quote!(let #e = #path.experts.#fwd(__x.next())?;));
            } else {
                let groups = ctx.groups();
                let parts: Vec<TokenStream> = groups
                    .iter()
                    .map(|(f, _)| {
                        let input = prev(l, f);
                        quote!(#path.experts.#f.#fwd(#input.next())?)
                    })
                    .collect();
                if parts.len() == 1 {
                    let part = &parts[0];
                    code.extend(quote!(let #e = #part;));
                } else {
                    code.extend(quote! {
                        let #e = #p::nn::concat_columns::<#kh, E, D, _>(::std::vec![#(#parts #realize),*])?;
                    });
                }
            }
        }
        // Gate weights, each placed among all K experts.
        let mut mixed_gates = Vec::new();
        for g in &gates {
            let field = &g.field;
            let input = if moe.layout().gates_read_input(l) {
                quote!(__x.next())
            } else {
                let src = prev(
                    l,
                    &g.task
                        .map_or(format_ident!("shared"), |t| ctx.tasks[t].clone()),
                );
                quote!(#src.next())
            };
            let w = format_ident!("__w{}_{}", l, field);
            code.extend(quote!(let #w = #path.gates.#field.#weights(#input)?;));
            if mode == Mode::Gates {
                let metric = &g.metric;
                code.extend(quote!(__gates.push((#metric, #w.clone() #realize));));
            }
            if g.in_forward && mixes {
                mixed_gates.push((g, w));
            }
        }
        if !mixes {
            continue;
        }
        // One batched mixing; then bind each output for its consumers.
        let ng = mixed_gates.len();
        let outs: Vec<Ident> = mixed_gates
            .iter()
            .map(|(g, _)| format_ident!("__m{}_{}", l, g.field))
            .collect();
        let ws = mixed_gates.iter().map(|(_, w)| w);
        let columns = mixed_gates.iter().map(|(g, _)| {
            let GateColumns {
                own_start,
                own_len,
                shared_start,
                shared_len,
            } = g.columns;
            quote!(#p::spec::GateColumns {
                own_start: #own_start, own_len: #own_len,
                shared_start: #shared_start, shared_len: #shared_len,
            })
        });
        code.extend(quote! {
            let [#(#outs),*] = #p::nn::mix_gates::<#ng, #k, #h, #kh, E, D, _>(
                #e,
                [#(#ws #realize),*],
                [#(#columns),*],
            )?;
        });
        for ((g, _), out) in mixed_gates.iter().zip(&outs) {
            if !last {
                let bound = format_ident!("__l{}_{}", l, g.field);
                code.extend(quote!(let mut #bound = #p::nn::Fanout::new(#out);));
            } else if let Some(t) = g.task {
                let hi = format_ident!("__h_{}", ctx.tasks[t]);
                code.extend(quote!(let #hi = #out;));
            } else {
                // `moe`: the one shared gate's output feeds every task.
                code.extend(quote!(let mut __shared = #p::nn::Fanout::new(#out);));
                for t in &ctx.tasks {
                    let hi = format_ident!("__h_{}", t);
                    code.extend(quote!(let #hi = __shared.next();));
                }
            }
        }
    }
    code
}

fn gate_weights(ctx: &Ctx) -> TokenStream {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let input_width = ctx.model.input_width();
    let name_str = ctx.model.name.to_string();
    let body = forward(ctx, Mode::Gates);
    quote! {
        // Intermediate values that only the training pass consumes may go unread here.
        #[allow(unused_variables, unused_mut)]
        fn try_gate_weights(
            &self,
            x: #p::DynBatch<E, D>,
        ) -> ::core::result::Result<#p::NamedGates<E, D>, D::Err> {
            #[allow(unused_imports)]
            use #tp::{Module as _, RealizeTo as _, HasShape as _};
            let x = x
                .try_realize::<(usize, #tp::Const<#input_width>)>()
                .unwrap_or_else(|x| panic!("{}: the input must be [B, {}], got {:?}", #name_str, #input_width, x.shape()));
            let mut __gates: #p::NamedGates<E, D> = ::std::vec::Vec::new();
            #body
            ::core::result::Result::Ok(__gates)
        }
    }
}

fn summary(ctx: &Ctx) -> Vec<TokenStream> {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let moe = ctx.moe;
    let input_width = ctx.model.input_width();
    let mut blocks = Vec::new();
    let gate_desc = |experts: usize| {
        format!(
            "gate {} -> softmax over {} (temperature {})",
            moe.gate.as_ref().map_or("none".to_string(), Mlp::describe),
            experts,
            f64::from(moe.temperature) / 1000.0
        )
    };
    for l in 1..=moe.levels {
        let label = ctx.label(l);
        let path = ctx.path(l);
        let experts: Vec<(String, TokenStream, usize, usize)> = if l == 1 {
            vec![(
                format!("{label}experts"),
                quote!(#path.experts),
                input_width,
                ctx.k,
            )]
        } else {
            ctx.groups()
                .into_iter()
                .map(|(f, count)| {
                    (
                        format!("{label}experts.{f}"),
                        quote!(#path.experts.#f),
                        ctx.h,
                        count,
                    )
                })
                .collect()
        };
        for (name, field, input, count) in experts {
            let desc = format!("{} experts {} (batched)", count, moe.expert.describe());
            let out = count * ctx.h;
            blocks.push(quote! {
                #p::summary::Block { name: #name, kind: #desc, input: #input, output: #out, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&#field) }
            });
        }
        let gi = moe.gate_input_width(l, input_width);
        for g in ctx.gates(l) {
            let field = &g.field;
            let name = format!("{label}gates.{field}");
            let mut desc = gate_desc(g.experts);
            if !g.in_forward {
                desc.push_str(", metrics only");
            }
            let kg = g.experts;
            blocks.push(quote! {
                #p::summary::Block { name: #name, kind: #desc, input: #gi, output: #kg, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&#path.gates.#field) }
            });
        }
    }
    blocks
}
