"""OData query options as Graph implements them for the routes keydesk uses: $filter (eq, ne,
startswith, and/or, lambda any on string collections), $select, $top, and paging with an
opaque $skiptoken that clients must follow as given in @odata.nextLink."""

import base64
import datetime
import json
import re
from urllib.parse import quote

from .core import GraphError


def bad_filter(message):
    return GraphError(400, "BadRequest", f"Invalid filter clause: {message}")


_TOKEN = re.compile(r"""\s*(?:
    (?P<str>'(?:[^']|'')*') |
    (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})) |
    (?P<num>-?\d+(?:\.\d+)?) |
    (?P<op>\(|\)|,|:|/) |
    (?P<word>[A-Za-z_$@][A-Za-z0-9_.$@-]*)
)""", re.X)


def _tokens(text):
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise bad_filter(f"syntax error at position {pos} in '{text}'")
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            val = val[1:-1].replace("''", "'")
        out.append((kind, val))
        pos = m.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return out


class Filter:
    """A parsed $filter; call .matches(obj). @fields maps a property name to a getter so
    routes decide which properties are filterable (others: 400, as in Graph)."""

    def __init__(self, text, fields, functions=("startswith",)):
        self.text = text
        self.fields = fields
        self.functions = functions
        self.toks = _tokens(text)
        self.i = 0
        self.tree = self._or()
        if self.i != len(self.toks):
            raise bad_filter(f"unexpected '{self.toks[self.i][1]}'")

    # grammar: or := and ('or' and)* ; and := term ('and' term)* ; term := 'not' term | '(' or ')'
    #          | func '(' field ',' literal ')' | field op literal | field '/any(' v ':' v 'eq' lit ')'
    def _peek(self, k=0):
        return self.toks[self.i + k] if self.i + k < len(self.toks) else (None, None)

    def _take(self, kind=None, val=None):
        tok = self._peek()
        if tok[0] is None or (kind and tok[0] != kind) or (val and tok[1].lower() != val):
            raise bad_filter(f"expected {val or kind} in '{self.text}'")
        self.i += 1
        return tok[1]

    def _or(self):
        node = self._and()
        while self._peek() == ("word", "or"):
            self.i += 1
            node = ("or", node, self._and())
        return node

    def _and(self):
        node = self._term()
        while self._peek() == ("word", "and"):
            self.i += 1
            node = ("and", node, self._term())
        return node

    def _literal(self):
        kind, val = self._peek()
        self.i += 1
        if kind == "str":
            return val
        if kind == "num":
            return float(val) if "." in val else int(val)
        if kind == "dt":                  # unquoted DateTimeOffset: createdDateTime ge 2026-…Z
            return parse_datetime(val)
        if kind == "word" and val in ("true", "false"):
            return val == "true"
        if kind == "word" and val == "null":
            return None
        raise bad_filter(f"expected a literal, got '{val}'")

    def _field(self, name):
        if name not in self.fields:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"Unsupported or invalid query filter clause specified for "
                             f"property '{name}' of resource.")
        return name

    def _term(self):
        kind, val = self._peek()
        if kind == "word" and val == "not":
            self.i += 1
            return ("not", self._term())
        if kind == "op" and val == "(":
            self.i += 1
            node = self._or()
            self._take("op", ")")
            return node
        if kind == "word" and self._peek(1) == ("op", "("):
            fn = val.lower()
            if fn not in self.functions:
                raise GraphError(400, "Request_UnsupportedQuery",
                                 f"Unsupported function '{val}' in filter.")
            self.i += 2
            field = self._field(self._take("word"))
            self._take("op", ",")
            lit = self._literal()
            self._take("op", ")")
            return (fn, field, lit)
        field = self._field(self._take("word"))
        if self._peek() == ("op", "/"):
            self.i += 1
            self._take("word", "any")
            self._take("op", "(")
            var = self._take("word")
            self._take("op", ":")
            if self._take("word") != var:
                raise bad_filter("lambda variable mismatch")
            self._take("word", "eq")
            lit = self._literal()
            self._take("op", ")")
            return ("any", field, lit)
        op = self._take("word").lower()
        if op not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise bad_filter(f"unsupported operator '{op}'")
        return (op, field, self._literal())

    def matches(self, obj):
        return self._eval(self.tree, obj)

    def _eval(self, node, obj):
        op = node[0]
        if op == "or":
            return self._eval(node[1], obj) or self._eval(node[2], obj)
        if op == "and":
            return self._eval(node[1], obj) and self._eval(node[2], obj)
        if op == "not":
            return not self._eval(node[1], obj)
        value = self.fields[node[1]](obj)
        lit = node[2]
        if op == "any":
            return any(_ieq(v, lit) for v in (value or []))
        if op == "startswith":
            return isinstance(value, str) and value.lower().startswith(str(lit).lower())
        if op == "eq":
            return _ieq(value, lit)
        if op == "ne":
            return not _ieq(value, lit)
        if value is None or lit is None:
            return False
        return {"gt": value > lit, "ge": value >= lit, "lt": value < lit, "le": value <= lit}[op]


