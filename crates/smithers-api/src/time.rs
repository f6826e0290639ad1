//! Instants on the wire: RFC 3339 in UTC with microseconds
//! (`2026-11-30T21:17:28.383663Z`), what the store keeps as microseconds
//! since the Unix epoch.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in microseconds since the Unix epoch; written as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    fn system_time(self) -> SystemTime {
        let offset = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + offset
        } else {
            UNIX_EPOCH - offset
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_micros(self.system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        let time = humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)?;
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()),
            Err(before) => i64::try_from(before.duration().as_micros()).map(|m| -m),
        }
        .map_err(serde::de::Error::custom)?;
        Ok(Timestamp(micros))
    }
}

/// An RFC 3339 string in the OpenAPI document, as it is written.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "An instant: RFC 3339 in UTC with microseconds; read back in UTC only \
                 (`Z` or `+00:00`).",
            ))
            .examples(["2026-11-30T21:17:28.383663Z"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn written_as_rfc3339_with_microseconds() {
        let t = Timestamp(1_796_073_448_383_663);
        assert_eq!(t.to_string(), "2026-11-30T21:17:28.383663Z");
        assert_eq!(
            serde_json::to_string(&t).unwrap_or_default(),
            "\"2026-11-30T21:17:28.383663Z\""
        );
    }

    proptest! {
        #[test]
        fn reads_back_what_it_writes(micros in 0i64..253_402_300_799_999_999) {
            let t = Timestamp(micros);
            let json = serde_json::to_string(&t).unwrap_or_default();
            let back: Timestamp = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, t);
        }
    }
}
