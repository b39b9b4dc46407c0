//! ECS's *cluster query language* (the expressions of `memberOf` placement constraints), parsed
//! once and evaluated locally against a host's facts, so that choosing hosts costs no ECS call.
//!
//! # Grammar
//!
//! ```text
//! expression := and_expr (("or" | "||") and_expr)*
//! and_expr   := unary (("and" | "&&") unary)*
//! unary      := ("not" | "!") unary | "(" expression ")" | condition
//! condition  := subject operator [argument]
//! argument   := value | "[" value ("," value)* "]"
//! value      := '…' | "…" | unquoted
//! ```
//!
//! `not` binds tightest, then `and`, then `or`: `a and b or c` is `(a and b) or c`. The words
//! `and`, `or`, `not` and the word operators are case-insensitive; subjects are not. An unquoted
//! value runs up to whitespace, `,`, `]` or an unbalanced `)`, so
//! `attribute:ecs.instance-type =~ (t2|m5).*` reads the regex `(t2|m5).*`. Quote a value that
//! holds any of those; inside quotes a backslash escapes the quote and itself, and any other
//! backslash is kept (`'\d+'` is the regex `\d+`).
//!
//! Operators (word and symbol): `equals ==`, `not_equals !=`, `greater_than >`,
//! `greater_than_equal >=`, `less_than <`, `less_than_equal <=`, `exists`, `not_exists !exists`
//! (no argument), `in`, `not_in !in` (a list such as `[a, 'b c']`, at least one value),
//! `matches =~`, `not_matches !~` (a regular expression).
//!
//! # Subjects
//!
//! - `attribute:NAME` (NAME: ASCII letters, digits, `-_./:`): every operator.
//! - `ec2InstanceId`: `== != in not_in =~ !~`.
//! - `agentConnected`: `== != in not_in =~ !~`, compared as text with `true` / `false`.
//! - `agentVersion`: `== != > >= < <=`, compared as dotted versions (`1.10.0 > 1.9.2`; a missing
//!   component is 0, so `1.10 == 1.10.0`). A host version that is not dotted numbers counts as
//!   missing.
//! - `capacityProvider` (ours: ECS's language has no subject for it): the capacity provider the
//!   container instance belongs to, `== != in not_in =~ !~ exists !exists`. ECS's own daemon
//!   services cannot run on capacity providers at all; here a daemon can be kept to one.
//!
//! Refused, never accepted and ignored: `task:group` (it needs the host's task list, an extra ECS
//! call per event), `runningTasksCount` (it changes with every task placed, so a daemon selected
//! by it would come and go), `registeredAt`, and any other subject.
//!
//! # Semantics
//!
//! - `==` / `!=`: exact string comparison; `in` / `not_in`: membership.
//! - `=~` / `!~`: the regex must match the *whole* value, like Java's `matches()`. It is compiled
//!   by `regex_lite` as `^(?:…)$` at parse time; what `regex_lite` refuses (lookaround,
//!   backreferences, `\p{…}`, …) is a parse error, and so are Java's possessive quantifiers
//!   (`a++`), which `regex_lite` would accept with another meaning.
//! - `> >= < <=` on an attribute: numeric when both sides are integer or decimal numbers (`-2`,
//!   `10`, `2.5`), otherwise lexicographic string order.
//! - A subject the host lacks (an attribute, the EC2 instance id, the agent version) fails every
//!   positive operator (`exists == in =~ > >= < <=`) and passes every negated one (`!exists !=
//!   not_in !~`). An attribute set without a value is the empty string, and `exists` is true.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;

use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use super::host::HostFacts;

/// A parsed expression. Stored and shown as the text it was parsed from.
#[derive(Clone)]
pub struct Query {
    text: String,
    expr: Expr,
}

/// Where and why an expression does not parse (or uses a construct we do not support).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 0-based character offset of the problem in the expression.
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.offset + 1, self.message)
    }
}

impl std::error::Error for QueryError {}

impl Query {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        let chars = text.chars().collect();
        let mut parser = Parser {
            chars,
            pos: 0,
            depth: 0,
        };
        parser.skip_ws();
        if parser.peek().is_none() {
            return fail(0, "empty expression");
        }
        let expr = parser.expression()?;
        if parser.peek().is_some() {
            return Err(parser.expected_connective(false));
        }
        Ok(Self {
            text: text.to_owned(),
            expr,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, host: &dyn HostFacts) -> bool {
        self.expr.eval(host)
    }

    /// The attribute names the expression reads.
    pub fn attributes(&self) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        self.expr.attributes(&mut names);
        names
    }
}

// By text: the AST holds compiled regexes, and the text is what is stored and shown.
impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Query {}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Query").field(&self.text).finish()
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Query {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Query::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Any(Vec<Expr>),
    All(Vec<Expr>),
    Not(Box<Expr>),
    /// A negated operator is its positive test inverted, which gives the missing-subject rules
    /// (`!=` passes where `==` fails) for free.
    Cond {
        subject: Subject,
        test: Test,
        negated: bool,
    },
}

#[derive(Debug, Clone)]
enum Subject {
    Attribute(String),
    Ec2InstanceId,
    AgentConnected,
    AgentVersion,
    CapacityProvider,
}

#[derive(Debug, Clone)]
enum Test {
    Exists,
    Equals(String),
    In(Vec<String>),
    Matches(Regex),
    /// `Greater`, `GreaterEqual`, `Less` or `LessEqual`, with the argument.
    Order(Op, String),
}

/// An operator without its polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Exists,
    In,
    Matches,
}

/// An operator as (operator, negated, word, symbol); `exists` and `in` are only words.
type Operator = (Op, bool, &'static str, &'static str);

