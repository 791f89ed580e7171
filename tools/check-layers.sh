#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dependencies point one way (docs/architecture.md, "Layers"):
#   daemon/util, daemon/config, daemon/coap, wire   (pure; coap and wire libc only)
#   daemon/dtls                                     (GnuTLS in dtls.c only, no sd-*)
#   daemon/core                                     (sd-event; no sd-bus, no front end)
#   daemon/bus, daemon/channel                      (the front ends; neither includes the other)
#   daemon/main.c
# No include cycles among the daemon's files; the client library and the CLI know nothing of the
# daemon.
set -u
cd "$(dirname "$0")/.." || exit 1
bad=0
fail() { echo "check-layers: $*" >&2; bad=1; }

if grep -nE '#include *[<"](systemd/|gnutls/|\.\./|util/|core/|internal/bus-api)' daemon/coap/*.[ch]; then
    fail "daemon/coap/ must include libc headers only"
fi
# Inside it, one way too: the codec (coap-defs, coap-msg) < coap-option < the engine.
if grep -nE '#include *"coap-(option|engine)' daemon/coap/coap-defs.h daemon/coap/coap-msg.[ch] ||
    grep -nE '#include *"coap-engine' daemon/coap/coap-option.[ch]; then
    echo "daemon/coap/: the codec must not use coap-option or the engine, nor coap-option the engine" >&2
    bad=1
fi
if grep -nE '#include *[<"](systemd/|gnutls/|\.\./|util/|internal/)' wire/*.[ch]; then
    fail "wire/ (the data channel codec) must include libc headers only"
fi
if grep -nE '#include *[<"](systemd/|gnutls/|core/|bus/|channel/|dtls/)' daemon/config/*.[ch] daemon/util/*.[ch]; then
    fail "daemon/config/ and daemon/util/ must not include sd-bus, GnuTLS or higher layers"
fi
# dtls.[ch] and dtls-module.[ch] make coapclientd-dtls.so.
if grep -nE '#include *[<"](systemd/|core/|bus/|channel/)' daemon/dtls/*.[ch]; then
    fail "daemon/dtls/ must not use sd-* or the layers above it"
fi
# The daemon maps GnuTLS only when it loads coapclientd-dtls.so (dtls-loader.c).
if grep -rlE '#include *<gnutls/' daemon | grep -vx daemon/dtls/dtls.c; then
    fail "only daemon/dtls/dtls.c may use GnuTLS; the daemon reaches it through the module"
fi
if grep -nE '#include *[<"](systemd/sd-bus|bus/|channel/|internal/bus-api)' daemon/core/*.[ch]; then
    fail "daemon/core/ must not include sd-bus or a front end (bus/, channel/)"
fi
if grep -nE '#include *"channel/' daemon/bus/*.[ch]; then
    fail "daemon/bus/ must not include the data channel front end"
fi
if grep -nE '#include *"bus/' daemon/channel/*.[ch]; then
    fail "daemon/channel/ must not include the D-Bus front end"
fi
if grep -rnE '#include *"(\.\./)*daemon/' client-lib ctl 2>/dev/null; then
    fail "client-lib/ and ctl/ must not include daemon headers"
fi

# Include cycles among the daemon's modules (x.c and x.h are one module): resolve each quoted
# include the way the build does (the including file's folder, then daemon/, daemon/coap/,
# wire/) and look for a cycle. The core's objects (manager, caller, client, socket) own each
# other downwards and pass events upwards: there the headers alone must be acyclic, and the core
# counts as one module towards the rest.
python3 - <<'PY' || bad=1
import os, re, sys

roots = ["daemon", "daemon/coap", "wire"]
files = [os.path.join(d, f) for d, _, fs in os.walk("daemon") for f in fs if f.endswith((".c", ".h"))]
files += [os.path.join("wire", f) for f in os.listdir("wire") if f.endswith((".c", ".h"))]
known = set(files)

def module(path):
    if path.startswith("daemon/core/"):
        return "daemon/core"
    return os.path.splitext(path)[0]

graph, headers = {}, {}
for f in files:
    deps = graph.setdefault(module(f), [])
    for inc in re.findall(r'^#include\s+"([^"]+)"', open(f).read(), re.M):
        for base in [os.path.dirname(f)] + roots:
            p = os.path.normpath(os.path.join(base, inc))
            if p in known:
                if module(p) != module(f):
                    deps.append(module(p))
                if f.endswith(".h"):
                    headers.setdefault(f, []).append(p)
                break
    headers.setdefault(f, []) if f.endswith(".h") else None

def find_cycles(g):
    state, stack, cycles = {}, [], []
    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in g.get(n, []):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2
    for n in sorted(g):
        if n not in state:
            visit(n)
    return cycles

cycles = find_cycles(graph) + find_cycles(headers)
for c in cycles:
    print("check-layers: include cycle: " + " -> ".join(c), file=sys.stderr)
sys.exit(1 if cycles else 0)
PY
exit $bad
