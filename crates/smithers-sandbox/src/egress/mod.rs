//! Egress: the only way out of a sandbox, through Smithers' proxy.

mod address;
mod allowlist;
mod proxy;

pub use address::refusal as address_refusal;
pub use allowlist::{Allowlist, HostPattern};
pub use proxy::{
    AddressCheck, EgressEvent, EgressProxy, EgressRecorder, Resolve, SystemResolver, Target,
    parse_target,
};
