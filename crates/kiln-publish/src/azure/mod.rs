//! Azure: the fixed VHD goes up as a page blob (the only blob type a managed image or a Compute
//! Gallery version can be made from), then becomes a Compute Gallery image version. The Storage
//! REST API is called directly with Shared Key signing: the official `azure_storage_blob` crate
//! authenticates only with Entra ID tokens or SAS URLs, which Azurite (the storage emulator the
//! tests use) and account-key setups need something else for. Resource Manager (the gallery) is
//! plain JSON with a bearer token, through [`crate::rest`].

pub mod arm;
pub mod blob;
pub mod gallery;
pub mod publish;
