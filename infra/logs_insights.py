"""An offline checker for the Logs Insights queries the dashboard runs.

A dashboard query that does not parse shows an error in its widget, in production, after a deploy;
nothing at synth time would notice. This checks what can be checked without AWS, from the query
language's documentation (CloudWatch Logs User Guide, "CloudWatch Logs Insights language query
syntax" and its pages per command and function; docs/aws-behaviour.md#cloudwatch-logs-and-logs-insights):

- the pipeline: each ``|``-separated part is one of the commands ``fields``, ``filter``,
  ``stats``, ``sort``, ``limit``, ``display``, ``parse``, ``dedup``, with its own grammar;
- quotes, regular expressions and parentheses are balanced; every function is one the language
  has, and aggregations appear only in ``stats``;
- the documented rules: at most two ``stats``; nothing but ``limit`` after ``dedup``; ``limit`` a
  whole number from 1 to 10,000;
- a field named like a command (the records' ``limit``) is quoted with backticks;
- with ``fields`` given, every field a command reads exists: the records' fields (and ``@``
  fields) at first, then whatever ``fields ... as``, ``parse ... as`` and ``stats ... as``/``by``
  define; after ``stats`` only its own output remains.

It is deliberately not a full implementation of the language (no operator precedence beyond
what parsing needs, no types). :func:`check_query` returns the problems found, empty when none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

COMMANDS = frozenset({"fields", "filter", "stats", "sort", "limit", "display", "parse", "dedup"})
AGGREGATIONS = frozenset(
    {
        "avg",
        "count",
        "count_distinct",
        "max",
        "min",
        "pct",
        "stddev",
        "sum",
        "earliest",
        "latest",
        "sortsfirst",
        "sortslast",
    }
)
FUNCTIONS = frozenset(
    {
        # general and string
        "ispresent",
        "isempty",
        "isblank",
        "coalesce",
        "concat",
        "ltrim",
        "rtrim",
        "trim",
        "strlen",
        "toupper",
        "tolower",
        "substr",
        "replace",
        "strcontains",
        # numeric
        "abs",
        "ceil",
        "floor",
        "greatest",
        "least",
        "log",
        "sqrt",
        # date and time
        "bin",
        "datefloor",
        "dateceil",
        "frommillis",
        "tomillis",
        # IP addresses
        "isvalidip",
        "isvalidipv4",
        "isvalidipv6",
        "isipinsubnet",
        "isipv4insubnet",
        "isipv6insubnet",
    }
)
#: Fields CloudWatch Logs adds to every event.
SYSTEM_FIELDS = frozenset({"@timestamp", "@message", "@logStream", "@log", "@ingestionTime", "@entity"})
KEYWORDS = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc"})
MAX_LIMIT = 10_000
MAX_STATS = 2

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`[^`]*`)
  | (?P<duration>\d+(?:\.\d+)?(?:ms|mo|[smhdwqy])\b)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>@?[A-Za-z_][A-Za-z0-9_.@$]*)
  | (?P<op>=~|!=|<=|>=|[=<>+\-*/%^(),\[\]|])
    """,
    re.VERBOSE,
)
_REGEX = re.compile(r"/(?:[^/\\\n]|\\.)*/[a-z]*")


@dataclass(frozen=True)
class Token:
    kind: str  # string, quoted, regex, duration, number, name, op
    text: str
    at: int

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "name" else self.text


class QueryError(ValueError):
    """A query that does not parse; the message says where and why."""


def tokenize(query: str) -> list[Token]:
    """The query's tokens. A ``/`` starts a regular expression where an operand is expected (after
    an operator, ``like``, ``(``, ``,``, a pipe, or the field of ``parse``), else it divides."""
    tokens: list[Token] = []
    position = 0
    while position < len(query):
        char = query[position]
        if char == "/" and _regex_expected(tokens):
            match = _REGEX.match(query, position)
            if match is None:
                raise QueryError(f"unterminated regular expression at {position}: {query[position:][:30]!r}")
            tokens.append(Token("regex", match.group(), position))
            position = match.end()
            continue
        if char in "\"'`" and not _TOKEN.match(query, position):
            raise QueryError(f"unterminated quote at {position}: {query[position:][:30]!r}")
        match = _TOKEN.match(query, position)
        if match is None:
            raise QueryError(f"unexpected character {char!r} at {position}")
        kind = match.lastgroup or ""
        if kind == "string" and not _closed(match.group()):
            raise QueryError(f"unterminated quote at {position}")
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def _closed(text: str) -> bool:
    return len(text) >= 2 and text[-1] == text[0]


