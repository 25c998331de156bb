//! Parameters: values that replace top-level `let NAME = LITERAL` bindings before tracing
//! (`--set NAME=VALUE` on the command line, `params=` in Python).
//!
//! A parameter replaces the literal in the syntax tree, so the program is traced exactly as
//! if the file said the new value: every rule (weak typing of numbers, list literals as
//! tensors, paths relative to the file) applies unchanged. Only a literal binding can be
//! overridden — a number, a string, a boolean, or a (nested) list of them — and the new
//! value must be of the same kind: see [`apply`].

use pipec_diag::{Code, Diagnostic, Span};
use pipec_syntax::ast::{self, Expr, ExprKind, ItemKind};

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A string.
    Str(String),
    /// A list (nested lists are tensors of higher rank).
    List(Vec<ParamValue>),
}

impl ParamValue {
    /// Reads the `VALUE` of `--set NAME=VALUE`: a literal as a `.pipe` file writes it
    /// (`7`, `-0.5`, `true`, `"a b"`, `[1, 2, 3]`); any other text is taken as a string, so
    /// `--set path=data/x.npy` needs no quotes.
    pub fn parse(text: &str) -> ParamValue {
        let source = format!("let value = {text}\n");
        let (program, diags) = pipec_syntax::parse(&source);
        if diags.iter().any(|d| d.is_error()) {
            return ParamValue::Str(text.to_string());
        }
        match program.items.as_slice() {
            [item] => match &item.kind {
                ItemKind::Let { value, .. } => {
                    from_literal(value).unwrap_or_else(|| ParamValue::Str(text.to_string()))
                }
                _ => ParamValue::Str(text.to_string()),
            },
            _ => ParamValue::Str(text.to_string()),
        }
    }

    /// What kind of value this is, for messages.
    fn kind(&self) -> String {
        match self {
            ParamValue::Int(_) => "an integer".into(),
            ParamValue::Float(_) => "a float".into(),
            ParamValue::Bool(_) => "a boolean".into(),
            ParamValue::Str(_) => "a string".into(),
            ParamValue::List(_) => "a list".into(),
        }
    }

    /// The literal expression this value stands for, every node at `span`.
    fn to_expr(&self, span: Span) -> Expr {
        let kind = match self {
            ParamValue::Int(v) if *v < 0 => ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                expr: Box::new(Expr {
                    kind: ExprKind::Int(v.unsigned_abs()),
                    span,
                }),
            },
            ParamValue::Int(v) => ExprKind::Int(*v as u64),
            ParamValue::Float(v) if v.is_sign_negative() && !v.is_nan() => ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                expr: Box::new(Expr {
                    // The decimal text the value came from (Rust's shortest round trip), as
                    // a literal keeps it for exact casts.
                    kind: ExprKind::Float(-v, format!("{:?}", -v)),
                    span,
                }),
            },
            ParamValue::Float(v) => ExprKind::Float(*v, format!("{v:?}")),
            ParamValue::Bool(b) => ExprKind::Bool(*b),
            ParamValue::Str(s) => ExprKind::Str(s.clone()),
            ParamValue::List(items) => {
                ExprKind::List(items.iter().map(|i| i.to_expr(span)).collect())
            }
        };
        Expr { kind, span }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v:?}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => write!(f, "{s:?}"),
            ParamValue::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

/// The value of a literal expression, or `None` if `e` is not a literal.
fn from_literal(e: &Expr) -> Option<ParamValue> {
    Some(match &e.kind {
        ExprKind::Int(v) => ParamValue::Int(i64::try_from(*v).ok()?),
        ExprKind::Float(v, _) => ParamValue::Float(*v),
        ExprKind::Bool(b) => ParamValue::Bool(*b),
        ExprKind::Str(s) => ParamValue::Str(s.clone()),
        ExprKind::Unary {
            op: ast::UnaryOp::Neg,
            expr,
        } => match &expr.kind {
            // `-9223372036854775808` is the one integer whose magnitude does not fit.
            ExprKind::Int(v) => ParamValue::Int(0i64.checked_sub_unsigned(*v)?),
            ExprKind::Float(v, _) => ParamValue::Float(-v),
            _ => return None,
        },
        ExprKind::List(items) => {
            ParamValue::List(items.iter().map(from_literal).collect::<Option<_>>()?)
        }
        _ => return None,
    })
}

/// The value `given` converted to fit where the file has `written`, or why it does not fit.
/// Integers fit where floats are written (as in the language, where a literal list with one
/// float is all floats); lists must nest as deep as the written one, with any length.
fn fit(written: &ParamValue, given: &ParamValue) -> Result<ParamValue, String> {
    use ParamValue as P;
    match (written, given) {
        (P::Int(_), P::Int(_))
        | (P::Float(_), P::Float(_))
        | (P::Bool(_), P::Bool(_))
        | (P::Str(_), P::Str(_)) => Ok(given.clone()),
        (P::Float(_), P::Int(v)) => Ok(P::Float(*v as f64)),
        (P::List(w), P::List(g)) => {
            // The written list's first item stands for every item (literals are regular);
            // an empty written list accepts any list.
            match w.first() {
                None => Ok(given.clone()),
                Some(model) => {
                    // Where the file mixes ints and floats, floats are what it means.
                    let model = if w.iter().any(|x| matches!(x, P::Float(_))) {
                        &P::Float(0.0)
                    } else {
                        model
                    };
                    g.iter()
                        .map(|item| fit(model, item))
                        .collect::<Result<_, _>>()
                        .map(P::List)
                }
            }
        }
        _ => Err(format!("expected {}, got {}", written.kind(), given.kind())),
    }
}

