//! Tokenizer, recursive-descent parser and evaluator of the condition language.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Text(String),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "the number {n}"),
            Value::Text(s) => write!(f, "the text '{s}'"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Variable(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(Box<Expr>, Cmp, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Text(String),
    Variable(String),
    Word(String),
    Cmp(Cmp),
    Open,
    Close,
    And,
    Or,
    Not,
}

/// A token and the character offset it starts at, for error messages.
type Spanned = (Token, usize);

fn tokenize(source: &str) -> Result<Vec<Spanned>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push((Token::Open, start));
                i += 1;
            }
            ')' => {
                tokens.push((Token::Close, start));
                i += 1;
            }
            '{' if rest == "{{" => {
                let close = (i + 2..chars.len().saturating_sub(1)).find(|&j| chars[j] == '}' && chars[j + 1] == '}');
                let Some(close) = close else {
                    return Err(format!("'{{{{' at position {start} is not closed with '}}}}'"));
                };
                let name: String = chars[i + 2..close].iter().collect::<String>().trim().to_string();
                let Some(field) = name.strip_prefix("input.") else {
                    return Err(format!("unknown variable '{name}' at position {start}: variables are {{{{ input.NAME }}}}"));
                };
                if !crate::VARIABLES.contains(&field) {
                    return Err(format!(
                        "unknown variable 'input.{field}' at position {start}; known: {}",
                        crate::VARIABLES.join(", ")
                    ));
                }
                tokens.push((Token::Variable(field.to_string()), start));
                i = close + 2;
            }
            '\'' | '"' => {
                let end = (i + 1..chars.len()).find(|&j| chars[j] == c).ok_or_else(|| format!("string at position {start} is not closed"))?;
                tokens.push((Token::Text(chars[i + 1..end].iter().collect()), start));
                i = end + 1;
            }
            '=' | '!' | '<' | '>' | '&' | '|' => {
                let (token, len) = match rest.as_str() {
                    "==" => (Token::Cmp(Cmp::Eq), 2),
                    "!=" => (Token::Cmp(Cmp::Ne), 2),
                    "<=" => (Token::Cmp(Cmp::Le), 2),
                    ">=" => (Token::Cmp(Cmp::Ge), 2),
                    "&&" => (Token::And, 2),
                    "||" => (Token::Or, 2),
                    _ => match c {
                        '=' => (Token::Cmp(Cmp::Eq), 1),
                        '<' => (Token::Cmp(Cmp::Lt), 1),
                        '>' => (Token::Cmp(Cmp::Gt), 1),
                        '!' => (Token::Not, 1),
                        _ => return Err(format!("unexpected '{c}' at position {start}")),
                    },
                };
                tokens.push((token, start));
                i += len;
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '.') {
                    end += 1;
                }
                let text: String = chars[i..end].iter().collect();
                let number = text.parse().map_err(|_| format!("'{text}' at position {start} is not a number"))?;
                tokens.push((Token::Number(number), start));
                i = end;
            }
            c if c.is_ascii_alphabetic() => {
                let mut end = i + 1;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || chars[end] == '_') {
                    end += 1;
                }
                let word: String = chars[i..end].iter().collect();
                let token = match word.to_ascii_lowercase().as_str() {
                    "and" => Token::And,
                    "or" => Token::Or,
                    "not" => Token::Not,
                    _ => Token::Word(word),
                };
                tokens.push((token, start));
                i = end;
            }
            other => return Err(format!("unexpected '{other}' at position {start}")),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Spanned>,
    at: usize,
    end: usize,
    /// Open parentheses and `not`s: bounded, so that a hostile `((((...` is a
    /// `condition_not_valid` instead of a stack overflow in the sandbox.
    depth: usize,
}

