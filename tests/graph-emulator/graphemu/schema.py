"""Conformance with Microsoft's v1.0 Graph schema (the CSDL, reference §10).

    from graphemu import schema
    problems = schema.check(obj, "fido2AuthenticationMethod")       # [] when it conforms
    problems = schema.check_response(body, "user", collection=True)  # {"value": [...]} too
    problems = schema.check_request("POST /users/x/authentication/fido2Methods", body)

The model is read from `cleanMetadata.xml` (msgraph-metadata's v1.0 CSDL without
descriptions): entity, complex and enum types with their BaseType chains, properties and
navigation properties, bound actions and functions. Found through $KEYDESK_GRAPH_METADATA (the
file or its folder), else `shared/reference/graph-metadata/` beside the repository checkout.
Parsed once per process (about 0.3 s) and kept in a module-level cache.

What check() reports, each problem as "$.path: text":
- a property the type (with its base types) does not declare, unless the type is open
  (OpenType="true") or the name is an instance annotation (`@odata.context`,
  `members@odata.nextLink`, `@microsoft.graph.tips`…);
- a JSON value of the wrong kind for its Edm type (Edm.String → string, Int32 → integer,
  DateTimeOffset → ISO 8601 with a zone, Guid → a GUID, Binary → base64/base64url…);
- null where the property has Nullable="false";
- an enum value that is not a member (unknownFutureValue is a member; flags enums take
  comma-separated members);
- an `@odata.type` that is unknown or not the expected type or one derived from it, and an
  object of an abstract type without `@odata.type` (Graph always names the concrete type);
nested complex values, expanded or contained navigation properties and collections are
checked the same way, recursively.

Two documented exceptions where the CSDL lags the documentation (reference §2.1, §10 and
graph-metadata/README.md), followed here:
- v1.0 `POST /users/{id}/authentication/fido2Methods` exists (GA April 2026) though the CSDL
  marks `authentication/fido2Methods` Insertable=false;
- `creationOptions(challengeTimeoutInMinutes=N)` is beta only; the v1.0 function has no
  parameters.
"""

import os
import re
import threading
import xml.etree.ElementTree as ET

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
HERE = os.path.dirname(os.path.abspath(__file__))
METADATA_NAME = "cleanMetadata.xml"

# Documented exceptions to the CSDL (see the module docstring).
EXCEPTIONS = {
    "insertable": {"microsoft.graph.authentication/fido2Methods":
                   "POST fido2Methods is GA in v1.0 (April 2026) although the CSDL says "
                   "Insertable=false"},
    "function_parameters": {("creationOptions", "beta"): {"challengeTimeoutInMinutes":
                                                           "Edm.Int32"}},
}


def metadata_path():
    """Where cleanMetadata.xml is: $KEYDESK_GRAPH_METADATA (file or folder), else
    <repo>/../shared/reference/graph-metadata/ (repo = the checkout holding tests/)."""
    env = os.environ.get("KEYDESK_GRAPH_METADATA")
    candidates = []
    if env:
        candidates.append(env if env.endswith(".xml") else os.path.join(env, METADATA_NAME))
    # HERE is <repo>/tests/graph-emulator/graphemu
    repo = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
    for base in (repo, os.path.dirname(repo)):
        candidates.append(os.path.join(os.path.dirname(base), "shared", "reference",
                                       "graph-metadata", METADATA_NAME))
        candidates.append(os.path.join(base, "shared", "reference", "graph-metadata",
                                       METADATA_NAME))
    for c in candidates:
        if os.path.isfile(c):
            return c
    raise FileNotFoundError("Graph v1.0 CSDL not found; set KEYDESK_GRAPH_METADATA to "
                            "cleanMetadata.xml (tried: " + ", ".join(candidates) + ")")


# --- the model --------------------------------------------------------------------------------

class Prop:
    __slots__ = ("name", "type", "collection", "nullable", "nav")

    def __init__(self, name, type_, collection, nullable, nav=False):
        self.name, self.type, self.collection, self.nullable, self.nav = \
            name, type_, collection, nullable, nav

    def __repr__(self):
        t = f"Collection({self.type})" if self.collection else self.type
        return f"<{'nav ' if self.nav else ''}{self.name}: {t}{'' if self.nullable else ' !'}>"