/// Replaces the literal of each top-level `let NAME = LITERAL` named in `params` by the
/// parameter's value. Every parameter that names no such binding (E0810) or does not fit
/// the literal written there (E0811) is reported; the program is changed only when all fit.
pub fn apply(program: &mut ast::Program, params: &[(String, ParamValue)]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut replacements = Vec::new();
    let lets: Vec<(usize, &ast::Ident, &Expr)> = program
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match &item.kind {
            ItemKind::Let { name, value } => Some((i, name, value)),
            _ => None,
        })
        .collect();
    for (name, given) in params {
        // A later `let` of the same name is the binding pipelines see.
        let Some(&(index, ident, value)) = lets.iter().rev().find(|(_, n, _)| n.name == *name)
        else {
            let literal_names = lets
                .iter()
                .filter(|(_, _, v)| from_literal(v).is_some())
                .map(|(_, n, _)| n.name.as_str());
            let mut d = Diagnostic::error(
                Code::UnknownParameter,
                format!(
                    "unknown parameter `{name}`: the program has no top-level `let {name} = ...`"
                ),
            );
            if let Some(s) = pipec_diag::did_you_mean(name, literal_names.clone()) {
                d = d.with_note(format!("did you mean `{s}`?"));
            }
            let all: Vec<&str> = literal_names.collect();
            d = d.with_help(if all.is_empty() {
                "parameters set top-level `let NAME = LITERAL` bindings; this program has none"
                    .to_string()
            } else {
                format!("the parameters of this program are: {}", all.join(", "))
            });
            diags.push(d);
            continue;
        };
        let Some(written) = from_literal(value) else {
            diags.push(
                Diagnostic::error(
                    Code::ParameterMismatch,
                    format!("`{name}` cannot be set: its value is not a literal"),
                )
                .with_label(value.span, "computed here, not written as a literal")
                .with_help(format!(
                    "a parameter replaces a number, string, boolean or list written in the file; bind that part to its own name (`let {name}_base = ...`) and set that"
                )),
            );
            continue;
        };
        match fit(&written, given) {
            Ok(v) => replacements.push((index, v.to_expr(value.span))),
            Err(why) => diags.push(
                Diagnostic::error(
                    Code::ParameterMismatch,
                    format!("parameter `{name}` = {given} does not fit the value written in the file: {why}"),
                )
                .with_label(value.span, format!("`{}` is {} here", ident.name, written.kind()))
                .with_help(format!("give `{name}` {}, like `{written}`", written.kind())),
            ),
        }
    }
    if diags.is_empty() {
        for (index, expr) in replacements {
            if let ItemKind::Let { value, .. } = &mut program.items[index].kind {
                *value = expr;
            }
        }
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_bare_strings() {
        assert_eq!(ParamValue::parse("7"), ParamValue::Int(7));
        assert_eq!(ParamValue::parse("-7"), ParamValue::Int(-7));
        assert_eq!(ParamValue::parse("0.5"), ParamValue::Float(0.5));
        assert_eq!(ParamValue::parse("true"), ParamValue::Bool(true));
        assert_eq!(ParamValue::parse("\"a b\""), ParamValue::Str("a b".into()));
        assert_eq!(
            ParamValue::parse("data/x.npy"),
            ParamValue::Str("data/x.npy".into())
        );
        assert_eq!(
            ParamValue::parse("[[1, 2], [3, -4]]"),
            ParamValue::List(vec![
                ParamValue::List(vec![ParamValue::Int(1), ParamValue::Int(2)]),
                ParamValue::List(vec![ParamValue::Int(3), ParamValue::Int(-4)]),
            ])
        );
        assert_eq!(
            ParamValue::parse("-9223372036854775808"),
            ParamValue::Int(i64::MIN)
        );
    }

    #[test]
    fn fits_by_kind() {
        use ParamValue as P;
        assert_eq!(fit(&P::Float(1.0), &P::Int(2)), Ok(P::Float(2.0)));
        assert!(fit(&P::Int(1), &P::Float(2.0)).is_err());
        assert!(fit(&P::Str("a".into()), &P::Int(2)).is_err());
        let written = P::List(vec![P::Int(1), P::Float(0.5)]);
        assert_eq!(
            fit(&written, &P::List(vec![P::Int(3)])),
            Ok(P::List(vec![P::Float(3.0)]))
        );
        assert!(fit(&written, &P::List(vec![P::List(vec![P::Int(3)])])).is_err());
        assert!(fit(&written, &P::Int(3)).is_err());
    }
}
