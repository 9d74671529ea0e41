//! USP Path Names as a Controller writes them (TR-369 §"Path Names", §"Searching"): instance
//! numbers, the `*` wildcard and Search Expressions (`Device.NAT.PortMapping.[Enable==true&&
//! ExternalPort>1024].`), resolved against one CPE's instantiated data model.
//!
//! Owns the search grammar and its typed comparison rules; every USP message that takes a path
//! (Get, Set, Add, Delete, GetInstances, Operate, a subscription's ReferenceList) resolves it here.
//! Malformed input is 7008 (Invalid path syntax), a name the schema lacks 7026 (Invalid path);
//! nothing here panics, and a path is parsed in one pass over its bytes.

use smallvec::SmallVec;

use super::UspErr;
use crate::model::device::{ReadFor, Target};
use crate::model::tree::NodeKind;
use crate::model::types::ParamType;
use crate::model::Device;
use crate::time::parse_datetime_ms;

/// Most concrete instance paths one search or wildcard path may expand to before it is refused
/// with 7005 Resources Exceeded (`*.*.*` over large tables multiplies).
pub const MAX_EXPANSION: usize = 65_536;

/// One instance position of a path.
#[derive(Debug, Clone, PartialEq)]
enum Seg<'a> {
    /// A name or an instance number.
    Name(&'a str),
    /// `*`: every instance.
    Star,
    /// `[…]`: the instances the expression holds for.
    Search(Vec<Component<'a>>),
}

/// An Expression Component: `Param op Constant`.
#[derive(Debug, Clone, PartialEq)]
struct Component<'a> {
    /// A relative parameter path (`Enable`, `Stats.ErrorsSent`), no child tables.
    param: &'a str,
    op: Op,
    constant: Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
    Lt,
    Gt,
    Le,
    Ge,
}

/// An Expression Constant: a double-quoted string (percent escapes decoded) or a bare literal.
#[derive(Debug, Clone, PartialEq)]
enum Constant {
    Quoted(String),
    Bare(String),
}

/// Whether `path` uses a wildcard or a search expression (so it may match no instance without
/// that being an error).
pub fn is_search(path: &str) -> bool {
    path.contains('*') || path.contains('[')
}

/// Resolves a Controller's path: USP paths always allow `*` (TR-369 §"Path Names"), whatever the
/// CWMP side's InstanceWildcardsSupported says, and Search Expressions in any instance position.
///
/// # Errors
/// 7008 for an empty or badly formed path or expression (an empty `[]`, a bad operator, a
/// constant of the wrong type for its parameter, an operator the type does not allow, a child
/// table inside an expression), 7026 for a name the schema does not have, 7005 past
/// [`MAX_EXPANSION`] instances.
pub fn resolve(dev: &Device<'_>, path: &str) -> Result<SmallVec<[Target; 1]>, UspErr> {
    if path.is_empty() || path.starts_with('.') {
        return Err(UspErr::INVALID_PATH_SYNTAX);
    }
    if !is_search(path) {
        if path.contains("..") || path.contains(']') || path.contains('"') {
            return Err(UspErr::INVALID_PATH_SYNTAX);
        }
        return dev.resolve(path).map_err(|_| UspErr::INVALID_PATH);
    }
    let (segs, object) = parse(path)?;
    let tree = &dev.model.tree;
    // Concrete prefixes, each ending in `.`.
    let mut prefixes: Vec<String> = vec![String::new()];
    let last = segs.len() - 1;
    for (i, seg) in segs.iter().enumerate() {
        let dot = i < last || object;
        match seg {
            Seg::Name(n) => {
                for p in &mut prefixes {
                    p.push_str(n);
                    if dot {
                        p.push('.');
                    }
                }
            }
            Seg::Star | Seg::Search(_) => {
                let mut next = Vec::new();
                for p in &prefixes {
                    let table = match dev.resolve(p).map_err(|_| UspErr::INVALID_PATH)?.as_slice() {
                        [Target::Object(loc)] if matches!(tree.node(loc.node).kind, NodeKind::Table(_)) => loc.clone(),
                        _ => return Err(UspErr::INVALID_PATH),
                    };
                    if let Seg::Search(expr) = seg {
                        check_expression(dev, &crate::model::tree::schema_of(p), expr)?;
                    }
                    for n in dev.instances(table.node, &table.inst) {
                        let inst = format!("{p}{n}.");
                        let keep = match seg {
                            Seg::Search(expr) => holds(dev, &inst, expr),
                            _ => true,
                        };
                        if keep {
                            next.push(inst);
                        }
                    }
                    if next.len() > MAX_EXPANSION {
                        return Err(UspErr::RESOURCES_EXCEEDED);
                    }
                }
                if !dot {
                    // `Device.NAT.PortMapping.*` (no trailing dot) names the instances as objects.
                    return Err(UspErr::INVALID_PATH_SYNTAX);
                }
                prefixes = next;
            }
        }
    }
    let mut out = SmallVec::new();
    for p in &prefixes {
        // An instance lacking what the rest names is skipped (a wildcard matching nothing is
        // not an error); a rest no instance could have is (checked below).
        if let Ok(t) = dev.resolve(p) {
            out.extend(t);
        }
    }
    if out.is_empty() && !schema_has_segs(dev, &segs, object) {
        return Err(UspErr::INVALID_PATH);
    }
    Ok(out)
}