const OPERATORS: [Operator; 12] = [
    (Op::Equals, false, "equals", "=="),
    (Op::Equals, true, "not_equals", "!="),
    (Op::Greater, false, "greater_than", ">"),
    (Op::GreaterEqual, false, "greater_than_equal", ">="),
    (Op::Less, false, "less_than", "<"),
    (Op::LessEqual, false, "less_than_equal", "<="),
    (Op::Exists, false, "exists", "exists"),
    (Op::Exists, true, "not_exists", "!exists"),
    (Op::In, false, "in", "in"),
    (Op::In, true, "not_in", "!in"),
    (Op::Matches, false, "matches", "=~"),
    (Op::Matches, true, "not_matches", "!~"),
];

const SUBJECTS: &str =
    "attribute:NAME, ec2InstanceId, agentConnected, agentVersion and capacityProvider";

/// Deeper nesting is refused so that parsing and evaluating cannot overflow the stack.
const MAX_DEPTH: usize = 64;

impl Expr {
    fn eval(&self, host: &dyn HostFacts) -> bool {
        match self {
            Expr::Any(terms) => terms.iter().any(|t| t.eval(host)),
            Expr::All(terms) => terms.iter().all(|t| t.eval(host)),
            Expr::Not(inner) => !inner.eval(host),
            Expr::Cond {
                subject,
                test,
                negated,
            } => subject.passes(test, host) != *negated,
        }
    }

    fn attributes(&self, names: &mut BTreeSet<String>) {
        match self {
            Expr::Any(terms) | Expr::All(terms) => terms.iter().for_each(|t| t.attributes(names)),
            Expr::Not(inner) => inner.attributes(names),
            Expr::Cond {
                subject: Subject::Attribute(name),
                ..
            } => {
                names.insert(name.clone());
            }
            Expr::Cond { .. } => {}
        }
    }
}

impl Subject {
    fn passes(&self, test: &Test, host: &dyn HostFacts) -> bool {
        let value = match self {
            Subject::Attribute(name) => host.attribute(name).map(|v| v.unwrap_or("")),
            Subject::Ec2InstanceId => host.ec2_instance_id(),
            Subject::AgentConnected => Some(if host.agent_connected() {
                "true"
            } else {
                "false"
            }),
            Subject::AgentVersion => host.agent_version().filter(|v| version(v).is_some()),
            Subject::CapacityProvider => host.capacity_provider(),
        };
        let Some(value) = value else {
            return false;
        };
        match test {
            Test::Exists => true,
            Test::Equals(arg) if matches!(self, Subject::AgentVersion) => {
                self.compare(value, arg).is_eq()
            }
            Test::Equals(arg) => value == arg,
            Test::In(args) => args.iter().any(|a| a == value),
            Test::Matches(regex) => regex.is_match(value),
            Test::Order(op, arg) => {
                let order = self.compare(value, arg);
                match op {
                    Op::Greater => order.is_gt(),
                    Op::GreaterEqual => order.is_ge(),
                    Op::Less => order.is_lt(),
                    _ => order.is_le(),
                }
            }
        }
    }

    /// Orders a value against an argument: as versions for `agentVersion`, else as numbers when
    /// both are numbers, else as strings.
    fn compare(&self, value: &str, arg: &str) -> Ordering {
        if let (Subject::AgentVersion, Some(a), Some(b)) = (self, version(value), version(arg)) {
            let part = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0);
            let parts = (0..a.len().max(b.len())).map(|i| part(&a, i).cmp(&part(&b, i)));
            return parts.fold(Ordering::Equal, Ordering::then);
        }
        match (number(value), number(arg)) {
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => value.cmp(arg),
        }
    }

    fn allows(&self, op: Op) -> bool {
        use Op::*;
        match self {
            Subject::Attribute(_) => true,
            Subject::Ec2InstanceId | Subject::AgentConnected => matches!(op, Equals | In | Matches),
            Subject::AgentVersion => {
                matches!(op, Equals | Greater | GreaterEqual | Less | LessEqual)
            }
            Subject::CapacityProvider => matches!(op, Equals | In | Matches | Exists),
        }
    }

    /// Why `arg` can never be this subject's value: a typo fails loudly instead of never matching.
    fn check(&self, arg: &str) -> Option<String> {
        match self {
            Subject::AgentConnected if arg != "true" && arg != "false" => Some(format!(
                "agentConnected is compared with true or false, found '{arg}'"
            )),
            Subject::AgentVersion if version(arg).is_none() => Some(format!(
                "agentVersion is compared with a version such as 1.10.0, found '{arg}'"
            )),
            _ => None,
        }
    }
}

/// `1.10.0` as `[1, 10, 0]`.
fn version(text: &str) -> Option<Vec<u64>> {
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit()); // `u64` would take `+1`
    text.split('.')
        .map(|p| p.parse().ok().filter(|_| digits(p)))
        .collect()
}

/// An integer or decimal number (`-2`, `10`, `2.5`), not the rest of Rust's float syntax (`inf`,
/// `1e5`, `.5`), which would turn names such as `infra` into numbers.
fn number(text: &str) -> Option<f64> {
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    text.parse().ok().filter(|_| digits(int) && digits(frac))
}

