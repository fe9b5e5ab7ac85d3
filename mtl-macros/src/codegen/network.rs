//! The network's types: the body (an MLP, the identity, a custom block or a mixture of
//! experts), one tower and one head per task, the outputs struct, their `TensorCollection`
//! impls (parameter names), and `BuildOnDevice` for the builder.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use super::{moe, private, Names};
use crate::model::{Body, Mlp, Model, Task};

/// Most fields dfdx's `visit_fields` takes in one tuple; longer lists are nested.
const TUPLE_MAX: usize = 6;

/// The type of an MLP from `input` wide: a tuple of `Dense` layers.
pub fn mlp_type(m: &Mlp, input: usize) -> TokenStream {
    experts_type(m, input, 1)
}

/// The type of `count` experts `m` that all read the same `input` columns, side by side
/// (`[B, input] → [B, count·H]`): the first layer is one `Dense` `count` times as wide, the
/// later ones `GroupedDense` (each expert reads only its own columns). For `count = 1`, the
/// MLP itself.
pub fn experts_type(m: &Mlp, input: usize, count: usize) -> TokenStream {
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
        let out = count * w;
        let norm = if m.batch_norm {
            quote!(#p::dfdx::nn::modules::BatchNorm1D<#out, E, D>)
        } else {
            quote!(#p::nn::NoNorm)
        };
        let t = if i == 0 || count == 1 {
            quote!(#p::nn::Dense<#prev, #out, #p::nn::#act, #drop, #norm, E, D>)
        } else {
            let grouped_in = count * prev;
            quote!(#p::nn::GroupedDense<#count, #prev, #w, #grouped_in, #out, #p::nn::#act, #drop, #norm, E, D>)
        };
        prev = w;
        t
    });
    let layers: Vec<TokenStream> = layers.collect();
    // dfdx's tuples hold up to 6 modules: deeper MLPs are tuples of such tuples (parameter
    // paths `i / 6`.`i % 6`, as `MlpSpec::layer_path` says).
    if layers.len() <= TUPLE_MAX {
        quote!((#(#layers,)*))
    } else {
        let groups = layers.chunks(TUPLE_MAX).map(|g| quote!((#(#g,)*)));
        quote!((#(#groups,)*))
    }
}

pub fn head_type(input: usize, width: usize) -> TokenStream {
    let p = private();
    quote!(#p::nn::Dense<#input, #width, #p::nn::Linear, 0, #p::nn::NoNorm, E, D>)
}

/// The AITM transfers struct (one `mtl_runtime::nn::Aitm` field per task with
/// `transfer = aitm`, parameters `transfers.<task>.*`) and its `TensorCollection` impl; nothing
/// when no task has one.
fn transfer_struct(
    model: &Model,
    names: &Names,
    tasks: &[Ident],
    aitm: &[(usize, usize)],
) -> TokenStream {
    if aitm.is_empty() {
        return quote!();
    }
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let vis = &model.vis;
    let (transfers, network) = (&names.transfers, &names.network);
    let fields: Vec<(String, Ident)> = aitm
        .iter()
        .map(|&(c, _)| (model.tasks[c].name.clone(), tasks[c].clone()))
        .collect();
    let idents: Vec<&Ident> = fields.iter().map(|(_, i)| i).collect();
    let tys = aitm.iter().map(|&(c, parent)| {
        let width = head_input(model, &model.tasks[c]);
        let parent_width = head_input(model, &model.tasks[parent]);
        quote!(#p::nn::Aitm<#parent_width, #width, E, D>)
    });
    let visit = visit_fields(transfers, &fields, quote!());
    let doc =
        format!("The AITM transfers of [`{network}`], one field per task with `transfer = aitm`.");
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        #vis struct #transfers<E: #tp::Dtype, D: #tp::Device<E>> {
            #(pub #idents: #tys,)*
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #transfers<E, D> {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #transfers<E2, D2>;
            #visit
        }
    }
}

/// `visit_fields` for named fields, nesting tuples of at most six.
pub fn visit_fields(ty: &Ident, fields: &[(String, Ident)], extra: TokenStream) -> TokenStream {
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

/// What the body contributes: its network fields, extra items, the code binding each task's
/// representation `__h_<task>` (inference and training), the bound the impls need, the gate
/// weights method (MoE bodies) and its summary blocks.
pub struct BodyCode {
    pub fields: TokenStream,
    pub field_names: Vec<String>,
    pub items: TokenStream,
    pub infer: TokenStream,
    pub train: TokenStream,
    /// `where` bounds of the forward impls (a custom block's `Module`/`ModuleMut`).
    pub bound: TokenStream,
    /// Compile-time checks of a custom block, spanned on its type.
    pub check: TokenStream,
    pub gate_weights: Option<TokenStream>,
    /// `summary::Block` expressions of the body (`None`: one block named `body`).
    pub summary: Option<Vec<TokenStream>>,
}

/// The body of `model`.
pub fn body(model: &Model, tasks: &[Ident]) -> BodyCode {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let input_width = model.input_width();
    let h_idents = h_idents(tasks);
    let owned = quote!(#tp::OwnedTape<E, D>);
    let (body_ty, bound, check) = match &model.body {
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

    if let Body::Moe(moe) = &model.body {
        let code = moe::expand(model, moe, tasks);
        return BodyCode {
            fields: code.fields,
            field_names: code.field_names,
            items: code.items,
            infer: code.infer,
            train: code.train,
            bound,
            check,
            gate_weights: Some(code.gate_weights),
            summary: Some(code.summary),
        };
    }
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
    BodyCode {
        fields: quote!(pub body: #body_ty,),
        field_names: vec!["body".to_string()],
        items: quote!(),
        infer: quote! {
            let h = self.body.try_forward(x)?;
            #(let #h_idents = h.clone();)*
        },
        train: quote! {
            let h = self.body.try_forward_mut(x)?;
            let (h, tape) = h.split_tape();
            #(#shares)*
        },
        bound,
        check,
        gate_weights: None,
        summary: None,
    }
}

/// `__h_<task>`: the variables holding each task's body output.
pub fn h_idents(tasks: &[Ident]) -> Vec<Ident> {
    tasks.iter().map(|t| format_ident!("__h_{}", t)).collect()
}

/// The width a task's head reads: its tower's output, or the body's.
pub fn head_input(model: &Model, t: &Task) -> usize {
    t.tower.as_ref().map_or(model.body_width(), Mlp::out_width)
}

/// The network, towers, heads and outputs structs, their `TensorCollection` impls, and
/// `BuildOnDevice` for the builder.
pub fn expand(model: &Model, names: &Names, tasks: &[Ident], body: &BodyCode) -> TokenStream {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let vis = &model.vis;
    let Names {
        model: name,
        network,
        towers,
        heads,
        transfers,
        outputs,
    } = names;
    let body_width = model.body_width();
    let tower_tys: Vec<TokenStream> = model
        .tasks
        .iter()
        .map(|t| match &t.tower {
            Some(m) => mlp_type(m, body_width),
            None => quote!(#p::nn::Identity),
        })
        .collect();
    let head_tys: Vec<TokenStream> = model
        .tasks
        .iter()
        .map(|t| head_type(head_input(model, t), t.kind.width()))
        .collect();
    let out_widths: Vec<usize> = model.tasks.iter().map(|t| t.kind.width()).collect();
    let task_fields: Vec<(String, Ident)> = model
        .tasks
        .iter()
        .zip(tasks)
        .map(|(t, i)| (t.name.clone(), i.clone()))
        .collect();
    let towers_visit = visit_fields(
        towers,
        &task_fields,
        quote!(_types: ::core::marker::PhantomData),
    );
    let heads_visit = visit_fields(heads, &task_fields, quote!());
    let aitm = model.aitm_order();
    let mut net_names: Vec<&str> = body.field_names.iter().map(String::as_str).collect();
    net_names.extend(["towers", "heads"]);
    if !aitm.is_empty() {
        net_names.push("transfers");
    }
    let net_fields: Vec<(String, Ident)> = net_names
        .iter()
        .map(|n| (n.to_string(), format_ident!("{}", n)))
        .collect();
    let transfer_items = transfer_struct(model, names, tasks, &aitm);
    let transfers_field = if aitm.is_empty() {
        quote!()
    } else {
        quote!(pub transfers: #transfers<E, D>,)
    };
    let net_visit = visit_fields(network, &net_fields, quote!());
    let input_width = model.input_width();
    let doc_net = format!("The built network of [`{name}`]: `body`, then per task `towers.<task>` and `heads.<task>`. Maps `[B, {input_width}]` to [`{outputs}`].");
    let doc_outputs = format!("The outputs of [`{network}`]: one `[B, W]` tensor per task (logits for binary and multiclass tasks, values for regression).");
    let doc_towers = format!("The task towers of [`{network}`], one field per task.");
    let doc_heads = format!("The task heads of [`{network}`], one field per task.");
    let (check, items, body_fields) = (&body.check, &body.items, &body.fields);
    quote! {
        #check

        #items

        #[doc = #doc_net]
        #[derive(Debug, Clone)]
        #vis struct #network<E: #tp::Dtype, D: #tp::Device<E>> {
            #body_fields
            pub towers: #towers<E, D>,
            pub heads: #heads<E, D>,
            #transfers_field
        }

        #transfer_items

        #[doc = #doc_towers]
        #[derive(Debug, Clone)]
        #vis struct #towers<E: #tp::Dtype, D: #tp::Device<E>> {
            #(pub #tasks: #tower_tys,)*
            /// Ties `E` and `D` to the struct when no task has a tower.
            _types: ::core::marker::PhantomData<fn() -> (E, D)>,
        }

        #[doc = #doc_heads]
        #[derive(Debug, Clone)]
        #vis struct #heads<E: #tp::Dtype, D: #tp::Device<E>> {
            #(pub #tasks: #head_tys,)*
        }

        #[doc = #doc_outputs]
        #[derive(Debug, Clone)]
        #vis struct #outputs<E: #tp::Dtype, D: #tp::Device<E>, T = #tp::NoneTape> {
            #(pub #tasks: #tp::Tensor<(usize, #tp::Const<#out_widths>), E, D, T>,)*
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #towers<E, D> {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #towers<E2, D2>;
            #towers_visit
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::TensorCollection<E, D> for #heads<E, D> {
            type To<E2: #tp::Dtype, D2: #tp::Device<E2>> = #heads<E2, D2>;
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
    }
}