/// Checks a path's syntax alone (no data model): what Operate needs for a command path.
///
/// # Errors
/// 7008 as [`resolve`] gives it.
pub fn check_syntax(path: &str) -> Result<(), UspErr> {
    if path.is_empty() || path.starts_with('.') {
        return Err(UspErr::INVALID_PATH_SYNTAX);
    }
    parse(path).map(|_| ())
}

/// Splits a path into segments, honouring brackets and quotes. Returns the segments and whether
/// the path names an object (ends in `.`).
fn parse(path: &str) -> Result<(Vec<Seg<'_>>, bool), UspErr> {
    let bytes = path.as_bytes();
    let mut segs = Vec::new();
    let mut i = 0;
    let object = path.ends_with('.');
    while i < bytes.len() {
        if bytes[i] == b'[' {
            // The expression runs to the first `]` outside quotes.
            let start = i + 1;
            let mut j = start;
            let mut quoted = false;
            while j < bytes.len() && (quoted || bytes[j] != b']') {
                if bytes[j] == b'"' {
                    quoted = !quoted;
                }
                j += 1;
            }
            if j >= bytes.len() {
                return Err(UspErr::INVALID_PATH_SYNTAX);
            }
            segs.push(Seg::Search(parse_expression(&path[start..j])?));
            i = j + 1;
            // An expression is a whole segment.
            match bytes.get(i) {
                None => {}
                Some(b'.') => i += 1,
                Some(_) => return Err(UspErr::INVALID_PATH_SYNTAX),
            }
            continue;
        }
        let end = path[i..].find('.').map_or(bytes.len(), |k| i + k);
        let name = &path[i..end];
        if name.is_empty() || name.contains(['[', ']', '"', '{', '}']) {
            return Err(UspErr::INVALID_PATH_SYNTAX);
        }
        segs.push(if name == "*" { Seg::Star } else { Seg::Name(name) });
        i = end + 1;
    }
    if segs.is_empty() {
        return Err(UspErr::INVALID_PATH_SYNTAX);
    }
    Ok((segs, object))
}

fn parse_expression(expr: &str) -> Result<Vec<Component<'_>>, UspErr> {
    let mut out = Vec::new();
    for part in split_outside_quotes(expr, "&&") {
        out.push(parse_component(part)?);
    }
    Ok(out)
}

/// Splits on `sep` where it is not inside a quoted string.
fn split_outside_quotes<'a>(s: &'a str, sep: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        if b[i] == b'"' {
            quoted = !quoted;
        } else if !quoted && b[i..].starts_with(sep.as_bytes()) {
            parts.push(&s[start..i]);
            i += sep.len();
            start = i;
            continue;
        }
        i += 1;
    }
    parts.push(&s[start..]);
    parts
}