def parse_datetime(text):
    """An ISO 8601 DateTimeOffset with Z or an offset → an aware datetime; None when @text
    is not one. Fractional seconds of any length are accepted."""
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})",
                     text or "")
    if not m:
        return None
    base, frac, tz = m.groups()
    try:
        dt = datetime.datetime.fromisoformat(base + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        return None
    if frac:
        dt = dt.replace(microsecond=int((frac + "000000")[:6]))
    return dt


def _ieq(a, b):
    # Directory string comparisons are case-insensitive.
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def select(obj, select_text, always=("id",)):
    """Apply $select to one object (Graph keeps @odata.type)."""
    if not select_text:
        return obj
    wanted = [s.strip() for s in select_text.split(",") if s.strip()]
    out = {k: obj[k] for k in obj if k.startswith("@odata")}
    for k in wanted:
        out[k] = obj.get(k)
    return out


def parse_top(req, default, maximum):
    text = req.query.get("$top")
    if text is None:
        return default
    try:
        top = int(text)
    except ValueError:
        raise GraphError(400, "BadRequest", f"Invalid value '{text}' for $top.") from None
    if top < 1 or top > maximum:
        raise GraphError(400, "Request_BadRequest",
                         f"Invalid page size specified: '{top}'. Must be between 1 and "
                         f"{maximum} inclusive.")
    return top


def encode_skiptoken(state):
    raw = json.dumps(state, separators=(",", ":")).encode()
    return "RFNwdAoAAQAAA" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_skiptoken(token):
    try:
        raw = token[len("RFNwdAoAAQAAA"):]
        raw += "=" * (-len(raw) % 4)
        return json.loads(base64.urlsafe_b64decode(raw))
    except (ValueError, TypeError):
        raise GraphError(400, "Directory_ExpiredPageToken",
                         "The specified page token value has expired and can no longer be "
                         "included in your request.") from None


def page(req, items, default_top, max_top, context, project=lambda x: x):
    """One page of @items (already filtered and ordered) with @odata.nextLink when more
    remain. The next link repeats the request's own query options plus $skiptoken."""
    top = parse_top(req, default_top, max_top)
    start = 0
    if "$skiptoken" in req.query:
        state = decode_skiptoken(req.query["$skiptoken"])
        start, top = state["o"], state["t"]
    chunk = items[start:start + top]
    body = {"@odata.context": context, "value": [project(x) for x in chunk]}
    if start + top < len(items):
        keep = {k: v for k, v in req.query.items() if k not in ("$skiptoken", "$top")}
        keep["$top"] = str(top)
        keep["$skiptoken"] = encode_skiptoken({"o": start + top, "t": top})
        qs = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in keep.items())
        path = req.raw_path.split("?", 1)[0]
        if path.startswith("/" + req.version):
            path = path[len(req.version) + 1:]
        body["@odata.nextLink"] = f"{req.base_url()}{path}?{qs}"
    return body
