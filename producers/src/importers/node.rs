//! JSON access that knows where it is: every error names the JSON path (`$.results[2].times[7]`)
//! and what was expected there, so a user can find the bad value in a file of thousands.

use serde_json::Value;

use super::{ImportContext, ImportError};

/// A JSON value with its path in the document.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    path: &'a str,
    ctx: &'a ImportContext,
}

/// Parses a document; a syntax error names the line and column.
pub fn parse_json(content: &[u8], ctx: &ImportContext) -> Result<Value, ImportError> {
    serde_json::from_slice(content).map_err(|e| ctx.error(format!("line {} column {}", e.line(), e.column()), format!("not valid JSON: {}", strip_position(&e.to_string()))))
}

/// serde_json appends " at line L column C"; the position is reported on its own.
fn strip_position(msg: &str) -> &str {
    msg.rfind(" at line ").map_or(msg, |i| &msg[..i])
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value, ctx: &'a ImportContext) -> Self {
        Node { value, path: "$", ctx }
    }

    pub fn path(&self) -> &str {
        self.path
    }

    /// An error at this node.
    pub fn error(&self, what: impl Into<String>) -> ImportError {
        self.ctx.error(self.path, what)
    }

    fn expected(&self, what: &str) -> ImportError {
        self.error(format!("expected {what}, found {}", kind(self.value)))
    }

    /// Runs `f` on the child `key` (paths are built only when a child is visited).
    pub fn field<T>(&self, key: &str, f: impl FnOnce(Node<'_>) -> Result<T, ImportError>) -> Result<T, ImportError> {
        let path = format!("{}.{key}", self.path);
        match self.value.get(key) {
            Some(v) if self.value.is_object() => f(Node { value: v, path: &path, ctx: self.ctx }),
            _ if !self.value.is_object() => Err(self.expected("an object")),
            _ => Err(self.ctx.error(path, "missing")),
        }
    }

    /// Like [`Node::field`], `None` when the key is absent or null.
    pub fn opt_field<T>(&self, key: &str, f: impl FnOnce(Node<'_>) -> Result<T, ImportError>) -> Result<Option<T>, ImportError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.field(key, f).map(Some),
        }
    }

    /// Runs `f` on each element of this array.
    pub fn each<T>(&self, mut f: impl FnMut(usize, Node<'_>) -> Result<T, ImportError>) -> Result<Vec<T>, ImportError> {
        let items = self.value.as_array().ok_or_else(|| self.expected("an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{}[{i}]", self.path);
                f(i, Node { value: v, path: &path, ctx: self.ctx })
            })
            .collect()
    }

    /// Runs `f` on each member of this object, in document order.
    pub fn members<T>(&self, mut f: impl FnMut(&str, Node<'_>) -> Result<T, ImportError>) -> Result<Vec<T>, ImportError> {
        let items = self.value.as_object().ok_or_else(|| self.expected("an object"))?;
        items
            .iter()
            .map(|(k, v)| {
                let path = format!("{}.{k}", self.path);
                f(k, Node { value: v, path: &path, ctx: self.ctx })
            })
            .collect()
    }

    /// A finite number.
    pub fn num(&self) -> Result<f64, ImportError> {
        self.value.as_f64().filter(|x| x.is_finite()).ok_or_else(|| self.expected("a number"))
    }

    /// A non-negative finite number (a time, a count).
    pub fn non_negative(&self) -> Result<f64, ImportError> {
        let x = self.num()?;
        if x < 0.0 {
            return Err(self.error(format!("expected a number ≥ 0, found {x}")));
        }
        Ok(x)
    }

    /// An integer.
    pub fn int(&self) -> Result<i64, ImportError> {
        self.value.as_i64().ok_or_else(|| self.expected("an integer"))
    }

    /// A string.
    pub fn str(&self) -> Result<&'a str, ImportError> {
        self.value.as_str().ok_or_else(|| self.expected("a string"))
    }

    /// An array of non-negative numbers.
    pub fn numbers(&self) -> Result<Vec<f64>, ImportError> {
        self.each(|_, n| n.non_negative())
    }

    /// A string, number or boolean as text (labels, parameters).
    pub fn text(&self) -> Option<String> {
        match self.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The string at `key` if there is one (absent, null or another type: `None`).
    pub fn str_at(&self, key: &str) -> Option<String> {
        self.value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
    }
}