fn parse_component(c: &str) -> Result<Component<'_>, UspErr> {
    let at = c.find(['=', '!', '~', '<', '>']).ok_or(UspErr::INVALID_PATH_SYNTAX)?;
    let param = c[..at].trim();
    let rest = &c[at..];
    let (op, len) = match rest.as_bytes() {
        [b'=', b'=', ..] => (Op::Eq, 2),
        [b'!', b'=', ..] => (Op::Ne, 2),
        [b'~', b'=', ..] => (Op::Contains, 2),
        [b'<', b'=', ..] => (Op::Le, 2),
        [b'>', b'=', ..] => (Op::Ge, 2),
        [b'<', ..] => (Op::Lt, 1),
        [b'>', ..] => (Op::Gt, 1),
        _ => return Err(UspErr::INVALID_PATH_SYNTAX),
    };
    // The relative path: names only, no wildcard, no child table (an instance number), no
    // trailing dot.
    let param_ok = !param.is_empty()
        && param.split('.').all(|s| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && !s.bytes().all(|b| b.is_ascii_digit())
        });
    if !param_ok {
        return Err(UspErr::INVALID_PATH_SYNTAX);
    }
    let raw = rest[len..].trim();
    let constant = if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner.strip_suffix('"').ok_or(UspErr::INVALID_PATH_SYNTAX)?;
        if inner.contains('"') {
            return Err(UspErr::INVALID_PATH_SYNTAX);
        }
        Constant::Quoted(percent_decode(inner)?)
    } else {
        if raw.is_empty() || raw.contains(['"', '=', '!', '<', '>', '~', '&', ' ']) {
            return Err(UspErr::INVALID_PATH_SYNTAX);
        }
        Constant::Bare(raw.to_string())
    };
    Ok(Component { param, op, constant })
}

/// `%22` → `"`, `%25` → `%` (any `%XX`); a `%` not followed by two hex digits is 7008.
fn percent_decode(s: &str) -> Result<String, UspErr> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or(UspErr::INVALID_PATH_SYNTAX)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UspErr::INVALID_PATH_SYNTAX)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UspErr::INVALID_PATH_SYNTAX)
}

/// A value of a comparable type.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Value {
    Int(i128),
    Time(i64),
    Bool(bool),
    Text(String),
}

fn typed(ty: ParamType, text: &str) -> Option<Value> {
    match ty {
        ParamType::Int | ParamType::UnsignedInt | ParamType::Long | ParamType::UnsignedLong => {
            text.trim().strip_prefix('+').unwrap_or(text.trim()).parse::<i128>().ok().map(Value::Int)
        }
        ParamType::Boolean => match text.trim() {
            "true" | "1" => Some(Value::Bool(true)),
            "false" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        ParamType::DateTime => parse_datetime_ms(text.trim()).map(Value::Time),
        ParamType::String | ParamType::Base64 | ParamType::HexBinary => Some(Value::Text(text.to_string())),
    }
}

fn param_type(dev: &Device<'_>, table_schema: &str, param: &str) -> Result<ParamType, UspErr> {
    let node = dev.model.tree.by_schema_path(&format!("{table_schema}{{i}}.{param}")).ok_or(UspErr::INVALID_PATH)?;
    dev.model.tree.node(node).param().map(|p| p.ty).ok_or(UspErr::INVALID_PATH_SYNTAX)
}

/// Checks an expression against the table's schema: each parameter exists, each constant has
/// its parameter's type (TR-106 literal forms; strings quoted), each operator suits the type
/// (strings and booleans take only `==` and `!=`; `~=` a list element).
fn check_expression(dev: &Device<'_>, table_schema: &str, expr: &[Component<'_>]) -> Result<(), UspErr> {
    for c in expr {
        let ty = param_type(dev, table_schema, c.param)?;
        match (&c.constant, c.op) {
            (_, Op::Contains) => {}
            (Constant::Quoted(_), _) if !matches!(ty, ParamType::String | ParamType::Base64 | ParamType::HexBinary) => {
                return Err(UspErr::INVALID_PATH_SYNTAX)
            }
            (Constant::Bare(_), _) if matches!(ty, ParamType::String | ParamType::Base64 | ParamType::HexBinary) => {
                return Err(UspErr::INVALID_PATH_SYNTAX)
            }
            (Constant::Bare(b), op) => {
                let v = typed(ty, b).ok_or(UspErr::INVALID_PATH_SYNTAX)?;
                if matches!(v, Value::Bool(_)) && !matches!(op, Op::Eq | Op::Ne) {
                    return Err(UspErr::INVALID_PATH_SYNTAX);
                }
            }
            (Constant::Quoted(_), op) if !matches!(op, Op::Eq | Op::Ne) => return Err(UspErr::INVALID_PATH_SYNTAX),
            (Constant::Quoted(_), _) => {}
        }
    }
    Ok(())
}

