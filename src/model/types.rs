//! Parameter types and value checking: what `xsi:type` a parameter has, and whether a value the
//! ACS sends fits it (TR-069 §A.2.1, PROTOCOL.md §11).
//!
//! Owns the canonical text form of each type (booleans are stored as `true`/`false` whatever the
//! ACS sent). Does not know about paths or devices; `model::device` calls it while validating a
//! SetParameterValues.

use crate::time::parse_datetime;

/// The data-model type of a parameter, as carried in `xsi:type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Int,
    UnsignedInt,
    Long,
    UnsignedLong,
    Boolean,
    DateTime,
    Base64,
    HexBinary,
}

impl ParamType {
    /// The `xsi:type` attribute value this type is written with.
    pub fn xsi_type(self) -> &'static str {
        match self {
            ParamType::String => "xsd:string",
            ParamType::Int => "xsd:int",
            ParamType::UnsignedInt => "xsd:unsignedInt",
            ParamType::Long => "xsd:long",
            ParamType::UnsignedLong => "xsd:unsignedLong",
            ParamType::Boolean => "xsd:boolean",
            ParamType::DateTime => "xsd:dateTime",
            ParamType::Base64 => "xsd:base64",
            ParamType::HexBinary => "xsd:hexBinary",
        }
    }

    /// Reads a type name as profiles and `xsi:type` spell it (`unsignedInt`, `xsd:unsignedInt`,
    /// `base64Binary`, …). The prefix is ignored: peers bind `xsd` to any prefix.
    pub fn from_name(name: &str) -> Option<ParamType> {
        let local = name.rsplit(':').next().unwrap_or(name);
        Some(match local {
            "string" => ParamType::String,
            "int" => ParamType::Int,
            "unsignedInt" => ParamType::UnsignedInt,
            "long" => ParamType::Long,
            "unsignedLong" => ParamType::UnsignedLong,
            "boolean" => ParamType::Boolean,
            "dateTime" => ParamType::DateTime,
            "base64" | "base64Binary" => ParamType::Base64,
            "hexBinary" => ParamType::HexBinary,
            _ => return None,
        })
    }

    /// The value a fresh instance gets when the profile gives none.
    pub fn zero_value(self) -> &'static str {
        match self {
            ParamType::Int | ParamType::UnsignedInt | ParamType::Long | ParamType::UnsignedLong => "0",
            ParamType::Boolean => "false",
            ParamType::DateTime => crate::time::UNKNOWN_TIME,
            _ => "",
        }
    }
}

/// Extra limits a profile may put on a parameter's values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraint {
    /// Allowed values (strings only); empty means any.
    pub allowed: Vec<Box<str>>,
    /// Inclusive numeric range.
    pub min: Option<i128>,
    pub max: Option<i128>,
    /// Maximum length in bytes (strings, base64, hexBinary).
    pub max_length: Option<usize>,
}

/// Why a value was refused: the two per-parameter SetParameterValues fault codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueError {
    /// 9006: the `xsi:type` sent does not fit the parameter.
    WrongType,
    /// 9007: the text is not a valid value of the parameter's type or breaks a constraint.
    BadValue,
}

/// Checks `value` (sent with `xsi_type`, if any) against a parameter of type `ty`.
///
/// # Returns
/// The canonical text to store: borrowed unless the form changes (boolean `1` → `true`).
///
/// # Errors
/// [`ValueError::WrongType`] when `xsi_type` names another known type (an `xsd:string` is
/// accepted for any type whose text parses, as GenieACS sends that when it knows no better);
/// [`ValueError::BadValue`] when the text does not parse or breaks the constraint.
pub fn check_value<'v>(
    ty: ParamType,
    constraint: Option<&Constraint>,
    xsi_type: Option<&str>,
    value: &'v str,
) -> Result<std::borrow::Cow<'v, str>, ValueError> {
    use std::borrow::Cow;
    if let Some(sent) = xsi_type {
        match ParamType::from_name(sent) {
            Some(t) if t == ty || t == ParamType::String => {}
            // Numeric widths are interchangeable on the wire as long as the value fits below.
            Some(t) if is_integer(t) && is_integer(ty) => {}
            _ => return Err(ValueError::WrongType),
        }
    }
    let canonical: Cow<'v, str> = match ty {
        ParamType::String => Cow::Borrowed(value),
        ParamType::Boolean => match value.trim() {
            "true" | "1" => Cow::Borrowed("true"),
            "false" | "0" => Cow::Borrowed("false"),
            _ => return Err(ValueError::BadValue),
        },
        ParamType::Int => int_in(value, i32::MIN as i128, i32::MAX as i128)?,
        ParamType::UnsignedInt => int_in(value, 0, u32::MAX as i128)?,
        ParamType::Long => int_in(value, i64::MIN as i128, i64::MAX as i128)?,
        ParamType::UnsignedLong => int_in(value, 0, u64::MAX as i128)?,
        ParamType::DateTime => {
            parse_datetime(value.trim()).ok_or(ValueError::BadValue)?;
            Cow::Borrowed(value.trim())
        }
        ParamType::Base64 => {
            let ok = value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\n' | b'\r' | b' '));
            if !ok {
                return Err(ValueError::BadValue);
            }
            Cow::Borrowed(value)
        }
        ParamType::HexBinary => {
            if value.len() % 2 != 0 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ValueError::BadValue);
            }
            Cow::Borrowed(value)
        }
    };
    if let Some(c) = constraint {
        if !c.allowed.is_empty() && !c.allowed.iter().any(|a| **a == *canonical) {
            return Err(ValueError::BadValue);
        }
        if c.max_length.is_some_and(|max| canonical.len() > max) {
            return Err(ValueError::BadValue);
        }
        if c.min.is_some() || c.max.is_some() {
            let n: i128 = canonical.parse().map_err(|_| ValueError::BadValue)?;
            if c.min.is_some_and(|min| n < min) || c.max.is_some_and(|max| n > max) {
                return Err(ValueError::BadValue);
            }
        }
    }
    Ok(canonical)
}