class TypeDef:
    """An entity, complex or enum type. `props` holds only what this type declares; use
    Model.all_props() for the BaseType chain."""

    def __init__(self, kind, name, base=None, abstract=False, open_=False):
        self.kind = kind              # "entity", "complex", "enum"
        self.name = name              # full name: microsoft.graph.user
        self.base = base
        self.abstract = abstract
        self.open = open_
        self.props = {}
        self.members = []             # enum members
        self.flags = False

    def __repr__(self):
        return f"<{self.kind} {self.name}>"


class Operation:
    """A bound action or function (creationOptions, revokeSignInSessions…)."""

    def __init__(self, kind, name, binding, params, returns):
        self.kind, self.name, self.binding, self.params, self.returns = \
            kind, name, binding, params, returns

    def __repr__(self):
        return f"<{self.kind} {self.name}({', '.join(self.params)}) -> {self.returns}>"


def _split_collection(t):
    if t.startswith("Collection(") and t.endswith(")"):
        return t[len("Collection("):-1], True
    return t, False


class Model:
    def __init__(self, path):
        self.path = path
        self.types = {}               # full name → TypeDef
        self.operations = {}          # name → [Operation]
        self.annotations = {}         # target → {term: {property: value}}
        self._derived = None
        self._all_props = {}
        self._parse(path)

    # parsing --------------------------------------------------------------------------------

    def _parse(self, path):
        root = ET.parse(path).getroot()
        schemas = list(root.iter(EDM + "Schema"))
        self.aliases = {}
        for s in schemas:
            ns = s.get("Namespace")
            self.aliases[ns] = ns
            if s.get("Alias"):
                self.aliases[s.get("Alias")] = ns
        for s in schemas:
            ns = s.get("Namespace")
            for el in s:
                tag = el.tag[len(EDM):] if el.tag.startswith(EDM) else el.tag
                if tag == "EnumType":
                    t = TypeDef("enum", f"{ns}.{el.get('Name')}")
                    t.flags = el.get("IsFlags") == "true"
                    t.members = [m.get("Name") for m in el.iter(EDM + "Member")]
                    self.types[t.name] = t
                elif tag in ("EntityType", "ComplexType"):
                    t = TypeDef("entity" if tag == "EntityType" else "complex",
                                f"{ns}.{el.get('Name')}", self.resolve(el.get("BaseType")),
                                el.get("Abstract") == "true", el.get("OpenType") == "true")
                    for p in el:
                        ptag = p.tag[len(EDM):]
                        if ptag not in ("Property", "NavigationProperty"):
                            continue
                        inner, coll = _split_collection(p.get("Type"))
                        t.props[p.get("Name")] = Prop(p.get("Name"), self.resolve(inner), coll,
                                                      p.get("Nullable") != "false",
                                                      ptag == "NavigationProperty")
                    self.types[t.name] = t
                elif tag in ("Action", "Function"):
                    params = []
                    for p in el.iter(EDM + "Parameter"):
                        inner, coll = _split_collection(p.get("Type"))
                        params.append((p.get("Name"), self.resolve(inner), coll))
                    binding = params[0] if el.get("IsBound") == "true" and params else None
                    if binding:
                        params = params[1:]
                    rt = el.find(EDM + "ReturnType")
                    returns = None
                    if rt is not None:
                        inner, coll = _split_collection(rt.get("Type"))
                        returns = (self.resolve(inner), coll)
                    self.operations.setdefault(el.get("Name"), []).append(
                        Operation(tag.lower(), el.get("Name"), binding,
                                  {n: (t, c) for n, t, c in params}, returns))
                elif tag == "Annotations":
                    target = el.get("Target")
                    for a in el.iter(EDM + "Annotation"):
                        term = a.get("Term")
                        if not term.startswith("Org.OData.Capabilities"):
                            continue
                        rec = {pv.get("Property"): pv.get("Bool") or pv.get("String")
                               for pv in a.iter(EDM + "PropertyValue")}
                        self.annotations.setdefault(target, {})[term.rsplit(".", 1)[1]] = rec

    def resolve(self, name):
        """A type reference (graph.user, self.alert, Edm.String) → its full name."""
        if not name or name.startswith("Edm."):
            return name
        ns, _, local = name.rpartition(".")
        return f"{self.aliases.get(ns, ns)}.{local}"

    # queries ----------------------------------------------------------------------------------

    def type(self, name):
        """The TypeDef for "user", "microsoft.graph.user" or "#microsoft.graph.user"."""
        name = name.lstrip("#")
        t = self.types.get(name) or self.types.get("microsoft.graph." + name)
        if t is None:
            raise KeyError(f"no type {name!r} in the v1.0 schema")
        return t

    def chain(self, t):
        """@t and its base types, most derived first."""
        out = []
        while t is not None:
            out.append(t)
            t = self.types.get(t.base) if t.base else None
        return out

    def all_props(self, t):
        props = self._all_props.get(t.name)
        if props is None:
            props = {}
            for c in reversed(self.chain(t)):
                props.update(c.props)
            self._all_props[t.name] = props
        return props

    def is_open(self, t):
        return any(c.open for c in self.chain(t))

    def derives_from(self, t, base):
        return any(c.name == base.name for c in self.chain(t))

    def insertable(self, target):
        """False when the CSDL says Insertable=false for e.g.
        "microsoft.graph.authentication/fido2Methods", unless a documented exception says
        otherwise (then True)."""
        if target in EXCEPTIONS["insertable"]:
            return True
        rec = self.annotations.get(target, {}).get("InsertRestrictions", {})
        return rec.get("Insertable") != "false"

    def operation(self, name, binding_type=None, version="v1.0"):
        """The bound operation @name (optionally bound to @binding_type); with the
        documented beta-only parameters added for version "beta"."""
        ops = self.operations.get(name, [])
        if binding_type is not None:
            bt = self.type(binding_type).name
            ops = [o for o in ops if o.binding and o.binding[1] == bt]
        if not ops:
            raise KeyError(f"no operation {name!r}")
        op = ops[0]
        extra = EXCEPTIONS["function_parameters"].get((name, version))
        if extra:
            params = dict(op.params)
            params.update({k: (v, False) for k, v in extra.items()})
            op = Operation(op.kind, op.name, op.binding, params, op.returns)
        return op