/// Deeper nesting than any real condition needs.
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map(|(_, p)| *p).unwrap_or(self.end)
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.not()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn nest<T>(&mut self, inner: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("the condition nests deeper than {MAX_DEPTH} levels at position {}", self.position()));
        }
        self.depth += 1;
        let result = inner(self);
        self.depth -= 1;
        result
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some(&Token::Not) {
            self.at += 1;
            return self.nest(|p| Ok(Expr::Not(Box::new(p.not()?))));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, String> {
        let left = self.atom()?;
        if let Some(Token::Cmp(op)) = self.peek() {
            let op = *op;
            self.at += 1;
            return Ok(Expr::Compare(Box::new(left), op, Box::new(self.atom()?)));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let position = self.position();
        let Some((token, _)) = self.tokens.get(self.at).cloned() else {
            return Err(format!("the condition ends early at position {position}: a value is missing"));
        };
        self.at += 1;
        Ok(match token {
            Token::Number(n) => Expr::Literal(Value::Number(n)),
            Token::Text(s) => Expr::Literal(Value::Text(s)),
            Token::Variable(v) => Expr::Variable(v),
            Token::Word(w) if w.eq_ignore_ascii_case("true") => Expr::Literal(Value::Bool(true)),
            Token::Word(w) if w.eq_ignore_ascii_case("false") => Expr::Literal(Value::Bool(false)),
            Token::Open => {
                let inner = self.nest(Self::or)?;
                if self.peek() != Some(&Token::Close) {
                    return Err(format!("missing ')' at position {} for '(' at position {position}", self.position()));
                }
                self.at += 1;
                inner
            }
            Token::Word(w) => return Err(format!("unknown word '{w}' at position {position}")),
            other => return Err(format!("unexpected {} at position {position}", describe(&other))),
        })
    }
}

fn describe(token: &Token) -> &'static str {
    match token {
        Token::Cmp(_) => "comparison",
        Token::Close => "')'",
        Token::And => "'and'",
        Token::Or => "'or'",
        Token::Not => "'not'",
        _ => "token",
    }
}

/// Parse a whole condition. Errors name the position (0-based character offset).
pub fn parse(source: &str) -> Result<Expr, String> {
    let tokens = tokenize(source)?;
    if tokens.is_empty() {
        return Err("the condition is empty".into());
    }
    let mut parser = Parser { tokens, at: 0, end: source.chars().count(), depth: 0 };
    let expr = parser.or()?;
    if parser.at < parser.tokens.len() {
        return Err(format!("unexpected {} at position {}", describe(&parser.tokens[parser.at].0), parser.position()));
    }
    Ok(expr)
}

impl Expr {
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> Result<Value, String> {
        let truth = |e: &Expr| match e.eval(lookup)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("{other} is not true or false")),
        };
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Variable(name) => lookup(name).ok_or_else(|| format!("unknown variable 'input.{name}'"))?,
            Expr::Not(e) => Value::Bool(!truth(e)?),
            Expr::And(a, b) => Value::Bool(truth(a)? && truth(b)?),
            Expr::Or(a, b) => Value::Bool(truth(a)? || truth(b)?),
            Expr::Compare(a, op, b) => {
                let (a, b) = (a.eval(lookup)?, b.eval(lookup)?);
                let ordering = match (&a, &b) {
                    (Value::Number(x), Value::Number(y)) => x.partial_cmp(y),
                    (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
                    (Value::Bool(x), Value::Bool(y)) if matches!(op, Cmp::Eq | Cmp::Ne) => Some(x.cmp(y)),
                    _ => return Err(format!("cannot compare {a} with {b}")),
                };
                let ordering = ordering.ok_or_else(|| format!("cannot compare {a} with {b}"))?;
                use std::cmp::Ordering::*;
                Value::Bool(match op {
                    Cmp::Eq => ordering == Equal,
                    Cmp::Ne => ordering != Equal,
                    Cmp::Lt => ordering == Less,
                    Cmp::Le => ordering != Greater,
                    Cmp::Gt => ordering == Greater,
                    Cmp::Ge => ordering != Less,
                })
            }
        })
    }
}
