//! The forward passes: `Module` (inference) and `ModuleMut` (training) of the network at its
//! static input width, and `TaskNetwork`, the run-time-width view the trainer uses.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::network::{h_idents, BodyCode};
use super::{private, Names};
use crate::model::Model;

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
    let infer_tasks = tasks.iter().zip(&h).map(
        |(t, hi)| quote!(let #t = self.heads.#t.try_forward(self.towers.#t.try_forward(#hi)?)?;),
    );
    let train_tasks = tasks.iter().zip(&h).map(
        |(t, hi)| quote!(let #t = self.heads.#t.try_forward_mut(self.towers.#t.try_forward_mut(#hi)?)?;),
    );
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
                #(#infer_tasks)*
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
                #(#train_tasks)*
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