_model = None
_beta = None
_model_lock = threading.Lock()


def model():
    """The parsed v1.0 model (parsed on first use, then cached for the process)."""
    global _model
    with _model_lock:
        if _model is None:
            _model = Model(metadata_path())
        return _model


def beta_names():
    """{full type name: set of property and navigation property names} from
    beta-{entity,complex}-types.json: beta has no CSDL here, only these name lists (without
    inherited properties)."""
    global _beta
    with _model_lock:
        if _beta is None:
            import json
            folder = os.path.dirname(metadata_path())
            names = {}
            for kind in ("entity", "complex"):
                path = os.path.join(folder, f"beta-{kind}-types.json")
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                for ns, types in data.items():
                    for name, t in types.items():
                        names[f"{ns}.{name}"] = set(t.get("properties", [])) | \
                            set(t.get("navigationProperties", []))
            _beta = names
        return _beta


# --- checking values ----------------------------------------------------------------------------

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,12})?)?$")
_DURATION = re.compile(r"^-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?"
                       r"(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
_B64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_INT_RANGES = {"Edm.Byte": (0, 255), "Edm.SByte": (-128, 127), "Edm.Int16": (-2**15, 2**15 - 1),
               "Edm.Int32": (-2**31, 2**31 - 1), "Edm.Int64": (-2**63, 2**63 - 1)}


def _is_annotation(key):
    return "@" in key


def _kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _check_primitive(value, edm, where, out):
    def bad(expect):
        out.append(f"{where}: expected {expect} for {edm}, got {_kind(value)} {value!r:.60}")

    if edm in ("Edm.Untyped", "Edm.Stream", "Edm.PrimitiveType") or edm.startswith("Edm.Geo"):
        return
    if edm == "Edm.Boolean":
        if not isinstance(value, bool):
            bad("true/false")
    elif edm in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int):
            bad("an integer")
        else:
            lo, hi = _INT_RANGES[edm]
            if not lo <= value <= hi:
                bad(f"an integer in {lo}..{hi}")
    elif edm in ("Edm.Double", "Edm.Single", "Edm.Decimal"):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) or
                                           value in ("NaN", "INF", "-INF")):
            bad("a number")
    elif not isinstance(value, str):
        bad("a string")
    elif edm == "Edm.DateTimeOffset":
        if not _DATETIME.match(value):
            bad("an ISO 8601 date-time with a zone")
    elif edm == "Edm.Date":
        if not _DATE.match(value):
            bad("YYYY-MM-DD")
    elif edm == "Edm.TimeOfDay":
        if not _TIME.match(value):
            bad("hh:mm:ss")
    elif edm == "Edm.Duration":
        if not _DURATION.match(value):
            bad("an ISO 8601 duration")
    elif edm == "Edm.Guid":
        if not _GUID.match(value):
            bad("a GUID")
    elif edm == "Edm.Binary":
        if not _B64.match(value):
            bad("base64")


