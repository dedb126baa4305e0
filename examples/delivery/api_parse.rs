//! The API's checks of what clients send: the `POST /orders` body, an order id in a path,
//! the `GET /orders` query. Errors are the 400 messages.
//!
//! Only `serde`, `serde_json` and std, so the fuzz target (`fuzz/`) and the stable property test
//! (`tests/delivery_parse.rs`) include this very file with `#[path]`.

/// Longest accepted address and item name, bytes.
pub(crate) const MAX_TEXT: usize = 500;
/// Largest quantity in one order.
pub(crate) const MAX_QUANTITY: u32 = 1_000_000;
/// Most orders one `GET /orders` lists.
pub(crate) const MAX_LIST: u32 = 10_000;

/// A checked `POST /orders` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewOrder {
    /// Trimmed and not empty; at most `MAX_TEXT` bytes as sent.
    pub(crate) item: String,
    /// From 1 to `MAX_QUANTITY`.
    pub(crate) quantity: u32,
    /// Trimmed and not empty; at most `MAX_TEXT` bytes as sent.
    pub(crate) address: String,
}

/// The fields read from an order body, each kept as JSON and checked below. Derived rather
/// than read from a `serde_json::Value` object, which keeps the last of a field given twice
/// without a word: here that is an error, so no two readers of one body can disagree.
#[derive(serde::Deserialize)]
struct OrderFields {
    #[serde(default)]
    item: Option<serde_json::Value>,
    #[serde(default)]
    quantity: Option<serde_json::Value>,
    #[serde(default)]
    address: Option<serde_json::Value>,
}

/// Checks a `POST /orders` body: a JSON object with `item`, `quantity` and `address`, each
/// once; other fields are ignored.
pub(crate) fn parse_order(body: &[u8]) -> Result<NewOrder, String> {
    let malformed = |e: serde_json::Error| format!("malformed JSON: {e}");
    let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    if !value.is_object() {
        return Err("the body must be a JSON object with item, quantity and address".into());
    }
    // Read again, through the derived struct, for its one check a `Value` lacks. (Alone it is
    // laxer: the fields it ignores are not checked to be valid JSON text.)
    let fields: OrderFields = serde_json::from_slice(body).map_err(malformed)?;
    let text = |field: &str, value: Option<&serde_json::Value>| -> Result<String, String> {
        match value {
            None => Err(format!("missing field `{field}`")),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
                Err(format!("field `{field}` must not be empty"))
            }
            Some(serde_json::Value::String(s)) if s.len() > MAX_TEXT => {
                Err(format!("field `{field}` is longer than {MAX_TEXT} bytes"))
            }
            Some(serde_json::Value::String(s)) => Ok(s.trim().to_owned()),
            Some(_) => Err(format!("field `{field}` must be a string")),
        }
    };
    let item = text("item", fields.item.as_ref())?;
    let address = text("address", fields.address.as_ref())?;
    let quantity = match &fields.quantity {
        None => return Err("missing field `quantity`".into()),
        Some(q) => q
            .as_u64()
            .and_then(|q| u32::try_from(q).ok())
            .filter(|q| (1..=MAX_QUANTITY).contains(q))
            .ok_or(format!(
                "field `quantity` must be an integer from 1 to {MAX_QUANTITY}"
            ))?,
    };
    Ok(NewOrder {
        item,
        quantity,
        address,
    })
}

/// An order id from a path: ASCII digits only (`u64::from_str` alone would take `+5`).
pub(crate) fn parse_order_id(id: &str) -> Result<u64, String> {
    let not_a_number = || format!("order id {id:?} is not a number");
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number());
    }
    id.parse().map_err(|_| not_a_number())
}

/// A checked `GET /orders` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListQuery<S> {
    pub(crate) status: Option<S>,
    /// From 1 to `MAX_LIST`; 100 if not given.
    pub(crate) limit: u32,
}

