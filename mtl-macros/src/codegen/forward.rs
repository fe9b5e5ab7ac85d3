//! The forward passes: `Module` (inference) and `ModuleMut` (training) of the network at its
//! static input width, and `TaskNetwork`, the run-time-width view the trainer uses.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::network::{h_idents, BodyCode};
use super::{private, Names};
use crate::model::Model;

/// Each task's tower, AITM transfer and head, binding the task's output to its name, from the
/// body outputs `h`. A task whose representation feeds an AITM child is fanned out (one use per
/// child plus its own head); transfers run parents first.
fn task_passes(model: &Model, tasks: &[Ident], h: &[Ident], train: bool) -> TokenStream {
    let p = private();
    let forward = if train {
        quote!(try_forward_mut)
    } else {
        quote!(try_forward)
    };
    let q: Vec<Ident> = tasks.iter().map(|t| format_ident!("__q_{}", t)).collect();
    let aitm = model.aitm_order();
    let towers = tasks
        .iter()
        .zip(h)
        .zip(&q)
        .map(|((t, hi), qi)| quote!(let #qi = self.towers.#t.#forward(#hi)?;));
    // A parent is fanned out once its own representation is final: after its own transfer
    // when it is an AITM child itself, else right after the towers.
    let is_parent = |t: usize| aitm.iter().any(|&(_, parent)| parent == t);
    let is_child = |t: usize| aitm.iter().any(|&(c, _)| c == t);
    let fan = |t: usize| {
        let (qi, fi) = (&q[t], format_ident!("__fan_{}", tasks[t]));
        quote!(let mut #fi = #p::nn::Fanout::new(#qi);)
    };
    let first_fans = (0..tasks.len())
        .filter(|&t| is_parent(t) && !is_child(t))
        .map(fan);
    let transfers = aitm.iter().map(|&(c, parent)| {
        let (qc, t) = (&q[c], &tasks[c]);
        let fp = format_ident!("__fan_{}", tasks[parent]);
        let then_fan = if is_parent(c) { fan(c) } else { quote!() };
        quote! {
            let #qc = self.transfers.#t.try_transfer(#qc, #fp.next())?;
            #then_fan
        }
    });
    let heads = tasks.iter().enumerate().map(|(i, t)| {
        let input = if is_parent(i) {
            let fi = format_ident!("__fan_{}", t);
            quote!(#fi.next())
        } else {
            let qi = &q[i];
            quote!(#qi)
        };
        quote!(let #t = self.heads.#t.#forward(#input)?;)
    });
    quote! {
        #(#towers)*
        #(#first_fans)*
        #(#transfers)*
        #(#heads)*
    }
}

pub fn expand(model: &Model, names: &Names, tasks: &[Ident], body: &BodyCode) -> TokenStream {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let Names {
        model: name,
        network,
        outputs,
        ..
    } = names;
    let name_str = name.to_string();
    let input_width = model.input_width();
    let h = h_idents(tasks);
    let infer_tasks = task_passes(model, tasks, &h, false);
    let train_tasks = task_passes(model, tasks, &h, true);
    let (bound, infer_body, train_body) = (&body.bound, &body.infer, &body.train);
    let gate_weights = &body.gate_weights;
    quote! {
        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::Module<#tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::NoneTape>> for #network<E, D>
        where #bound
        {
            type Output = #outputs<E, D, #tp::NoneTape>;
            type Error = D::Err;
            /// Inference: dropout off, batch norm uses its running statistics.
            fn try_forward(&self, x: #tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::NoneTape>) -> ::core::result::Result<Self::Output, D::Err> {
                #[allow(unused_imports)]
                use #tp::{Module as _, PutTape as _, SplitTape as _, RealizeTo as _};
                #infer_body
                #infer_tasks
                ::core::result::Result::Ok(#outputs { #(#tasks),* })
            }
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #tp::ModuleMut<#tp::Tensor<(usize, #tp::Const<#input_width>), E, D, #tp::OwnedTape<E, D>>> for #network<E, D>
        where #bound
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
                #train_tasks
                ::core::result::Result::Ok(#outputs { #(#tasks),* })
            }
        }

        impl<E: #p::nn::Float, D: #tp::Device<E>> #p::TaskNetwork<E, D> for #network<E, D>
        where #bound
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
                ::core::result::Result::Ok(::std::vec![#(out.#tasks.try_realize::<(usize, usize)>().unwrap_or_else(|_| unreachable!())),*])
            }

            #gate_weights

            fn seeded_parameters(
                seed: u64,
            ) -> ::core::option::Option<::core::result::Result<#p::NamedParameters, ::std::string::String>> {
                let dev = #tp::Cpu::seed_from_u64(seed);
                let net = <#name as #tp::BuildOnDevice<#tp::Cpu, f32>>::try_build_on_device(&dev);
                ::core::option::Option::Some(
                    net.and_then(|net| #p::named_parameters(&net))
                        .map_err(|e| ::std::format!("{e:?}")),
                )
            }

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
                ::core::result::Result::Ok(::std::vec![#(out.#tasks.try_realize::<(usize, usize)>().unwrap_or_else(|_| unreachable!())),*])
            }
        }
    }
}
