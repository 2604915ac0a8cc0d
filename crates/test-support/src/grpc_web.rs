//! A gRPC-web client the way a browser speaks to the gateway: HTTP/1.1 requests with
//! `application/grpc-web+proto` bodies and trailers in the body, through tonic-web's client layer.

use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tonic_web::{GrpcWebCall, GrpcWebClientLayer, GrpcWebClientService};
use tower::Layer;

/// A transport for generated clients: `InboxApiClient::with_origin(grpc_web_channel(), uri)`.
pub type GrpcWebChannel = GrpcWebClientService<Client<HttpConnector, GrpcWebCall<tonic::body::Body>>>;

/// A new HTTP/1.1-only gRPC-web transport.
pub fn grpc_web_channel() -> GrpcWebChannel {
    let client = Client::builder(TokioExecutor::new()).build_http();
    GrpcWebClientLayer::new().layer(client)
}