/// Checks a `GET /orders` query (`status=...&limit=...`); `status` names a status as
/// `parse_status` reads it, so this file needs nothing from the model.
pub(crate) fn parse_list_query<S>(
    query: &str,
    parse_status: impl Fn(&str) -> Option<S>,
) -> Result<ListQuery<S>, String> {
    let mut list = ListQuery {
        status: None,
        limit: 100,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "status" => match parse_status(value) {
                Some(s) => list.status = Some(s),
                None => return Err(format!("unknown status {value:?}")),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n)
                    if value.bytes().all(|b| b.is_ascii_digit()) && (1..=MAX_LIST).contains(&n) =>
                {
                    list.limit = n
                }
                _ => return Err(format!("limit must be from 1 to {MAX_LIST}")),
            },
            _ => return Err(format!("unknown parameter {key:?}")),
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(json: &str) -> Result<NewOrder, String> {
        parse_order(json.as_bytes())
    }

    #[test]
    fn a_valid_order_is_accepted_with_its_text_trimmed() {
        let got = order(r#"{"item":" book ","quantity":2,"address":"1 Main St\n","x":1}"#);
        assert_eq!(
            got,
            Ok(NewOrder {
                item: "book".into(),
                quantity: 2,
                address: "1 Main St".into(),
            })
        );
    }

    #[test]
    fn a_field_given_twice_is_rejected() {
        for json in [
            r#"{"item":"a","quantity":1,"quantity":1000000,"address":"x"}"#,
            r#"{"item":"a","item":"b","quantity":1,"address":"x"}"#,
        ] {
            let err = order(json).unwrap_err();
            assert!(err.contains("duplicate field"), "{err}");
        }
        assert!(order(r#"{"item":"a","quantity":1,"address":"x","x":1,"x":2}"#).is_ok());
    }

    #[test]
    fn anything_but_an_object_is_rejected_and_malformed_json_says_so() {
        let err = order(r#"["a", 1, "x"]"#).unwrap_err();
        assert!(err.contains("must be a JSON object"), "{err}");
        let err = order("  [1,").unwrap_err();
        assert!(err.starts_with("malformed JSON"), "{err}");
        let err = order(r#"{"item":"a""#).unwrap_err();
        assert!(err.starts_with("malformed JSON"), "{err}");
    }

    #[test]
    fn a_field_that_is_not_valid_json_text_is_rejected_even_when_ignored() {
        // Found by the fuzzer: a derived struct skips unknown fields without checking them.
        let body = b"{\"item\":\"book\",\"other\":\"bo\x88\",\"quantity\":5,\"address\":\"x\"}";
        let err = parse_order(body).unwrap_err();
        assert!(err.starts_with("malformed JSON"), "{err}");
        let lone_surrogate = r#"{"item":"book","other":"\ud800","quantity":5,"address":"x"}"#;
        assert!(order(lone_surrogate)
            .unwrap_err()
            .starts_with("malformed JSON"));
    }

    #[test]
    fn an_empty_or_too_long_field_is_rejected() {
        let long = "a".repeat(MAX_TEXT + 1);
        for item in ["", "  ", long.as_str()] {
            let json = format!(r#"{{"item":"{item}","quantity":1,"address":"x"}}"#);
            assert!(order(&json).is_err(), "{item:?}");
        }
    }

    #[test]
    fn a_quantity_outside_1_to_max_or_not_an_integer_is_rejected() {
        for q in [
            "0",
            "-1",
            "1.5",
            "2.0",
            "1e3",
            "\"3\"",
            "1000001",
            "4294967297",
        ] {
            let json = format!(r#"{{"item":"a","quantity":{q},"address":"x"}}"#);
            assert!(order(&json).is_err(), "{q}");
        }
    }

    #[test]
    fn an_order_id_must_be_only_digits() {
        assert_eq!(parse_order_id("42"), Ok(42));
        for id in ["", "+5", "-1", " 5", "5x", "99999999999999999999999"] {
            assert!(parse_order_id(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn a_list_limit_must_be_only_digits_within_range() {
        let status = |s: &str| (s == "placed").then_some(());
        assert_eq!(
            parse_list_query("status=placed&limit=5", status),
            Ok(ListQuery {
                status: Some(()),
                limit: 5
            })
        );
        for query in ["limit=+5", "limit=0", "limit=10001", "status=nope", "x=1"] {
            assert!(parse_list_query(query, status).is_err(), "{query}");
        }
    }
}
