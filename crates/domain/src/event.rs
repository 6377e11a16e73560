//! How domain events become stored events and back: each aggregate's events
//! are one serde enum, adjacently tagged, so the variant name is the stored
//! `event_type` and the payload is the stored `data`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::de::value::MapDeserializer;
use serde_json::Value;

/// A domain event enum serialized as `{"type": …, "data": …}`.
pub trait DomainEvent: Serialize + DeserializeOwned + Sized {
    /// The schema version the current code writes.
    const SCHEMA_VERSION: u32 = 1;

    /// The stored `event_type` and `data` of this event.
    fn to_parts(&self) -> Result<(String, Value), serde_json::Error> {
        let mut tagged = serde_json::to_value(self)?;
        let event_type = tagged["type"].as_str().unwrap_or_default().to_owned();
        let data = tagged
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(Value::Null);
        Ok((event_type, data))
    }

    /// The event a stored `event_type` and `data` hold; `Ok(None)` for a type
    /// this enum does not know (another aggregate's, or a newer one).
    fn from_parts(event_type: &str, data: &Value) -> Result<Option<Self>, serde_json::Error> {
        // Deserialize from a borrowed {"type", "data"} map: building that map
        // as a `Value` would deep-copy the payload (a list-import event holds
        // a thousand contacts).
        let tag = Value::String(event_type.to_owned());
        let entries = [("type", &tag), ("data", data)];
        let tagged = MapDeserializer::<_, serde_json::Error>::new(entries.into_iter());
        match <Self as serde::Deserialize>::deserialize(tagged) {
            Ok(event) => Ok(Some(event)),
            Err(err) if err.to_string().starts_with("unknown variant") => Ok(None),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Sample {
        Happened { n: u32 },
    }

    impl DomainEvent for Sample {}

    #[test]
    fn events_round_trip_through_type_and_data() {
        let (event_type, data) = Sample::Happened { n: 3 }.to_parts().unwrap();
        assert_eq!(event_type, "Happened");
        assert_eq!(data, json!({"n": 3}));
        assert_eq!(
            Sample::from_parts(&event_type, &data).unwrap(),
            Some(Sample::Happened { n: 3 })
        );
    }

    #[test]
    fn unknown_types_are_skipped_but_bad_payloads_are_errors() {
        assert_eq!(
            Sample::from_parts("SomethingElse", &json!({})).unwrap(),
            None
        );
        assert!(Sample::from_parts("Happened", &json!({"n": "three"})).is_err());
    }
}
