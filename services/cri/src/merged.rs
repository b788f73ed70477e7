//! One gRPC service name answered by two generated servers: k8s-cri's and the one
//! `crimson_api::cri` generates for the RPCs cri-api v0.36 added to the same service.

use std::{
    convert::Infallible,
    task::{Context, Poll, ready},
};

use futures::future::Either;
use tonic::{body::Body, codegen::Service, server::NamedService};

/// Sends the calls of `added_paths` to `added` and every other call to `base`, under
/// `base`'s service name.
#[derive(Clone)]
pub struct Merged<Base, Added> {
    base: Base,
    added: Added,
    added_paths: &'static [&'static str],
}

impl<Base, Added> Merged<Base, Added> {
    /// `base` with the RPCs at `added_paths` served by `added`.
    pub fn new(base: Base, added: Added, added_paths: &'static [&'static str]) -> Self {
        Self {
            base,
            added,
            added_paths,
        }
    }
}

type Answer = http::Response<Body>;

impl<Base, Added> Service<http::Request<Body>> for Merged<Base, Added>
where
    Base: Service<http::Request<Body>, Response = Answer, Error = Infallible>,
    Added: Service<http::Request<Body>, Response = Answer, Error = Infallible>,
{
    type Response = Answer;
    type Error = Infallible;
    type Future = Either<Base::Future, Added::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        ready!(self.base.poll_ready(cx))?;
        self.added.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if self.added_paths.contains(&request.uri().path()) {
            Either::Right(self.added.call(request))
        } else {
            Either::Left(self.base.call(request))
        }
    }
}

impl<Base: NamedService, Added> NamedService for Merged<Base, Added> {
    const NAME: &'static str = Base::NAME;
}