class Checker:
    """@version "beta": property names are also taken from the beta name lists (their values
    are type-checked only where v1.0 declares the property); types that exist only in beta
    are checked by name; enum members are not checked (beta has no enum list here)."""

    def __init__(self, m, extra_props=(), version="v1.0"):
        self.m = m
        self.extra_props = set(extra_props)   # e.g. declared extension properties
        self.beta = beta_names() if version == "beta" else None

    def value(self, value, type_name, collection, nullable, where, out):
        if value is None:
            if not nullable:
                out.append(f"{where}: null, but the property is not nullable")
            return
        if collection:
            if not isinstance(value, list):
                out.append(f"{where}: expected an array, got {_kind(value)}")
                return
            for i, v in enumerate(value):
                if v is None:
                    out.append(f"{where}[{i}]: null in a collection")
                    continue
                self.value(v, type_name, False, True, f"{where}[{i}]", out)
            return
        if type_name.startswith("Edm."):
            _check_primitive(value, type_name, where, out)
            return
        t = self.m.types.get(type_name)
        if t is None:
            out.append(f"{where}: the schema has no type {type_name}")
            return
        if t.kind == "enum":
            if self.beta is None:
                self.enum(value, t, where, out)
        else:
            self.structured(value, t, where, out)

    def enum(self, value, t, where, out):
        if not isinstance(value, str):
            out.append(f"{where}: expected a {t.name} member name, got {_kind(value)}")
            return
        names = [v.strip() for v in value.split(",")] if t.flags else [value]
        for n in names:
            if n not in t.members:
                out.append(f"{where}: {n!r} is not a member of {t.name} "
                           f"({', '.join(t.members)})")

    def structured(self, obj, t, where, out):
        if not isinstance(obj, dict):
            out.append(f"{where}: expected an object ({t.name}), got {_kind(obj)}")
            return
        odata_type = obj.get("@odata.type")
        if odata_type is not None:
            if not isinstance(odata_type, str):
                out.append(f"{where}.@odata.type: expected a string")
            else:
                actual = self.m.types.get(odata_type.lstrip("#"))
                if actual is None and self.beta is not None and \
                        odata_type.lstrip("#") in self.beta:
                    self.beta_only(obj, odata_type.lstrip("#"), t, where, out)
                    return
                if actual is None:
                    out.append(f"{where}.@odata.type: unknown type {odata_type!r}")
                    return
                if not self.m.derives_from(actual, t):
                    out.append(f"{where}.@odata.type: {odata_type} is not {t.name} or derived "
                               "from it")
                    return
                t = actual
        if t.abstract and odata_type is None:
            out.append(f"{where}: {t.name} is abstract; the object must carry the concrete "
                       "@odata.type")
        props = self.m.all_props(t)
        is_open = self.m.is_open(t)
        beta_extra = set()
        if self.beta is not None:
            for c in self.m.chain(t):
                beta_extra |= self.beta.get(c.name, set())
        for key, v in obj.items():
            if _is_annotation(key):
                continue
            p = props.get(key)
            if p is None:
                if not is_open and key not in self.extra_props and key not in beta_extra:
                    out.append(f"{where}.{key}: {t.name} has no property {key!r}"
                               f"{' (v1.0 or beta)' if self.beta is not None else ''}")
                continue
            self.value(v, p.type, p.collection, p.nullable, f"{where}.{key}", out)

    def beta_only(self, obj, name, expected, where, out):
        """A type only beta has: names from its beta list and the expected type's chain."""
        allowed = _beta_allowed(name) | set(self.m.all_props(expected))
        for c in self.m.chain(expected):
            allowed |= self.beta.get(c.name, set())
        for key in obj:
            if not _is_annotation(key) and key not in allowed and key not in self.extra_props:
                out.append(f"{where}.{key}: {name} (beta) has no property {key!r}")


