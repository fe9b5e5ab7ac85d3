//! The printed model summary (`Display` for the network): one block per body part, tower and
//! head, with shapes and parameter counts.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::network::{head_input, BodyCode};
use super::{private, Names};
use crate::model::{Mlp, Model};

pub fn expand(model: &Model, names: &Names, tasks: &[Ident], body: &BodyCode) -> TokenStream {
    let p = private();
    let tp = quote!(#p::dfdx::prelude);
    let Names {
        model: name,
        network,
        ..
    } = names;
    let (input_width, body_width) = (model.input_width(), model.body_width());
    let body_desc = model.body_description();
    let mut blocks = body.summary.clone().unwrap_or_else(|| {
        vec![quote! {
            #p::summary::Block { name: "body", kind: #body_desc, input: #input_width, output: #body_width, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.body) }
        }]
    });
    for (t, ident) in model.tasks.iter().zip(tasks) {
        let tower_name = format!("towers.{}", t.name);
        let head_name = format!("heads.{}", t.name);
        let tower_desc = t.tower.as_ref().map_or("none".to_string(), Mlp::describe);
        let head_desc = format!("{}/{}", t.name, t.kind.suffix());
        let hin = head_input(model, t);
        let w = t.kind.width();
        blocks.push(quote! {
            #p::summary::Block { name: #tower_name, kind: #tower_desc, input: #body_width, output: #hin, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.towers.#ident) }
        });
        blocks.push(quote! {
            #p::summary::Block { name: #head_name, kind: #head_desc, input: #hin, output: #w, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.heads.#ident) }
        });
    }
    // AITM transfers after the towers and heads, in the order the network computes them.
    for (c, parent) in model.aitm_order() {
        let name = format!("transfers.{}", model.tasks[c].name);
        let kind = format!("aitm(from {})", model.tasks[parent].name);
        let input = head_input(model, &model.tasks[parent]);
        let output = head_input(model, &model.tasks[c]);
        let ident = &tasks[c];
        blocks.push(quote! {
            #p::summary::Block { name: #name, kind: #kind, input: #input, output: #output, params: <_ as #tp::NumParams<E, D>>::num_trainable_params(&self.transfers.#ident) }
        });
    }
    quote! {
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