/// Why `value` does not fit a parameter of type `ty` with `constraint`, in words, naming the one
/// rule it breaks (the type first, then `enum`, `max_length`, `min`, `max`); `None` when it fits.
/// For profile errors: a default below its minimum says so, not that it is not a number.
pub fn value_problem(ty: ParamType, constraint: Option<&Constraint>, value: &str) -> Option<String> {
    let canonical = match check_value(ty, None, None, value) {
        Ok(c) => c,
        Err(_) => return Some(format!("is not a valid {}", ty.xsi_type())),
    };
    let c = constraint?;
    if !c.allowed.is_empty() && !c.allowed.iter().any(|a| **a == *canonical) {
        let list: Vec<&str> = c.allowed.iter().map(|a| &**a).collect();
        return Some(format!("is not one of the allowed values (enum: {})", list.join(", ")));
    }
    if let Some(max) = c.max_length.filter(|max| canonical.len() > *max) {
        return Some(format!("is {} bytes long, more than max_length {max}", canonical.len()));
    }
    if c.min.is_some() || c.max.is_some() {
        let Ok(n) = canonical.parse::<i128>() else {
            return Some("is not a number, and min/max apply to numbers".into());
        };
        if let Some(min) = c.min.filter(|min| n < *min) {
            return Some(format!("is below the minimum {min}"));
        }
        if let Some(max) = c.max.filter(|max| n > *max) {
            return Some(format!("is above the maximum {max}"));
        }
    }
    None
}

fn is_integer(t: ParamType) -> bool {
    matches!(t, ParamType::Int | ParamType::UnsignedInt | ParamType::Long | ParamType::UnsignedLong)
}

fn int_in(value: &str, min: i128, max: i128) -> Result<std::borrow::Cow<'_, str>, ValueError> {
    let t = value.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::BadValue);
    }
    let n: i128 = t.parse().map_err(|_| ValueError::BadValue)?;
    if n < min || n > max {
        return Err(ValueError::BadValue);
    }
    if t.len() == value.len() && !t.starts_with('+') {
        Ok(std::borrow::Cow::Borrowed(value))
    } else {
        Ok(std::borrow::Cow::Owned(n.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_digits_and_store_words() {
        assert_eq!(check_value(ParamType::Boolean, None, Some("xsd:boolean"), "1").unwrap(), "true");
        assert_eq!(check_value(ParamType::Boolean, None, None, "false").unwrap(), "false");
        assert_eq!(check_value(ParamType::Boolean, None, None, "yes"), Err(ValueError::BadValue));
    }

    #[test]
    fn integers_are_range_checked() {
        assert!(check_value(ParamType::UnsignedInt, None, Some("xsd:unsignedInt"), "4294967295").is_ok());
        assert_eq!(check_value(ParamType::UnsignedInt, None, None, "-1"), Err(ValueError::BadValue));
        assert_eq!(check_value(ParamType::Int, None, None, "12a"), Err(ValueError::BadValue));
        assert_eq!(check_value(ParamType::Int, None, None, "+7").unwrap(), "7");
        let c = Constraint { min: Some(1), ..Default::default() };
        assert_eq!(check_value(ParamType::UnsignedInt, Some(&c), None, "0"), Err(ValueError::BadValue));
    }

    #[test]
    fn xsi_type_mismatch_is_9006_but_string_is_lenient() {
        assert_eq!(check_value(ParamType::UnsignedInt, None, Some("xsd:boolean"), "1"), Err(ValueError::WrongType));
        assert!(check_value(ParamType::UnsignedInt, None, Some("xsd:string"), "300").is_ok());
        assert!(check_value(ParamType::UnsignedInt, None, Some("xsd:int"), "300").is_ok());
        assert_eq!(check_value(ParamType::String, None, Some("xsd:nonsense"), "x"), Err(ValueError::WrongType));
    }

    #[test]
    fn datetimes_and_enums() {
        assert!(check_value(ParamType::DateTime, None, None, "1970-01-01T05:23:11.123Z").is_ok());
        assert_eq!(check_value(ParamType::DateTime, None, None, "yesterday"), Err(ValueError::BadValue));
        let c = Constraint { allowed: vec!["Up".into(), "Down".into()], ..Default::default() };
        assert!(check_value(ParamType::String, Some(&c), None, "Up").is_ok());
        assert_eq!(check_value(ParamType::String, Some(&c), None, "Sideways"), Err(ValueError::BadValue));
    }
}