/// Turns a list of one expression into that expression.
fn join(mut terms: Vec<Expr>, combine: fn(Vec<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        terms.remove(0)
    } else {
        combine(terms)
    }
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, QueryError> {
    let message = message.into();
    Err(QueryError { offset, message })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_./:".contains(c)
}

/// A recursive-descent parser over characters, so that offsets count characters. What a token is
/// depends on where it stands (subject, operator, value), hence no separate lexer.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// The characters from the cursor on that satisfy `f`, not consumed.
    fn run(&self, f: impl Fn(char) -> bool) -> String {
        self.chars[self.pos..]
            .iter()
            .take_while(|c| f(**c))
            .collect()
    }

    /// The token at `pos`, for messages: `'foo'` or `the end`.
    fn found(&self, pos: usize) -> String {
        let rest = self.chars.get(pos..).unwrap_or_default();
        let token: String = rest
            .iter()
            .take_while(|c| !c.is_whitespace())
            .take(30)
            .collect();
        if token.is_empty() {
            "the end".to_owned()
        } else {
            format!("'{token}'")
        }
    }

    fn expected_connective(&self, in_parens: bool) -> QueryError {
        let (offset, found) = (self.pos, self.found(self.pos));
        let end = if in_parens { "')'" } else { "the end" };
        let message = match self.peek() {
            Some(')') if !in_parens => "unexpected ')'".to_owned(),
            _ => format!("expected 'and', 'or' or {end}, found {found}"),
        };
        QueryError { offset, message }
    }

    /// Consumes `word` (in any case, as a whole word) or `symbol`, after whitespace.
    fn connective(&mut self, word: &str, symbol: &str) -> bool {
        self.skip_ws();
        let symbol: Vec<char> = symbol.chars().collect();
        let len = if self.chars[self.pos..].starts_with(&symbol) {
            symbol.len()
        } else if self.run(is_name_char).eq_ignore_ascii_case(word) {
            word.len()
        } else {
            return false;
        };
        self.pos += len;
        true
    }

    /// Leaves the cursor on the first non-blank character after the expression.
    fn expression(&mut self) -> Result<Expr, QueryError> {
        let mut any = vec![self.and_expr()?];
        while self.connective("or", "||") {
            any.push(self.and_expr()?);
        }
        Ok(join(any, Expr::Any))
    }

    fn and_expr(&mut self) -> Result<Expr, QueryError> {
        let mut all = vec![self.unary()?];
        while self.connective("and", "&&") {
            all.push(self.unary()?);
        }
        Ok(join(all, Expr::All))
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        self.skip_ws();
        let start = self.pos;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return fail(start, "expression nested too deeply");
        }
        let word = self.run(is_name_char);
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        let expr = if self.peek() == Some('(') {
            self.pos += 1;
            let inner = self.expression()?;
            match self.peek() {
                Some(')') => self.pos += 1,
                None => return fail(start, "unclosed '('"),
                Some(_) => return Err(self.expected_connective(true)),
            }
            inner
        } else if self.peek() == Some('!') || is("not") {
            self.pos += if is("not") { 3 } else { 1 };
            Expr::Not(Box::new(self.unary()?))
        } else if word.is_empty() || is("and") || is("or") {
            let found = self.found(start);
            return fail(start, format!("expected a condition, found {found}"));
        } else {
            self.pos += word.len();
            self.condition(start, &word)?
        };
        self.depth -= 1;
        Ok(expr)
    }

    fn condition(&mut self, start: usize, word: &str) -> Result<Expr, QueryError> {
        let subject = subject(start, word)?;
        self.skip_ws();
        let at = self.pos;
        let Some(((op, negated, name, _), spelled)) = self.operator() else {
            let found = self.found(at);
            return fail(
                at,
                format!("expected an operator after {word}, found {found}"),
            );
        };
        if !subject.allows(op) {
            let allowed: Vec<_> = OPERATORS.iter().filter(|o| subject.allows(o.0)).collect();
            let allowed = allowed.iter().map(|o| o.3).collect::<Vec<_>>().join(", ");
            let message = format!("{word} does not support {spelled}; it supports {allowed}");
            return fail(at, message);
        }
        let test = match op {
            Op::Exists => Test::Exists,
            Op::In => {
                let values = self.list(name)?;
                if let Some((at, why)) = values
                    .iter()
                    .find_map(|(at, v)| Some((at, subject.check(v)?)))
                {
                    return fail(*at, why);
                }
                Test::In(values.into_iter().map(|(_, v)| v).collect())
            }
            Op::Matches => {
                let (at, pattern) = self.single_value(name)?;
                Test::Matches(self.regex(at, &pattern)?)
            }
            _ => {
                let (at, value) = self.single_value(name)?;
                if let Some(why) = subject.check(&value) {
                    return fail(at, why);
                }
                if op == Op::Equals {
                    Test::Equals(value)
                } else {
                    Test::Order(op, value)
                }
            }
        };
        Ok(Expr::Cond {
            subject,
            test,
            negated,
        })
    }

    /// The operator at the cursor in any of its spellings, with the spelling used.
    fn operator(&mut self) -> Option<(Operator, String)> {
        let rest = &self.chars[self.pos..];
        let bang = usize::from(rest.first() == Some(&'!'));
        let word: String = (rest[bang..].iter())
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .collect();
        let (operator, spelled) = if word.is_empty() {
            // Symbols, the longest first so that `>=` is not read as `>`.
            [2, 1].into_iter().find_map(|n| {
                let symbol: String = rest.iter().take(n).collect();
                Some((*OPERATORS.iter().find(|o| o.3 == symbol)?, symbol))
            })?
        } else {
            // `!exists` and `!in` are symbols made of a word, so as case-insensitive as words.
            let spelled = format!("{}{word}", &"!"[..bang]);
            let form = |o: &&Operator| if bang == 1 { o.3 } else { o.2 };
            let operator = OPERATORS
                .iter()
                .find(|o| form(o).eq_ignore_ascii_case(&spelled))?;
            (*operator, spelled)
        };
        self.pos += spelled.chars().count();
        Some((operator, spelled))
    }

    fn single_value(&mut self, op: &str) -> Result<(usize, String), QueryError> {
        self.skip_ws();
        let at = self.pos;
        // A regex may start with a character class (and then needs quotes: see `regex`).
        if self.peek() == Some('[') && !op.ends_with("matches") {
            return fail(at, format!("{op} takes one value; use in for a list"));
        }
        match self.value()? {
            Some(value) => Ok((at, value)),
            None => fail(at, format!("{op} needs a value, found {}", self.found(at))),
        }
    }

    fn list(&mut self, op: &str) -> Result<Vec<(usize, String)>, QueryError> {
        self.skip_ws();
        let open = self.pos;
        if self.peek() != Some('[') {
            return fail(open, format!("{op} needs a list such as [a, b]"));
        }
        self.pos += 1;
        let mut values = Vec::new();
        loop {
            self.skip_ws();
            let at = self.pos;
            match (self.peek(), self.value()?) {
                (None, _) => return fail(open, "unclosed '['"),
                (Some(']'), None) if values.is_empty() => {
                    return fail(open, format!("{op} needs at least one value in its list"));
                }
                (_, None) => {
                    let found = self.found(at);
                    return fail(at, format!("expected a value in the list, found {found}"));
                }
                (_, Some(value)) => values.push((at, value)),
            }
            self.skip_ws();
            let at = self.pos;
            self.pos += 1;
            match self.chars.get(at) {
                Some(',') => {}
                Some(']') => return Ok(values),
                None => return fail(open, "unclosed '['"),
                Some(_) => {
                    let found = self.found(at);
                    let message = format!("expected ',' or ']' in the list, found {found}");
                    return fail(at, message);
                }
            }
        }
    }

    /// A quoted or unquoted value at the cursor; `None` when there is none.
    fn value(&mut self) -> Result<Option<String>, QueryError> {
        let start = self.pos;
        let mut value = String::new();
        if let Some(quote @ ('\'' | '"')) = self.peek() {
            loop {
                self.pos += 1;
                match (self.peek(), self.chars.get(self.pos + 1)) {
                    (None, _) => return fail(start, "unclosed quote"),
                    (Some(c), _) if c == quote => break,
                    (Some('\\'), Some(&next)) if next == quote || next == '\\' => {
                        value.push(next);
                        self.pos += 1;
                    }
                    (Some(c), _) => value.push(c),
                }
            }
            self.pos += 1;
            return Ok(Some(value));
        }
        // Parentheses balanced inside the token belong to it (`(t2|m5).*`); an unbalanced `)`
        // closes an enclosing group.
        let mut open = 0usize;
        while let Some(c) = self.peek() {
            match c {
                ',' | ']' => break,
                c if c.is_whitespace() => break,
                ')' if open == 0 => break,
                ')' => open -= 1,
                '(' => open += 1,
                _ => {}
            }
            value.push(c);
            self.pos += 1;
        }
        Ok((!value.is_empty()).then_some(value))
    }

    fn regex(&self, at: usize, pattern: &str) -> Result<Regex, QueryError> {
        if possessive(pattern) {
            let message = "invalid regex: possessive quantifiers such as a++ are not supported";
            return fail(at, message);
        }
        // Compiled alone first: `a)|(b` compiles once wrapped, but would escape the anchors.
        let regex = Regex::new(pattern).and_then(|_| Regex::new(&format!("^(?:{pattern})$")));
        regex.or_else(|e| {
            // An unquoted regex ends at `,` and `]`, which may well be what broke it.
            let quoted = matches!(self.chars.get(at), Some('\'' | '"'));
            let hint = match self.peek() {
                Some(',' | ']') if !quoted => "; quote a regex that holds ',' or ']'",
                _ => "",
            };
            fail(at, format!("invalid regex: {e}{hint}"))
        })
    }
}