def _regex_expected(tokens: list[Token]) -> bool:
    if not tokens:
        return True
    last = tokens[-1]
    if last.kind == "op":
        return last.text not in (")", "]")
    if last.kind == "name" and last.word in ("like", "not", "and", "or", "in"):
        return True
    # parse <field> /regex/
    return len(tokens) >= 2 and tokens[-2].kind == "name" and tokens[-2].word == "parse"


@dataclass
class _Scope:
    """The fields a command may read (None: not checked)."""

    known: set[str] | None
    #: Names defined within the current command (``as`` aliases), not yet visible to it.
    defined: list[str] = field(default_factory=list)


class _Parser:
    def __init__(self, tokens: list[Token], scope: _Scope, problems: list[str], command: str) -> None:
        self.tokens, self.index = tokens, 0
        self.scope, self.problems, self.command = scope, problems, command

    # -- tokens -------------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError(f"{self.command}: unexpected end of the command")
        self.index += 1
        return token

    def at(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind in ("name", "op") and token.word in words

    def expect(self, word: str) -> None:
        token = self.take()
        if token.word != word:
            raise QueryError(f"{self.command}: expected {word!r}, found {token.text!r}")

    def done(self) -> bool:
        return self.index >= len(self.tokens)

    # -- fields -------------------------------------------------------------------------------
    def read_field(self, token: Token) -> None:
        name = token.text.strip("`")
        known = self.scope.known
        if known is not None and name not in known:
            self.problems.append(f"{self.command}: unknown field {name!r}")

    def alias(self) -> str:
        token = self.take()
        if token.kind not in ("name", "quoted") or token.word in KEYWORDS:
            raise QueryError(f"{self.command}: {token.text!r} cannot be a name")
        if token.word in COMMANDS:
            self.problems.append(f"{self.command}: the name {token.text!r} is a command")
        name = token.text.strip("`")
        self.scope.defined.append(name)
        return name

    # -- expressions --------------------------------------------------------------------------
    def expression(self, *, aggregate: bool = False) -> bool:
        """Parse an expression; True when it holds an aggregation."""
        found = self.conjunction(aggregate=aggregate)
        while self.at("or"):
            self.take()
            found |= self.conjunction(aggregate=aggregate)
        return found

    def conjunction(self, *, aggregate: bool) -> bool:
        found = self.negation(aggregate=aggregate)
        while self.at("and"):
            self.take()
            found |= self.negation(aggregate=aggregate)
        return found

    def negation(self, *, aggregate: bool) -> bool:
        if self.at("not"):
            self.take()
            return self.negation(aggregate=aggregate)
        return self.comparison(aggregate=aggregate)

    def comparison(self, *, aggregate: bool) -> bool:
        found = self.arithmetic(aggregate=aggregate)
        if self.at("=", "!=", "<", "<=", ">", ">="):
            self.take()
            found |= self.arithmetic(aggregate=aggregate)
        elif self.at("not") and (nxt := self.peek(1)) is not None and nxt.word in ("like", "in"):
            self.take()
            found |= self.comparison_tail(aggregate=aggregate)
        elif self.at("like", "=~", "in"):
            found |= self.comparison_tail(aggregate=aggregate)
        return found

    def comparison_tail(self, *, aggregate: bool) -> bool:
        operator = self.take()
        if operator.word in ("like", "=~"):
            pattern = self.take()
            if pattern.kind not in ("regex", "string"):
                raise QueryError(
                    f"{self.command}: {operator.text} needs a string or /regex/, found {pattern.text!r}"
                )
            return False
        self.expect("[")
        found = False
        if not self.at("]"):
            found |= self.expression(aggregate=aggregate)
            while self.at(","):
                self.take()
                found |= self.expression(aggregate=aggregate)
        self.expect("]")
        return found

    def arithmetic(self, *, aggregate: bool) -> bool:
        found = self.unary(aggregate=aggregate)
        while self.at("+", "-", "*", "/", "%", "^"):
            self.take()
            found |= self.unary(aggregate=aggregate)
        return found

    def unary(self, *, aggregate: bool) -> bool:
        if self.at("-"):
            self.take()
        return self.primary(aggregate=aggregate)

    def primary(self, *, aggregate: bool) -> bool:
        token = self.take()
        if token.kind in ("string", "number", "duration", "regex"):
            return False
        if token.text == "(":
            found = self.expression(aggregate=aggregate)
            self.expect(")")
            return found
        if token.kind == "quoted":
            self.read_field(token)
            return False
        if token.kind != "name" or token.word in KEYWORDS:
            raise QueryError(f"{self.command}: unexpected {token.text!r}")
        if not self.at("("):
            if token.word in COMMANDS:
                self.problems.append(
                    f"{self.command}: the field {token.text!r} has a command's name: quote it, `{token.text}`"
                )
            self.read_field(token)
            return False
        return self.call(token, aggregate=aggregate)

    def call(self, name: Token, *, aggregate: bool) -> bool:
        function = name.word
        is_aggregation = function in AGGREGATIONS
        if is_aggregation and not aggregate:
            self.problems.append(f"{self.command}: {name.text}() aggregates; only stats may use it")
        elif not is_aggregation and function not in FUNCTIONS:
            self.problems.append(f"{self.command}: unknown function {name.text}()")
        self.expect("(")
        if self.at(")"):
            self.take()
            return is_aggregation
        if function == "count" and self.at("*"):
            self.take()
        else:
            # An aggregation's arguments are per event: no aggregation within.
            self.expression(aggregate=aggregate and not is_aggregation)
            while self.at(","):
                self.take()
                self.expression(aggregate=aggregate and not is_aggregation)
        self.expect(")")
        return is_aggregation


def _split(tokens: list[Token]) -> list[list[Token]]:
    """The commands of a pipeline: tokens between top-level ``|``; parentheses must balance."""
    commands: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text in ("(", "["):
            depth += 1
        elif token.text in (")", "]"):
            depth -= 1
            if depth < 0:
                raise QueryError(f"unbalanced {token.text!r} at {token.at}")
        if token.kind == "op" and token.text == "|" and depth == 0:
            commands.append([])
        else:
            commands[-1].append(token)
    if depth != 0:
        raise QueryError("unbalanced parentheses: a '(' or '[' is never closed")
    return commands


def sources(query: str) -> tuple[list[str], str]:
    """The log groups a dashboard widget's query names (``SOURCE 'group' | ...``, as the dashboard
    body spells it), and the query after them."""
    groups: list[str] = []
    rest = query
    while match := re.match(r"\s*SOURCE\s+'([^']+)'\s*\|", rest):
        groups.append(match.group(1))
        rest = rest[match.end() :]
    return groups, rest.lstrip()


def check_query(query: str, *, fields: Collection[str] | None = None) -> list[str]:
    """The problems of a Logs Insights query (module doc), as sentences; empty when it passes.

    ``query`` may start with a dashboard widget's ``SOURCE '<log group>' |`` parts.
    ``fields``: the fields the log events have (``@`` fields are added); None skips the check.
    """
    try:
        commands = _split(tokenize(sources(query)[1]))
    except QueryError as error:
        return [str(error)]
    problems: list[str] = []
    scope = _Scope(None if fields is None else set(fields) | SYSTEM_FIELDS)
    stats = 0
    after_dedup = False
    for number, tokens in enumerate(commands, start=1):
        if not tokens:
            problems.append(f"command {number} is empty")
            continue
        head = tokens[0]
        command = head.word if head.kind == "name" else head.text
        if command not in COMMANDS:
            problems.append(f"command {number}: unknown command {head.text!r}")
            continue
        if after_dedup and command != "limit":
            problems.append(f"{command}: only limit may follow dedup")
        parser = _Parser(tokens[1:], scope, problems, command)
        try:
            if command == "stats":
                stats += 1
                if stats > MAX_STATS:
                    problems.append(f"stats: at most {MAX_STATS} stats commands in a query")
                _stats(parser)
            else:
                _COMMAND_PARSERS[command](parser)
            if not parser.done():
                raise QueryError(f"{command}: unexpected {parser.take().text!r}")
        except QueryError as error:
            problems.append(str(error))
        after_dedup = after_dedup or command == "dedup"
    return problems


def _list(parser: _Parser, item: Callable[[], object]) -> None:
    item()
    while parser.at(","):
        parser.take()
        item()


def _fields(parser: _Parser) -> None:
    def item() -> None:
        parser.expression()
        if parser.at("as"):
            parser.take()
            parser.alias()

    _list(parser, item)
    _publish(parser)


def _filter(parser: _Parser) -> None:
    parser.expression()


def _sort(parser: _Parser) -> None:
    def item() -> None:
        parser.expression()
        if parser.at("asc", "desc"):
            parser.take()

    _list(parser, item)


def _limit(parser: _Parser) -> None:
    token = parser.take()
    if token.kind != "number" or "." in token.text or not 1 <= int(token.text) <= MAX_LIMIT:
        raise QueryError(f"limit: {token.text!r} is not a whole number from 1 to {MAX_LIMIT:,}")


def _names(parser: _Parser) -> None:
    def item() -> None:
        token = parser.take()
        if token.kind not in ("name", "quoted") or token.word in KEYWORDS:
            raise QueryError(f"{parser.command}: {token.text!r} is not a field")
        parser.read_field(token)

    _list(parser, item)


def _parse(parser: _Parser) -> None:
    parser.expression()
    pattern = parser.take()
    if pattern.kind not in ("string", "regex"):
        raise QueryError(f'parse: needs a "glob" or /regex/ pattern, found {pattern.text!r}')
    if pattern.kind == "regex":
        # Named groups define the fields.
        parser.scope.defined.extend(re.findall(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", pattern.text))
    if parser.at("as"):
        parser.take()
        _list(parser, parser.alias)
    elif pattern.kind == "string":
        raise QueryError("parse: a glob pattern needs 'as' and the names of its fields")
    _publish(parser)


def _stats(parser: _Parser) -> None:
    outputs: list[str] = []

    def item() -> None:
        start = parser.index
        if not parser.expression(aggregate=True):
            raise QueryError("stats: each item needs an aggregation such as count(*) or latest(field)")
        if parser.at("as"):
            parser.take()
            outputs.append(parser.alias())
        else:
            outputs.append(" ".join(token.text for token in parser.tokens[start : parser.index]))

    _list(parser, item)
    if parser.at("by"):
        parser.take()

        def group() -> None:
            start = parser.index
            if parser.expression():
                raise QueryError("stats: cannot group by an aggregation")
            if parser.at("as"):
                parser.take()
                outputs.append(parser.alias())
            else:
                outputs.append(
                    " ".join(token.text.strip("`") for token in parser.tokens[start : parser.index])
                )

        _list(parser, group)
    # After stats, only its output remains.
    if parser.scope.known is not None:
        parser.scope.known = set(outputs)
    parser.scope.defined.clear()


def _publish(parser: _Parser) -> None:
    """Make this command's ``as`` names visible to the commands after it."""
    if parser.scope.known is not None:
        parser.scope.known.update(parser.scope.defined)
    parser.scope.defined.clear()


_COMMAND_PARSERS = {
    "fields": _fields,
    "filter": _filter,
    "sort": _sort,
    "limit": _limit,
    "display": _names,
    "dedup": _names,
    "parse": _parse,
}


def raise_for(query: str, *, fields: Collection[str] | None = None) -> str:
    """``query`` itself when :func:`check_query` finds nothing; else :class:`QueryError` naming it all."""
    problems = check_query(query, fields=fields)
    if problems:
        raise QueryError(f"Logs Insights query does not check: {'; '.join(problems)}\n{query}")
    return query
