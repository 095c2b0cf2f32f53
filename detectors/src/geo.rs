//! GeoIP lookups over MaxMind DB bytes (City, ASN, Anonymous IP layouts).

use std::net::IpAddr;
use std::sync::Arc;

use maxminddb::Reader;
use serde::Deserialize;

/// A database that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The bytes are not a MaxMind DB.
    #[error("invalid {which} database: {source}")]
    Invalid {
        /// `city`, `asn` or `anonymous`.
        which: &'static str,
        /// What the reader said.
        #[source]
        source: maxminddb::MaxMindDbError,
    },
}

/// Where an address is, as the City database says.
#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    /// Latitude, degrees.
    pub latitude: f64,
    /// Longitude, degrees.
    pub longitude: f64,
    /// Accuracy radius, km (0 when the database gives none).
    pub radius_km: f64,
    /// City name (English), when known.
    pub city: Option<Arc<str>>,
    /// ISO 3166-1 alpha-2 country code, when known.
    pub country: Option<Arc<str>>,
}

impl Location {
    /// `City, CC` for evidence.
    pub fn label(&self) -> String {
        match (&self.city, &self.country) {
            (Some(c), Some(cc)) => format!("{c}, {cc}"),
            (None, Some(cc)) => cc.to_string(),
            (Some(c), None) => c.to_string(),
            (None, None) => format!("{:.2},{:.2}", self.latitude, self.longitude),
        }
    }
}

/// Anonymizer flags from the Anonymous IP database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnonymizerFlags {
    /// Any anonymizer.
    pub anonymous: bool,
    /// Commercial VPN.
    pub vpn: bool,
    /// Tor exit node.
    pub tor: bool,
    /// Open or public proxy.
    pub public_proxy: bool,
    /// Residential proxy.
    pub residential_proxy: bool,
    /// Hosting or cloud provider.
    pub hosting: bool,
}

/// Everything the databases know about one address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpInfo {
    /// Location, when the City database has one.
    pub location: Option<Location>,
    /// Autonomous system number.
    pub asn: Option<u32>,
    /// Autonomous system organisation.
    pub as_org: Option<Arc<str>>,
    /// Anonymizer flags.
    pub anonymizer: AnonymizerFlags,
}

#[derive(Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
    #[serde(borrow, default)]
    country: Option<CountryRecord<'a>>,
    #[serde(default)]
    location: Option<LocationRecord>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct LocationRecord {
    latitude: Option<f64>,
    longitude: Option<f64>,
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct AnonymousRecord {
    #[serde(default)]
    is_anonymous: Option<bool>,
    #[serde(default)]
    is_anonymous_vpn: Option<bool>,
    #[serde(default)]
    is_tor_exit_node: Option<bool>,
    #[serde(default)]
    is_public_proxy: Option<bool>,
    #[serde(default)]
    is_residential_proxy: Option<bool>,
    #[serde(default)]
    is_hosting_provider: Option<bool>,
}

/// The GeoIP databases, each optional.
///
/// Lookups that fail (address absent, malformed record) give empty answers:
/// a missing location is "no geo", never an error that stops scoring.
#[derive(Default)]
pub struct GeoIp {
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
    anonymous: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field(
                "city",
                &self
                    .city
                    .as_ref()
                    .map(|r| r.metadata().database_type.clone()),
            )
            .field(
                "asn",
                &self
                    .asn
                    .as_ref()
                    .map(|r| r.metadata().database_type.clone()),
            )
            .field(
                "anonymous",
                &self
                    .anonymous
                    .as_ref()
                    .map(|r| r.metadata().database_type.clone()),
            )
            .finish()
    }
}

fn open(which: &'static str, bytes: Option<Vec<u8>>) -> Result<Option<Reader<Vec<u8>>>, GeoError> {
    bytes
        .map(|b| Reader::from_source(b).map_err(|source| GeoError::Invalid { which, source }))
        .transpose()
}

impl GeoIp {
    /// Opens the databases from their bytes.
    pub fn from_bytes(
        city: Option<Vec<u8>>,
        asn: Option<Vec<u8>>,
        anonymous: Option<Vec<u8>>,
    ) -> Result<GeoIp, GeoError> {
        Ok(GeoIp {
            city: open("city", city)?,
            asn: open("asn", asn)?,
            anonymous: open("anonymous", anonymous)?,
        })
    }

    /// Whether an anonymous-IP database is configured.
    pub fn has_anonymous(&self) -> bool {
        self.anonymous.is_some()
    }

    /// Looks an address up in every configured database.
    pub fn lookup(&self, ip: IpAddr) -> IpInfo {
        let mut info = IpInfo::default();
        if let Some(reader) = &self.city
            && let Ok(result) = reader.lookup(ip)
            && let Ok(Some(rec)) = result.decode::<CityRecord<'_>>()
        {
            let country = rec.country.and_then(|c| c.iso_code).map(Arc::from);
            let city = rec
                .city
                .and_then(|c| c.names)
                .and_then(|n| n.en)
                .map(Arc::from);
            if let Some(loc) = rec.location
                && let (Some(latitude), Some(longitude)) = (loc.latitude, loc.longitude)
            {
                info.location = Some(Location {
                    latitude,
                    longitude,
                    radius_km: f64::from(loc.accuracy_radius.unwrap_or(0)),
                    city,
                    country,
                });
            }
        }
        if let Some(reader) = &self.asn
            && let Ok(result) = reader.lookup(ip)
            && let Ok(Some(rec)) = result.decode::<AsnRecord<'_>>()
        {
            info.asn = rec.autonomous_system_number;
            info.as_org = rec.autonomous_system_organization.map(Arc::from);
        }
        if let Some(reader) = &self.anonymous
            && let Ok(result) = reader.lookup(ip)
            && let Ok(Some(rec)) = result.decode::<AnonymousRecord>()
        {
            info.anonymizer = AnonymizerFlags {
                anonymous: rec.is_anonymous.unwrap_or(false),
                vpn: rec.is_anonymous_vpn.unwrap_or(false),
                tor: rec.is_tor_exit_node.unwrap_or(false),
                public_proxy: rec.is_public_proxy.unwrap_or(false),
                residential_proxy: rec.is_residential_proxy.unwrap_or(false),
                hosting: rec.is_hosting_provider.unwrap_or(false),
            };
        }
        info
    }
}