/// Whether every component holds for the instance at `inst` (a checked expression).
fn holds(dev: &Device<'_>, inst: &str, expr: &[Component<'_>]) -> bool {
    expr.iter().all(|c| {
        let Ok(t) = dev.resolve(&format!("{inst}{}", c.param)) else { return false };
        let [Target::Param(loc)] = t.as_slice() else { return false };
        let Some(ty) = dev.model.tree.node(loc.node).param().map(|p| p.ty) else { return false };
        let value = dev.value_string(loc, ReadFor::Acs);
        let constant = match &c.constant {
            Constant::Quoted(s) | Constant::Bare(s) => s.as_str(),
        };
        if c.op == Op::Contains {
            return value.split(',').map(str::trim).any(|e| e == constant.trim());
        }
        let (Some(v), Some(k)) = (typed(ty, &value), typed(ty, constant)) else { return false };
        match c.op {
            Op::Eq => v == k,
            Op::Ne => v != k,
            Op::Lt => v < k,
            Op::Gt => v > k,
            Op::Le => v <= k,
            Op::Ge => v >= k,
            Op::Contains => false,
        }
    })
}

fn schema_has_segs(dev: &Device<'_>, segs: &[Seg<'_>], object: bool) -> bool {
    let mut generic: Vec<&str> = segs
        .iter()
        .map(|s| match s {
            Seg::Name(n) if n.bytes().all(|b| b.is_ascii_digit()) => "{i}",
            Seg::Name(n) => n,
            Seg::Star | Seg::Search(_) => "{i}",
        })
        .collect();
    if object {
        generic.push("");
    }
    dev.model.tree.by_schema_path(&generic.join(".")).is_some()
}

/// Whether a path (numbers, `*` or expressions in instance positions) names something in the
/// schema (for paths matching no instance).
pub fn schema_has(dev: &Device<'_>, path: &str) -> bool {
    match parse(path) {
        Ok((segs, object)) => schema_has_segs(dev, &segs, object),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        let (segs, object) = parse("Device.NAT.PortMapping.[Enable==true&&Description==\"a%22b\"].").unwrap();
        assert!(object);
        assert_eq!(segs.len(), 4);
        let Seg::Search(e) = &segs[3] else { panic!() };
        assert_eq!(e[1].constant, Constant::Quoted("a\"b".into()));
        assert_eq!(parse("Device.X.[ A == 1 ].Y").unwrap().0.len(), 4);
        // Multi-byte characters anywhere: an answer, never a slice off a char boundary.
        assert!(parse("Device.X.[A==\"é&&ü\"&&B==1].").is_ok());
        for odd in ["Device.X.[é&&é].", "Device.X.[A==é&&&é].", "Device.X.[€].", "Device.X.[A==\"%é\"]."] {
            assert_eq!(parse(odd).map(|_| ()), Err(UspErr::INVALID_PATH_SYNTAX), "{odd}");
        }
        for bad in [
            "Device.X.[].",
            "Device.X.[A].",
            "Device.X.[A=1].",
            "Device.X.[A==].",
            "Device.X.[==1].",
            "Device.X.[A==1",
            "Device.X.[A==1]Y.",
            "Device.X.[A==\"x].",
            "Device.X.[A.1.B==1].",
            "Device.X.[A.*.B==1].",
            "Device.X.{i}.",
            "Device..X",
            "Device.X.[A==1&&].",
            "Device.X.[A==\"%2\"].",
            "Device.X.[A==\"%ZZ\"].",
        ] {
            assert_eq!(parse(bad).map(|_| ()), Err(UspErr::INVALID_PATH_SYNTAX), "{bad}");
        }
    }
}
