//! Code generation: the builder type, the dfdx network, the outputs struct and the runtime
//! trait impls of a resolved [`Model`].
//!
//! Generated code names dfdx and the runtime only through `::mtl::__private`, so a user needs
//! no dfdx import and no dependency other than `mtl`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use crate::model::{Body, FeatureKind, Mlp, Model, Task};

mod moe;

/// Most fields dfdx's `visit_fields` takes in one tuple; longer lists are nested.
const TUPLE_MAX: usize = 6;

fn private() -> TokenStream {
    quote!(::mtl::__private)
}

/// The type of an MLP from `input` wide: a tuple of `Dense` layers.
fn mlp_type(m: &Mlp, input: usize) -> TokenStream {
    let p = private();
    let mut prev = input;
    let layers = m.widths.iter().enumerate().map(|(i, &w)| {
        let last = i + 1 == m.widths.len();
        let linear_last = last && m.no_activation_last_layer;
        let act = format_ident!(
            "{}",
            if linear_last {
                "Linear"
            } else {
                m.activation.type_name()
            }
        );
        let drop = if linear_last { 0 } else { m.dropout };
        let norm = if m.batch_norm {
            quote!(#p::dfdx::nn::modules::BatchNorm1D<#w, E, D>)
        } else {
            quote!(#p::nn::NoNorm)
        };
        let t = quote!(#p::nn::Dense<#prev, #w, #p::nn::#act, #drop, #norm, E, D>);
        prev = w;
        t
    });
    quote!((#(#layers,)*))
}

/// An MLP as a runtime `spec::MlpSpec` value.
fn mlp_spec(m: &Mlp) -> TokenStream {
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

fn head_type(input: usize, width: usize) -> TokenStream {
    let p = private();
    quote!(#p::nn::Dense<#input, #width, #p::nn::Linear, 0, #p::nn::NoNorm, E, D>)
}

/// `visit_fields` for named fields, nesting tuples of at most six.
fn visit_fields(ty: &Ident, fields: &[(String, Ident)], extra: TokenStream) -> TokenStream {
    let p = private();
    fn nest(items: Vec<TokenStream>) -> TokenStream {
        if items.len() <= TUPLE_MAX {
            return quote!((#(#items,)*));
        }
        let chunks: Vec<TokenStream> = items.chunks(TUPLE_MAX).map(|c| nest(c.to_vec())).collect();
        nest(chunks)
    }
    let descriptors: Vec<TokenStream> = fields
        .iter()
        .map(|(name, f)| quote!(Self::module(#name, |s| &s.#f, |s| &mut s.#f)))
        .collect();
    let bindings: Vec<TokenStream> = fields.iter().map(|(_, f)| quote!(#f)).collect();
    let pattern = nest(bindings);
    let fields_expr = nest(descriptors);
    let names = fields.iter().map(|(_, f)| f);
    quote! {
        fn iter_tensors<V: #p::dfdx::prelude::ModuleVisitor<Self, E, D>>(
            visitor: &mut V,
        ) -> ::core::result::Result<::core::option::Option<Self::To<V::E2, V::D2>>, V::Err> {
            visitor.visit_fields(#fields_expr, |#pattern| #ty { #(#names,)* #extra })
        }
    }
}

pub fn expand(model: &Model) -> TokenStream {
    let p = private();
    let name = &model.name;
    let vis = &model.vis;
    let attrs = &model.attrs;
    let network = format_ident!("{}Network", name);
    let towers_ty = format_ident!("{}Towers", name);
    let heads_ty = format_ident!("{}Heads", name);
    let outputs = format_ident!("{}Outputs", name);
    let input_width = model.input_width();
    let body_width = model.body_width();
    let name_str = name.to_string();

    // ---------------------------------------------------------------- spec
    let mut offset = 0usize;
    let features = model.features.iter().map(|f| {
        let fname = &f.name;
        let (kind, cardinality, dim, table) = match &f.kind {
            FeatureKind::Categorical {
                cardinality,
                dim,
                table,
            } => (
                quote!(Categorical),
                *cardinality as usize,
                *dim,
                table.clone(),
            ),
            FeatureKind::Continuous { width } => {
                (quote!(Continuous), 0usize, *width, fname.clone())
            }
        };
        let off = offset;
        offset += dim;
        quote! {
            #p::spec::FeatureSpec {
                name: #fname, kind: #p::spec::FeatureKind::#kind, cardinality: #cardinality,
                dim: #dim, offset: #off, table: #table,
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
            }
        }
    });
    let body_desc = model.body_description();
    let body_spec = body_spec(&model.body);
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

    // ---------------------------------------------------------------- types
    let (body_ty, body_bound, body_check) = match &model.body {
        Body::Mlp(m) => (mlp_type(m, input_width), quote!(), quote!()),
        Body::Identity => (quote!(#p::nn::Identity), quote!(), quote!()),
        Body::Moe(_) => (quote!(), quote!(), quote!()),
        Body::Custom { ty, width } => {
            let span = syn::spanned::Spanned::span(ty);
            let check = quote_spanned! {span=>
                const _: () = {
                    #[allow(dead_code)]
                    fn __mtl_body_maps_input_to_declared_width<M>()
                    where
                        M: #p::dfdx::prelude::Module<
                            #p::dfdx::prelude::Tensor<(usize, #p::dfdx::prelude::Const<#input_width>), f32, #p::dfdx::prelude::Cpu, #p::dfdx::prelude::NoneTape>,
                            Output = #p::dfdx::prelude::Tensor<(usize, #p::dfdx::prelude::Const<#width>), f32, #p::dfdx::prelude::Cpu, #p::dfdx::prelude::NoneTape>,
                        >,
                    {
                    }
                    #[allow(dead_code)]
                    fn __mtl_body_is_a_dfdx_module<M: #p::dfdx::prelude::TensorCollection<f32, #p::dfdx::prelude::Cpu>>() {}
                    #[allow(dead_code)]
                    fn __mtl_check_custom_body() {
                        __mtl_body_is_a_dfdx_module::<#ty<f32, #p::dfdx::prelude::Cpu>>();
                        __mtl_body_maps_input_to_declared_width::<#ty<f32, #p::dfdx::prelude::Cpu>>();
                    }
                };
            };
            let bound = quote! {
                #ty<E, D>: #p::dfdx::prelude::Module<
                    #p::dfdx::prelude::Tensor<(usize, #p::dfdx::prelude::Const<#input_width>), E, D, #p::dfdx::prelude::NoneTape>,
                    Output = #p::dfdx::prelude::Tensor<(usize, #p::dfdx::prelude::Const<#width>), E, D, #p::dfdx::prelude::NoneTape>,
                    Error = D::Err,
                > + #p::dfdx::prelude::ModuleMut<
                    #p::dfdx::prelude::Tensor<(usize, #p::dfdx::prelude::Const<#input_width>), E, D, #p::dfdx::prelude::OwnedTape<E, D>>,
                    Output = #p::dfdx::prelude::Tensor<(usize, #p::dfdx::prelude::Const<#width>), E, D, #p::dfdx::prelude::OwnedTape<E, D>>,
                    Error = D::Err,
                >,
            };
            (quote!(#ty<E, D>), bound, check)
        }
    };

    let task_idents: Vec<Ident> = model
        .tasks
        .iter()
        .map(|t| Ident::new(&t.name, t.span))
        .collect();
    let tower_tys: Vec<TokenStream> = model
        .tasks
        .iter()
        .map(|t| match &t.tower {
            Some(m) => mlp_type(m, body_width),
            None => quote!(#p::nn::Identity),
        })
        .collect();
    let head_in = |t: &Task| t.tower.as_ref().map_or(body_width, Mlp::out_width);
    let head_tys: Vec<TokenStream> = model
        .tasks
        .iter()
        .map(|t| head_type(head_in(t), t.kind.width()))
        .collect();
    let out_widths: Vec<usize> = model.tasks.iter().map(|t| t.kind.width()).collect();

    let task_fields: Vec<(String, Ident)> = model
        .tasks
        .iter()
        .zip(&task_idents)
        .map(|(t, i)| (t.name.clone(), i.clone()))
        .collect();
    let towers_visit = visit_fields(
        &towers_ty,
        &task_fields,
        quote!(_types: ::core::marker::PhantomData),
    );
    let heads_visit = visit_fields(&heads_ty, &task_fields, quote!());
    let h_idents: Vec<Ident> = task_idents
        .iter()
        .map(|t| format_ident!("__h_{}", t))
        .collect();
    let tp = quote!(#p::dfdx::prelude);
    let owned = quote!(#tp::OwnedTape<E, D>);
    // The body: its fields, extra items, and the code that binds `__h_<task>` (each task's
    // representation) in inference and in training.
    let mut moe_code = None;
    let (body_fields, body_field_names, body_items, infer_body, train_body) = match &model.body {
        Body::Moe(moe) => {
            let code = moe::expand(model, moe, &task_idents);
            let parts = (
                code.fields.clone(),
                code.field_names.clone(),
                code.items.clone(),
                code.infer.clone(),
                code.train.clone(),
            );
            moe_code = Some(code);
            parts
        }
        _ => {
            let shares = h_idents.iter().enumerate().map(|(i, hi)| {
                // The body's tape travels with the first task; the others record on fresh tapes
                // that merge when their losses are summed, so one backward reaches the body from
                // every task.
                if i == 0 {
                    quote!(let #hi = h.clone().put_tape(tape);)
                } else {
                    quote!(let #hi = h.retaped::<#owned>();)
                }
            });
            (
                quote!(pub body: #body_ty,),
                vec!["body".to_string()],
                quote!(),
                quote! {
                    let h = self.body.try_forward(x)?;
                    #(let #h_idents = h.clone();)*
                },
                quote! {
                    let h = self.body.try_forward_mut(x)?;
                    let (h, tape) = h.split_tape();
                    #(#shares)*
                },
            )
        }
    };
    let gate_weights_impl = moe_code.as_ref().map(|c| c.gate_weights.clone());
    let net_fields: Vec<(String, Ident)> = body_field_names
        .iter()
        .map(String::as_str)
        .chain(["towers", "heads"])
        .map(|n| (n.to_string(), format_ident!("{}", n)))
        .collect();
    let net_visit = visit_fields(&network, &net_fields, quote!());

    // ---------------------------------------------------------------- forward
    let infer_tasks = task_idents.iter().zip(&h_idents).map(
        |(t, hi)| quote!(let #t = self.heads.#t.try_forward(self.towers.#t.try_forward(#hi)?)?;),
    );
    let train_tasks = task_idents.iter().zip(&h_idents).map(
        |(t, hi)| quote!(let #t = self.heads.#t.try_forward_mut(self.towers.#t.try_forward_mut(#hi)?)?;),
    );

    // ---------------------------------------------------------------- summary
    let mut blocks = match &moe_code {
        Some(code) => code.summary.clone(),
        None => vec![quote! {
            #p::summary::Block { name: "body", kind: #body_desc, input: #input_width, output: #body_width, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.body) }
        }],
    };
    for (t, ident) in model.tasks.iter().zip(&task_idents) {
        let tower_name = format!("towers.{}", t.name);
        let head_name = format!("heads.{}", t.name);
        let tower_desc = t.tower.as_ref().map_or("none".to_string(), Mlp::describe);
        let head_desc = format!("{}/{}", t.name, t.kind.suffix());
        let hin = head_in(t);
        let w = t.kind.width();
        blocks.push(quote! {
            #p::summary::Block { name: #tower_name, kind: #tower_desc, input: #body_width, output: #hin, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.towers.#ident) }
        });
        blocks.push(quote! {
            #p::summary::Block { name: #head_name, kind: #head_desc, input: #hin, output: #w, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.heads.#ident) }
        });
    }

    let doc_net = format!("The built network of [`{name}`]: `body`, then per task `towers.<task>` and `heads.<task>`. Maps `[B, {input_width}]` to [`{outputs}`].");
    let doc_outputs = format!("The outputs of [`{network}`]: one `[B, W]` tensor per task (logits for binary and multiclass tasks, values for regression).");
    let doc_towers = format!("The task towers of [`{network}`], one field per task.");
    let doc_heads = format!("The task heads of [`{network}`], one field per task.");

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
            };
            const INPUT_WIDTH: usize = #input_width;
        }

        #body_check

        #body_items

        #[doc = #doc_net]
        #[derive(Debug, Clone)]
        #vis struct #network<E: #tp::Dtype, D: #tp::Device<E>> {
            #body_fields
            pub towers: #towers_ty<E, D>,
            pub heads: #heads_ty<E, D>,
        }

        #[doc = #doc_towers]
        #[derive(Debug, Clone)]
        #vis struct #towers_ty<E: #tp::Dtype, D: #tp::Device<E>> {
            #(pub #task_idents: #tower_tys,)*
            /// Ties `E` and `D` to the struct when no task has a tower.
            _types: ::core::marker::PhantomData<fn() -> (E, D)>,
        }

        #[doc = #doc_heads]
        #[derive(Debug, Clone)]
        #vis struct #heads_ty<E: #tp::Dtype, D: #tp::Device<E>> {
            #(pub #task_idents: #head_tys,)*
        }

        #[doc = #doc_outputs]
        #[derive(Debug, Clone)]
        #vis struct #outputs<E: #tp::Dtype, D: #tp::Device<E>, T = #tp::NoneTape> {
            #(pub #task_idents: #tp::Tensor<(usize, #tp::Const<#out_widths>), E, D, T>,)*
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #towers_ty<E, D> {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #towers_ty<E2, D2>;
            #towers_visit
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #heads_ty<E, D> {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #heads_ty<E2, D2>;
            #heads_visit
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #network<E, D>
        {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #network<E2, D2>;
            #net_visit
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::BuildOnDevice<D, E> for #name
        {
            type Built = #network<E, D>;
            fn try_build_on_device(device: &D) -> ::core::result::Result<Self::Built, D::Err> {
                <#network<E, D> as #tp::BuildModule<D, E>>::try_build(device)
            }
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::Module<#tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::NoneTape>> for #network<E, D>
        where #body_bound
        {
            type Output = #outputs<E, D, #tp::NoneTape>;
            type Error = D::Err;
            /// Inference: dropout off, batch norm uses its running statistics.
            fn try_forward(&self, x: #tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::NoneTape>) -> ::core::result::Result<Self::Output, D::Err> {
                #[allow(unused_imports)]
                use #tp::{Module as _, PutTape as _, SplitTape as _, RealizeTo as _};
                #infer_body
                #(#infer_tasks)*
                ::core::result::Result::Ok(#outputs { #(#task_idents),* })
            }
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::ModuleMut<#tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::OwnedTape<E, D>>> for #network<E, D>
        where #body_bound
        {
            type Output = #outputs<E, D, #tp::OwnedTape<E, D>>;
            type Error = D::Err;
            /// Training: dropout on, batch norm normalises with batch statistics and updates its
            /// running ones. Every output carries part of the gradient tape; summing the task
            /// losses merges them.
            fn try_forward_mut(&mut self, x: #tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::OwnedTape<E, D>>) -> ::core::result::Result<Self::Output, D::Err> {
                #[allow(unused_imports)]
                use #tp::{ModuleMut as _, PutTape as _, SplitTape as _, RealizeTo as _};
                #train_body
                #(#train_tasks)*
                ::core::result::Result::Ok(#outputs { #(#task_idents),* })
            }
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #p::TaskNetwork<E, D> for #network<E, D>
        where #body_bound
        {
            fn try_forward_train(
                &mut self,
                x: #p::DynBatch<E, D, #tp::OwnedTape<E, D>>,
            ) -> ::core::result::Result<::std::vec::Vec<#p::DynBatch<E, D, #tp::OwnedTape<E, D>>>, D::Err> {
                #[allow(unused_imports)]
                use #tp::{ModuleMut as _, RealizeTo as _, HasShape as _};
                let x = x
                    .try_realize::<(usize, #tp::Const<#input_width>)>()
                    .unwrap_or_else(|x| panic!("{}: the input must be [B, {}], got {:?}", #name_str, #input_width, x.shape()));
                let out = self.try_forward_mut(x)?;
                ::core::result::Result::Ok(::std::vec![#(out.#task_idents.try_realize::<(usize, usize)>().unwrap_or_else(|_| unreachable!())),*])
            }

            #gate_weights_impl

            fn try_forward_eval(
                &self,
                x: #p::DynBatch<E, D>,
            ) -> ::core::result::Result<::std::vec::Vec<#p::DynBatch<E, D>>, D::Err> {
                #[allow(unused_imports)]
                use #tp::{Module as _, RealizeTo as _, HasShape as _};
                let x = x
                    .try_realize::<(usize, #tp::Const<#input_width>)>()
                    .unwrap_or_else(|x| panic!("{}: the input must be [B, {}], got {:?}", #name_str, #input_width, x.shape()));
                let out = self.try_forward(x)?;
                ::core::result::Result::Ok(::std::vec![#(out.#task_idents.try_realize::<(usize, usize)>().unwrap_or_else(|_| unreachable!())),*])
            }
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> ::core::fmt::Display for #network<E, D>
        {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #[allow(unused_imports)]
                use #tp::NumParams as _;
                let blocks = [#(#blocks),*];
                #p::summary::write_summary(f, <#name as #p::MtlModel>::SPEC, &blocks)
            }
        }
    }
}

/// What is emitted when the model has errors: the errors, plus the bare type so that code
/// naming the model does not pile further errors on top.
pub fn fallback(
    errors: Vec<syn::Error>,
    header: Option<(Vec<syn::Attribute>, syn::Visibility, Ident)>,
) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    let item = header.map(|(attrs, vis, name)| {
        let _ = Span::call_site();
        quote! {
            #(#attrs)*
            #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
            #vis struct #name;
        }
    });
    quote!(#(#errors)* #item)
}
