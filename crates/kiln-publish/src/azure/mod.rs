//! Azure: the fixed VHD goes up as a page blob (the only blob type a managed image or a Compute
//! Gallery version can be made from). The Storage REST API is called directly with Shared Key
//! signing: the official `azure_storage_blob` crate authenticates only with Entra ID tokens or
//! SAS URLs, which Azurite (the storage emulator the tests use) and account-key setups need
//! something else for.

pub mod blob;
