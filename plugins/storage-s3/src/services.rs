//! Where each S3-compatible service lives: its regional API endpoint and the public URL
//! its objects have. Endpoints come from each provider's documentation.

use copra_sdk::s3::Service;

/// Amazon S3: `https://s3.{region}.amazonaws.com`, objects at
/// `https://{bucket}.s3.{region}.amazonaws.com/{key}`.
pub const S3: Service = Service {
    endpoint: "https://s3.{region}.amazonaws.com",
    url: "https://{bucket}.s3.{region}.amazonaws.com",
    default_region: Some("us-east-1"),
    signing_region: None,
};

/// DigitalOcean Spaces: regions like `nyc3`, `ams3`, `sgp1`, `fra1`.
pub const DOSPACES: Service = Service {
    endpoint: "https://{region}.digitaloceanspaces.com",
    url: "https://{bucket}.{region}.digitaloceanspaces.com",
    default_region: Some("nyc3"),
    signing_region: None,
};

/// Backblaze B2's S3-compatible API: regions like `us-west-004`, `eu-central-003`. An
/// account lives in one region, so it is required.
pub const BACKBLAZE: Service = Service {
    endpoint: "https://s3.{region}.backblazeb2.com",
    url: "https://{bucket}.s3.{region}.backblazeb2.com",
    default_region: None,
    signing_region: None,
};

/// Impossible Cloud: regions like `eu-central-2`, `eu-west-1`, `us-west-1`; path-style.
pub const IMPOSSIBLECLOUD: Service = Service {
    endpoint: "https://{region}.storage.impossibleapi.net",
    url: "https://{region}.storage.impossibleapi.net/{bucket}",
    default_region: Some("eu-central-2"),
    signing_region: None,
};

/// Contabo Object Storage (Ceph): regions `eu2`, `usc1`, `sin1`; path-style only.
pub const CONTABO: Service = Service {
    endpoint: "https://{region}.contabostorage.com",
    url: "https://{region}.contabostorage.com/{bucket}",
    default_region: Some("eu2"),
    signing_region: Some("us-east-1"),
};

/// CDN77 Object Storage: regions like `eu-1`, `us-1`; signed for `us-east-1`.
pub const CDN77: Service = Service {
    endpoint: "https://{region}.cdn77-storage.com",
    url: "https://{region}.cdn77-storage.com/{bucket}",
    default_region: None,
    signing_region: Some("us-east-1"),
};

/// The S3-compatible services by their Coconut `service` name.
pub const ALL: &[(&str, Service)] = &[
    ("s3", S3),
    ("dospaces", DOSPACES),
    ("backblaze", BACKBLAZE),
    ("impossiblecloud", IMPOSSIBLECLOUD),
    ("contabo", CONTABO),
    ("cdn77", CDN77),
];