def check(obj, type_name, extra_props=(), version="v1.0"):
    """Problems (a list of strings; empty = conforms) of @obj as a value of @type_name
    ("user", "microsoft.graph.user", "#microsoft.graph.user", "Collection(user)", or an
    Edm type). @extra_props are property names to accept besides the schema's. @version
    "beta" also accepts beta's property names (see Checker)."""
    m = model()
    inner, coll = _split_collection(type_name.lstrip("#"))
    out = []
    if not inner.startswith("Edm."):
        try:
            inner = m.type(inner).name
        except KeyError:
            full = inner if "." in inner else "microsoft.graph." + inner
            if version != "beta" or full not in beta_names():
                raise
            return _check_beta_only(obj, full, coll, extra_props)
    Checker(m, extra_props, version).value(obj, inner, coll, True, "$", out)
    return out


def beta_base(full):
    """The v1.0 base type of a beta-only type (the beta name lists do not say): the
    authentication method types derive from authenticationMethod; others from entity."""
    m = model()
    if full.endswith("AuthenticationMethod"):
        return m.type("authenticationMethod")
    return m.type("entity")


def _beta_allowed(full):
    """Property names of beta-only type @full: its own, and its (v1.0 and beta) base's."""
    m, beta = model(), beta_names()
    base = beta_base(full)
    allowed = set(beta.get(full, ())) | set(m.all_props(base))
    for c in m.chain(base):
        allowed |= beta.get(c.name, set())
    return allowed


def _check_beta_only(obj, full, collection, extra_props):
    """A type only beta has (e.g. signInPreferences): property names only."""
    items = obj if collection else [obj]
    if collection and not isinstance(obj, list):
        return [f"$: expected an array, got {_kind(obj)}"]
    out = []
    allowed = _beta_allowed(full) | set(extra_props)
    for i, item in enumerate(items):
        where = f"$[{i}]" if collection else "$"
        if not isinstance(item, dict):
            out.append(f"{where}: expected an object ({full}), got {_kind(item)}")
            continue
        for key in item:
            if not _is_annotation(key) and key not in allowed:
                out.append(f"{where}.{key}: {full} (beta) has no property {key!r}")
    return out


def check_response(body, type_name, collection=None, extra_props=(), version="v1.0"):
    """Problems of a Graph response body: a single @type_name object, or (collection=True,
    or when the body has "value" and collection is None) {"@odata.context"?,
    "@odata.nextLink"?, "value": [...]} whose items are @type_name. A primitive return
    ({"@odata.context": "…$metadata#Edm.Boolean", "value": true}) is checked with an Edm
    type name and collection=False handled as a wrapped value."""
    out = []
    if not isinstance(body, dict):
        return [f"$: expected a JSON object, got {_kind(body)}"]
    if type_name.startswith("Edm."):
        if "value" not in body:
            return ["$: a primitive result must be wrapped as {\"value\": …}"]
        inner, coll = _split_collection(type_name)
        Checker(model(), (), version).value(body["value"], inner, bool(collection) or coll,
                                            True, "$.value", out)
        return out
    if collection is None:
        collection = "value" in body and isinstance(body.get("value"), list) and \
            "id" not in body
    if not collection:
        return check(body, type_name, extra_props, version)
    for key in body:
        if key != "value" and not _is_annotation(key):
            out.append(f"$.{key}: a collection response has only value and annotations")
    if not isinstance(body.get("value"), list):
        out.append("$.value: expected an array")
        return out
    m = model()
    checker = Checker(m, extra_props, version)
    try:
        t = m.type(type_name.lstrip("#")).name
    except KeyError:
        return out + [p.replace("$[", "$.value[", 1)
                      for p in check(body["value"], f"Collection({type_name})", extra_props,
                                     version)]
    for i, item in enumerate(body["value"]):
        checker.value(item, t, False, False, f"$.value[{i}]", out)
    return out


# --- request bodies the emulator accepts ----------------------------------------------------------