/// Whether `pattern` holds one of Java's possessive quantifiers (`a++`, `a*+`, `a?+`, `a{2}+`),
/// which `regex_lite` reads as a repeated repetition: `a++a` would match `aa`, where Java never
/// matches.
fn possessive(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let (mut i, mut class, mut quantified) = (0, 0usize, false);
    while i < chars.len() {
        let quantifier = match chars[i] {
            '\\' => {
                i += 1; // escapes the next character, in a class or not
                false
            }
            '[' => {
                class += 1;
                // A `]` first in a class, after any `^`, is a literal.
                i += usize::from(chars.get(i + 1) == Some(&'^'));
                i += usize::from(chars.get(i + 1) == Some(&']'));
                false
            }
            ']' if class > 0 => {
                class -= 1;
                false
            }
            _ if class > 0 => false,
            '+' if quantified => return true,
            '*' | '+' => true,
            '?' => i == 0 || chars[i - 1] != '(', // `(?` opens a group
            '{' => {
                let close = chars[i..].iter().position(|c| *c == '}').unwrap_or(0);
                let counted = |c: &char| c.is_ascii_digit() || *c == ',';
                let repetition = close > 1 && chars[i + 1..i + close].iter().all(counted);
                i += if repetition { close } else { 0 };
                repetition
            }
            _ => false,
        };
        quantified = quantifier;
        i += 1;
    }
    false
}

