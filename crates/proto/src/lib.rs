//! Generated code for `proto/`: one module per protobuf package.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Encoded `FileDescriptorSet` of every Scifer proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scifer_descriptor.bin"));

pub mod events {
    pub mod v1 {
        tonic::include_proto!("scifer.events.v1");
    }
}
pub mod inbox {
    pub mod v1 {
        tonic::include_proto!("scifer.inbox.v1");
    }
}
pub mod gateway {
    pub mod v1 {
        tonic::include_proto!("scifer.gateway.v1");
    }
}
pub mod ingest {
    pub mod v1 {
        tonic::include_proto!("scifer.ingest.v1");
    }
}
pub mod publisher {
    pub mod v1 {
        tonic::include_proto!("scifer.publisher.v1");
    }
}
pub mod tokenvault {
    pub mod v1 {
        tonic::include_proto!("scifer.tokenvault.v1");
    }
}
pub mod deletion {
    pub mod v1 {
        tonic::include_proto!("scifer.deletion.v1");
    }
}