def _fido2_post(body, version, extra_props):
    out = check(body, "fido2AuthenticationMethod")
    if not isinstance(body, dict):
        return out
    if "@odata.type" in body:
        out.append("$.@odata.type: omit annotations in the POST body (beta rejected a body "
                   "with @odata.type, reference §2.5)")
    for ro in ("id", "createdDateTime", "aaGuid", "attestationCertificates",
               "attestationLevel", "model", "passkeyType"):
        if ro in body:
            out.append(f"$.{ro}: read-only; not part of the registration body")
    cred = body.get("publicKeyCredential")
    if not isinstance(cred, dict):
        out.append("$.publicKeyCredential: required (webauthnPublicKeyCredential)")
    else:
        if not cred.get("id"):
            out.append("$.publicKeyCredential.id: required")
        resp = cred.get("response")
        if not isinstance(resp, dict):
            out.append("$.publicKeyCredential.response: required")
        else:
            for k in ("clientDataJSON", "attestationObject"):
                if not resp.get(k):
                    out.append(f"$.publicKeyCredential.response.{k}: required")
    name = body.get("displayName")
    if name is None and version == "beta":
        out.append("$.displayName: required on beta")
    if isinstance(name, str) and not 1 <= len(name) <= 30:
        out.append("$.displayName: 1-30 characters")
    return out


def _tap_post(body, version, extra_props):
    out = check(body, "temporaryAccessPassAuthenticationMethod")
    if isinstance(body, dict):
        for ro in ("id", "createdDateTime", "temporaryAccessPass", "isUsable",
                   "methodUsabilityReason"):
            if ro in body:
                out.append(f"$.{ro}: read-only; not part of the create body")
        life = body.get("lifetimeInMinutes")
        if isinstance(life, int) and not isinstance(life, bool) and not 10 <= life <= 43200:
            out.append("$.lifetimeInMinutes: 10-43200")
    return out


def _user_patch(body, version, extra_props):
    # user is an open type in the CSDL, but a PATCH may only name declared properties and
    # the tenant's declared extension properties (extension_{appId}_{name}).
    m = model()
    props = m.all_props(m.type("user"))
    out = check(body, "user", extra_props)
    if isinstance(body, dict):
        for key in body:
            if _is_annotation(key) or key in props or key in extra_props:
                continue
            out.append(f"$.{key}: not a user property nor a declared extension property")
        if "id" in body:
            out.append("$.id: read-only")
    return out


def _ref_post(body, version, extra_props):
    if not isinstance(body, dict):
        return [f"$: expected an object, got {_kind(body)}"]
    out = [f"$.{k}: a $ref body has only @odata.id" for k in body if k != "@odata.id"]
    v = body.get("@odata.id")
    if not isinstance(v, str) or not re.match(r"^https://[^/]+/(v1\.0|beta)/"
                                              r"(directoryObjects|users|groups)/[^/]+$", v or ""):
        out.append("$.@odata.id: expected https://graph.microsoft.com/v1.0/directoryObjects/{id}")
    return out


# (method, sample path, checker): a route is matched by its method and by its pattern
# matching the sample path; a path is matched by the regex made from the sample.
REQUEST_BODIES = [
    ("POST", "/users/{id}/authentication/fido2Methods", _fido2_post),
    ("POST", "/users/{id}/authentication/temporaryAccessPassMethods", _tap_post),
    ("PATCH", "/users/{id}", _user_patch),
    ("POST", "/groups/{id}/members/$ref", _ref_post),
]


def _sample(path):
    return path.replace("{id}", "x-00000000")


def _path_regex(path):
    return re.compile("^(/v1\\.0|/beta)?" + re.escape(path).replace(r"\{id\}", "[^/]+") + "$")


def check_request(route_name_or_path, body, method=None, version="v1.0", extra_props=()):
    """Problems of a request body the emulator accepts. @route_name_or_path is "METHOD
    /path" (version prefix optional), a path with @method, or a route name from the
    route table ("fido2.register"…). @extra_props: declared extension properties for PATCH
    users. Raises KeyError for a route with no known body schema."""
    target = route_name_or_path.strip()
    if " " in target:
        method, target = target.split(None, 1)
    if target.startswith("/"):
        path = target.split("?", 1)[0]
        if path.startswith("/beta/"):
            version = "beta"
        for m, sample, fn in REQUEST_BODIES:
            if (method or "").upper() == m and _path_regex(sample).match(path):
                return fn(body, version, extra_props)
        raise KeyError(f"no request schema for {method} {path}")
    from . import core
    from .routes import load_all
    load_all()
    for r in core.GRAPH_ROUTES:
        if r.name != target:
            continue
        for m, sample, fn in REQUEST_BODIES:
            if r.method == m and r.pattern.match(_sample(sample)):
                return fn(body, version, extra_props)
    raise KeyError(f"no request schema for route {target}")