fn subject(at: usize, word: &str) -> Result<Subject, QueryError> {
    let why_not = match word {
        "ec2InstanceId" => return Ok(Subject::Ec2InstanceId),
        "agentConnected" => return Ok(Subject::AgentConnected),
        "agentVersion" => return Ok(Subject::AgentVersion),
        "capacityProvider" => return Ok(Subject::CapacityProvider),
        "task:group" => ": it needs the host's task list, an extra ECS call per event",
        "runningTasksCount" => ": it changes with each task placed, so daemons would come and go",
        "registeredAt" => "",
        _ => match word.strip_prefix("attribute:") {
            Some("") => return fail(at, "attribute: needs a name, such as attribute:gpu"),
            Some(name) => return Ok(Subject::Attribute(name.to_owned())),
            None => {
                let message =
                    format!("unknown subject '{word}'; the supported subjects are {SUBJECTS}");
                return fail(at, message);
            }
        },
    };
    fail(at, format!("{word} is not supported{why_not}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::host::Attributes;
    use proptest::prelude::*;

    #[derive(Debug, Clone, Default)]
    struct TestHost {
        attributes: Attributes,
        ec2_instance_id: Option<String>,
        agent_version: Option<String>,
        capacity_provider: Option<String>,
    }

    impl HostFacts for TestHost {
        fn container_instance_arn(&self) -> &str {
            "arn:aws:ecs:us-east-1:123456789012:container-instance/test/1"
        }
        fn attribute(&self, name: &str) -> Option<Option<&str>> {
            self.attributes.get(name).map(Option::as_deref)
        }
        fn ec2_instance_id(&self) -> Option<&str> {
            self.ec2_instance_id.as_deref()
        }
        fn agent_connected(&self) -> bool {
            self.ec2_instance_id.is_some()
        }
        fn agent_version(&self) -> Option<&str> {
            self.agent_version.as_deref()
        }
        fn capacity_provider(&self) -> Option<&str> {
            self.capacity_provider.as_deref()
        }
    }

    /// A connected host `i-abcd1234` with agent 1.10.0 and these attributes.
    fn host(attributes: &[(&str, Option<&str>)]) -> TestHost {
        let attributes = attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)));
        TestHost {
            attributes: attributes.collect(),
            ec2_instance_id: Some("i-abcd1234".into()),
            agent_version: Some("1.10.0".into()),
            capacity_provider: None,
        }
    }

    fn eval(text: &str, host: &TestHost) -> bool {
        let query = Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        query.matches(host)
    }

    #[test]
    fn any_capacity_is_told_apart_ec2_anywhere_and_capacity_providers() {
        // An EC2 host of a capacity provider, an ECS Anywhere host (SSM id, no instance type),
        // and a plain EC2 host.
        let mut asg = host(&[("ecs.instance-type", Some("g5.xlarge"))]);
        asg.capacity_provider = Some("gpu-asg".into());
        let mut anywhere = host(&[("ecs.os-type", Some("linux"))]);
        anywhere.ec2_instance_id = Some("mi-0f1e2d3c4b5a69788".into());
        let plain = host(&[("ecs.instance-type", Some("m5.large"))]);
        for (text, on) in [
            ("capacityProvider == gpu-asg", [true, false, false]),
            ("capacityProvider exists", [true, false, false]),
            ("capacityProvider !exists", [false, true, true]),
            ("capacityProvider in [gpu-asg, spot]", [true, false, false]),
            ("ec2InstanceId =~ mi-.*", [false, true, false]),
            ("attribute:ecs.instance-type exists", [true, false, true]),
        ] {
            let got = [eval(text, &asg), eval(text, &anywhere), eval(text, &plain)];
            assert_eq!(got, on, "{text}");
        }
        let e = Query::parse("capacityProvider > a").unwrap_err();
        assert!(e.message.contains("capacityProvider"), "{e}");
    }

    #[test]
    fn the_ecs_guide_examples_select_the_right_hosts() {
        let t2 = host(&[
            ("ecs.instance-type", Some("t2.small")),
            ("ecs.availability-zone", Some("us-east-1a")),
            ("ecs.os-type", Some("linux")),
            ("ecs.cpu-architecture", Some("arm64")),
            ("stack", None),
            ("gpu", Some("true")),
        ]);
        let mut g2 = host(&[("ecs.instance-type", Some("g2.2xlarge")), ("a", Some("b"))]);
        (g2.ec2_instance_id, g2.agent_version) = (Some("mi-0123".into()), Some("1.9.2".into()));
        let cases = [
            ("attribute:ecs.instance-type == t2.small", true, false),
            (
                "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
                true,
                false,
            ),
            ("attribute:ecs.instance-type =~ g2.*", false, true),
            (
                "attribute:ecs.instance-type =~ t2.* and \
                 attribute:ecs.availability-zone != us-east-1d",
                true,
                false,
            ),
            ("ec2InstanceId in ['i-abcd1234', 'i-wxyz9876']", true, false),
            ("attribute:stack exists", true, false),
            ("not(attribute:ecs.instance-type =~ t2.*)", false, true),
            ("agentVersion >= 1.10.0", true, false),
            (
                "(attribute:a == b or attribute:c == d) and not attribute:e exists",
                false,
                true,
            ),
            (
                "attribute:ecs.os-type == linux && attribute:ecs.cpu-architecture == arm64",
                true,
                false,
            ),
            ("attribute:gpu == true", true, false),
            ("ec2InstanceId =~ mi-.*", false, true),
        ];
        for (text, on_t2, on_g2) in cases {
            assert_eq!((eval(text, &t2), eval(text, &g2)), (on_t2, on_g2), "{text}");
        }
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let only_c = host(&[("c", None)]);
        assert!(eval(
            "attribute:a exists and attribute:b exists or attribute:c exists",
            &only_c
        ));
        assert!(eval(
            "attribute:c exists or attribute:a exists and attribute:b exists",
            &only_c
        ));
        assert!(!eval(
            "attribute:a exists and (attribute:b exists or attribute:c exists)",
            &only_c
        ));
        assert!(!eval(
            "not attribute:c exists and attribute:a exists",
            &only_c
        ));
        assert!(eval(
            "not attribute:a exists and attribute:c exists",
            &only_c
        ));
        assert!(!eval(
            "not (attribute:a exists or attribute:c exists)",
            &only_c
        ));
        assert!(eval("!!attribute:c exists", &only_c));
    }

    #[test]
    fn word_and_symbol_forms_in_any_case_mean_the_same() {
        let h = host(&[("n", Some("5")), ("s", Some("abc"))]);
        let pairs = [
            ("attribute:s equals abc", "attribute:s == abc"),
            ("attribute:s NOT_EQUALS abc", "attribute:s != abc"),
            ("attribute:n Greater_Than 4", "attribute:n > 4"),
            ("attribute:n greater_than_equal 6", "attribute:n >= 6"),
            ("attribute:n less_than 5", "attribute:n < 5"),
            ("attribute:n LESS_THAN_EQUAL 5", "attribute:n<=5"),
            ("attribute:x not_exists", "attribute:x !EXISTS"),
            ("attribute:s not_in [a, b]", "attribute:s !in [a,b]"),
            ("attribute:s MATCHES a.c", "attribute:s =~ a.c"),
            ("attribute:s not_matches a.c", "attribute:s !~ a.c"),
            (
                "NOT attribute:s exists OR attribute:n exists",
                "!attribute:s exists || attribute:n exists",
            ),
            (
                "attribute:s exists AND attribute:x exists",
                "attribute:s exists&&attribute:x exists",
            ),
        ];
        for (word, symbol) in pairs {
            assert_eq!(eval(word, &h), eval(symbol, &h), "{word} / {symbol}");
        }
        assert!(eval("attribute:s In [abc] aNd attribute:n EXISTS", &h));
    }

    #[test]
    fn quoted_values_hold_spaces_separators_and_escapes() {
        let h = host(&[
            ("team", Some("data platform, core")),
            ("q", Some(r#"it's "x"\"#)),
        ]);
        assert!(eval("attribute:team == 'data platform, core'", &h));
        assert!(eval(
            r#"attribute:team in ["data platform, core", other]"#,
            &h
        ));
        assert!(eval(r#"attribute:q == 'it\'s "x"\\'"#, &h));
        assert!(eval(r#"attribute:q == "it's \"x\"\\""#, &h));
        assert!(eval(r"attribute:team =~ '[a-z]+ platform, \w+'", &h));
        // Parentheses balanced inside an unquoted token belong to it.
        let m5 = host(&[("ecs.instance-type", Some("m5.large"))]);
        assert!(eval("attribute:ecs.instance-type =~ (t2|m5).*", &m5));
        assert!(eval("(attribute:ecs.instance-type =~ (t2|m5).*)", &m5));
    }

    #[test]
    fn order_is_numeric_between_numbers_and_lexicographic_otherwise() {
        let h = host(&[("n", Some("10")), ("d", Some("2.50")), ("s", Some("b10"))]);
        assert!(eval("attribute:n > 9", &h)); // "10" < "9" as strings
        assert!(eval("attribute:n >= 10.0 and attribute:n <= 10", &h));
        assert!(!eval("attribute:d > 2.5 or attribute:d < 2.5", &h));
        assert!(eval("attribute:d > -3 and attribute:d < 1000000", &h));
        assert!(eval("attribute:s < b9", &h)); // "b10" < "b9" as strings
        assert!(!eval("attribute:n > 1e1", &h)); // "10" < "1e1": only plain decimals are numbers
        assert!(!eval("attribute:n == 10.0", &h)); // equality stays textual
        let agent = |version: &str| TestHost {
            agent_version: Some(version.into()),
            ..host(&[])
        };
        assert!(eval("agentVersion > 1.9.2", &agent("1.10.0")));
        assert!(eval("agentVersion == 1.10", &agent("1.10.0")));
        assert!(eval("agentVersion < 2", &agent("1.70.1")));
        assert!(!eval("agentVersion >= 1.0", &agent("latest"))); // unreadable: as if missing
        assert!(eval("agentVersion != 1.0", &agent("latest")));
    }

    #[test]
    fn a_missing_subject_fails_positive_operators_and_passes_negated_ones() {
        let (absent, empty) = (TestHost::default(), host(&[("a", None)]));
        // (condition, without the attribute, with the attribute set without a value)
        let table = [
            ("attribute:a exists", false, true),
            ("attribute:a !exists", true, false),
            ("attribute:a == x", false, false),
            ("attribute:a == ''", false, true),
            ("attribute:a != x", true, true),
            ("attribute:a != ''", true, false),
            ("attribute:a in [x, '']", false, true),
            ("attribute:a not_in [x]", true, true),
            ("attribute:a =~ .*", false, true),
            ("attribute:a !~ .*", true, false),
            ("attribute:a < -1", false, true), // "" < "-1" as strings
            ("attribute:a >= ''", false, true),
            ("attribute:a > ''", false, false),
            ("attribute:a <= x", false, true),
        ];
        for (text, on_absent, on_empty) in table {
            assert_eq!(
                (eval(text, &absent), eval(text, &empty)),
                (on_absent, on_empty),
                "{text}"
            );
        }
        let others = [
            ("ec2InstanceId == i-1", false),
            ("ec2InstanceId != i-1", true),
            ("ec2InstanceId not_in [i-1]", true),
            ("agentVersion >= 0", false),
            ("agentVersion != 1.0", true),
            ("agentConnected == false", true),
        ];
        for (text, expected) in others {
            assert_eq!(eval(text, &absent), expected, "{text}");
        }
    }

    #[test]
    fn errors_point_at_the_token_at_fault_and_say_what_to_do() {
        let cases = [
            ("", 0, "empty expression"),
            ("   ", 0, "empty expression"),
            (
                "attribute:ecs.instance-type foo",
                28,
                "expected an operator after attribute:ecs.instance-type, found 'foo'",
            ),
            (
                "attribute:a",
                11,
                "expected an operator after attribute:a, found the end",
            ),
            ("(attribute:a exists", 0, "unclosed '('"),
            ("attribute:a exists)", 18, "unexpected ')'"),
            ("()", 1, "expected a condition, found ')'"),
            (
                "attribute:a exists and",
                22,
                "expected a condition, found the end",
            ),
            (
                "or attribute:a exists",
                0,
                "expected a condition, found 'or'",
            ),
            (
                "attribute:a exists foo",
                19,
                "expected 'and', 'or' or the end, found 'foo'",
            ),
            (
                "(attribute:a exists foo)",
                20,
                "expected 'and', 'or' or ')', found 'foo)'",
            ),
            ("attribute:a in a", 15, "in needs a list such as [a, b]"),
            (
                "attribute:a !in []",
                16,
                "not_in needs at least one value in its list",
            ),
            (
                "attribute:a in [a, ]",
                19,
                "expected a value in the list, found ']'",
            ),
            (
                "attribute:a in [a b]",
                18,
                "expected ',' or ']' in the list, found 'b]'",
            ),
            ("attribute:a in [a, b", 15, "unclosed '['"),
            (
                "attribute:a == [a]",
                15,
                "equals takes one value; use in for a list",
            ),
            ("attribute:a ==", 14, "equals needs a value, found the end"),
            ("attribute:a == 'abc", 15, "unclosed quote"),
            (
                "task:group == db",
                0,
                "task:group is not supported: it needs the host's task list",
            ),
            (
                "runningTasksCount > 1",
                0,
                "runningTasksCount is not supported: it changes with each task",
            ),
            ("registeredAt > 1", 0, "registeredAt is not supported"),
            (
                "attribute:a exists or x == 1",
                22,
                "unknown subject 'x'; the supported subjects are",
            ),
            ("attribute: == a", 0, "attribute: needs a name"),
            (
                "agentVersion =~ 1",
                13,
                "agentVersion does not support =~; it supports ==, !=, >, >=, <, <=",
            ),
            (
                "ec2InstanceId Greater_Than i",
                14,
                "ec2InstanceId does not support Greater_Than; it supports ==, !=, in, !in, =~, !~",
            ),
            (
                "agentConnected == yes",
                18,
                "agentConnected is compared with true or false, found 'yes'",
            ),
            (
                "agentConnected in [true, 1]",
                25,
                "agentConnected is compared with true or false, found '1'",
            ),
            (
                "agentVersion >= latest",
                16,
                "agentVersion is compared with a version such as 1.10.0",
            ),
            ("attribute:a =~ (?=x)", 15, "invalid regex: "),
            ("attribute:a =~ 'a)|(b'", 15, "invalid regex: "),
            ("attribute:a =~ [a-z]+", 15, "invalid regex: "),
            (
                "ec2InstanceId =~ i-a++",
                17,
                "invalid regex: possessive quantifiers",
            ),
            ("ünïcödé == 1", 0, "expected a condition, found 'ünïcödé'"),
            (
                "attribute:aé == 1",
                11,
                "expected an operator after attribute:a, found 'é'",
            ),
            (
                "attribute:a == ü x",
                17,
                "expected 'and', 'or' or the end, found 'x'",
            ),
        ];
        for (text, offset, message) in cases {
            let e = Query::parse(text).expect_err(text);
            assert_eq!(e.offset, offset, "{text}: {e}");
            assert!(e.message.starts_with(message), "{text}: {e}");
        }
        let e = Query::parse("attribute:a =~ [a-z]+").unwrap_err();
        assert!(
            e.message.ends_with("; quote a regex that holds ',' or ']'"),
            "{e}"
        );
        let e = Query::parse(&"(".repeat(100)).unwrap_err();
        assert_eq!(
            (e.offset, e.message.as_str()),
            (64, "expression nested too deeply")
        );
        let e = Query::parse("ü ==").unwrap_err();
        assert_eq!(
            e.to_string(),
            "at character 1: expected a condition, found 'ü'"
        );
    }

    #[test]
    fn regexes_match_the_whole_value() {
        let h = host(&[("t", Some("t2.small")), ("alt", Some("ab"))]);
        assert!(!eval("attribute:t =~ t2", &h));
        assert!(!eval("attribute:t =~ small", &h));
        assert!(eval("attribute:t =~ t2.*", &h));
        // Java's matches() reaches `ab` through the second alternative though `a` comes first.
        assert!(eval("attribute:alt =~ a|ab", &h));
        assert!(eval(r"attribute:t =~ '(?i)T2\.SMALL'", &h));
        // Java's possessive quantifiers are refused (above); lookalikes are not.
        let lookalikes = [
            "a+b?",
            r"a\++",
            "[*+]+",
            "[]+]+",
            "(?:a)+",
            "x{2}",
            "a}+",
            "(a|b){1,3}",
        ];
        for pattern in lookalikes {
            assert!(
                Query::parse(&format!("attribute:t =~ '{pattern}'")).is_ok(),
                "{pattern}"
            );
        }
        for pattern in [
            "a++", "a*+b", "a?+", "(ab){2}+", r"\d++", "[a-z]++", "a{1,}+",
        ] {
            assert!(possessive(pattern), "{pattern}");
        }
    }

    #[test]
    fn attributes_are_the_names_read() {
        let text = "(attribute:a == b or attribute:team/owner == d) and not attribute:a exists \
                    and ec2InstanceId != i-1";
        let names = Query::parse(text).unwrap().attributes();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a", "team/owner"]);
    }

    #[test]
    fn serde_and_display_use_the_text() {
        let text = "attribute:gpu == true";
        let query = Query::parse(text).unwrap();
        assert_eq!((query.to_string().as_str(), query.text()), (text, text));
        assert_eq!(
            serde_json::to_value(&query).unwrap(),
            serde_json::json!(text)
        );
        assert_eq!(
            serde_json::from_value::<Query>(serde_json::json!(text)).unwrap(),
            query
        );
        let e = serde_json::from_str::<Query>(r#""attribute:gpu ==""#).unwrap_err();
        assert!(e.to_string().contains("equals needs a value"), "{e}");
    }

    /// A generated expression; `style` picks spellings and quotes.
    #[derive(Debug, Clone)]
    enum Gen {
        Cond {
            name: usize,
            op: usize,
            args: Vec<usize>,
            style: u8,
        },
        Not(Box<Gen>, bool),
        And(Box<Gen>, Box<Gen>, bool),
        Or(Box<Gen>, Box<Gen>, bool),
    }

    const NAMES: [&str; 3] = ["a", "b", "c.d"];
    const VALUES: [&str; 9] = ["a", "b", "", "1", "10", "2.5", "-3", "a b", r"x'y\"];
    const REGEXES: [&str; 6] = ["a.*", "(a|b)", "b?", "[0-9]+", "x'y.*", ".* .*"];

    fn quote(value: &str, style: u8) -> String {
        let bare = !value.is_empty() && !value.contains([' ', ',', '[', ']', '\'', '"', '\\']);
        if bare && style & 4 == 0 {
            return value.to_owned();
        }
        let q = if style & 8 == 0 { '\'' } else { '"' };
        format!(
            "{q}{}{q}",
            value.replace('\\', r"\\").replace(q, &format!("\\{q}"))
        )
    }

    /// Prints with the fewest parentheses that keep the structure under the precedence rules.
    fn print(g: &Gen, parent: u8) -> String {
        let pick = |word: bool, forms: [&'static str; 2]| forms[usize::from(word)];
        let (precedence, text) = match g {
            Gen::Cond {
                name,
                op,
                args,
                style,
            } => {
                let (op, _, word, symbol) = OPERATORS[*op];
                let spelled = [symbol.to_owned(), word.to_owned(), word.to_uppercase()];
                let arg = match op {
                    Op::Exists => String::new(),
                    Op::In => {
                        let values: Vec<_> =
                            args.iter().map(|a| quote(VALUES[*a], *style)).collect();
                        format!(" [{}]", values.join(", "))
                    }
                    Op::Matches => format!(" {}", quote(REGEXES[args[0] % REGEXES.len()], *style)),
                    _ => format!(" {}", quote(VALUES[args[0]], *style)),
                };
                let spelled = &spelled[usize::from(style % 3)];
                (3, format!("attribute:{} {spelled}{arg}", NAMES[*name]))
            }
            Gen::Not(g, word) => (3, format!("{}{}", pick(*word, ["!", "not "]), print(g, 3))),
            Gen::And(l, r, word) => (
                2,
                format!(
                    "{} {} {}",
                    print(l, 2),
                    pick(*word, ["&&", "AND"]),
                    print(r, 2)
                ),
            ),
            Gen::Or(l, r, word) => (
                1,
                format!(
                    "{} {} {}",
                    print(l, 1),
                    pick(*word, ["||", "or"]),
                    print(r, 1)
                ),
            ),
        };
        if precedence < parent {
            format!("({text})")
        } else {
            text
        }
    }

    /// Evaluates a generated expression directly, apart from the parser.
    fn direct(g: &Gen, h: &TestHost) -> bool {
        match g {
            Gen::Cond { name, op, args, .. } => direct_cond(NAMES[*name], *op, args, h),
            Gen::Not(g, _) => !direct(g, h),
            Gen::And(l, r, _) => direct(l, h) && direct(r, h),
            Gen::Or(l, r, _) => direct(l, h) || direct(r, h),
        }
    }

    fn direct_cond(name: &str, op: usize, args: &[usize], h: &TestHost) -> bool {
        let (op, negated, ..) = OPERATORS[op];
        let Some(value) = h.attributes.get(name) else {
            return negated;
        };
        let value = value.as_deref().unwrap_or("");
        let arg = VALUES[args[0]];
        let order = match (value.parse::<f64>(), arg.parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap(),
            _ => value.cmp(arg),
        };
        let regex = format!("^(?:{})$", REGEXES[args[0] % REGEXES.len()]);
        let positive = match op {
            Op::Equals => value == arg,
            Op::Greater => order.is_gt(),
            Op::GreaterEqual => order.is_ge(),
            Op::Less => order.is_lt(),
            Op::LessEqual => order.is_le(),
            Op::Exists => true,
            Op::In => args.iter().any(|a| VALUES[*a] == value),
            Op::Matches => Regex::new(&regex).unwrap().is_match(value),
        };
        positive != negated
    }

    fn expressions() -> impl Strategy<Value = Gen> {
        let args = prop::collection::vec(0..VALUES.len(), 1..4);
        let leaf = (0..NAMES.len(), 0..OPERATORS.len(), args, any::<u8>()).prop_map(
            |(name, op, args, style)| Gen::Cond {
                name,
                op,
                args,
                style,
            },
        );
        leaf.prop_recursive(5, 32, 2, |inner| {
            let pair = (inner.clone(), inner.clone(), any::<bool>());
            prop_oneof![
                (inner.clone(), any::<bool>()).prop_map(|(g, w)| Gen::Not(Box::new(g), w)),
                pair.clone()
                    .prop_map(|(l, r, w)| Gen::And(Box::new(l), Box::new(r), w)),
                pair.prop_map(|(l, r, w)| Gen::Or(Box::new(l), Box::new(r), w)),
            ]
        })
    }

    fn hosts() -> impl Strategy<Value = TestHost> {
        let value = prop::option::of(prop::option::of(0..VALUES.len()));
        prop::collection::vec(value, NAMES.len()).prop_map(|values| {
            let set = NAMES
                .iter()
                .zip(values)
                .filter_map(|(name, v)| Some((name, v?)));
            let attributes = set.map(|(name, v)| (name.to_string(), v.map(|i| VALUES[i].into())));
            TestHost {
                attributes: attributes.collect(),
                ..TestHost::default()
            }
        })
    }

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in any::<String>()) {
            let _ = Query::parse(&text);
        }

        #[test]
        fn query_like_text_parses_or_fails_at_an_offset_inside_it(
            text in concat!(
                r#"[a-z:.() !=<>~\[\],'"&|\\é0-9*?+-]{0,40}"#,
                r#"|attribute:[a-c] [!=<>~a-z_]{1,8} .{0,20}"#,
            ),
            h in hosts(),
        ) {
            match Query::parse(&text) {
                Ok(query) => drop(query.matches(&h)),
                Err(e) => prop_assert!(e.offset <= text.chars().count(), "{}: {}", text, e),
            }
        }

        #[test]
        fn printed_expressions_evaluate_like_the_expression(g in expressions(), h in hosts()) {
            let text = print(&g, 0);
            let parsed = Query::parse(&text);
            let query = parsed.map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
            prop_assert_eq!(query.matches(&h), direct(&g, &h), "{}", text);
        }
    }
}
