#!/usr/bin/env python3
"""Stand-in mongodump / mongorestore for dbkeep's tests. Not MongoDB.

A "server" is a JSON file, $STANDIN_MONGO_STATE: {db: {collection: [doc, ...]}}
where each doc is a flat object of strings. mongodump writes it as a real
`--archive` stream (magic, prelude, namespace segments, EOF headers);
mongorestore reads such a stream from stdin and writes the documents back,
honouring --drop, --nsInclude and --nsFrom/--nsTo (`db.*` patterns only).

Every call appends {tool, argv, config_mode, uri} to $STANDIN_MONGO_LOG.
$STANDIN_MONGO_FAIL picks a failure (fail, halfway, empty, truncated) for the
call numbered $STANDIN_MONGO_FAIL_AT (default 2: the first is dbkeep's probe)
and later ones.
"""
import json
import os
import struct
import sys

MAGIC = bytes([0x6D, 0xE2, 0x99, 0x81])
TERM = b"\xff\xff\xff\xff"


def bson(fields, flags=()):
    body = b""
    for k, v in fields:
        v = v.encode()
        body += b"\x02" + k.encode() + b"\x00" + struct.pack("<i", len(v) + 1) + v + b"\x00"
    for k, v in flags:
        body += b"\x08" + k.encode() + b"\x00" + (b"\x01" if v else b"\x00")
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def parse_doc(doc):
    out, i = {}, 4
    while i < len(doc) - 1:
        ty = doc[i]
        i += 1
        nul = doc.index(b"\x00", i)
        key = doc[i:nul].decode()
        i = nul + 1
        if ty == 0x02:
            (n,) = struct.unpack_from("<i", doc, i)
            out[key] = doc[i + 4 : i + 3 + n].decode()
            i += 4 + n
        elif ty == 0x08:
            out[key] = doc[i] == 1
            i += 1
        elif ty in (0x01, 0x09, 0x11, 0x12):
            i += 8
        elif ty == 0x10:
            i += 4
        elif ty in (0x03, 0x04):
            (n,) = struct.unpack_from("<i", doc, i)
            i += n
        else:
            raise ValueError("unexpected BSON type %d" % ty)
    return out


def archive(state, only_db):
    out = MAGIC + bson([("version", "0.1"), ("server_version", "0.0.0-stand-in")])
    names = [(db, c) for db in sorted(state) for c in sorted(state[db]) if only_db in (None, db)]
    for db, c in names:
        out += bson([("db", db), ("collection", c), ("metadata", "{}")])
    out += TERM
    for db, c in names:
        out += bson([("db", db), ("collection", c)])
        for d in state[db][c]:
            out += bson(sorted(d.items()))
        out += TERM
    for db, c in names:
        out += bson([("db", db), ("collection", c)], [("EOF", True)])
        out += TERM
    return out


def read_archive(data):
    if data[:4] != MAGIC:
        raise ValueError("not an archive")
    i, docs, prelude = 4, {}, True
    header_seen = False
    current = None
    while i < len(data):
        if data[i : i + 4] == TERM:
            i += 4
            if prelude:
                prelude = False
            current = None
            continue
        (n,) = struct.unpack_from("<i", data, i)
        if n < 5 or i + n > len(data):
            raise ValueError("truncated document at %d" % i)
        doc = parse_doc(data[i : i + n])
        i += n
        if prelude:
            if header_seen:
                docs.setdefault((doc["db"], doc["collection"]), [])
            header_seen = True
        elif current is None:
            if not doc.get("EOF"):
                current = (doc["db"], doc["collection"])
                docs.setdefault(current, [])
        else:
            docs[current].append(doc)
    if prelude or current is not None:
        raise ValueError("archive ends early")
    return docs


def option(argv, name):
    for a in argv:
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def main():
    tool = os.path.basename(sys.argv[0])
    argv = sys.argv[1:]
    if "--version" in argv:
        print("%s version: 100.7.0 (stand-in)" % tool)
        return 0
    config = option(argv, "--config")
    mode, uri = None, None
    if config:
        mode = oct(os.stat(config).st_mode & 0o777)
        for line in open(config):
            if line.startswith("uri:"):
                uri = line.split(":", 1)[1].strip().strip("'\"")
    log = os.environ["STANDIN_MONGO_LOG"]
    with open(log, "a") as f:
        f.write(json.dumps({"tool": tool, "argv": argv, "config_mode": mode, "uri": uri}) + "\n")
    calls = sum(1 for _ in open(log))
    state_path = os.environ["STANDIN_MONGO_STATE"]
    state = json.load(open(state_path)) if os.path.exists(state_path) else {}
    fail = os.environ.get("STANDIN_MONGO_FAIL")
    if fail and calls < int(os.environ.get("STANDIN_MONGO_FAIL_AT", "2")):
        fail = None

    if tool == "mongodump":
        if fail == "fail":
            sys.stderr.write("Failed: can't create session: authentication failed (stand-in)\n")
            return 1
        if fail == "empty":
            sys.stderr.write("stand-in: writing nothing\n")
            return 0
        data = archive(state, option(argv, "--db"))
        if fail == "truncated":
            sys.stdout.buffer.write(data[: len(data) // 2])
            sys.stdout.flush()
            sys.stderr.write("stand-in: stopped early\n")
            return 0
        if fail == "halfway":
            sys.stdout.buffer.write(data[: len(data) // 2])
            sys.stdout.flush()
            sys.stderr.write("stand-in: dumping app.orders: interrupted\n")
            os.kill(os.getpid(), 9)
        sys.stdout.buffer.write(data)
        return 0

    # mongorestore
    if fail == "fail":
        sys.stderr.write("Failed: restore error (stand-in)\n")
        return 1
    try:
        docs = read_archive(sys.stdin.buffer.read())
    except ValueError as e:
        sys.stderr.write("Failed: corruption found in archive: %s\n" % e)
        return 1
    include = option(argv, "--nsInclude")
    ns_from, ns_to = option(argv, "--nsFrom"), option(argv, "--nsTo")
    for (db, c), items in docs.items():
        if include and not (include.endswith(".*") and db == include[:-2]):
            continue
        if ns_from and ns_from.endswith(".*") and db == ns_from[:-2]:
            db = ns_to[:-2]
        target = state.setdefault(db, {})
        if "--drop" in argv or c not in target:
            target[c] = []
        target[c].extend(items)
    json.dump(state, open(state_path, "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
